"""BiDAF-style reader (Seo et al. 2017): character CNN + word embeddings, a shared BiLSTM
encoder, bidirectional attention flow, a modelling BiLSTM and start/end pointers."""

import keras
from keras import ops

from keras_nlp_app.models.reader_model import (
    ReaderModel,
    reader_inputs,
    span_logits,
    token_embedder,
)
from keras_nlp_app.models.recurrent import bidirectional_layer


def _softmax(x):
    """Softmax over the last axis (keras' warns when a question or context has one token)."""
    return ops.exp(x - ops.logsumexp(x, axis=-1, keepdims=True))


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class AttentionFlow(keras.layers.Layer):
    """Context `[B, T, d]` and question `[B, Q, d]` → `[B, T, 4d]`: [c; c2q; c·c2q; c·q2c] with the
    trilinear similarity w·[c; q; c∘q]; question padding is masked out of every softmax."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # takes the masks as inputs; its output carries none

    def compute_mask(self, inputs, mask=None):
        return None

    def build(self, input_shape):
        dim = input_shape[0][-1]
        self.w_context = self.add_weight(name="w_context", shape=(dim, 1))
        self.w_question = self.add_weight(name="w_question", shape=(dim, 1))
        self.w_product = self.add_weight(name="w_product", shape=(dim,))
        self.bias = self.add_weight(name="bias", shape=(), initializer="zeros")

    def call(self, inputs):
        context, question, context_mask, question_mask = inputs
        similarity = (ops.matmul(context, self.w_context)
                      + ops.transpose(ops.matmul(question, self.w_question), (0, 2, 1))
                      + ops.matmul(context * self.w_product, ops.transpose(question, (0, 2, 1)))
                      + self.bias)  # [B, T, Q]
        similarity = ops.where(question_mask[:, None, :], similarity, -1e9)
        to_question = ops.matmul(_softmax(similarity), question)  # [B, T, d]
        best = ops.max(similarity, axis=-1)  # [B, T]
        best = ops.where(context_mask, best, -1e9)
        to_context = ops.matmul(_softmax(best)[:, None, :], context)  # [B, 1, d]
        return ops.concatenate([context, to_question, context * to_question,
                                context * to_context], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:2], 4 * input_shape[0][-1])


def build_bidaf_reader(*, vocab_size, char_vocab_size, num_cases=16, max_word_length=16,
                       word_dim=100, char_dim=16, char_filters=100, char_kernel=5, case_dim=8,
                       hidden_dim=100, modelling_layers=2, dropout=0.2, word_dropout=0.05,
                       lexical_match=True, fused_lstm=True):
    """Shared token embedding → highway → shared BiLSTM encoder → attention flow → modelling
    BiLSTMs → start scores; one more BiLSTM → end scores.

    Args:
        vocab_size, char_vocab_size: word and character ids (0 padding, 1 unknown, 2 the null
            token).
        num_cases: rows of the casing table; max_word_length: from the preprocessor.
        word_dim, char_dim, char_filters, char_kernel, case_dim: token feature sizes.
        hidden_dim: LSTM units per direction.
        modelling_layers: BiLSTMs over the attention output.
        dropout: on features and between layers; word_dropout: unknown-word replacement rate.
        lexical_match: add `reader_model.LexicalMatch` features (token found in the other side).
        fused_lstm: each BiLSTM is `recurrent.FusedBidirectionalLSTM` (one C++ op per
            direction) instead of Keras' `Bidirectional(LSTM)`: the same function, faster on
            CPU, but other weights (runs from before it restore with false).
    """
    inputs = reader_inputs(max_word_length)
    embed = token_embedder(vocab_size=vocab_size, char_vocab_size=char_vocab_size,
                           num_cases=num_cases, word_dim=word_dim, char_dim=char_dim,
                           char_filters=char_filters, char_kernel=char_kernel, case_dim=case_dim,
                           word_dropout=word_dropout, dropout=dropout,
                           lexical_match=lexical_match)
    context_mask = ops.not_equal(inputs["context_words"], 0)
    question_mask = ops.not_equal(inputs["question_words"], 0)
    project = keras.layers.Dense(2 * hidden_dim, name="projection")
    gates = [keras.layers.Dense(2 * hidden_dim, activation="sigmoid", name=f"highway_gate_{i}")
             for i in range(2)]
    transforms = [keras.layers.Dense(2 * hidden_dim, activation="relu", name=f"highway_{i}")
                  for i in range(2)]

    def bilstm(name):
        return bidirectional_layer("lstm", hidden_dim, name=name, fused=fused_lstm)

    encoder = bilstm("encoder")

    def encode(side, mask):
        x = project(embed(inputs, side))
        for gate, transform in zip(gates, transforms):
            g = gate(x)
            x = g * transform(x) + (1.0 - g) * x
        return encoder(x, mask=mask)

    context = encode("context", context_mask)
    question = encode("question", question_mask)
    attended = AttentionFlow(name="attention_flow")([context, question, context_mask,
                                                     question_mask])
    x = attended
    for i in range(modelling_layers):
        x = keras.layers.Dropout(dropout)(x)
        x = bilstm(f"modelling_{i}")(x, mask=context_mask)
    end_states = bilstm("end_encoder")(keras.layers.Dropout(dropout)(x), mask=context_mask)
    start = span_logits(keras.layers.Concatenate()([attended, x]), inputs["context_words"],
                        name="start_scores")[..., :1]
    end = span_logits(keras.layers.Concatenate()([attended, end_states]), inputs["context_words"],
                      name="end_scores")[..., 1:]
    return ReaderModel(inputs, ops.concatenate([start, end], axis=-1), name="bidaf_reader")
