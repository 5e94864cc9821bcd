"""Sequence-to-sequence graph code: the training loss and token accuracy, teacher-forced
perplexity, and decoding (beam search, greedy, sampling) for a trained encoder-decoder.

`decode_graph` is what the export's signatures trace; `translate` runs it in this process.
"""

def smoothed_loss(label_smoothing):
    """Token cross-entropy with label smoothing, averaged over the non-padding targets."""
    from keras import ops

    def loss(targets, logits):
        log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        targets = ops.cast(targets, "int32")
        nll = -ops.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
        smooth = -ops.mean(log_probs, axis=-1)
        per_token = (1.0 - label_smoothing) * nll + label_smoothing * smooth
        mask = ops.cast(ops.not_equal(targets, 0), "float32")
        return ops.sum(per_token * mask) / ops.maximum(ops.sum(mask), 1.0)

    loss.__name__ = "smoothed_cross_entropy"
    return loss


def token_accuracy(targets, logits):
    from keras import ops

    targets = ops.cast(targets, "int32")
    mask = ops.cast(ops.not_equal(targets, 0), "float32")
    hits = ops.cast(ops.equal(ops.argmax(logits, axis=-1), targets), "float32") * mask
    return ops.sum(hits) / ops.maximum(ops.sum(mask), 1.0)


def target_perplexity(model, preprocessor, sources, targets, batch_size=64):
    """Teacher-forced `loss` (nats per target token, EOS included, no label smoothing) and its
    `perplexity` = exp(loss) over whole pairs: the dialogue papers' validation perplexity."""
    import math

    import tensorflow as tf

    memo = model.__dict__.setdefault("_knlp_nll", {})
    if "fn" not in memo:
        def total(source_text, target_text):
            source = preprocessor.source_ids(source_text).to_tensor(0)
            target = preprocessor.target_ids(target_text).to_tensor(0)
            logits = model({"source": source, "target": target[:, :-1]}, training=False)
            labels = target[:, 1:]
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels, logits=tf.cast(logits, tf.float32))
            mask = tf.cast(labels > 0, tf.float32)
            return tf.reduce_sum(nll * mask), tf.reduce_sum(mask)

        memo["fn"] = tf.function(total, input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    nll = tokens = 0.0
    for start in range(0, len(sources), batch_size):
        part_nll, part_tokens = memo["fn"](tf.constant(sources[start:start + batch_size]),
                                           tf.constant(targets[start:start + batch_size]))
        nll, tokens = nll + float(part_nll), tokens + float(part_tokens)
    loss = nll / max(tokens, 1.0)
    return {"loss": round(loss, 4), "perplexity": round(math.exp(loss), 3),
            "target_tokens": int(tokens)}


def decode_graph(model, preprocessor, text, beam_size, length_penalty, n_best=False,
                  sampling=None):
    """`[B]` strings → `[B]` outputs (graph code: the export's signatures).

    Beam search when `beam_size` > 1, else greedy; `sampling` (temperature, top_k, top_p, seed
    as scalar tensors) samples instead (temperature 0 is greedy). With `n_best`, beam search
    returns `[B, beam_size]` outputs best first and their length-normalized log-probs."""
    import tensorflow as tf

    from keras_nlp_app import decoding

    source_ids = preprocessor.source_ids(text).to_tensor(0)
    # sources padded to a multiple of 16 tokens: the compiled loop sees few distinct shapes
    length = tf.shape(source_ids)[1]
    source_ids = tf.pad(source_ids, [[0, 0], [0, (length + 15) // 16 * 16 - length]])
    batch = tf.shape(source_ids)[0]
    prompts = tf.RaggedTensor.from_tensor(tf.fill([batch, 1], preprocessor.BOS))
    max_new = preprocessor.target_length - 1
    buffer, prompt_lengths, _ = decoding.bucketed_buffer(prompts, max_new)
    rows = tf.shape(buffer)[0]
    source = decoding.pad_rows(model.encode(source_ids), rows)
    if sampling is not None:
        strategy = "sample"
    else:
        strategy = "beam" if beam_size > 1 else "greedy"
        sampling = (tf.constant(0.0), tf.constant(0), tf.constant(1.0), tf.constant(0))
    temperature, top_k, top_p, seed = sampling
    decode = decoding.compiled_decoder(
        model, strategy=strategy, beam_size=beam_size, stop_ids=(preprocessor.EOS,),
        n_best=n_best, source_spec=tf.nest.map_structure(
            lambda t: tf.TensorSpec([None] * t.shape.rank, t.dtype), source))
    decoded = decode(buffer, prompt_lengths, tf.constant(max_new), temperature, top_k, top_p,
                     tf.constant(1.0), seed, tf.constant(float(length_penalty)), source)
    if n_best:
        tokens, scores = decoded
        flat = tf.reshape(tokens[:batch, :, 1:], [batch * beam_size, -1])
        return tf.reshape(preprocessor.detokenize(flat), [batch, beam_size]), scores[:batch]
    return preprocessor.detokenize(decoded[:batch, 1:])


def translate(model, preprocessor, texts, *, beam_size=4, length_penalty=0.6, batch_size=64,
              n_best=False, strategy=None, temperature=1.0, top_k=0, top_p=1.0, seed=0):
    """Outputs for a list of source texts (in-process decoding, sorted by length for speed).

    `strategy`: beam (`beam_size`; the default when beam_size > 1), greedy, or sample / top_k /
    top_p (temperature, top_k and top_p all apply; row i of a batch draws from `seed`). With
    `n_best`, each output is a list of (text, score) for every beam, best first."""
    import tensorflow as tf

    from keras_nlp_app import decoding

    strategy = strategy or ("beam" if beam_size > 1 else "greedy")
    if strategy not in decoding.STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of "
                         f"{', '.join(decoding.STRATEGIES)}")
    sampled = strategy not in ("beam", "greedy")
    if strategy == "greedy":
        beam_size = 1
    memo = model.__dict__.setdefault("_knlp_translate", {})
    key = (beam_size, length_penalty, n_best, sampled)
    if key not in memo:
        scalars = [tf.TensorSpec([], dtype) for dtype in (tf.float32, tf.int32, tf.float32, tf.int32)]
        memo[key] = tf.function(
            lambda text, *sampling: decode_graph(model, preprocessor, text, beam_size,
                                                  length_penalty, n_best,
                                                  sampling if sampled else None),
            input_signature=[tf.TensorSpec([None], tf.string), *scalars])
    function = memo[key]
    settings = (tf.constant(float(temperature)), tf.constant(int(top_k)),
                tf.constant(float(top_p)), tf.constant(int(seed)))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs = [""] * len(texts)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        decoded = function(tf.constant([texts[i] for i in chunk]), *settings)
        if n_best:
            texts_k, scores = decoded[0].numpy(), decoded[1].numpy()
            for row, i in enumerate(chunk):
                outputs[i] = [(t.decode("utf-8", errors="replace"), round(float(s), 4))
                              for t, s in zip(texts_k[row], scores[row])]
            continue
        for i, value in zip(chunk, decoded.numpy()):
            outputs[i] = value.decode("utf-8", errors="replace")
    return outputs


