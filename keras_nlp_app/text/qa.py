"""Extractive question answering in graph: raw (question, context) strings → windows of context
tokens with features, training targets, and the best answer span back in characters.

A context longer than `context_length` tokens is cut into windows that start every `doc_stride`
tokens (the last window reaches the end), so an answer cut by one window's edge lies whole in the
next. Every window starts with the token `NULL_TOKEN` (position 0): a window without the answer
points there, and its score is the "no answer" score of SQuAD v2.0. Words are split by the same
splitter as the tagger (`preprocessors.split_with_offsets`), whose character offsets map answers
to tokens and back.
"""

import keras
import tensorflow as tf

from keras_nlp_app.text.preprocessors import TaggerPreprocessor, split_with_offsets

NULL_TOKEN = "<null>"  # the splitter never yields it: "<", "null", ">" are three tokens
NEG = -1e9


def window_starts(num_tokens, length, stride):
    """Ragged `[B, (N)]` first token of each window over texts of `num_tokens` `[B]` tokens:
    0, stride, 2·stride, … until a window reaches the end (one window for a short text)."""
    extra = tf.maximum(num_tokens - length, 0)
    count = 1 + (extra + stride - 1) // stride
    return tf.ragged.range(count) * stride


def cut_windows(values, starts, length):
    """Each row of ragged `values [B, (T)]` cut at ragged `starts [B, (N)]` into windows of at
    most `length`: ragged `[W, (≤length)]`, W = all windows, in row order."""
    rows = starts.value_rowids()
    begin = starts.flat_values
    total = tf.gather(values.row_lengths(), rows)
    end = tf.minimum(begin + length, total)
    offset = tf.gather(values.row_splits, rows)
    index = tf.ragged.range(begin + offset, end + offset)
    return tf.gather(values.flat_values, index)


