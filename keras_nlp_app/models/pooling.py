"""Pooling over time that ignores padding (id 0) and stays finite on all-padding rows."""

import keras


def _padding_mask(token_ids, dtype):
    return keras.ops.expand_dims(keras.ops.cast(keras.ops.not_equal(token_ids, 0), dtype), -1)


def masked_mean(sequence, token_ids):
    """Mean of `sequence[B, T, D]` over real tokens; zeros for a row with none."""
    mask = _padding_mask(token_ids, sequence.dtype)
    total = keras.ops.sum(sequence * mask, axis=1)
    return total / keras.ops.maximum(keras.ops.sum(mask, axis=1), 1.0)


def masked_max(sequence, token_ids):
    """Max of `sequence[B, T, D]` over real tokens; zeros for a row with none."""
    mask = _padding_mask(token_ids, sequence.dtype)
    lowest = keras.ops.min(sequence) - 1.0
    best = keras.ops.max(sequence * mask + lowest * (1.0 - mask), axis=1)
    return best * keras.ops.minimum(keras.ops.sum(mask, axis=1), 1.0)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class AttentionPooling(keras.layers.Layer):
    """Weighted sum over time with learned weights: score_t = v·tanh(W h_t + b), softmax over the
    real tokens (padding id 0 gets no weight). A row of only padding pools to zeros.

    Call with `(sequence[B, T, D], token_ids[B, T])`.
    """

    def __init__(self, attention_dim=64, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # accepts a masked input; the pooled output carries no mask
        self.attention_dim = attention_dim
        self.hidden = keras.layers.Dense(attention_dim, activation="tanh", name="hidden")
        self.score = keras.layers.Dense(1, use_bias=False, name="score")

    def build(self, sequence_shape, token_ids_shape=None):
        self.hidden.build(sequence_shape)
        self.score.build(tuple(sequence_shape[:-1]) + (self.attention_dim,))

    def call(self, sequence, token_ids, mask=None):
        del mask  # the padding mask comes from token_ids, which also covers unmasked inputs
        mask = _padding_mask(token_ids, sequence.dtype)
        scores = self.score(self.hidden(sequence))
        scores = scores - keras.ops.max(scores, axis=1, keepdims=True)
        weights = keras.ops.exp(scores) * mask
        weights = weights / keras.ops.maximum(keras.ops.sum(weights, axis=1, keepdims=True), 1e-9)
        return keras.ops.sum(weights * sequence, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, sequence_shape, token_ids_shape=None):
        return (sequence_shape[0], sequence_shape[-1])

    def get_config(self):
        return {**super().get_config(), "attention_dim": self.attention_dim}
