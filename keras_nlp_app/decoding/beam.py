"""Beam search with the GNMT length penalty: rows stop once settled, the batch compacts to
its live rows, and a model's cache may start small and grow."""

import tensorflow as tf

from keras_nlp_app.decoding.step import (
    NEG,
    Window,
    first_cache_length,
    initial_cache,
    mask_special,
    never_generated,
    stop_mask,
)


def best_candidates(candidates, beam_size):
    """The `beam_size` best (beam, token) continuations of each sentence.

    `candidates [B*K, V]`: every beam's score plus each token's log-prob, the K beams of a
    sentence in consecutive rows. Returns (scores, beam within the sentence, token), `[B, K]`
    each, best first, as one top-k over each sentence's K×V candidates would (ties: lower beam,
    then lower token). They are among each beam's own K best, so two small top-ks do it."""
    per_beam = min(beam_size, candidates.shape[-1] or beam_size)
    beam_best, beam_tokens = tf.math.top_k(candidates, k=per_beam)
    best, index = tf.math.top_k(tf.reshape(beam_best, [-1, beam_size * per_beam]), k=beam_size)
    tokens = tf.gather(tf.reshape(beam_tokens, [-1, beam_size * per_beam]), index, batch_dims=1)
    return best, index // per_beam, tokens


_COMPACTIONS = 3  # times beam search may halve its batch to the sentences still live


