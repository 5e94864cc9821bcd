"""Autoregressive decoding: greedy, sampling (temperature, top-k, top-p, repetition penalty) and
beam search with a length penalty, for any model that offers the decoding interface below.

Each loop is a `tf.while_loop` inside a `tf.function(jit_compile=True)`: XLA compiles it once per
(batch, buffer length) shape, and `decode_ids` pads both to buckets, so calls with new prompt
lengths or new settings reuse the compiled loop (the settings are tensors, not constants).

Decoding interface of a model (models/transformer_lm.py, models/lstm_lm.py):
    model(tokens [B, T]) → logits [B, T, V]              the uncached path
    model.init_cache(B) → nested tensors, batch on axis 1
    model.decode_step(token [B], cache, index) → (logits [B, V], cache)
    model.prefill(tokens [B, W]) → cache holding positions 0..W-1
    model.context_length → longest window, or None (recurrent models)
    model.never_generated → ids never chosen (optional; default padding 0 and unknown 1)
    model.cache_batch_axis → the cache's batch axis (optional; default 1)

Conditional models (sequence to sequence) also take a `source`: nested tensors with the batch on
axis 0 (e.g. encoder outputs and their mask), given as `model.init_cache(B, source, length)`
(`length`: the target positions the loop will write, so the self-attention cache holds no more)
and, for the uncached path, `model.decode(tokens, source) → logits [B, T, V]`; beam search
repeats it for every beam. Their `model.static_cache` names the cache entries that never
change while decoding (the source's keys and values): beam search does not reorder those, since
every beam of a sentence holds the same ones.

Prompts are left-aligned in a token buffer; row b's prompt is `prompt_lengths[b]` tokens long
and it gets `max_new_tokens` more. Every position is fed through the step function (prompt
tokens are forced rather than sampled), so rows with different prompt lengths share one loop.
When a window-limited model reaches its context length, the window moves on by half a context:
the cache is rebuilt from the last half in one parallel pass. The uncached path uses the same
windows, so both give the same tokens.

Example:
    tokens = decode_ids(model, [[5, 9, 2]], max_new_tokens=20, temperature=0.8, top_k=40, seed=1)
"""

import tensorflow as tf

STRATEGIES = ("greedy", "sample", "top_k", "top_p", "beam")
_NEG = -1e9
_LENGTH_BUCKET = 64


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
    logits = tf.where(logits < kth_best, _NEG, logits)
    ranked = tf.where(tf.range(vocab)[None, :] < k, ranked, _NEG)
    probabilities = tf.nn.softmax(ranked, axis=-1)
    mass_before = tf.cumsum(probabilities, axis=-1, exclusive=True)
    keep = (mass_before < top_p) | (tf.range(vocab)[None, :] == 0)  # the best always stays
    threshold = tf.reduce_min(tf.where(keep, ranked, tf.float32.max), axis=-1, keepdims=True)
    return tf.where(logits < threshold, _NEG, logits)


NEVER_GENERATED = (0, 1)  # padding and the unknown token of the package's own vocabularies


def _mask_special(logits, never=NEVER_GENERATED):
    """Logits with the ids `never` (padding, the unknown token, ...) masked out."""
    vocab = tf.shape(logits)[-1]
    banned = tf.reduce_any(tf.equal(tf.range(vocab)[None, :], tf.constant(never)[:, None]), 0)
    return tf.where(banned[None, :], _NEG, tf.cast(logits, tf.float32))


def choose_next(logits, presence, step_seed, temperature, top_k, top_p, repetition_penalty,
                never=NEVER_GENERATED):
    """The next token of every row: argmax when `temperature` is 0, else a seeded sample from
    the filtered, temperature-scaled distribution. The ids `never` are never chosen."""
    logits = apply_repetition_penalty(_mask_special(logits, never), presence, repetition_penalty)
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    scaled = filter_logits(logits / tf.maximum(temperature, 1e-6), top_k, top_p)
    sampled = tf.random.stateless_categorical(scaled, 1, step_seed, dtype=tf.int32)[:, 0]
    return tf.where(temperature > 0, sampled, greedy)


def _never_generated(model):
    return tuple(getattr(model, "never_generated", NEVER_GENERATED))


def _stop_mask(tokens, stop_ids):
    stop = tf.zeros_like(tokens, tf.bool)
    for stop_id in stop_ids:
        stop |= tf.equal(tokens, stop_id)
    return stop


class _Window:
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


def _initial_cache(model, batch, source, use_cache, length):
    if not use_cache:
        return {}
    if source is None:
        return model.init_cache(batch)
    return model.init_cache(batch, source, length)


def _presence(tokens, vocab):
    """`[B, V]` bool: which (non-padding) ids occur in each row of `tokens [B, L]`."""
    rows = tf.broadcast_to(tf.range(tf.shape(tokens)[0])[:, None], tf.shape(tokens))
    indices = tf.reshape(tf.stack([rows, tokens], axis=-1), [-1, 2])
    counts = tf.scatter_nd(indices, tf.reshape(tf.cast(tokens > 0, tf.int32), [-1]),
                           [tf.shape(tokens)[0], vocab])
    return counts > 0


