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
