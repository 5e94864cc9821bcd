"""Autoregressive decoding: greedy, sampling (temperature, top-k, top-p, repetition penalty) and
beam search with a length penalty, for any model that offers the decoding interface below.

Each loop is a `tf.while_loop` inside a `tf.function(jit_compile=True)`: XLA compiles it once per
(batch, buffer length) shape, and `decode_ids` pads both to buckets, so calls with new prompt
lengths or new settings reuse the compiled loop (the settings are tensors, not constants).
The loops live in `sampling.py` and `beam.py`; what they share (the step's window, the first
cache, the masks) in `step.py`.

Decoding interface of a model (models/transformer_lm.py, models/lstm_lm.py):
    model(tokens [B, T]) → logits [B, T, V]              the uncached path
    model.init_cache(B) → nested tensors, batch on axis 1
    model.decode_step(token [B], cache, index) → (logits [B, V], cache)
    model.prefill(tokens [B, W]) → cache holding positions 0..W-1
    model.context_length → longest window, or None (recurrent models)
    model.never_generated → ids never chosen (optional; default padding 0 and unknown 1)
    model.cache_batch_axis → the cache's batch axis (optional; default 1)
    model.grow_cache(cache, length) → the cache with room for `length` positions (optional;
        models without a moving window): every loop then starts with a quarter of the buffer's
        positions and grows the cache once, so its first steps read and copy a quarter as much

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

# best_candidates and filter_logits are this package's API too
from keras_nlp_app.decoding.beam import beam_loop, best_candidates  # noqa: F401
from keras_nlp_app.decoding.sampling import filter_logits, sampling_loop  # noqa: F401

STRATEGIES = ("greedy", "sample", "top_k", "top_p", "beam")
_LENGTH_BUCKET = 64


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
            return beam_loop(model, tokens, prompt_lengths, max_new_tokens, beam_size,
                             length_penalty, stop_ids, use_cache, source, n_best)
        return sampling_loop(model, tokens, prompt_lengths, max_new_tokens, temperature, top_k,
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