def beam_loop(model, tokens, prompt_lengths, max_new_tokens, beam_size, length_penalty,
              stop_ids, use_cache, source=None, n_best=False):
    """Beam search over the `[B, L]` buffer: the best beam of each row `[B, L]`, or with `n_best`
    every beam best first and their normalized scores.

    A row is settled once no live beam can beat its best ended one, and the search ends when
    every row is. On the way it compacts: once at most half of its rows are live, the settled
    ones have their answers written out and the search goes on over the live half, as another
    loop of half the shape in the same compiled program (at most `_COMPACTIONS` times), so rows
    that are done stop costing work. Every beam of an n-best search is an answer: it runs until
    each beam ends, without compacting."""
    batch = tf.shape(tokens)[0]
    buffer_length = tf.shape(tokens)[1]
    window = Window(model, buffer_length)
    vocab = model.vocab_size
    ends = tf.minimum(prompt_lengths + max_new_tokens, buffer_length)
    last = tf.reduce_max(ends) - 1
    grows, first_length = first_cache_length(model, use_cache, buffer_length)
    if source is not None:
        source = tf.nest.map_structure(lambda t: tf.repeat(t, beam_size, axis=0), source)
    state = {
        "tokens": tf.repeat(tf.pad(tokens, [[0, 0], [0, window.width]]), beam_size, axis=0),
        # only the first beam of each row is alive at first, so the first choice is not repeated
        "scores": tf.tile(tf.concat([[0.0], tf.fill([beam_size - 1], NEG)], 0), [batch]),
        "finished": tf.zeros([batch * beam_size], tf.bool),
        "ends": tf.repeat(ends, beam_size),
        "prompt": tf.repeat(prompt_lengths, beam_size),
        "cache": initial_cache(model, batch * beam_size, source, use_cache, first_length),
        # the uncached path reads the source at every step; a cache already holds what it needs
        "source": source if source is not None and not use_cache else {}}
    static = set(getattr(model, "static_cache", ())) if source is not None else set()
    batch_axis = getattr(model, "cache_batch_axis", 1)

    def body(index, start, state):
        # made here: captured from outside, a constant would be a loop input (see below)
        pad_only = tf.one_hot(0, vocab, on_value=0.0, off_value=NEG)
        flat = tf.shape(state["scores"])[0]
        cache, tokens = state["cache"], state["tokens"]
        start, cache = window.advance(index, start, cache, tokens, use_cache)
        logits, cache = window.logits(index, start, cache, tokens, use_cache,
                                      None if source is None or use_cache else state["source"])
        position = index + 1
        log_probs = mask_special(tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1),
                                 never_generated(model))
        done = state["finished"] | (position >= state["ends"])
        log_probs = tf.where(done[:, None], pad_only[None, :], log_probs)
        best, source_beam, chosen = best_candidates(state["scores"][:, None] + log_probs, beam_size)
        parents = tf.reshape(source_beam + tf.range(flat // beam_size)[:, None] * beam_size, [flat])
        chosen = tf.reshape(chosen, [flat])
        in_prompt = position < state["prompt"]
        # prompt positions keep every beam where it is and force the prompt token
        parents = tf.where(in_prompt, tf.range(flat), parents)
        scores = tf.where(in_prompt, state["scores"], tf.reshape(best, [flat]))
        tokens = tf.gather(tokens, parents)
        finished = tf.gather(state["finished"], parents)
        cache = {name: c if name in static else tf.nest.map_structure(
            lambda t: tf.gather(t, parents, axis=batch_axis), c) for name, c in cache.items()}
        following = tf.where(in_prompt, tokens[:, position], chosen)
        tokens = tf.tensor_scatter_nd_update(
            tokens, tf.stack([tf.range(flat), tf.fill([flat], position)], axis=1), following)
        finished |= ~in_prompt & stop_mask(following, stop_ids)
        return index + 1, start, {**state, "tokens": tokens, "cache": cache, "scores": scores,
                                  "finished": finished}

    # Inside a loop, the positions come from the loop's own tokens; after one, from the input
    # (XLA needs the range's size as a constant, which a loop's output is not).
    width = tf.shape(state["tokens"])[1]

    def normalized(state, width=None):
        """`[rows, K]`: each beam's score over the GNMT penalty of its generated length."""
        tokens = state["tokens"]
        positions = tf.range(tf.shape(tokens)[1] if width is None else width)[None, :]
        generated = tf.reduce_sum(tf.cast(
            (positions >= state["prompt"][:, None]) & (tokens > 0), tf.float32), 1)
        return tf.reshape(state["scores"] / penalty(generated), [-1, beam_size])

    def penalty(length):
        return tf.pow((5.0 + length) / 6.0, length_penalty)

    def settled(index, state, width=None):
        """`[rows]`: no live beam of the row can still beat its best ended beam. A live beam's
        normalized score is at most its score over the penalty of the longest it can grow
        (scores only fall), so the row's answer is fixed: stopping then changes no output."""
        ended = tf.reshape(state["finished"] | (index + 1 >= state["ends"]), [-1, beam_size])
        longest = tf.cast(state["ends"] - state["prompt"], tf.float32)
        bound = tf.reshape(state["scores"] / penalty(longest), [-1, beam_size])
        floor = tf.constant(100.0 * NEG)
        best_ended = tf.reduce_max(tf.where(ended, normalized(state, width), floor), 1)
        best_live = tf.reduce_max(tf.where(ended, floor, bound), 1)
        return best_ended >= best_live

    # TensorFlow 2.21's XLA bridge fails on a program with three or more loops when one of them
    # takes a constant (tensorflow/tensorflow#122886): the loops' first values are made to
    # depend on the input, and nothing they capture is a constant.
    zero = tf.minimum(last, 0) * 0
    index, start, state = tf.nest.map_structure(
        lambda t: t | tf.cast(zero, tf.bool) if t.dtype == tf.bool else t + tf.cast(zero, t.dtype),
        (zero, zero, state))

    def going(index, state, compactions_left=_COMPACTIONS):
        """Whether the search goes on: an n-best search until every beam has ended; else while
        more rows are live than the next compaction would keep (all of them after the last)."""
        if n_best:
            return (index < last) & ~tf.reduce_all(state["finished"])
        live = tf.reduce_sum(tf.cast(~settled(index, state), tf.int32))
        half = tf.shape(state["scores"])[0] // (2 * beam_size) if compactions_left else 0
        return (index < last) & (live > half)

    if grows:
        # The first steps read and reorder a quarter of the cache (`first_cache_length`); this
        # loop also stops where the loops below would compact, so they still can.
        index, start, state = tf.while_loop(
            lambda index, start, state: going(index, state) & (index < first_length),
            body, (index, start, state))
        state = {**state, "cache": model.grow_cache(state["cache"], buffer_length)}
    if n_best:
        _, _, state = tf.while_loop(lambda index, start, state: going(index, state),
                                    body, (index, start, state))
        ranked, order = tf.math.top_k(normalized(state, width), k=beam_size)
        ranked_tokens = tf.gather(state["tokens"][:, :buffer_length],
                                  order + tf.range(batch)[:, None] * beam_size)
        return ranked_tokens, ranked  # [B, K, L] best first, and their normalized scores

    origin = tf.range(batch)  # each row's place in the output
    answers = tf.zeros([batch, width], tf.int32)
    rows = batch  # (from the input's shape too)
    for compactions_left in range(_COMPACTIONS, -1, -1):
        def cond(index, start, state, compactions_left=compactions_left):
            return going(index, state, compactions_left)

        index, start, state = tf.while_loop(cond, body, (index, start, state))
        best = tf.argmax(normalized(state, width), axis=1, output_type=tf.int32)
        answers = tf.tensor_scatter_nd_update(
            answers, origin[:, None], tf.gather(state["tokens"], best + tf.range(rows) * beam_size))
        if compactions_left:
            # at most half live (or the last step reached): every row left out is answered
            kept = _live_first(~settled(index, state, width), rows)[:rows // 2]
            origin = tf.gather(origin, kept)
            state = _kept_rows(state, kept, beam_size, batch_axis)
            rows = rows // 2
    return answers[:, :buffer_length]


def _live_first(live, rows):
    """`[rows]` row indices, the live ones first, each group in its order (a stable partition
    without a sort, whose size XLA would need as a constant)."""
    live_count = tf.reduce_sum(tf.cast(live, tf.int32))
    place = tf.where(live, tf.cumsum(tf.cast(live, tf.int32)) - 1,
                     live_count + tf.cumsum(tf.cast(~live, tf.int32)) - 1)
    return tf.scatter_nd(place[:, None], tf.range(rows), [rows])


def _kept_rows(state, kept, beam_size, batch_axis):
    """The beam search state of the rows `kept` only (each row's `beam_size` beams)."""
    beams = tf.reshape(kept[:, None] * beam_size + tf.range(beam_size)[None, :], [-1])
    take = lambda t: tf.gather(t, beams)  # noqa: E731
    return {**{name: take(state[name]) for name in ("tokens", "scores", "finished", "ends", "prompt")},
            "source": tf.nest.map_structure(take, state["source"]),
            "cache": tf.nest.map_structure(lambda t: tf.gather(t, beams, axis=batch_axis),
                                           state["cache"])}
