"""What every tagger shares: the token-feature inputs (word, characters, casing) and
`TaggerModel`, a functional model whose loss is the CRF's negative log-likelihood or a masked
softmax cross-entropy, and whose `predict_tags` decodes with Viterbi or argmax.

Targets are tag ids `[B, T]` padded with -1, so the loss needs nothing but (targets, scores).
"""

import keras
from keras import ops

from keras_nlp_app.models.crf import CRF


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class WordDropout(keras.layers.Layer):
    """While training, replaces each real word id by the unknown id (1) with probability `rate`,
    so the model learns to tag from characters and context the words it has never seen."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, ids, training=False):
        if not training or self.rate <= 0:
            return ids
        drop = keras.random.uniform(ops.shape(ids), seed=self.seed_generator) < self.rate
        return ops.where(drop & (ids > 1), ops.ones_like(ids), ids)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class CharCNN(keras.layers.Layer):
    """Character ids `[B, T, C]` → `[B, T, filters]`: embedding, one convolution over each
    word's characters, max-pooling over its real characters (Ma & Hovy 2016); 0 for padding."""

    def __init__(self, vocab_size, dim, filters, kernel, dropout, **kwargs):
        super().__init__(**kwargs)
        self.config = dict(vocab_size=vocab_size, dim=dim, filters=filters, kernel=kernel,
                           dropout=dropout)
        self.embedding = keras.layers.Embedding(vocab_size, dim, name="char_embedding")
        self.dropout = keras.layers.Dropout(dropout)
        self.conv = keras.layers.Conv1D(filters, kernel, padding="same", activation="tanh")

    def build(self, input_shape):
        self.embedding.build((None, input_shape[-1]))
        self.conv.build((None, input_shape[-1], self.config["dim"]))

    def _convolve(self, embedded):
        """`self.conv` ("same" padding, tanh) as one matrix product over each position's window
        of characters: the same function and weights, but on CPU several times faster to train
        than the convolution kernels (above all their gradient for the filters)."""
        kernel, width = self.config["kernel"], embedded.shape[1]
        left = (kernel - 1) // 2
        padded = ops.pad(embedded, [[0, 0], [left, kernel - 1 - left], [0, 0]])
        windows = ops.concatenate([padded[:, j:j + width] for j in range(kernel)], axis=-1)
        weights = ops.reshape(self.conv.kernel, (kernel * self.config["dim"], self.config["filters"]))
        return ops.tanh(ops.matmul(windows, weights) + self.conv.bias)

    def call(self, chars, training=False):
        shape = ops.shape(chars)
        flat = ops.reshape(chars, (-1, chars.shape[2]))
        conv = self._convolve(self.dropout(self.embedding(flat), training=training))
        real = ops.not_equal(flat, 0)[..., None]
        pooled = ops.max(ops.where(real, conv, -1e4), axis=1)
        pooled = ops.where(ops.any(real, axis=1), pooled, 0.0)
        return ops.reshape(pooled, (shape[0], shape[1], self.config["filters"]))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:2], self.config["filters"])

    def get_config(self):
        return {**super().get_config(), **self.config}


def token_inputs(max_word_length):
    """The three `keras.Input`s a tagger takes (see `TaggerPreprocessor.features`)."""
    return {"words": keras.Input(shape=(None,), dtype="int32", name="words"),
            "chars": keras.Input(shape=(None, max_word_length), dtype="int32", name="chars"),
            "case": keras.Input(shape=(None,), dtype="int32", name="case")}


def token_features(inputs, *, vocab_size, char_vocab_size, num_cases, word_dim, char_dim,
                   char_filters, char_kernel, case_dim, word_dropout, dropout):
    """`[B, T, word_dim + char_filters + case_dim]`: a word embedding, a character CNN with
    max-pooling over each word's characters (Ma & Hovy 2016), and a casing embedding."""
    words = WordDropout(word_dropout, name="word_dropout")(inputs["words"])
    x_words = keras.layers.Embedding(vocab_size, word_dim, name="word_embedding")(words)
    x_chars = CharCNN(char_vocab_size, char_dim, char_filters, char_kernel, dropout,
                      name="char_cnn")(inputs["chars"])
    x_case = keras.layers.Embedding(num_cases, case_dim, name="case_embedding")(inputs["case"])
    x = keras.layers.Concatenate(name="token_features")([x_words, x_chars, x_case])
    return keras.layers.Dropout(dropout)(x)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class TaggerModel(keras.Model):
    """A functional tagger (inputs → per-token scores `[B, T, K]`) with its own loss.

    With a CRF (a layer named `crf` applied last) the loss is the sentence negative
    log-likelihood summed and divided by the number of tokens; without one, token cross-entropy.
    """

    def __init__(self, inputs, outputs, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        names = [layer.name for layer in self.layers]
        self.crf = self.get_layer("crf") if "crf" in names else None

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        targets = ops.cast(y, "int32")
        mask = targets >= 0
        tokens = ops.maximum(ops.sum(ops.cast(mask, "float32")), 1.0)
        safe = ops.where(mask, targets, 0)
        if self.crf is not None:
            loss = ops.sum(self.crf.negative_log_likelihood(y_pred, safe, mask)) / tokens
        else:
            log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
            nll = -ops.take_along_axis(log_probs, safe[..., None], axis=-1)[..., 0]
            loss = ops.sum(nll * ops.cast(mask, "float32")) / tokens
        if self.losses:
            loss += ops.sum(self.losses)
        return loss

    def predict_tags(self, inputs):
        """Tag ids `[B, T]` int32 for a feature batch (Viterbi with a CRF, else argmax)."""
        scores = self(inputs, training=False)
        mask = ops.not_equal(inputs["words"], 0)
        if self.crf is not None:
            return self.crf.decode(scores, mask)
        return ops.where(mask, ops.cast(ops.argmax(scores, axis=-1), "int32"), 0)


def tag_head(x, num_tags, crf):
    """Per-token tag scores, through a CRF layer (named `crf`) when asked."""
    scores = keras.layers.Dense(num_tags, name="emissions")(x)
    return CRF(num_tags, name="crf")(scores) if crf else scores
