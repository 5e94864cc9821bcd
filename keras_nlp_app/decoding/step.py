"""What every decoding loop shares: the context window a step sees (the cache, or the
uncached path's recomputed window), the first cache, and the masks for ids never generated
and for stop ids."""

import tensorflow as tf

NEG = -1e9

NEVER_GENERATED = (0, 1)  # padding and the unknown token of the package's own vocabularies


def mask_special(logits, never=NEVER_GENERATED):
    """Logits with the ids `never` (padding, the unknown token, ...) masked out."""
    vocab = tf.shape(logits)[-1]
    banned = tf.reduce_any(tf.equal(tf.range(vocab)[None, :], tf.constant(never)[:, None]), 0)
    return tf.where(banned[None, :], NEG, tf.cast(logits, tf.float32))


def never_generated(model):
    return tuple(getattr(model, "never_generated", NEVER_GENERATED))


def stop_mask(tokens, stop_ids):
    stop = tf.zeros_like(tokens, tf.bool)
    for stop_id in stop_ids:
        stop |= tf.equal(tokens, stop_id)
    return stop


def first_cache_length(model, use_cache, buffer_length):
    """(whether the cache grows, the positions it starts with). A model that can grow its cache
    (`grow_cache`, no moving window) starts with a quarter of the buffer, so a loop's first
    steps read and copy a quarter as much; the loop grows it once, after those steps."""
    grows = (use_cache and not model.context_length
             and getattr(model, "grow_cache", None) is not None)
    return grows, buffer_length // 4 if grows else buffer_length


class Window:
    """The context window a position sees: its start moves by half a context when it fills."""

    def __init__(self, model, buffer_length):
        self.model = model
        self.context = model.context_length
        self.width = tf.minimum(self.context, buffer_length) if self.context else buffer_length

    def advance(self, index, start, cache, tokens, use_cache):
        if not self.context:
            return start, cache
        half = self.context // 2
        full = index - start >= self.context
        start = tf.where(full, start + half, start)
        if use_cache:
            cache = tf.cond(
                full,
                lambda: self.model.prefill(tf.slice(tokens, [0, start], [-1, half])),
                lambda: cache)
        return start, cache

    def logits(self, index, start, cache, tokens, use_cache, source=None):
        """Next-token logits `[B, V]` for the token at `index`, and the new cache."""
        if use_cache:
            return self.model.decode_step(tokens[:, index], cache, index - start)
        window = tf.slice(tokens, [0, start], [-1, self.width])
        if source is None:
            return self.model(window, training=False)[:, index - start], cache
        return self.model.decode(window, source)[:, index - start], cache


def initial_cache(model, batch, source, use_cache, length):
    if not use_cache:
        return {}
    if source is None:
        return model.init_cache(batch)
    return model.init_cache(batch, source, length)
