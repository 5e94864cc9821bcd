"""What every extractive QA reader shares: the question and context feature inputs, one token
embedding applied to both, and `ReaderModel`, whose loss marginalizes over every valid answer
position (Clark & Gardner 2018) so an answer that occurs twice in a context teaches both.

Both sides may also carry lexical-match features (Chen et al. 2017's DrQA): whether a token
occurs in the other side, as written and as normalized; a question word found in the context is
the strongest single clue to where the answer lies (it drives the published logistic-regression
baseline's 51 F1).

A reader maps the features of `text.qa.QAPreprocessor` (one row per context window, position 0
the null token) to start and end scores `[W, T, 2]`, padding at -1e9. Targets are `[W, T, 2]`
with 1 at every valid start (`[..., 0]`) and end (`[..., 1]`).
"""

import keras
from keras import ops

from keras_nlp_app.models.tagger_model import CharCNN, WordDropout

NEG = -1e9


def reader_inputs(max_word_length):
    """The six `keras.Input`s of a reader: words, chars and case of the context and question."""
    inputs = {}
    for side in ("context", "question"):
        inputs[f"{side}_words"] = keras.Input(shape=(None,), dtype="int32", name=f"{side}_words")
        inputs[f"{side}_chars"] = keras.Input(shape=(None, max_word_length), dtype="int32",
                                              name=f"{side}_chars")
        inputs[f"{side}_case"] = keras.Input(shape=(None,), dtype="int32", name=f"{side}_case")
    return inputs


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class LexicalMatch(keras.layers.Layer):
    """Per token of one side, whether it occurs in the other side: `[B, T, 2]` floats, (exact:
    the same characters, up to the features' word length; normalized: the same known word id,
    or exact). Inputs: (words, chars) of this side, then of the other side."""

    def call(self, inputs):
        words, chars, other_words, other_chars = inputs
        real = ops.not_equal(chars[:, :, :1], 0)  # [B, T, 1]: a token, not padding
        other_real = ops.not_equal(other_chars[:, None, :, 0], 0)  # [B, 1, Q]
        same_chars = ops.all(ops.equal(chars[:, :, None, :], other_chars[:, None, :, :]), axis=-1)
        exact = ops.any(same_chars & other_real, axis=-1) & real[..., 0]
        known = ops.greater(words, 2)  # not padding, unknown or the null token
        same_word = ops.any(ops.equal(words[:, :, None], other_words[:, None, :]), axis=-1)
        normalized = (same_word & known) | exact
        return ops.cast(ops.stack([exact, normalized], axis=-1), "float32")

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:2], 2)


def token_embedder(*, vocab_size, char_vocab_size, num_cases, word_dim, char_dim, char_filters,
                   char_kernel, case_dim, word_dropout, dropout, lexical_match=False):
    """A function (inputs, side) → `[B, T, word_dim + char_filters + case_dim (+ 2)]` whose
    layers (word embedding, character CNN, casing embedding) are shared by question and context;
    with `lexical_match`, two `LexicalMatch` features against the other side follow (after the
    dropout, which would blur a yes/no clue)."""
    drop_words = WordDropout(word_dropout, name="word_dropout")
    words = keras.layers.Embedding(vocab_size, word_dim, name="word_embedding")
    chars = CharCNN(char_vocab_size, char_dim, char_filters, char_kernel, dropout, name="char_cnn")
    case = keras.layers.Embedding(num_cases, case_dim, name="case_embedding")
    join = keras.layers.Concatenate(name="token_features")
    drop = keras.layers.Dropout(dropout, name="feature_dropout")

    if lexical_match:
        match = LexicalMatch(name="lexical_match")
        add_match = keras.layers.Concatenate(name="with_lexical_match")

    def embed(inputs, side):
        x = drop(join([words(drop_words(inputs[f"{side}_words"])),
                       chars(inputs[f"{side}_chars"]), case(inputs[f"{side}_case"])]))
        if not lexical_match:
            return x
        other = "question" if side == "context" else "context"
        return add_match([x, match([inputs[f"{side}_words"], inputs[f"{side}_chars"],
                                    inputs[f"{other}_words"], inputs[f"{other}_chars"]])])

    return embed


def span_logits(x, context_words, name="span_scores"):
    """Start and end scores `[B, T, 2]` from per-token vectors, padding set to -1e9."""
    logits = keras.layers.Dense(2, name=name, dtype="float32")(x)
    return ops.where(ops.not_equal(context_words, 0)[..., None], logits, NEG)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class ReaderModel(keras.Model):
    """A functional reader (features → span scores `[W, T, 2]`) with its own loss: for start and
    end, -log of the probability mass on the valid positions, averaged over windows."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        logits = ops.cast(y_pred, "float32")
        valid = ops.cast(y, "float32") > 0
        total = ops.logsumexp(logits, axis=1)
        good = ops.logsumexp(ops.where(valid, logits, NEG), axis=1)
        loss = ops.mean(ops.sum(total - good, axis=-1))
        if self.losses:
            loss += ops.sum(self.losses)
        return loss
