"""Greedy decoding and sampling (temperature, top-k, top-p, repetition penalty) in one
compiled loop."""

import tensorflow as tf

from keras_nlp_app.decoding.step import (
    NEG,
    NEVER_GENERATED,
    Window,
    first_cache_length,
    initial_cache,
    mask_special,
    never_generated,
    stop_mask,
)


def apply_repetition_penalty(logits, presence, penalty):
    """CTRL's repetition penalty: logits of tokens already present are divided by `penalty`
    when positive and multiplied by it when negative (penalty 1 changes nothing)."""
    penalized = tf.where(logits > 0, logits / penalty, logits * penalty)
    return tf.where(presence, penalized, logits)


def filter_logits(logits, top_k, top_p):
    """Masks (to a large negative value) every logit outside the `top_k` best (0: no limit) and
    outside the smallest set whose probability reaches `top_p` (1.0: no limit).

    Args:
        logits: `[B, V]` float.
        top_k: int scalar tensor.
        top_p: float scalar tensor.
    """
    vocab = tf.shape(logits)[-1]
    k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
    ranked = tf.sort(logits, axis=-1, direction="DESCENDING")
    kth_best = tf.gather(ranked, k - 1, axis=-1)[:, None]
    logits = tf.where(logits < kth_best, NEG, logits)
    ranked = tf.where(tf.range(vocab)[None, :] < k, ranked, NEG)
    probabilities = tf.nn.softmax(ranked, axis=-1)
    mass_before = tf.cumsum(probabilities, axis=-1, exclusive=True)
    keep = (mass_before < top_p) | (tf.range(vocab)[None, :] == 0)  # the best always stays
    threshold = tf.reduce_min(tf.where(keep, ranked, tf.float32.max), axis=-1, keepdims=True)
    return tf.where(logits < threshold, NEG, logits)


def choose_next(logits, presence, step_seed, temperature, top_k, top_p, repetition_penalty,
                never=NEVER_GENERATED):
    """The next token of every row: argmax when `temperature` is 0, else a seeded sample from
    the filtered, temperature-scaled distribution. The ids `never` are never chosen."""
    logits = apply_repetition_penalty(mask_special(logits, never), presence, repetition_penalty)

    def sampled():
        scaled = logits / tf.maximum(temperature, 1e-6)
        # the filter sorts the vocabulary at every step: only when a limit is set
        scaled = tf.cond((top_k > 0) | (top_p < 1.0),
                         lambda: filter_logits(scaled, top_k, top_p), lambda: scaled)
        return tf.random.stateless_categorical(scaled, 1, step_seed, dtype=tf.int32)[:, 0]

    # a branch, not both computed: greedy decoding neither sorts nor draws
    return tf.cond(temperature > 0, sampled,
                   lambda: tf.argmax(logits, axis=-1, output_type=tf.int32))


def _presence(tokens, vocab):
    """`[B, V]` bool: which (non-padding) ids occur in each row of `tokens [B, L]`."""
    rows = tf.broadcast_to(tf.range(tf.shape(tokens)[0])[:, None], tf.shape(tokens))
    indices = tf.reshape(tf.stack([rows, tokens], axis=-1), [-1, 2])
    counts = tf.scatter_nd(indices, tf.reshape(tf.cast(tokens > 0, tf.int32), [-1]),
                           [tf.shape(tokens)[0], vocab])
    return counts > 0


def sampling_loop(model, tokens, prompt_lengths, max_new_tokens, temperature, top_k, top_p,
                  repetition_penalty, seed, stop_ids, use_cache, source=None):
    batch = tf.shape(tokens)[0]
    buffer_length = tf.shape(tokens)[1]
    window = Window(model, buffer_length)
    # room past the end, so a moved window can always be sliced at full width
    tokens = tf.pad(tokens, [[0, 0], [0, window.width]])
    vocab = model.vocab_size
    presence = _presence(tokens, vocab)
    ends = tf.minimum(prompt_lengths + max_new_tokens, buffer_length)
    last = tf.reduce_max(ends) - 1
    grows, first_length = first_cache_length(model, use_cache, buffer_length)
    cache = initial_cache(model, batch, source, use_cache, first_length)
    finished = tf.zeros([batch], tf.bool)

    def body(index, tokens, cache, presence, finished, start):
        start, cache = window.advance(index, start, cache, tokens, use_cache)
        logits, cache = window.logits(index, start, cache, tokens, use_cache, source)
        chosen = choose_next(logits, presence, tf.stack([seed, index]), temperature, top_k, top_p,
                             repetition_penalty, never_generated(model))
        position = index + 1
        in_prompt = position < prompt_lengths
        following = tf.where(in_prompt, tokens[:, position], chosen)
        following = tf.where(finished | (position >= ends), 0, following)
        tokens = tf.tensor_scatter_nd_update(
            tokens, tf.stack([tf.range(batch), tf.fill([batch], position)], axis=1), following)
        presence |= (tf.one_hot(following, vocab) > 0) & (following > 0)[:, None]
        finished |= ~in_prompt & stop_mask(following, stop_ids)
        return index + 1, tokens, cache, presence, finished, start

    def cond(index, tokens, cache, presence, finished, start):
        return (index < last) & ~tf.reduce_all(finished)

    state = (tf.constant(0), tokens, cache, presence, finished, tf.constant(0))
    if grows:  # the first steps over a quarter of the cache, then the cache grows
        index, tokens, cache, presence, finished, start = tf.while_loop(
            lambda index, *rest: cond(index, *rest) & (index < first_length), body, state)
        state = (index, tokens, model.grow_cache(cache, buffer_length), presence, finished, start)
    _, tokens, *_ = tf.while_loop(cond, body, state)
    return tokens[:, :buffer_length]
