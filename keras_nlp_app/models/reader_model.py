"""What every extractive QA reader shares: the question and context feature inputs, one token
embedding applied to both, and `ReaderModel`, whose loss marginalizes over every valid answer
position (Clark & Gardner 2018) so an answer that occurs twice in a context teaches both.

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


def token_embedder(*, vocab_size, char_vocab_size, num_cases, word_dim, char_dim, char_filters,
                   char_kernel, case_dim, word_dropout, dropout):
    """A function (inputs, side) → `[B, T, word_dim + char_filters + case_dim]` whose layers
    (word embedding, character CNN, casing embedding) are shared by question and context."""
    drop_words = WordDropout(word_dropout, name="word_dropout")
    words = keras.layers.Embedding(vocab_size, word_dim, name="word_embedding")
    chars = CharCNN(char_vocab_size, char_dim, char_filters, char_kernel, dropout, name="char_cnn")
    case = keras.layers.Embedding(num_cases, case_dim, name="case_embedding")
    join = keras.layers.Concatenate(name="token_features")
    drop = keras.layers.Dropout(dropout, name="feature_dropout")

    def embed(inputs, side):
        return drop(join([words(drop_words(inputs[f"{side}_words"])),
                          chars(inputs[f"{side}_chars"]), case(inputs[f"{side}_case"])]))

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
