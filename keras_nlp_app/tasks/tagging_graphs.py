"""Tagging graph code: training batches of sentences, batched tag prediction, and the JSON
list of entities with character offsets that the export's serving_default returns."""

import numpy as np

from keras_nlp_app.text import entities


def sentence_features(preprocessor, sentences, chunk=2048):
    """The preprocessor's features of every sentence, computed once (in chunks, in graph) and
    held as ragged `[N, None, ...]` tensors: rows of the token axis, or for `pieces` the
    sentence's subword pieces, without padding."""
    import tensorflow as tf

    parts = {}
    for start in range(0, len(sentences), chunk):
        tokens = tf.ragged.constant(sentences[start:start + chunk], dtype=tf.string,
                                    ragged_rank=1, inner_shape=())
        lengths = tokens[:, :preprocessor.sequence_length].row_lengths()
        for name, dense in preprocessor.features(tokens).items():
            rows = (tf.RaggedTensor.from_tensor(dense, padding=0) if name == "pieces"
                    else tf.RaggedTensor.from_tensor(dense, lengths=lengths))
            parts.setdefault(name, []).append(rows)
    return {name: tf.concat(rows, axis=0) for name, rows in parts.items()}


def sentence_dataset(preprocessor, sentences, targets, *, batch_size, training, seed, window,
                     length_buckets=0):
    """Batches of (features, tag ids padded with -1). The features are computed once
    (`sentence_features`); training shuffles, then sorts each window of `window` batches by
    length so a batch holds sentences of similar length (`pipelines.batched_dataset`). With
    `length_buckets` N, the token axis is padded to one of N lengths
    (pipelines.length_boundaries), so XLA compiles once per length."""
    import tensorflow as tf

    from keras_nlp_app.data.pipelines import batched_dataset, length_boundaries

    length = preprocessor.sequence_length
    features = sentence_features(preprocessor, sentences)
    names = sorted(features)
    tags = tf.ragged.constant(targets, dtype=tf.int32, ragged_rank=1)[:, :length]
    boundaries = (length_boundaries([min(len(s), length) for s in sentences], length_buckets)
                  if length_buckets else None)
    columns = [tags, *(features[name] for name in names)]

    def assemble(tags, *values):
        return dict(zip(names, values)), tags

    return batched_dataset(
        columns, batch_size=batch_size, training=training, seed=seed,
        sort_window=window if training else 0, assemble=assemble,
        boundaries=[boundaries, *(None if name == "pieces" else boundaries for name in names)],
        padding=[-1] + [0] * len(names))


def predict_tags(model, preprocessor, sentences, batch_size=128):
    """Tag strings for token lists (batched by length; tokens past `sequence_length` get O)."""
    import tensorflow as tf

    memo = model.__dict__.setdefault("_knlp_tag", {})
    if "fn" not in memo:
        memo["fn"] = tf.function(
            lambda tokens: model.predict_tags(preprocessor.features(tokens)),
            input_signature=[tf.RaggedTensorSpec([None, None], tf.string, 1)])
    tags = np.array(preprocessor.tags)
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    found = [None] * len(sentences)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        ids = memo["fn"](tf.ragged.constant([sentences[i] for i in chunk], dtype=tf.string,
                                            row_splits_dtype=tf.int64)).numpy()
        for row, i in enumerate(chunk):
            n = len(sentences[i])
            kept = tags[ids[row, :min(n, ids.shape[1])]].tolist()
            found[i] = kept + ["O"] * (n - len(kept))
    return found


def json_string(strings):
    import tensorflow as tf

    for pattern, rewrite in ((r"\\", r"\\\\"), ('"', '\\\\"'), ("\n", r"\\n"), ("\r", r"\\r"),
                             ("\t", r"\\t"), (r"[\x00-\x1f]", " ")):
        strings = tf.strings.regex_replace(strings, pattern, rewrite)
    return tf.strings.join(['"', strings, '"'])


def entity_outputs(text, tokens, tags, char_starts, char_ends, byte_starts, byte_ends):
    """`entities [B]`: a JSON list per text of {"text", "type", "start", "end"} (characters of
    the input, end exclusive), from ragged token tags and offsets."""
    import tensorflow as tf

    dense_tags = tags.to_tensor("O")
    mask = tf.sequence_mask(tags.row_lengths(), tf.shape(dense_tags)[1])
    starts, ends = entities.graph_entity_bounds(dense_tags, mask)
    positions = tf.broadcast_to(tf.range(tf.shape(dense_tags)[1], dtype=tf.int64),
                                tf.shape(dense_tags))
    first = tf.ragged.boolean_mask(positions, starts)
    last = tf.ragged.boolean_mask(positions, ends)

    def pick(values, where):
        return tf.gather(values.to_tensor(0) if values.dtype != tf.string else values.to_tensor(""),
                         where, batch_dims=1)

    kind = tf.strings.regex_replace(pick(tags, first), "^[^-]*-", "")
    begin, finish = pick(byte_starts, first), pick(byte_ends, last)
    rows = tf.cast(first.value_rowids(), tf.int64)
    surface = tf.strings.substr(tf.gather(text, rows), begin.flat_values,
                                finish.flat_values - begin.flat_values)
    items = tf.strings.join([
        '{"text": ', json_string(surface), ', "type": ', json_string(kind.flat_values),
        ', "start": ', tf.strings.as_string(pick(char_starts, first).flat_values),
        ', "end": ', tf.strings.as_string(pick(char_ends, last).flat_values), "}"])
    joined = tf.strings.reduce_join(first.with_flat_values(items), axis=1, separator=", ")
    return tf.strings.join(["[", joined, "]"])