def _sampling_loop(model, tokens, prompt_lengths, max_new_tokens, temperature, top_k, top_p,
                   repetition_penalty, seed, stop_ids, use_cache, source=None):
    batch = tf.shape(tokens)[0]
    buffer_length = tf.shape(tokens)[1]
    window = _Window(model, buffer_length)
    # room past the end, so a moved window can always be sliced at full width
    tokens = tf.pad(tokens, [[0, 0], [0, window.width]])
    vocab = model.vocab_size
    presence = _presence(tokens, vocab)
    ends = tf.minimum(prompt_lengths + max_new_tokens, buffer_length)
    last = tf.reduce_max(ends) - 1
    cache = _initial_cache(model, batch, source, use_cache, buffer_length)
    finished = tf.zeros([batch], tf.bool)

    def body(index, tokens, cache, presence, finished, start):
        start, cache = window.advance(index, start, cache, tokens, use_cache)
        logits, cache = window.logits(index, start, cache, tokens, use_cache, source)
        chosen = choose_next(logits, presence, tf.stack([seed, index]), temperature, top_k, top_p,
                             repetition_penalty, _never_generated(model))
        position = index + 1
        in_prompt = position < prompt_lengths
        following = tf.where(in_prompt, tokens[:, position], chosen)
        following = tf.where(finished | (position >= ends), 0, following)
        tokens = tf.tensor_scatter_nd_update(
            tokens, tf.stack([tf.range(batch), tf.fill([batch], position)], axis=1), following)
        presence |= (tf.one_hot(following, vocab) > 0) & (following > 0)[:, None]
        finished |= ~in_prompt & _stop_mask(following, stop_ids)
        return index + 1, tokens, cache, presence, finished, start

    def cond(index, tokens, cache, presence, finished, start):
        return (index < last) & ~tf.reduce_all(finished)

    _, tokens, *_ = tf.while_loop(
        cond, body, (tf.constant(0), tokens, cache, presence, finished, tf.constant(0)))
    return tokens[:, :buffer_length]


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


