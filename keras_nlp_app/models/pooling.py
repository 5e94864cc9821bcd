"""Pooling over time that ignores padding (id 0) and stays finite on all-padding rows, and the
states at entity markers (relations)."""

import keras


def _padding_mask(token_ids, dtype):
    return keras.ops.expand_dims(keras.ops.cast(keras.ops.not_equal(token_ids, 0), dtype), -1)


def masked_mean(sequence, token_ids):
    """Mean of `sequence[B, T, D]` over real tokens; zeros for a row with none."""
    mask = _padding_mask(token_ids, sequence.dtype)
    total = keras.ops.sum(sequence * mask, axis=1)
    return total / keras.ops.maximum(keras.ops.sum(mask, axis=1), 1.0)


def masked_max(sequence, token_ids):
    """Max of `sequence[B, T, D]` over real tokens; zeros for a row with none.

    `where`, not `sequence * mask + lowest * (1 - mask)`: Keras' TensorFlow `add` takes a
    `[1, T, 1]` term for a bias over the last axis when T equals D, and adds it transposed.
    """
    mask = _padding_mask(token_ids, sequence.dtype)
    lowest = keras.ops.min(sequence) - 1.0
    best = keras.ops.max(keras.ops.where(mask > 0, sequence, lowest), axis=1)
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


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class MarkerStates(keras.layers.Layer):
    """`(sequence [B, T, D], token_ids [B, T])` → `[B, 2D]`: the states where the head-start
    and tail-start markers first begin (position 0 when a marker was cut off by truncation).

    A marker is one id (a reserved word of our vocabulary) or the ids of the pieces a preset's
    tokenizer cuts it into (`__e1s__` → `_`, `_`, `e`, `##1`, ...); then it begins where its
    whole piece sequence first occurs.
    """

    def __init__(self, head_marker_id, tail_marker_id, **kwargs):
        super().__init__(**kwargs)
        self.head_marker_id, self.tail_marker_id = _pieces(head_marker_id), _pieces(tail_marker_id)

    def _first_position(self, token_ids, pieces):
        length = keras.ops.shape(token_ids)[1]
        padded = keras.ops.pad(token_ids, [[0, 0], [0, len(pieces) - 1]], constant_values=-1)
        found = keras.ops.ones_like(token_ids, dtype="bool")
        for offset, piece in enumerate(pieces):
            here = keras.ops.equal(padded[:, offset:offset + length], piece)
            found = keras.ops.logical_and(found, here)
        return keras.ops.argmax(keras.ops.cast(found, "int32"), axis=1)

    def call(self, sequence, token_ids):
        states = []
        for pieces in (self.head_marker_id, self.tail_marker_id):
            position = self._first_position(token_ids, pieces)
            index = keras.ops.reshape(keras.ops.cast(position, "int32"), (-1, 1, 1))
            state = keras.ops.take_along_axis(sequence, index, axis=1)
            states.append(keras.ops.squeeze(state, axis=1))
        return keras.ops.concatenate(states, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, sequence_shape, token_ids_shape=None):
        return (sequence_shape[0], 2 * sequence_shape[-1])

    def get_config(self):
        return {**super().get_config(), "head_marker_id": self.head_marker_id,
                "tail_marker_id": self.tail_marker_id}


def _pieces(marker):
    pieces = [int(marker)] if isinstance(marker, int) else [int(i) for i in marker]
    if not pieces:
        raise ValueError("an entity marker needs at least one token id")
    return pieces
