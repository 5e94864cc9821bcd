"""QA graph code: training batches of context windows with span targets, batched answering of
(question, context) pairs, and the serving outputs (best answer, n-best JSON)."""

import numpy as np


def answer_spans(examples, occurrences="given"):
    """Character spans (starts, ends) per question: the given answers, or with `all` every
    occurrence of each answer text in the context too (the rebuilt SQuAD train set guesses the
    offset of a repeated answer; counting every copy as valid cannot pick the wrong one)."""
    starts, ends = [], []
    for (_, context), answers in zip(examples.texts, examples.labels):
        spans = set()
        for text, start in answers:
            spans.add((start, start + len(text)))
            if occurrences == "all":
                found = context.find(text)
                while found >= 0:
                    spans.add((found, found + len(text)))
                    found = context.find(text, found + 1)
        ordered = sorted(spans)
        starts.append([s for s, _ in ordered])
        ends.append([e for _, e in ordered])
    return starts, ends


def window_dataset(preprocessor, examples, *, batch_size, training, seed, window, occurrences):
    """Batches of (features, targets `[W, T, 2]`), W ≥ the questions in the batch (a long
    context gives several windows). Training shuffles and sorts each window of `window` batches
    by context length, so a batch holds contexts of similar length."""
    import tensorflow as tf

    questions = [q for q, _ in examples.texts]
    contexts = [c for _, c in examples.texts]
    starts, ends = answer_spans(examples, occurrences)
    data = tf.data.Dataset.from_tensor_slices((
        tf.constant(questions), tf.constant(contexts),
        tf.ragged.constant(starts, dtype=tf.int64, ragged_rank=1, row_splits_dtype=tf.int64),
        tf.ragged.constant(ends, dtype=tf.int64, ragged_rank=1, row_splits_dtype=tf.int64)))
    if training:
        data = data.shuffle(len(questions), seed=seed, reshuffle_each_iteration=True)
        if window > 1:
            def sort(q, c, s, e):
                order = tf.argsort(tf.strings.length(c))
                return tuple(tf.gather(t, order) for t in (q, c, s, e))

            data = data.ragged_batch(batch_size * window).map(sort).unbatch()
    data = data.ragged_batch(batch_size)
    if training and window > 1:
        data = data.shuffle(window * 4, seed=seed)

    def encode(question, context, answer_starts, answer_ends):
        features, windows = preprocessor.windows(question, context)
        return features, preprocessor.targets(windows, answer_starts, answer_ends)

    return data.map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def answer_function(model, preprocessor, *, max_answer_length, n_best):
    """A tf.function (question [B], context [B]) → the decoded spans of `QAPreprocessor.decode`,
    compiled once per model and settings."""
    import tensorflow as tf

    memo = model.__dict__.setdefault("_knlp_answer", {})
    key = (max_answer_length, n_best)
    if key not in memo:
        def answer(question, context):
            features, windows = preprocessor.windows(question, context)
            logits = model(features, training=False)
            return preprocessor.decode(logits, windows, context,
                                       max_answer_length=max_answer_length, n_best=n_best)

        memo[key] = tf.function(answer, input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    return memo[key]


def predict_answers(model, preprocessor, pairs, *, max_answer_length, n_best=1, batch_size=64):
    """For (question, context) pairs: (best answer texts, their scores, null scores), in order;
    batches hold contexts of similar length."""
    import tensorflow as tf

    answer = answer_function(model, preprocessor, max_answer_length=max_answer_length,
                             n_best=n_best)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][1]))
    texts, scores, nulls = [""] * len(pairs), np.zeros(len(pairs)), np.zeros(len(pairs))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        found = answer(tf.constant([pairs[i][0] for i in chunk]),
                       tf.constant([pairs[i][1] for i in chunk]))
        for row, i in enumerate(chunk):
            texts[i] = found["answers"][row, 0].numpy().decode("utf-8", errors="replace")
            scores[i] = float(found["scores"][row, 0])
            nulls[i] = float(found["null_score"][row])
    return texts, scores, nulls


def abstain(texts, scores, nulls, threshold):
    """Answers with "" wherever the null score beats the best span by more than `threshold`
    (SQuAD v2.0's no-answer decision); None keeps every answer."""
    if threshold is None:
        return list(texts)
    return ["" if null - score > threshold or not text else text
            for text, score, null in zip(texts, scores, nulls)]


def tune_threshold(texts, scores, nulls, references, report):
    """The no-answer threshold that maximizes F1 on labelled questions (`report` scores a list
    of answers against `references`), searched over the observed score gaps."""
    gaps = sorted({float(n - s) for s, n in zip(scores, nulls)})
    candidates = [gaps[0] - 1.0] + [g for g in gaps] if gaps else [0.0]
    best, best_f1 = 0.0, -1.0
    for threshold in candidates[::max(1, len(candidates) // 200)]:
        f1 = report(abstain(texts, scores, nulls, threshold), references)["f1"]
        if f1 > best_f1:
            best, best_f1 = threshold, f1
    return best


def json_list(decoded, n_best):
    """`n_best [B]` JSON strings: [{"text", "start", "end", "score", "probability"}] per pair,
    best first; probabilities are the softmax of the listed scores."""
    import tensorflow as tf

    from keras_nlp_app.tasks.tagging_graphs import json_string

    scores = decoded["scores"][:, :n_best]
    found = scores > -1e8
    probabilities = tf.nn.softmax(tf.where(found, scores, -1e9), axis=1)
    items = tf.strings.join([
        '{"text": ', json_string(decoded["answers"][:, :n_best]),
        ', "start": ', tf.strings.as_string(decoded["starts"][:, :n_best]),
        ', "end": ', tf.strings.as_string(decoded["ends"][:, :n_best]),
        ', "score": ', tf.strings.as_string(scores, precision=4),
        ', "probability": ', tf.strings.as_string(probabilities, precision=4), "}"])
    kept = tf.ragged.boolean_mask(items, found)
    return tf.strings.join(["[", tf.strings.reduce_join(kept, axis=1, separator=", "), "]"])
