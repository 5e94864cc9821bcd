"""Transformer encoder reader: one keras-hub encoder over [context window; question] with
segment embeddings, start/end scores read off the context positions."""

import keras
from keras import ops

from keras_nlp_app.models.reader_model import (
    ReaderModel,
    reader_inputs,
    span_logits,
    token_embedder,
)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class ContextPart(keras.layers.Layer):
    """The first T positions of the joined sequence, T the context window's length (known only
    when the layer runs, so not a slice fixed at model-building time)."""

    def call(self, inputs):
        joined, context_words = inputs
        return joined[:, :ops.shape(context_words)[1]]

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[1][1], input_shape[0][2])


def build_transformer_reader(*, vocab_size, char_vocab_size, num_cases=16, max_word_length=16,
                             max_length=320, word_dim=100, char_dim=16, char_filters=100,
                             char_kernel=5, case_dim=8, hidden_dim=192, num_layers=4,
                             num_heads=4, intermediate_dim=512, dropout=0.1,
                             feature_dropout=0.2, word_dropout=0.05, lexical_match=True):
    """Shared token embedding → projection + learned positions + segment embedding (context 0,
    question 1) → pre-norm keras-hub `TransformerEncoder` blocks over the joined sequence →
    start/end scores for the context positions.

    Args:
        max_length: context window + 1 + question tokens (sizes the position table).
        hidden_dim, num_layers, num_heads, intermediate_dim, dropout: encoder shape.
        feature_dropout: on the token features; lexical_match: as `build_bidaf_reader`. Other
            arguments as `build_bidaf_reader`.
    """
    import keras_hub

    inputs = reader_inputs(max_word_length)
    embed = token_embedder(vocab_size=vocab_size, char_vocab_size=char_vocab_size,
                           num_cases=num_cases, word_dim=word_dim, char_dim=char_dim,
                           char_filters=char_filters, char_kernel=char_kernel, case_dim=case_dim,
                           word_dropout=word_dropout, dropout=feature_dropout,
                           lexical_match=lexical_match)
    project = keras.layers.Dense(hidden_dim, name="projection")
    segments = keras.layers.Embedding(2, hidden_dim, name="segment_embedding")
    context = project(embed(inputs, "context"))
    question = project(embed(inputs, "question"))
    context = context + segments(ops.zeros_like(inputs["context_words"]))
    question = question + segments(ops.ones_like(inputs["question_words"]))
    x = ops.concatenate([context, question], axis=1)
    x = x + keras_hub.layers.PositionEmbedding(max_length, name="positions")(x)
    mask = ops.concatenate([ops.not_equal(inputs["context_words"], 0),
                            ops.not_equal(inputs["question_words"], 0)], axis=1)
    for i in range(num_layers):
        x = keras_hub.layers.TransformerEncoder(
            intermediate_dim=intermediate_dim, num_heads=num_heads, dropout=dropout,
            normalize_first=True, name=f"encoder_{i}")(x, padding_mask=mask)
    x = keras.layers.LayerNormalization(name="final_norm")(x)
    x = ContextPart(name="context_part")([x, inputs["context_words"]])
    return ReaderModel(inputs, span_logits(x, inputs["context_words"]), name="transformer_reader")
