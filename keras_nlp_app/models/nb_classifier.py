"""Naive Bayes text classifier: multinomial (or complement) NB over the token and hashed n-gram
ids of the classifier preprocessor, fitted by counting in one pass, no gradient descent."""

import keras
from keras import ops

RESERVED_IDS = 2  # padding (0) and unknown (1) ids carry no evidence, as words unseen in training


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class NaiveBayesClassifier(keras.Model):
    """`token_ids [B, T]` → class probabilities, from class-conditional token counts.

    Training steps only count (the loop's one pass over the data is the fit): `counts [V, C]`
    adds each example's token ids to its class (weighted by the example's weight, e.g. balanced
    class weights), `class_counts [C]` the examples, and `table`/`prior` are recomputed from
    them. The scores are Lidstone-smoothed
    log-likelihoods (`alpha`): multinomial NB adds the log prior (McCallum & Nigam 1998);
    complement NB (Rennie et al. 2003) scores each class by the negated log-likelihood of the
    other classes' counts and ignores the prior, as scikit-learn's ComplementNB does.
    Binary tasks give one sigmoid output `[B, 1]` (as every classifier), others a softmax.
    """

    def __init__(self, *, vocab_size, num_classes=2, alpha=1.0, complement=False, **kwargs):
        super().__init__(**kwargs)
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if vocab_size <= RESERVED_IDS:
            raise ValueError(f"vocab_size must exceed {RESERVED_IDS}, got {vocab_size}")
        self.vocab_size, self.num_classes = vocab_size, num_classes
        self.alpha, self.complement = alpha, complement
        self.counts = self.add_weight(shape=(vocab_size, num_classes), initializer="zeros",
                                      trainable=False, aggregation="sum", name="counts")
        self.class_counts = self.add_weight(shape=(num_classes,), initializer="zeros",
                                            trainable=False, aggregation="sum", name="class_counts")
        # the scores, recomputed from the counts after every counting step, so a prediction
        # only gathers (every replica computes the same values from the synced counts)
        self.table = self.add_weight(shape=(vocab_size, num_classes), initializer="zeros",
                                     trainable=False, aggregation="only_first_replica",
                                     name="table")
        self.prior = self.add_weight(shape=(num_classes,), initializer="zeros", trainable=False,
                                     aggregation="only_first_replica", name="prior")

    def log_weights(self):
        """(`[V, C]` score of one occurrence of each id, `[C]` score of each class alone)."""
        counts = self.counts[RESERVED_IDS:]
        if self.complement:
            counts = ops.sum(counts, axis=1, keepdims=True) - counts
        features = ops.cast(ops.shape(counts)[0], "float32")
        log_likelihood = ops.log(counts + self.alpha) - ops.log(
            ops.sum(counts, axis=0, keepdims=True) + self.alpha * features)
        if self.complement:
            log_likelihood, prior = -log_likelihood, ops.zeros((self.num_classes,))
        else:
            total = ops.maximum(ops.sum(self.class_counts), 1.0)
            prior = ops.log(ops.maximum(self.class_counts, 1e-12) / total)
        reserved = ops.zeros((RESERVED_IDS, self.num_classes))
        return ops.concatenate([reserved, log_likelihood], axis=0), prior

    def scores(self, token_ids):
        """Joint log-likelihood `[B, C]` of each class and the text."""
        ids = ops.clip(ops.cast(token_ids, "int32"), 0, self.vocab_size - 1)
        return ops.sum(ops.take(self.table, ids, axis=0), axis=1) + self.prior

    def call(self, token_ids):
        scores = self.scores(token_ids)
        if self.num_classes == 2:
            return ops.sigmoid(scores[:, 1:] - scores[:, :1])
        return ops.softmax(scores, axis=-1)

    def train_step(self, data):
        token_ids, targets, weights = keras.utils.unpack_x_y_sample_weight(data)
        targets = ops.cast(targets, "float32")
        if self.num_classes == 2:  # one 0/1 column, as the binary loss takes it
            positive = ops.reshape(targets, (-1, 1))
            targets = ops.concatenate([1.0 - positive, positive], axis=1)
        if weights is not None:
            targets = targets * ops.reshape(ops.cast(weights, "float32"), (-1, 1))
        ids = ops.cast(token_ids, "int32")
        rows = ops.repeat(ops.arange(ops.shape(ids)[0])[:, None], ops.shape(ids)[1], axis=1)
        real = ops.cast(ids >= RESERVED_IDS, "float32")[..., None]
        per_token = ops.take(targets, ops.reshape(rows, (-1,)), axis=0) * ops.reshape(
            real, (-1, 1))
        self.counts.assign_add(ops.segment_sum(per_token, ops.reshape(ids, (-1,)),
                                               num_segments=self.vocab_size))
        self.class_counts.assign_add(ops.sum(targets, axis=0))
        table, prior = self.log_weights()
        self.table.assign(table)
        self.prior.assign(prior)
        predictions = self(token_ids)
        loss = self.compute_loss(token_ids, data[1], predictions, weights, training=True)
        self._loss_tracker.update_state(loss, sample_weight=ops.shape(ids)[0])
        return self.compute_metrics(token_ids, data[1], predictions, sample_weight=weights)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "num_classes": self.num_classes, "alpha": self.alpha,
                "complement": self.complement}


def build_nb_classifier(*, vocab_size, num_classes=2, multi_label=False, sequence_length=None,
                        alpha=1.0, complement=False):
    """Multinomial (or, `complement: true`, complement) Naive Bayes over token ids.

    Args:
        vocab_size: token and n-gram ids are in [0, vocab_size); 0 pads, 1 is unknown.
        num_classes: 2 gives one sigmoid unit, more a softmax.
        multi_label: not supported (NB's classes are exclusive).
        sequence_length: unused (accepted so every classifier factory takes it).
        alpha: Lidstone smoothing added to every count (1: Laplace).
        complement: complement NB, better on skewed classes.
    """
    del sequence_length
    if multi_label:
        raise ValueError("Naive Bayes takes one label per example, not multi_label")
    model = NaiveBayesClassifier(vocab_size=vocab_size, num_classes=num_classes, alpha=alpha,
                                 complement=complement, name="nb_classifier")
    model.build((None, None))
    return model
