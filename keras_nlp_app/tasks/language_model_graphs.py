"""Language-model graph code: scoring texts and streams, and generating continuations.

`score_texts` is the export's serving_default and `generate_endpoint` its generate and
beam_search signatures; the trainer's callbacks and `knlp generate` use the same functions, so
a run folder and its export compute the same numbers.
"""

import math

import numpy as np

from keras_nlp_app.tasks.base import MAX_NEW_TOKENS


def _nll_function(model):
    import tensorflow as tf

    memo = model.__dict__.setdefault("_knlp_nll", {})
    if "nll" not in memo:
        @tf.function(jit_compile=True, reduce_retracing=True)
        def nll(inputs, targets, mask):
            logits = tf.cast(model(inputs, training=False), tf.float32)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
            return tf.reduce_sum(losses * mask)
        memo["nll"] = nll
    return memo["nll"]


def _recurrent_nll_function(model):
    import tensorflow as tf

    memo = model.__dict__.setdefault("_knlp_nll", {})
    if "recurrent" not in memo:
        @tf.function(reduce_retracing=True)
        def chunk_nll(inputs, targets, state):
            logits, state = model.call_with_state(inputs, state)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
                targets, tf.cast(logits, tf.float32))
            return tf.reduce_sum(losses), state
        memo["recurrent"] = chunk_nll
    return memo["recurrent"]


def evaluate_stream(model, stream, batch_windows=32):
    """{"tokens", "loss" (nats/token), "perplexity"} of a model over a whole id stream.

    Every token after the first is predicted once. Transformer LMs see non-overlapping windows
    of their context length; LSTM LMs carry one state from the start of the stream to its end.
    """

    inputs, targets = stream[:-1], stream[1:]
    count = len(targets)
    total = 0.0
    if model.context_length:
        window = model.context_length
        rows = -(-count // window)
        pad = rows * window - count
        x = np.pad(inputs, (0, pad)).reshape(rows, window)
        y = np.pad(targets, (0, pad)).reshape(rows, window)
        mask = (np.arange(rows * window) < count).astype(np.float32).reshape(rows, window)
        nll = _nll_function(model)
        for start in range(0, rows, batch_windows):
            part = slice(start, start + batch_windows)
            total += float(nll(x[part], y[part], mask[part]))
    else:
        state = model.init_cache(1)
        chunk_nll = _recurrent_nll_function(model)
        chunk = 1024
        for start in range(0, count, chunk):
            nll, state = chunk_nll(inputs[None, start:start + chunk],
                                   targets[None, start:start + chunk], state)
            total += float(nll)
    loss = total / count
    return {"tokens": int(count), "loss": round(loss, 5), "perplexity": round(math.exp(loss), 3)}


def score_texts(model, preprocessor, strings):
    """`log_prob [B]` (natural log, summed over tokens) and `num_tokens [B]` of `[B]` strings,
    each scored from `bos_id`. Graph code: it is the export's serving_default."""
    import tensorflow as tf

    ids = preprocessor.ragged_ids(strings)
    bos = tf.fill([ids.nrows(), 1], preprocessor.bos_id)
    inputs = tf.concat([tf.RaggedTensor.from_tensor(bos), ids[:, :-1]], axis=1).to_tensor(0)
    # as wide as the inputs, which hold at least the start token: an empty text scores 0
    targets = ids.to_tensor(0, shape=tf.shape(inputs))
    mask = tf.sequence_mask(ids.row_lengths(), tf.shape(targets)[1], tf.float32)
    window = model.context_length
    if window:
        # the context restarts every `window` tokens, as in evaluate_stream
        batch, length = tf.shape(inputs)[0], tf.shape(inputs)[1]
        padded = (length + window - 1) // window * window
        inputs, targets, mask = (tf.pad(t, [[0, 0], [0, padded - length]])
                                 for t in (inputs, targets, mask))
        logits = model(tf.reshape(inputs, [-1, window]), training=False)
        logits = tf.reshape(logits, [batch, padded, -1])
    else:
        logits = model(inputs, training=False)
    log_probs = -tf.nn.sparse_softmax_cross_entropy_with_logits(targets, tf.cast(logits, tf.float32))
    return {"log_prob": tf.reduce_sum(log_probs * mask, axis=1),
            "num_tokens": tf.cast(ids.row_lengths(), tf.int32)}


# -- generation -------------------------------------------------------------------------------


def stop_ids(preprocessor):
    """The ids that end a generation: a preset LM's end token (the package's own LMs write
    until `max_new_tokens`: their `<eos>` ends a line, not a text)."""
    end = preprocessor.document_end_id
    return () if end is None else (end,)


def generated_text(preprocessor, tokens, prompt_lengths, stop=()):
    """The continuation part of decoded buffers `[B, L]` as `[B]` strings, cut before the first
    stop string. Graph code."""
    import tensorflow as tf

    text = preprocessor.continuation(tokens, prompt_lengths)
    for stop_string in stop:
        text = tf.strings.split(text, stop_string, maxsplit=1).to_tensor("")[:, 0]
    return text


def generate_texts(model, preprocessor, prompts, *, max_new_tokens=64, strategy="sample",
                   temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0, beam_size=4,
                   length_penalty=0.6, seed=0, stop=(), use_cache=True):
    """Continuations of `prompts` (list of str) as a list of str."""
    import tensorflow as tf

    from keras_nlp_app import decoding

    ids = preprocessor.prompt_ids(tf.constant(prompts, tf.string))
    tokens = decoding.decode_ids(
        model, ids, max_new_tokens=max_new_tokens, strategy=strategy, temperature=temperature,
        top_k=top_k, top_p=top_p, repetition_penalty=repetition_penalty, beam_size=beam_size,
        length_penalty=length_penalty, seed=seed, stop_ids=stop_ids(preprocessor),
        use_cache=use_cache)
    text = generated_text(preprocessor, tokens, tf.cast(ids.row_lengths(), tf.int32), stop)
    return [t.decode("utf-8", errors="replace") for t in text.numpy().tolist()]


def generate_endpoint(run, strategy, beam_size=4):
    import tensorflow as tf

    from keras_nlp_app import decoding

    preprocessor = run.preprocessor
    decode = decoding.compiled_decoder(run.model, strategy=strategy, beam_size=beam_size,
                                       stop_ids=stop_ids(preprocessor))

    def generate(prompt, max_new_tokens, temperature, top_k, top_p, seed):
        tf.debugging.assert_less_equal(
            max_new_tokens, MAX_NEW_TOKENS,
            message=f"max_new_tokens must be at most {MAX_NEW_TOKENS}")
        tf.debugging.assert_non_negative(max_new_tokens, message="max_new_tokens must be >= 0")
        ids = preprocessor.prompt_ids(prompt)
        buffer, lengths, batch = decoding.bucketed_buffer(ids, max_new_tokens)
        tokens = decode(buffer, lengths, max_new_tokens, temperature, top_k, top_p,
                        tf.constant(1.0), seed, tf.constant(0.6))[:batch]
        continuation = generated_text(preprocessor, tokens, lengths[:batch])
        if preprocessor.word_level:
            text = tf.strings.regex_replace(tf.strings.join([prompt, continuation], " "), "^ ", "")
        else:
            text = tf.strings.join([prompt, continuation])
        return {"text": text, "continuation": continuation,
                "num_tokens": tf.reduce_sum(tf.cast(
                    (tf.range(tf.shape(tokens)[1])[None, :] >= lengths[:batch, None])
                    & (tokens > 0), tf.int32), axis=1)}

    return generate
