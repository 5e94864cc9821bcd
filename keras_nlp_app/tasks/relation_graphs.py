"""Entity markers in the graph: the relation signature's (text, spans) → the marked text the
relation preprocessor tokenizes, identical to `keras_nlp_app.data.relations.mark`."""

import tensorflow as tf

from keras_nlp_app.data.relations import HEAD_END, HEAD_START, TAIL_END, TAIL_START


def _piece(text, start, end):
    start = tf.broadcast_to(start, tf.shape(end))
    return tf.strings.substr(text, start, tf.maximum(end - start, 0), unit="UTF8_CHAR")


def mark_graph(text, head_start, head_end, tail_start, tail_end):
    """`[B]` marked texts from `[B]` texts and int32 character spans (end exclusive)."""
    length = tf.strings.length(text, unit="UTF8_CHAR")

    def marked(first, second):
        (fs, fe, f_open, f_close), (ss, se, s_open, s_close) = first, second
        return tf.strings.join([
            _piece(text, tf.zeros_like(fs), fs), f" {f_open} ", _piece(text, fs, fe), f" {f_close} ",
            _piece(text, fe, ss), f" {s_open} ", _piece(text, ss, se), f" {s_close} ",
            _piece(text, se, length)])

    head = (head_start, head_end, HEAD_START, HEAD_END)
    tail = (tail_start, tail_end, TAIL_START, TAIL_END)
    return tf.where(head_start < tail_start, marked(head, tail), marked(tail, head))


def check_spans_graph(text, head_start, head_end, tail_start, tail_end):
    """Assertions (InvalidArgumentError at run time) that the spans are non-empty, inside the
    text and do not overlap, as the readers require."""
    length = tf.strings.length(text, unit="UTF8_CHAR")
    inside = ((0 <= head_start) & (head_start < head_end) & (head_end <= length)
              & (0 <= tail_start) & (tail_start < tail_end) & (tail_end <= length))
    apart = (head_end <= tail_start) | (tail_end <= head_start)
    return tf.debugging.assert_equal(
        tf.reduce_all(inside & apart), True,
        message="head and tail must be non-empty, non-overlapping character spans of the text")


def _json_string(strings):
    from keras_nlp_app.tasks.tagging_graphs import json_string

    return json_string(strings)


def _entity_json(text, start, end, kind):
    surface = tf.strings.substr(text, start, end - start, unit="UTF8_CHAR")
    return tf.strings.join(['{"text": ', _json_string(surface), ', "type": ', _json_string(kind),
                            ', "start": ', tf.strings.as_string(start), ', "end": ',
                            tf.strings.as_string(end), "}"])


def sentence_entities(tagger, text):
    """The entities a tagging run finds in `[B]` texts, as dense `[B, E]` tensors: (valid,
    character start, character end, type, sentence index); sentences end at `.`, `!`, `?`."""
    from keras_nlp_app.tasks.tagging import tag_strings
    from keras_nlp_app.text import entities

    tokens, char_starts, char_ends, _, _ = tagger.preprocessor.split(text)
    tags = tag_strings(tagger, tokens)
    dense_tags = tags.to_tensor("O")
    mask = tf.sequence_mask(tags.row_lengths(), tf.shape(dense_tags)[1])
    starts, ends = entities.graph_entity_bounds(dense_tags, mask)
    positions = tf.broadcast_to(tf.range(tf.shape(dense_tags)[1], dtype=tf.int64),
                                tf.shape(dense_tags))
    first = tf.ragged.boolean_mask(positions, starts).to_tensor(-1)
    last = tf.ragged.boolean_mask(positions, ends).to_tensor(-1)
    final = tf.strings.regex_full_match(tokens.to_tensor(""), r"[.!?]") & mask
    sentence = tf.cumsum(tf.cast(final, tf.int32), axis=1, exclusive=True)

    def pick(values, where):
        return tf.gather(values, tf.maximum(where, 0), batch_dims=1)

    kind = tf.strings.regex_replace(pick(dense_tags, first), "^[^-]*-", "")
    return (first >= 0, tf.cast(pick(char_starts.to_tensor(0), first), tf.int32),
            tf.cast(pick(char_ends.to_tensor(0), last), tf.int32), kind, pick(sentence, first))


def extraction_endpoint(relation, tagger, other="Other"):
    """`extract(text[B]) → triples[B]` (a JSON list per text of {"head", "relation", "tail",
    "score"}, head and tail each {"text", "type", "start", "end"} in characters) and
    `num_triples[B]`: the tagger's entities, every pair of them within one sentence (the earlier
    one as e1, as SemEval writes them), the relation model's most probable directed label;
    pairs labelled `other` are left out."""
    from keras_nlp_app.metrics import relation_type
    from keras_nlp_app.tasks.classification import probabilities

    labels = tf.constant(relation.space.labels)
    reverse = tf.constant([label.endswith("(e2,e1)") for label in relation.space.labels])
    names = tf.constant([relation_type(label) for label in relation.space.labels])

    def extract(text):
        valid, start, end, kind, sentence = sentence_entities(tagger, text)
        count = tf.shape(valid)[1]
        order = tf.range(count)
        pairs = tf.where(valid[:, :, None] & valid[:, None, :]
                         & (order[:, None] < order[None, :])[None]
                         & tf.equal(sentence[:, :, None], sentence[:, None, :]))
        row, first, second = pairs[:, 0], pairs[:, 1:2], pairs[:, 2:3]

        def of(values, which):
            return tf.gather_nd(values, tf.concat([row[:, None], which], axis=1))

        texts = tf.gather(text, row)
        spans = [of(start, first), of(end, first), of(start, second), of(end, second)]
        marked = mark_graph(texts, *spans)
        probs = probabilities(relation.model(relation.preprocessor(marked), training=False))
        best = tf.argmax(probs, axis=-1, output_type=tf.int32)
        keep = tf.not_equal(tf.gather(labels, best), other)
        flipped = tf.gather(reverse, best)[:, None]  # R(e2,e1): the later entity is the head
        head, tail = tf.where(flipped, second, first), tf.where(flipped, first, second)
        items = tf.strings.join([
            '{"head": ', _entity_json(texts, of(start, head), of(end, head), of(kind, head)),
            ', "relation": ', _json_string(tf.gather(names, best)),
            ', "tail": ', _entity_json(texts, of(start, tail), of(end, tail), of(kind, tail)),
            ', "score": ', tf.strings.as_string(tf.reduce_max(probs, axis=-1), precision=4), "}"])
        grouped = tf.RaggedTensor.from_value_rowids(
            tf.boolean_mask(items, keep), tf.boolean_mask(row, keep),
            nrows=tf.shape(text, out_type=tf.int64)[0])
        return {"triples": tf.strings.join(["[", tf.strings.reduce_join(grouped, axis=1,
                                                                          separator=", "), "]"]),
                "num_triples": tf.cast(grouped.row_lengths(), tf.int32)}

    return extract
