"""Naive Bayes text classifiers over the token and hashed n-gram ids of the classifier
preprocessor: multinomial or complement NB fitted by counting in one pass (no gradient
descent), and NBSVM (Wang & Manning 2012), a linear model over NB log-count ratios."""

import keras
import tensorflow as tf
from keras import ops

RESERVED_IDS = 2  # padding (0) and unknown (1) ids carry no evidence, as words unseen in training


def _one_hot_targets(targets, weights, num_classes):
    """`[B, C]` class indicators (binary targets arrive as one 0/1 column), times the weights."""
    targets = ops.cast(targets, "float32")
    if num_classes == 2:
        positive = ops.reshape(targets, (-1, 1))
        targets = ops.concatenate([1.0 - positive, positive], axis=1)
    if weights is not None:
        targets = targets * ops.reshape(ops.cast(weights, "float32"), (-1, 1))
    return targets


def _clipped_ids(token_ids, vocab_size):
    return ops.clip(ops.cast(token_ids, "int32"), 0, vocab_size - 1)


def _first_occurrences(ids):
    """`[B, T]` ids sorted per row, and 1.0 where an id is real and not a repeat of the one
    before it: each id of an example counted once (binarized features)."""
    ordered = ops.sort(ids, axis=-1)
    previous = ops.pad(ordered[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
    keep = ops.logical_and(ordered != previous, ordered >= RESERVED_IDS)
    return ordered, ops.cast(keep, "float32")


def _add_counts(counts, ids, mask, targets, vocab_size):
    """Adds each example's class indicators to the rows of its ids where `mask` is 1."""
    batch, length = ops.shape(ids)[0], ops.shape(ids)[1]
    rows = ops.reshape(ops.repeat(ops.arange(batch)[:, None], length, axis=1), (-1,))
    per_token = ops.take(targets, rows, axis=0) * ops.reshape(mask, (-1, 1))
    counts.assign_add(ops.segment_sum(per_token, ops.reshape(ids, (-1,)), num_segments=vocab_size))


def _seen(ids, rows):
    """1.0 where an id is real and was counted in training (its gathered count `rows` are not
    all zero): unseen ids, as words outside scikit-learn's vocabulary, carry no evidence."""
    counted = ops.sum(rows, axis=-1) > 0
    return ops.cast(ops.logical_and(ids >= RESERVED_IDS, counted), "float32")


def _probabilities(scores, num_classes):
    if num_classes == 2:
        return ops.sigmoid(scores[:, 1:] - scores[:, :1])
    return ops.softmax(scores, axis=-1)


class CountSeenFeatures(keras.callbacks.Callback):
    """Sets a counting model's number of features seen in training before every evaluation,
    at each epoch's end (before its checkpoint) and at the end of training: one pass over the
    table, never per batch."""

    def on_test_begin(self, logs=None):
        self.model.count_seen_features()

    def on_epoch_end(self, epoch, logs=None):
        self.model.count_seen_features()

    def on_train_end(self, logs=None):
        self.model.count_seen_features()


class _CountingClassifier(keras.Model):
    """Shared state of the count-based classifiers: `counts [V, C]` per id and class,
    `token_totals [C]` (their column sums, kept so scoring never sums the table),
    `class_counts [C]` examples, all summed over replicas; and `seen_features`, the number of
    ids counted at least once. As scikit-learn's vectorizer vocabulary, only seen features
    share the smoothing mass (hashed n-gram buckets that never occurred do not dilute it) and
    ids unseen in training carry no evidence."""

    def __init__(self, *, vocab_size, num_classes=2, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if vocab_size <= RESERVED_IDS:
            raise ValueError(f"vocab_size must exceed {RESERVED_IDS}, got {vocab_size}")
        self.vocab_size, self.num_classes, self.alpha = vocab_size, num_classes, alpha
        self.counts = self.add_weight(shape=(vocab_size, num_classes), initializer="zeros",
                                      trainable=False, aggregation="sum", name="counts")
        self.token_totals = self.add_weight(shape=(num_classes,), initializer="zeros",
                                            trainable=False, aggregation="sum", name="token_totals")
        self.class_counts = self.add_weight(shape=(num_classes,), initializer="zeros",
                                            trainable=False, aggregation="sum", name="class_counts")
        self.seen_features = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                             aggregation="only_first_replica",
                                             name="seen_features")

    def count_seen_features(self):
        seen = ops.sum(ops.cast(ops.sum(self.counts[RESERVED_IDS:], axis=1) > 0, "float32"))
        self.seen_features.assign(seen)

    def training_callbacks(self):
        return [CountSeenFeatures()]

    def smoothing_mass(self):
        """Lidstone's alpha times the seen features (at least one, before any counting)."""
        return self.alpha * ops.maximum(self.seen_features, 1.0)

    def count(self, ids, mask, targets):
        _add_counts(self.counts, ids, mask, targets, self.vocab_size)
        self.token_totals.assign_add(ops.sum(targets * ops.sum(mask, axis=1, keepdims=True), axis=0))
        self.class_counts.assign_add(ops.sum(targets, axis=0))

    def finish_step(self, data, token_ids, weights):
        predictions = self(token_ids)
        loss = self.compute_loss(token_ids, data[1], predictions, weights, training=True)
        self._loss_tracker.update_state(loss, sample_weight=ops.shape(token_ids)[0])
        return self.compute_metrics(token_ids, data[1], predictions, sample_weight=weights)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "num_classes": self.num_classes, "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class NaiveBayesClassifier(_CountingClassifier):
    """`token_ids [B, T]` → class probabilities, from class-conditional token counts.

    Training steps only count (the loop's one pass over the data is the fit), each example
    weighted by its sample weight (e.g. balanced class weights). A prediction gathers the rows of
    its ids and scores them on the fly, so fitting never rebuilds a table. Scores are
    Lidstone-smoothed (`alpha`) log-likelihoods: multinomial NB adds the log prior (McCallum &
    Nigam 1998); complement NB (Rennie et al. 2003) scores each class by the negated
    log-likelihood of the other classes' counts and ignores the prior, as scikit-learn's
    ComplementNB does. Binary tasks give one sigmoid output `[B, 1]` (as every classifier),
    others a softmax.
    """

    def __init__(self, *, complement=False, prior="empirical", training_metrics=False, **kwargs):
        super().__init__(**kwargs)
        # without them a training step only counts: a loss of the half-counted model on each
        # batch measures little and costs a prediction per step (a third of AG News's fit); a
        # run without validation data monitors them, so it asks for them
        self.reports_training_metrics = training_metrics
        if prior not in ("empirical", "uniform"):
            raise ValueError(f"prior must be empirical or uniform, got {prior!r}")
        self.complement, self.prior = complement, prior

    def scores(self, token_ids):
        """Joint log-likelihood `[B, C]` of each class and the text."""
        ids = _clipped_ids(token_ids, self.vocab_size)
        rows = ops.take(self.counts, ids, axis=0)
        totals = self.token_totals
        if self.complement:
            rows = ops.sum(rows, axis=-1, keepdims=True) - rows
            totals = ops.sum(totals) - totals
        log_likelihood = ops.log(rows + self.alpha) - ops.log(totals + self.smoothing_mass())
        total = ops.sum(log_likelihood * _seen(ids, rows)[..., None], axis=1)
        if self.complement:
            return -total
        if self.prior == "uniform":
            return total
        prior = ops.log(ops.maximum(self.class_counts, 1e-12) /
                        ops.maximum(ops.sum(self.class_counts), 1.0))
        return total + prior

    def call(self, token_ids):
        return _probabilities(self.scores(token_ids), self.num_classes)

    def train_step(self, data):
        token_ids, targets, weights = keras.utils.unpack_x_y_sample_weight(data)
        ids = _clipped_ids(token_ids, self.vocab_size)
        mask = ops.cast(ids >= RESERVED_IDS, "float32")
        self.count(ids, mask, _one_hot_targets(targets, weights, self.num_classes))
        return self.finish_step(data, token_ids, weights) if self.reports_training_metrics else {}

    def get_config(self):
        return {**super().get_config(), "complement": self.complement, "prior": self.prior,
                "training_metrics": self.reports_training_metrics}


class EndCounting(keras.callbacks.Callback):
    """Ends NBSVM's counting phase after the first epoch (the flag is a model variable, so a
    resumed run keeps its phase)."""

    def on_epoch_end(self, epoch, logs=None):
        self.model.counting.assign(0.0)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class NBSVMClassifier(_CountingClassifier):
    """NBSVM (Wang & Manning 2012) trained as logistic regression (the NB-LR variant).

    Features are binarized: each id of an example counts once. The first epoch only counts
    document frequencies per class; the log-count ratio of each id and class (one class
    against the rest) is r = log((p / |p|₁) / (q / |q|₁)) with p, q the Lidstone-smoothed
    counts in and out of the class. Every later epoch trains per-id weights w (initialized to
    1, so the first epoch's predictions are NB's log-count-ratio classifier) and a bias by
    gradient descent: the logit of class c sums r_c · w_c over the example's distinct ids.
    `interpolation` is the paper's β: the weights used are (1 − β)·mean|w| + β·w.
    """

    def __init__(self, *, interpolation=1.0, **kwargs):
        super().__init__(**kwargs)
        if not 0 < interpolation <= 1:
            raise ValueError(f"interpolation must be in (0, 1], got {interpolation}")
        self.interpolation = interpolation
        outputs = 1 if self.num_classes == 2 else self.num_classes
        self.linear = self.add_weight(shape=(self.vocab_size, outputs), initializer="ones",
                                      name="linear")
        self.bias = self.add_weight(shape=(outputs,), initializer="zeros", name="bias")
        self.counting = self.add_weight(shape=(), initializer="ones", trainable=False,
                                        aggregation="only_first_replica", name="counting")

    def training_callbacks(self):
        return [EndCounting(), *super().training_callbacks()]

    def log_count_ratios(self, ids):
        """`[B, T, C']` ratio of each id (C' = 1 for binary tasks: positive against negative)."""
        rows = ops.take(self.counts, ids, axis=0) + self.alpha
        totals = self.token_totals + self.smoothing_mass()
        if self.num_classes == 2:
            return (ops.log(rows[..., 1:] / totals[1]) - ops.log(rows[..., :1] / totals[0]))
        rest = ops.sum(rows, axis=-1, keepdims=True) - rows + (self.num_classes - 2) * self.alpha
        rest_totals = ops.sum(totals) - totals - (self.num_classes - 2) * self.smoothing_mass()
        return ops.log(rows / totals) - ops.log(rest / rest_totals)

    def logits(self, token_ids):
        ids, first = _first_occurrences(_clipped_ids(token_ids, self.vocab_size))
        first = first * _seen(ids, ops.take(self.counts, ids, axis=0))
        weights = ops.take(self.linear, ids, axis=0)
        if self.interpolation < 1:
            mean = ops.mean(ops.abs(self.linear[RESERVED_IDS:]), axis=0)
            weights = (1 - self.interpolation) * mean + self.interpolation * weights
        terms = self.log_count_ratios(ids) * weights * first[..., None]
        return ops.sum(terms, axis=1) + self.bias

    def call(self, token_ids):
        logits = self.logits(token_ids)
        return ops.sigmoid(logits) if self.num_classes == 2 else ops.softmax(logits, axis=-1)

    def train_step(self, data):
        token_ids, targets, weights = keras.utils.unpack_x_y_sample_weight(data)
        ids, first = _first_occurrences(_clipped_ids(token_ids, self.vocab_size))
        # the counting epoch adds document frequencies; later epochs add nothing
        self.count(ids, first * self.counting,
                   _one_hot_targets(targets, weights, self.num_classes) * self.counting)
        with tf.GradientTape() as tape:
            predictions = self(token_ids, training=True)
            loss = self.compute_loss(token_ids, data[1], predictions, weights, training=True)
            scaled = self.optimizer.scale_loss(loss) * (1.0 - self.counting)
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        self._loss_tracker.update_state(loss, sample_weight=ops.shape(token_ids)[0])
        return self.compute_metrics(token_ids, data[1], predictions, sample_weight=weights)

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


def build_nb_classifier(*, vocab_size, num_classes=2, multi_label=False, sequence_length=None,
                        alpha=1.0, complement=False, prior="empirical", training_metrics=False):
    """Multinomial (or, `complement: true`, complement) Naive Bayes over token ids.

    Args:
        vocab_size: token and n-gram ids are in [0, vocab_size); 0 pads, 1 is unknown.
        num_classes: 2 gives one sigmoid unit, more a softmax.
        multi_label: not supported (NB's classes are exclusive).
        sequence_length: unused (accepted so every classifier factory takes it).
        alpha: Lidstone smoothing added to every count (1: Laplace).
        complement: complement NB, better on skewed classes.
        prior: empirical (the training label frequencies) or uniform (drop them: for test data
            whose classes are balanced where the training data's are not).
        training_metrics: log a training loss and accuracy (of the model counted so far, on
            each batch); off, a training step only counts.
    """
    del sequence_length
    if multi_label:
        raise ValueError("Naive Bayes takes one label per example, not multi_label")
    model = NaiveBayesClassifier(vocab_size=vocab_size, num_classes=num_classes, alpha=alpha,
                                 complement=complement, prior=prior,
                                 training_metrics=training_metrics, name="nb_classifier")
    model.build((None, None))
    return model


def build_nbsvm_classifier(*, vocab_size, num_classes=2, multi_label=False, sequence_length=None,
                           alpha=1.0, interpolation=1.0):
    """NBSVM: a linear model over binarized ids scaled by NB log-count ratios.

    Args:
        vocab_size: token and n-gram ids are in [0, vocab_size); 0 pads, 1 is unknown.
        num_classes: 2 gives one sigmoid unit, more a softmax (ratios one class against the rest).
        multi_label: not supported.
        sequence_length: unused (accepted so every classifier factory takes it).
        alpha: Lidstone smoothing of the document-frequency counts (the paper's α = 1).
        interpolation: β of Wang & Manning; 1 uses the trained weights as they are.
    """
    del sequence_length
    if multi_label:
        raise ValueError("NBSVM takes one label per example, not multi_label")
    model = NBSVMClassifier(vocab_size=vocab_size, num_classes=num_classes, alpha=alpha,
                            interpolation=interpolation, name="nbsvm_classifier")
    model.build((None, None))
    return model