def _beam_loop(model, tokens, prompt_lengths, max_new_tokens, beam_size, length_penalty,
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
    window = _Window(model, buffer_length)
    vocab = model.vocab_size
    ends = tf.minimum(prompt_lengths + max_new_tokens, buffer_length)
    last = tf.reduce_max(ends) - 1
    if source is not None:
        source = tf.nest.map_structure(lambda t: tf.repeat(t, beam_size, axis=0), source)
    state = {
        "tokens": tf.repeat(tf.pad(tokens, [[0, 0], [0, window.width]]), beam_size, axis=0),
        # only the first beam of each row is alive at first, so the first choice is not repeated
        "scores": tf.tile(tf.concat([[0.0], tf.fill([beam_size - 1], _NEG)], 0), [batch]),
        "finished": tf.zeros([batch * beam_size], tf.bool),
        "ends": tf.repeat(ends, beam_size),
        "prompt": tf.repeat(prompt_lengths, beam_size),
        "cache": _initial_cache(model, batch * beam_size, source, use_cache, buffer_length),
        # the uncached path reads the source at every step; a cache already holds what it needs
        "source": source if source is not None and not use_cache else {}}
    static = set(getattr(model, "static_cache", ())) if source is not None else set()
    batch_axis = getattr(model, "cache_batch_axis", 1)

    def body(index, start, state):
        # made here: captured from outside, a constant would be a loop input (see below)
        pad_only = tf.one_hot(0, vocab, on_value=0.0, off_value=_NEG)
        flat = tf.shape(state["scores"])[0]
        cache, tokens = state["cache"], state["tokens"]
        start, cache = window.advance(index, start, cache, tokens, use_cache)
        logits, cache = window.logits(index, start, cache, tokens, use_cache,
                                      None if source is None or use_cache else state["source"])
        position = index + 1
        log_probs = _mask_special(tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1),
                                  _never_generated(model))
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
        finished |= ~in_prompt & _stop_mask(following, stop_ids)
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
        floor = tf.constant(100.0 * _NEG)
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
    if n_best:
        _, _, state = tf.while_loop(
            lambda index, start, state: (index < last) & ~tf.reduce_all(state["finished"]),
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
            live = tf.reduce_sum(tf.cast(~settled(index, state), tf.int32))
            half = tf.shape(state["scores"])[0] // (2 * beam_size) if compactions_left else 0
            return (index < last) & (live > half)

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


def compiled_decoder(model, *, strategy="sample", beam_size=4, stop_ids=(), use_cache=True,
                     source_spec=None, n_best=False):
    """The XLA-compiled decoding loop for `model`, memoized on the model per setting.

    The returned function takes (tokens `[B, L]`, prompt_lengths `[B]`, max_new_tokens,
    temperature, top_k, top_p, repetition_penalty, seed, length_penalty[, source]) and returns
    the filled token buffer `[B, L]`. Sampling settings are tensors, so changing them does not
    recompile. `source_spec` (nested `tf.TensorSpec`s) declares a conditional model's source.
    With `n_best`, beam search returns every beam, best first: (`[B, K, L]`, scores `[B, K]`).
    """
    key = (strategy == "beam", beam_size if strategy == "beam" else 0, tuple(stop_ids), use_cache,
           source_spec is not None, n_best)
    memo = model.__dict__.setdefault("_knlp_decoders", {})
    if key in memo:
        return memo[key]
    signature = [
        tf.TensorSpec([None, None], tf.int32, name="tokens"),
        tf.TensorSpec([None], tf.int32, name="prompt_lengths"),
        *(tf.TensorSpec([], dtype, name=name) for name, dtype in (
            ("max_new_tokens", tf.int32), ("temperature", tf.float32), ("top_k", tf.int32),
            ("top_p", tf.float32), ("repetition_penalty", tf.float32), ("seed", tf.int32),
            ("length_penalty", tf.float32)))]

    def loop(tokens, prompt_lengths, max_new_tokens, temperature, top_k, top_p,
             repetition_penalty, seed, length_penalty, source=None):
        if strategy == "beam":
            return _beam_loop(model, tokens, prompt_lengths, max_new_tokens, beam_size,
                              length_penalty, stop_ids, use_cache, source, n_best)
        return _sampling_loop(model, tokens, prompt_lengths, max_new_tokens, temperature, top_k,
                              top_p, repetition_penalty, seed, stop_ids, use_cache, source)

    if source_spec is not None:
        signature.append(source_spec)
    memo[key] = tf.function(loop, jit_compile=True, input_signature=signature)
    return memo[key]


def bucketed_buffer(prompts, max_new_tokens):
    """Pads ragged prompt ids `[B, None]` into a `[B', L]` buffer with B' the next power of two
    and L a multiple of 64 covering the longest prompt plus `max_new_tokens`.

    Returns (buffer, prompt_lengths `[B']`, B). Works in graph (SavedModel signatures) and eagerly.
    """
    prompts = prompts if isinstance(prompts, tf.RaggedTensor) else tf.ragged.constant(prompts)
    prompts = tf.cast(prompts, tf.int32)
    batch = prompts.nrows(out_type=tf.int32)
    lengths = prompts.row_lengths(axis=1)
    needed = tf.cast(tf.reduce_max(lengths), tf.int32) + tf.cast(max_new_tokens, tf.int32)
    length = (needed + _LENGTH_BUCKET - 1) // _LENGTH_BUCKET * _LENGTH_BUCKET
    power = tf.cast(tf.round(tf.math.log(tf.cast(batch, tf.float32)) / tf.math.log(2.0)), tf.int32)
    rows = tf.bitwise.left_shift(1, power)
    rows = tf.where(rows >= batch, rows, 2 * rows)
    buffer = prompts.to_tensor(0)
    buffer = tf.pad(buffer, [[0, rows - batch], [0, length - tf.shape(buffer)[1]]])
    prompt_lengths = tf.pad(tf.cast(lengths, tf.int32), [[0, rows - batch]], constant_values=1)
    return buffer, prompt_lengths, batch


def decode_ids(model, prompts, *, max_new_tokens=32, strategy="sample", temperature=1.0,
               top_k=0, top_p=1.0, repetition_penalty=1.0, beam_size=4, length_penalty=0.6,
               seed=0, stop_ids=(), use_cache=True, source=None):
    """Decodes continuations of `prompts` (lists of ids, each non-empty) and returns the whole
    `[B, L]` buffer: prompt, generated tokens, then zeros. A conditional model gets `source`
    (nested tensors, one row per prompt).

    `strategy`: greedy (argmax), sample (temperature, top_k, top_p all apply), top_k, top_p
    (the same sampler; named for the CLI) or beam (`beam_size`, GNMT length penalty).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    buffer, prompt_lengths, batch = bucketed_buffer(prompts, max_new_tokens)
    extra = ()
    if source is not None:
        source = pad_rows(source, tf.shape(buffer)[0])
        extra = (source,)
    decode = compiled_decoder(
        model, strategy=strategy, beam_size=beam_size, stop_ids=stop_ids, use_cache=use_cache,
        source_spec=None if source is None else tf.nest.map_structure(
            lambda t: tf.TensorSpec([None] * t.shape.rank, t.dtype), source))
    tokens = decode(buffer, prompt_lengths, tf.constant(max_new_tokens, tf.int32),
                    tf.constant(0.0 if strategy == "greedy" else temperature, tf.float32),
                    tf.constant(top_k, tf.int32), tf.constant(top_p, tf.float32),
                    tf.constant(repetition_penalty, tf.float32), tf.constant(seed, tf.int32),
                    tf.constant(length_penalty, tf.float32), *extra)
    return tokens[:batch]


def pad_rows(source, rows):
    """Pads every tensor of `source` with zero rows up to `rows` (the bucketed batch)."""
    def pad(t):
        t = tf.convert_to_tensor(t)
        paddings = tf.concat([[[0, rows - tf.shape(t)[0]]], tf.zeros([t.shape.rank - 1, 2], tf.int32)], 0)
        return tf.pad(t, paddings)
    return tf.nest.map_structure(pad, source)
