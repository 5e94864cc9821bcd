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