def token_spans(char_starts, char_ends, answer_starts, answer_ends):
    """Character spans `[B, (A)]` → token spans (first, last token, inclusive) `[B, (A)]`; a span
    with no token inside gets first > last."""
    first = tf.searchsorted(char_ends.to_tensor(tf.int64.max),
                            answer_starts.to_tensor(tf.int64.max), side="right",
                            out_type=tf.int64)
    last = tf.searchsorted(char_starts.to_tensor(tf.int64.max),
                           answer_ends.to_tensor(0), side="left",
                           out_type=tf.int64) - 1
    lengths = answer_starts.row_lengths()
    return (tf.RaggedTensor.from_tensor(first, lengths=lengths),
            tf.RaggedTensor.from_tensor(last, lengths=lengths))


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class QAPreprocessor(keras.layers.Layer):
    """(question, context) strings → windowed model inputs, answer targets and decoded spans.

    Features, each int32 and zero-padded: `context_words [W, T]`, `context_chars [W, T, C]`,
    `context_case [W, T]` (T = 1 + the longest window, position 0 the null token) and the same
    three for the question (`question_* [W, Q]`, Q ≤ `question_length`), one row per window;
    words, characters and casing as `TaggerPreprocessor` computes them.

    Args:
        word_vocabulary: normalized words; 0 `[PAD]`, 1 `[UNK]`, 2 `NULL_TOKEN`.
        char_vocabulary: characters; 0 `[PAD]`, 1 `[UNK]`.
        context_length: context tokens per window.
        doc_stride: tokens between the starts of consecutive windows.
        question_length: question tokens kept.
        max_word_length: characters per token seen by the character features.
        piece_tokenizer: a pretrained backbone's tokenizer (`text.presets.PresetTokenizer`);
            the features then also hold `pieces [W, P]` (shifted ids, 0 pads: start, the
            window's pieces, end, the question's pieces, end), `segments [W, P]` (0 for the
            context part, 1 for the question's) and `first [W, T]` (each window token's first
            piece; the null token is the start token).
    """

    def __init__(self, word_vocabulary, char_vocabulary, context_length=256, doc_stride=128,
                 question_length=48, max_word_length=16, piece_tokenizer=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 < doc_stride <= context_length:
            raise ValueError(f"doc_stride must be in [1, context_length], got {doc_stride}")
        self.context_length, self.doc_stride = context_length, doc_stride
        self.question_length, self.max_word_length = question_length, max_word_length
        self.piece_tokenizer = piece_tokenizer
        self.tokens = TaggerPreprocessor(word_vocabulary, char_vocabulary, ["O"],
                                         sequence_length=max(context_length + 1, question_length),
                                         max_word_length=max_word_length,
                                         piece_tokenizer=piece_tokenizer)

    def _pieces(self, context_features, question_features):
        """`pieces`, `segments` and `first` of the joined [start, context, end, question, end]
        sequence (see the class docstring), from each part's own piece features."""
        from keras_nlp_app.text.presets import special_ids

        has_start = int(special_ids(self.piece_tokenizer.tokenizer)[0] is not None)
        context = tf.RaggedTensor.from_tensor(context_features["pieces"], padding=0)
        question = tf.RaggedTensor.from_tensor(question_features["pieces"], padding=0)
        question = question[:, has_start:]  # the question's own start token is dropped
        joined = tf.concat([context, question], axis=1)
        segments = tf.concat([tf.zeros_like(context), tf.ones_like(question)], axis=1)
        first = tf.concat([tf.zeros_like(context_features["first"][:, :1]),
                           context_features["first"]], axis=1)
        return {"pieces": joined.to_tensor(0), "segments": segments.to_tensor(0), "first": first}

    def max_pieces(self):
        """The most pieces `_pieces` can join: the window's (at most 2 per token, as the tagger
        caps them), the question's (at most 4 per token) and three special tokens."""
        return 2 * (self.context_length + 1) + 4 * self.question_length + 3

    def build(self, *shapes):
        self.built = True  # lookup tables only, nothing shaped by the input

    @property
    def word_vocabulary(self):
        return self.tokens.word_vocabulary

    @property
    def char_vocabulary(self):
        return self.tokens.char_vocabulary

    def windows(self, question, context):
        """Windows of each (question, context) pair: (features, windows), where windows holds
        `row [W]` (the pair it belongs to), `start [W]` (its first context token) and the
        context's ragged `[B, (T)]` split (`char_starts`, `char_ends`, `byte_starts`,
        `byte_ends`)."""
        question = tf.convert_to_tensor(question, tf.string)
        context = tf.convert_to_tensor(context, tf.string)
        tokens, char_starts, char_ends, byte_starts, byte_ends = split_with_offsets(context)
        starts = window_starts(tokens.row_lengths(), self.context_length, self.doc_stride)
        rows = starts.value_rowids()
        windowed = cut_windows(tokens, starts, self.context_length)
        null = tf.fill(tf.stack([tf.shape(rows)[0], 1]), NULL_TOKEN)
        windowed = tf.concat([tf.RaggedTensor.from_tensor(null), windowed], axis=1)
        question_tokens = split_with_offsets(question, self.question_length)[0]
        context_features = self.tokens.features(windowed)
        question_features = self.tokens.features(tf.gather(question_tokens, rows))
        pieces = {}
        if self.piece_tokenizer is not None:
            pieces = self._pieces(self.tokens.features(windowed[:, 1:]), question_features)
            pieces["first"] = pieces["first"][:, :tf.shape(context_features["words"])[1]]
            for features in (context_features, question_features):
                for key in ("pieces", "first"):
                    features.pop(key)
        features = {f"context_{k}": v for k, v in context_features.items()}
        features.update({f"question_{k}": v for k, v in question_features.items()})
        features.update(pieces)
        return features, {"row": rows, "start": starts.flat_values, "char_starts": char_starts,
                          "char_ends": char_ends, "byte_starts": byte_starts, "byte_ends": byte_ends,
                          "width": tf.shape(context_features["words"])[1]}

    def targets(self, windows, answer_starts, answer_ends):
        """`[W, T, 2]` float targets: 1 at every valid (start, end) token position of the answer
        spans (character spans, ragged `[B, (A)]`) that lie whole in the window; a window holding
        none marks the null position 0. Several valid spans are marginalized by the loss."""
        first, last = token_spans(windows["char_starts"], windows["char_ends"],
                                  tf.cast(answer_starts, tf.int64), tf.cast(answer_ends, tf.int64))
        rows, begin = windows["row"], windows["start"]
        width = tf.cast(windows["width"], tf.int64)
        first_w = tf.gather(first, rows) - begin[:, None]  # [W, (A)] in window tokens
        last_w = tf.gather(last, rows) - begin[:, None]
        inside = ((first_w >= 0) & (last_w < width - 1) & (first_w <= last_w)
                  & (last_w < self.context_length))
        positions = tf.range(width)[None, None, :]

        def hot(index):
            index = tf.ragged.boolean_mask(index + 1, inside).to_tensor(-1)  # +1: past the null
            return tf.reduce_any(index[:, :, None] == positions, axis=1)

        start_hot, end_hot = hot(first_w), hot(last_w)
        none = ~tf.reduce_any(start_hot, axis=1, keepdims=True)
        null = tf.equal(tf.range(width), 0)[None, :] & none
        return tf.cast(tf.stack([start_hot | null, end_hot | null], axis=-1), tf.float32)

    def decode(self, logits, windows, context, *, max_answer_length, n_best):
        """The best spans of each pair over all its windows.

        Args:
            logits: `[W, T, 2]` start and end scores (padding at `NEG`).
            windows: what `windows` returned for the pairs.
            context: `[B]` the context strings.
            max_answer_length: most tokens in an answer.
            n_best: spans kept per pair.

        Returns:
            {"answers" [B, K] str, "starts" / "ends" [B, K] character offsets (-1 for none),
            "scores" [B, K] (start + end score; `NEG` for none), "null_score" [B] (the smallest
            null score over the pair's windows)}, K = n_best, best first, no span twice.
        """
        logits = tf.cast(logits, tf.float32)
        start_scores, end_scores = logits[..., 0], logits[..., 1]
        width = tf.shape(logits)[1]
        pairs = tf.shape(context)[0]
        span = start_scores[:, :, None] + end_scores[:, None, :]
        i = tf.range(width)[:, None]
        j = tf.range(width)[None, :]
        band = (i >= 1) & (j >= i) & (j - i < max_answer_length)
        span = tf.where(band[None], span, NEG)
        per_window = tf.minimum(n_best, width * width)
        scores, flat = tf.math.top_k(tf.reshape(span, [-1, width * width]), k=per_window)
        first = flat // width - 1 + tf.cast(windows["start"], tf.int32)[:, None]  # context tokens
        last = flat % width - 1 + tf.cast(windows["start"], tf.int32)[:, None]
        null_score = tf.math.unsorted_segment_min(start_scores[:, 0] + end_scores[:, 0],
                                                  tf.cast(windows["row"], tf.int32), pairs)

        def by_pair(values):
            return tf.RaggedTensor.from_value_rowids(values, windows["row"], nrows=tf.cast(
                pairs, tf.int64)).merge_dims(1, 2)

        scores = by_pair(scores).to_tensor(NEG)
        first, last = by_pair(first).to_tensor(-1), by_pair(last).to_tensor(-1)
        # a span found in two overlapping windows counts once, with its best score
        order = tf.argsort(scores, axis=1, direction="DESCENDING", stable=True)
        scores, first, last = (tf.gather(t, order, batch_dims=1) for t in (scores, first, last))
        same = (first[:, :, None] == first[:, None, :]) & (last[:, :, None] == last[:, None, :])
        earlier = tf.linalg.band_part(tf.ones_like(same, tf.int32), -1, 0) - tf.eye(
            tf.shape(same)[1], dtype=tf.int32)
        repeated = tf.reduce_any(same & (earlier > 0), axis=2)
        scores = tf.where(repeated | (scores <= NEG / 2), NEG, scores)
        # padded so there are always n_best columns, the missing ones without a span
        scores = tf.pad(scores, [[0, 0], [0, n_best]], constant_values=NEG)
        first, last = (tf.pad(t, [[0, 0], [0, n_best]]) for t in (first, last))
        scores, keep = tf.math.top_k(scores, k=n_best)
        first, last = tf.gather(first, keep, batch_dims=1), tf.gather(last, keep, batch_dims=1)
        found = scores > NEG / 2
        first, last = tf.where(found, first, 0), tf.where(found, last, 0)

        def at(offsets, index):  # one padding column, so an empty context gathers too
            dense = tf.pad(offsets.to_tensor(0), [[0, 0], [0, 1]])
            return tf.gather(dense, tf.minimum(index, tf.shape(dense)[1] - 1), batch_dims=1)

        begin, finish = at(windows["byte_starts"], first), at(windows["byte_ends"], last)
        text = tf.broadcast_to(context[:, None], tf.shape(begin))
        answers = tf.where(found, tf.strings.substr(text, begin, finish - begin), "")
        char_starts, char_ends = at(windows["char_starts"], first), at(windows["char_ends"], last)
        minus = tf.constant(-1, tf.int64)
        return {"answers": answers, "starts": tf.where(found, char_starts, minus),
                "ends": tf.where(found, char_ends, minus), "scores": scores,
                "null_score": null_score}

    def call(self, question, context=None):
        return self.windows(question, question if context is None else context)[0]

    def save_assets(self, folder):
        """The vocabularies and window settings, as a run's `qa.json`."""
        import os

        from keras_nlp_app.utils import atomic

        atomic.write_json(os.path.join(folder, "qa.json"),
                          {"words": self.word_vocabulary, "chars": self.char_vocabulary},
                          ensure_ascii=False, indent=None)

    def get_config(self):
        return {**super().get_config(), "word_vocabulary": self.word_vocabulary,
                "char_vocabulary": self.char_vocabulary, "context_length": self.context_length,
                "doc_stride": self.doc_stride, "question_length": self.question_length,
                "max_word_length": self.max_word_length}
