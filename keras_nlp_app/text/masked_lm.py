"""Masked-LM inputs with a keras-hub tokenizer: documents cut into windows, packed with the
tokenizer's start and end tokens, and masked BERT's way (15% of the tokens chosen; of those 80%
become the mask token, 10% a random token, 10% stay), as keras-hub's `MaskedLMMaskGenerator`
does, but with stateless random ops keyed by (seed, epoch, batch): a resumed run draws exactly
the masks an uninterrupted one would (the generator's stateful ops cannot be replayed), and
evaluation masks the same tokens every time, for a run folder and for its export.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_nlp_app.text.presets import add_special_tokens, special_ids, tokenize


def windows(ids, length):
    """Every row of ragged `ids` cut into consecutive pieces of at most `length` (numpy):
    a list of int32 arrays, empty rows dropped."""
    flat, splits = ids.flat_values.numpy(), ids.row_splits.numpy()
    pieces = []
    for start, end in zip(splits[:-1], splits[1:]):
        for cut in range(start, end, length):
            pieces.append(flat[cut:min(cut + length, end)])
    return pieces


def pack_windows(pieces, *, start_id, end_id, pad_id, sequence_length, **_):
    """Windows (int arrays) → `[N, sequence_length]` ids with start/end tokens, as `pack` does."""
    packed = np.full((len(pieces), sequence_length), pad_id, np.int32)
    for row, piece in enumerate(pieces):
        ids = ([start_id] if start_id is not None else []) + list(piece) + (
            [end_id] if end_id is not None else [])
        packed[row, :len(ids)] = ids[:sequence_length]
    return packed


def stateless_mask(token_ids, seed, *, start_id, end_id, pad_id, mask_id, vocabulary_size,
                   max_predictions, mask_selection_rate, **_):
    """BERT's masking of packed ids `[B, T]`, a pure function of `seed` (int64 `[2]`).

    Of each row's selectable tokens (not start, end or padding), round(rate × count) — at least
    one, at most `max_predictions` — are chosen uniformly; each becomes the mask token with
    probability 0.8, a uniformly random token with 0.1, and stays with 0.1.

    Returns:
        (positions `[B, P]`, original ids `[B, P]`, weights `[B, P]` (1 for a chosen token),
        masked ids `[B, T]`), P = `max_predictions`.
    """
    token_ids = tf.convert_to_tensor(token_ids, tf.int32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    unselectable = [i for i in (start_id, end_id, pad_id) if i is not None]
    eligible = tf.reduce_all(tf.stack([tf.not_equal(token_ids, i) for i in unselectable]), axis=0)
    scores = tf.where(eligible, tf.random.stateless_uniform(tf.shape(token_ids), seeds[0]), 2.0)
    available = tf.reduce_sum(tf.cast(eligible, tf.int32), axis=1)
    wanted = tf.cast(tf.round(tf.cast(available, tf.float32) * mask_selection_rate), tf.int32)
    count = tf.minimum(tf.maximum(wanted, tf.minimum(available, 1)), max_predictions)
    valid = tf.range(max_predictions)[None, :] < count[:, None]
    chosen = tf.argsort(scores, axis=1, stable=True)[:, :max_predictions]
    width = tf.shape(token_ids)[1]
    positions = tf.where(valid, tf.sort(tf.where(valid, chosen, width), axis=1), 0)
    originals = tf.where(valid, tf.gather(token_ids, positions, batch_dims=1), 0)
    shape = tf.shape(positions)
    draw = tf.random.stateless_uniform(shape, seeds[1])
    randoms = tf.random.stateless_uniform(shape, seeds[2], maxval=vocabulary_size, dtype=tf.int32)
    replacement = tf.where(draw < 0.8, mask_id, tf.where(draw < 0.9, randoms, originals))
    slots = tf.where(valid)
    where = tf.stack([slots[:, 0], tf.cast(tf.gather_nd(positions, slots), tf.int64)], axis=1)
    masked = tf.tensor_scatter_nd_update(token_ids, where, tf.gather_nd(replacement, slots))
    return positions, originals, tf.cast(valid, tf.float32), masked


def fixed_masks(packed, eval_seed, batch_size=64, **masking):
    """`stateless_mask` over packed ids `[N, T]` (numpy) in batches of `batch_size`, batch i
    with seed (eval_seed, i): the masks evaluation uses, whatever the caller's batch size."""
    parts = [stateless_mask(packed[i:i + batch_size], [eval_seed, i // batch_size], **masking)
             for i in range(0, len(packed), batch_size)]
    return tuple(np.concatenate([p[k].numpy() for p in parts]) for k in range(4))


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class MaskedLMPreprocessor(keras.layers.Layer):
    """Strings → a masked-LM backbone's inputs.

    Args:
        tokenizer: a `keras_hub.models.Tokenizer` with a mask token (BERT's WordPiece,
            RoBERTa's byte-pair, ALBERT's or DeBERTa's SentencePiece).
        sequence_length: ids per window, start and end tokens included.
        mask_selection_rate: share of a window's tokens chosen for prediction.

    `pack` + `mask` build a training batch from windows; `call` packs raw strings whose
    mask tokens (`[MASK]`, `<mask>`) mark the positions to fill (the export's fill-mask).
    """

    def __init__(self, tokenizer, sequence_length=128, mask_selection_rate=0.15,
                 with_segments=True, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.with_segments = bool(with_segments)  # the backbone takes segment_ids (BERT, ALBERT)
        self.sequence_length = int(sequence_length)
        self.mask_selection_rate = float(mask_selection_rate)
        self.start_id, self.end_id, self.pad_id = special_ids(tokenizer)
        self.mask_id = getattr(tokenizer, "mask_token_id", None)
        if self.mask_id is None:
            raise ValueError(f"{type(tokenizer).__name__} has no mask token; masked-LM "
                             f"pretraining needs one ([MASK] or <mask>)")
        specials = (self.start_id is not None) + (self.end_id is not None)
        self.body_length = self.sequence_length - specials
        if self.body_length < 2:
            raise ValueError("tokenizer.sequence_length is too short for masked-LM windows")
        # room for every chosen token of a full window (rounding up), at least one
        self.max_predictions = max(1, int(np.ceil(self.body_length * self.mask_selection_rate)))

    @property
    def vocabulary_size(self):
        return self.tokenizer.vocabulary_size()

    def ragged_ids(self, strings):
        """The texts' token ids, ragged `[B, None]`, no special tokens."""
        return tokenize(self.tokenizer, strings)

    def pack(self, ids):
        """Ragged windows `[B, None]` → dense `[B, sequence_length]` ids with start/end tokens."""
        packed = add_special_tokens(tf.cast(ids[:, :self.body_length], tf.int32), self.start_id,
                                    self.end_id)
        return packed.to_tensor(self.pad_id, shape=[None, self.sequence_length])

    def model_inputs(self, token_ids, mask_positions):
        padding_mask = tf.not_equal(token_ids, self.pad_id)
        if self.start_id is not None:
            padding_mask = padding_mask | tf.equal(token_ids, self.start_id)
        inputs = {"token_ids": token_ids, "padding_mask": padding_mask,
                  "mask_positions": mask_positions}
        if self.with_segments:
            inputs["segment_ids"] = tf.zeros_like(token_ids)
        return inputs

    def mask(self, token_ids, seed):
        """(inputs, original ids `[B, P]`, weights `[B, P]`): `stateless_mask` with `seed`."""
        positions, originals, weights, masked = stateless_mask(token_ids, seed, **self.masking())
        return self.model_inputs(masked, positions), originals, weights

    def masking(self):
        """The settings `pack_windows` and `stateless_mask` take (also an export's metadata)."""
        return {"start_id": self.start_id, "end_id": self.end_id, "pad_id": self.pad_id,
                "mask_id": self.mask_id, "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length, "max_predictions": self.max_predictions,
                "mask_selection_rate": self.mask_selection_rate}

    def call(self, strings):
        """Raw strings with mask tokens → (backbone inputs with `mask_positions` `[B, M]`,
        mask-position validity `[B, M]`): M is the most mask tokens in one text (at least 1)."""
        token_ids = self.pack(self.ragged_ids(strings))
        is_mask = tf.equal(token_ids, self.mask_id)
        positions = tf.ragged.boolean_mask(
            tf.broadcast_to(tf.range(tf.shape(token_ids)[1]), tf.shape(token_ids)), is_mask)
        valid = tf.ones_like(positions, tf.bool).to_tensor(False)
        positions = positions.to_tensor(0)
        width = tf.maximum(tf.shape(positions)[1], 1)
        positions = tf.pad(positions, [[0, 0], [0, width - tf.shape(positions)[1]]])
        valid = tf.pad(valid, [[0, 0], [0, width - tf.shape(valid)[1]]])
        return self.model_inputs(token_ids, positions), valid

    def describe(self):
        return {"kind": "preset", "class": type(self.tokenizer).__name__,
                "vocabulary_size": self.vocabulary_size, "sequence_length": self.sequence_length,
                "mask_selection_rate": self.mask_selection_rate}

    def save_assets(self, folder):
        """The tokenizer's preset files in `folder/preset`."""
        from keras_nlp_app.text.presets import save_tokenizer

        save_tokenizer(self.tokenizer, folder)

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length,
                "mask_selection_rate": self.mask_selection_rate, "with_segments": self.with_segments}
