"""Classification by Bayes' rule over language models: one Kneser-Ney n-gram LM per class
(keras_nlp_app.ngram), P(y | x) ∝ P(x | y) · P(y), scored in the graph."""

import keras
import numpy as np
import tensorflow as tf

from keras_nlp_app.ngram.corpus import UNK_ID
from keras_nlp_app.ngram.export import NGramScorer

PRIORS = ("empirical", "uniform")


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class NGramLMClassifier(keras.Model):
    """`token_ids [B, T]` (the classifier vocabulary: 0 pads, 1 is unknown, words from 2) →
    class probabilities.

    Each class model is an `NGramModel` whose vocabulary is the classifier's, shifted by one
    (n-gram id = token id + 1; the classifier's unknown id becomes `<unk>`), so all classes
    score the same ids. The class log-likelihoods (with `<s>` and `</s>`) plus the log prior
    give the posterior; `prior: uniform` drops the training label prior (for test data whose
    classes are balanced where the training data's are not). The models are fitted before
    training (the classification task's assets) and held in lookup tables; training steps
    change nothing and only report metrics.
    """

    def __init__(self, *, class_models, log_priors, num_classes, prior="empirical", **kwargs):
        super().__init__(**kwargs)
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
        if len(class_models) != num_classes:
            raise ValueError(f"{len(class_models)} class language models for {num_classes} classes")
        self.num_classes, self.prior = num_classes, prior
        self.scorers = [NGramScorer(m) for m in class_models]
        priors = np.zeros(num_classes) if prior == "uniform" else np.asarray(log_priors)
        self.log_priors = tf.constant(priors, tf.float32)

    def scores(self, token_ids):
        """Joint log-likelihood `[B, C]` of each class and the text."""
        ids = tf.cast(token_ids, tf.int64)
        words = tf.RaggedTensor.from_tensor(ids, padding=0)
        words = tf.ragged.map_flat_values(lambda i: tf.where(i >= 2, i + 1, UNK_ID), words)
        return tf.stack([scorer.log_probs(words) for scorer in self.scorers], axis=1) + self.log_priors

    def call(self, token_ids):
        scores = self.scores(token_ids)
        if self.num_classes == 2:
            return tf.sigmoid(scores[:, 1:] - scores[:, :1])
        return tf.nn.softmax(scores, axis=-1)

    def train_step(self, data):
        token_ids, _, weights = keras.utils.unpack_x_y_sample_weight(data)
        predictions = self(token_ids)
        loss = self.compute_loss(token_ids, data[1], predictions, weights, training=True)
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(token_ids)[0])
        return self.compute_metrics(token_ids, data[1], predictions, sample_weight=weights)


def build_ngram_classifier(*, vocab_size, num_classes=2, multi_label=False, sequence_length=None,
                           class_models=None, order=3, prior="empirical"):
    """Bayes' rule over one Kneser-Ney language model per class.

    Args:
        vocab_size: the classifier vocabulary's size (the class models share it).
        num_classes: 2 gives one sigmoid unit, more a softmax.
        multi_label: not supported (the classes are exclusive).
        sequence_length: unused (texts are scored whole up to the preprocessor's length).
        class_models: `{"models": [NGramModel per class], "log_priors": [...]}`, fitted by the
            classification task from the training split (not set in configs).
        order: the n-gram order of the class models (read when the task fits them).
        prior: empirical (the training label frequencies) or uniform.
    """
    del sequence_length, vocab_size, order
    if multi_label:
        raise ValueError("the n-gram LM classifier takes one label per example, not multi_label")
    if class_models is None:
        raise ValueError("class_models are fitted by the classification task from the "
                         "training split; they are not a config value")
    model = NGramLMClassifier(class_models=class_models["models"],
                              log_priors=class_models["log_priors"], num_classes=num_classes,
                              prior=prior, name="ngram_classifier")
    model.build((None, None))
    return model


def fit_class_models(token_rows, class_ids, *, num_classes, vocab_size, order=3):
    """One Kneser-Ney LM per class over classifier token ids (lists of ints), all on the
    classifier's vocabulary. Returns `{"models": [...], "log_priors": [...]}`.

    Tokens are the ids written as strings ("17"), so no word of the text can collide with the
    n-gram model's `<s>`/`</s>`/`<unk>`; the unknown id 1 is `<unk>`. Discounts that a small
    class cannot estimate fall back to KenLM's (0.5, 1, 1.5).
    """
    from keras_nlp_app.ngram.corpus import UNK
    from keras_nlp_app.ngram.estimate import train_model

    vocabulary = [str(i) for i in range(2, vocab_size)]
    sentences = [[str(i) if i >= 2 else UNK for i in row] for row in token_rows]
    class_ids = np.asarray(class_ids)
    counts = np.bincount(class_ids, minlength=num_classes).astype(np.float64)
    if not counts.all():
        raise ValueError(f"class {int(np.argmin(counts))} has no training examples")
    models = [train_model([s for s, c in zip(sentences, class_ids) if c == label], order=order,
                          vocabulary=vocabulary, discount_fallback=(0.5, 1.0, 1.5))
              for label in range(num_classes)]
    return {"models": models, "log_priors": np.log(counts / counts.sum()).tolist()}


def save_class_models(class_models, folder):
    """`folder/class_<i>.npz` per class and `priors.json`, each written atomically."""
    import os

    from keras_nlp_app.ngram.io import save_model
    from keras_nlp_app.utils import atomic

    os.makedirs(folder, exist_ok=True)
    for i, model in enumerate(class_models["models"]):
        save_model(model, os.path.join(folder, f"class_{i}.npz"))
    atomic.write_json(os.path.join(folder, "priors.json"), {"log_priors": class_models["log_priors"]})


def load_class_models(folder):
    """What `save_class_models` wrote, or None when the folder holds none."""
    import json
    import os

    from keras_nlp_app.ngram.io import load_model

    path = os.path.join(folder, "priors.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        log_priors = json.load(f)["log_priors"]
    return {"models": [load_model(os.path.join(folder, f"class_{i}.npz"))
                       for i in range(len(log_priors))], "log_priors": log_priors}
