"""Keras layers that turn raw strings into model inputs: tokenize, add n-grams, truncate, pad.

The preprocessor is mapped over tf.data during training and traced into the exported signature,
so the model sees exactly the same ids in both places.
"""

import keras
import tensorflow as tf

TRUNCATIONS = ("head", "tail", "head+tail")


def truncate(ids, length, policy="head"):
    """Keeps at most `length` items per row of a ragged `[B, None]` tensor.

    head keeps the beginning, tail the end, head+tail the first half and the last half (for
    reviews, whose verdict is often at the end). Rows no longer than `length` are untouched.
    """
    if policy == "head":
        return ids[:, :length]
    positions = tf.ragged.range(ids.row_lengths())
    lengths = tf.expand_dims(ids.row_lengths(), 1)
    if policy == "tail":
        keep = positions >= lengths - length
    elif policy == "head+tail":
        head = length - length // 2
        keep = (positions < head) | (positions >= lengths - (length - head))
    else:
        raise ValueError(f"unknown truncation {policy!r}; choose one of {', '.join(TRUNCATIONS)}")
    return tf.ragged.boolean_mask(ids, keep)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class ClassifierPreprocessor(keras.layers.Layer):
    """Strings → token ids for a classifier.

    Args:
        tokenizer: a tokenizer layer from `keras_nlp_app.text.tokenizers` (id 0 = padding).
        sequence_length: most tokens kept per text.
        truncation: head | tail | head+tail.
        ngrams: with 2 or more, hashed n-grams of the tokens (orders 2..ngrams) follow the token
            ids, each order truncated like the tokens; their ids start at the vocabulary size.
        ngram_buckets: number of hash buckets for the n-grams.

    Call with a batch `[B]` of strings to get padded int32 ids `[B, T]`, `T >= 1`; `ragged_ids`
    gives the unpadded rows that tf.data buckets by length.
    """

    def __init__(self, tokenizer, sequence_length=128, truncation="head", ngrams=1,
                 ngram_buckets=0, **kwargs):
        super().__init__(**kwargs)
        if truncation not in TRUNCATIONS:
            raise ValueError(f"unknown truncation {truncation!r}; choose one of {', '.join(TRUNCATIONS)}")
        if ngrams > 1 and ngram_buckets <= 0:
            raise ValueError("tokenizer.ngrams > 1 needs tokenizer.ngram_buckets > 0")
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)
        self.truncation = truncation
        self.ngrams = int(ngrams)
        self.ngram_buckets = int(ngram_buckets) if ngrams > 1 else 0

    @property
    def input_vocabulary_size(self):
        """Size of the id space the model's embedding must cover."""
        return self.tokenizer.vocabulary_size + self.ngram_buckets

    def ragged_ids(self, strings):
        ids = truncate(self.tokenizer(strings), self.sequence_length, self.truncation)
        if self.ngrams < 2:
            return ids
        tokens = self.tokenizer.tokenize(strings)
        rows = [ids]
        for order in range(2, self.ngrams + 1):
            grams = tf.strings.ngrams(tokens, order, separator=" ")
            hashed = tf.strings.to_hash_bucket_fast(grams, self.ngram_buckets)
            hashed = tf.cast(hashed, tf.int32) + self.tokenizer.vocabulary_size
            rows.append(truncate(hashed, self.sequence_length, self.truncation))
        return tf.concat(rows, axis=1)

    def call(self, strings):
        ids = self.ragged_ids(strings).to_tensor(0)
        width = tf.shape(ids)[1]
        # An all-empty batch still gets one (padding) step so recurrent layers have a time axis.
        return tf.pad(ids, [[0, 0], [0, tf.maximum(1 - width, 0)]])

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length,
                "truncation": self.truncation, "ngrams": self.ngrams,
                "ngram_buckets": self.ngram_buckets}


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class LMPreprocessor(keras.layers.Layer):
    """Strings → token ids for a language model, and ids → strings.

    Word-level tokenizers (word, whitespace, wordpiece) end every line with `<eos>`, the PTB
    convention; character and byte tokenizers keep line breaks as ordinary tokens. Scoring and
    generation start from `bos_id` — `<eos>`, or the line-break token — so a text is scored as if
    it began a line, which is how the training stream sees line starts.

    Args:
        tokenizer: a tokenizer layer from `keras_nlp_app.text.tokenizers`.
        sequence_length: context window of training and evaluation (Transformer LMs) or the
            truncated back-propagation length (LSTM LMs).
    """

    def __init__(self, tokenizer, sequence_length=64, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.word_level = tokenizer.kind in ("word", "whitespace", "wordpiece")
        vocabulary = tokenizer.vocabulary
        if self.word_level:
            from keras_nlp_app.text.tokenizers import EOS

            if EOS not in vocabulary:
                raise ValueError(f"a word-level LM vocabulary needs {EOS}")
            self.eos_id = vocabulary.index(EOS)
            self.bos_id = self.eos_id
        else:
            self.eos_id = None
            self.bos_id = (12 if tokenizer.kind == "byte" else
                           vocabulary.index("\n") if "\n" in vocabulary else 1)

    @property
    def vocabulary_size(self):
        return self.tokenizer.vocabulary_size

    def ragged_ids(self, strings):
        """`[B]` strings → ragged `[B, None]` ids (`<eos>` after every line for word level)."""
        strings = tf.convert_to_tensor(strings, tf.string)
        if not self.word_level:
            return self.tokenizer(strings)
        lines = tf.strings.split(tf.strings.regex_replace(strings, "\n$", ""), "\n")
        ids = self.tokenizer(lines.flat_values)
        eos = tf.fill([ids.nrows(), 1], self.eos_id)
        ids = tf.concat([ids, tf.RaggedTensor.from_tensor(eos)], axis=1)
        return tf.RaggedTensor.from_row_splits(ids, lines.row_splits).merge_dims(1, 2)

    def prompt_ids(self, strings):
        """Ids a generation starts from: `bos_id` then the prompt's tokens (no final `<eos>`)."""
        strings = tf.convert_to_tensor(strings, tf.string)
        ids = self.tokenizer(strings) if not self.word_level else self.tokenizer(
            tf.strings.regex_replace(strings, "\n", " "))
        bos = tf.fill([ids.nrows(), 1], self.bos_id)
        return tf.concat([tf.RaggedTensor.from_tensor(bos), ids], axis=1)

    def detokenize(self, ids):
        return self.tokenizer.detokenize(ids)

    def call(self, strings):
        return self.ragged_ids(strings)

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length}


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class Seq2SeqPreprocessor(keras.layers.Layer):
    """Source strings → source ids (+ EOS); target strings → BOS + ids + EOS; ids → strings.

    Args:
        source_tokenizer, target_tokenizer: SentencePiece tokenizers (the same object when the
            vocabulary is shared); ids 0 pad, 1 unknown, 2 BOS, 3 EOS.
        source_length: most source tokens kept (EOS included).
        target_length: most target tokens kept (BOS and EOS included).
    """

    BOS, EOS = 2, 3

    def __init__(self, source_tokenizer, target_tokenizer, source_length=128, target_length=128,
                 **kwargs):
        super().__init__(**kwargs)
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.source_length, self.target_length = source_length, target_length
        self.tokenizer = target_tokenizer  # what export metadata describes

    @property
    def shared(self):
        return self.source_tokenizer is self.target_tokenizer

    def source_ids(self, strings):
        ids = self.source_tokenizer(tf.convert_to_tensor(strings, tf.string))[:, :self.source_length - 1]
        return tf.concat([ids, tf.RaggedTensor.from_tensor(tf.fill([ids.nrows(), 1], self.EOS))], 1)

    def target_ids(self, strings):
        ids = self.target_tokenizer(tf.convert_to_tensor(strings, tf.string))[:, :self.target_length - 2]
        rows = ids.nrows()
        bos = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], self.BOS))
        eos = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], self.EOS))
        return tf.concat([bos, ids, eos], 1)

    def ragged_ids(self, strings):
        return self.source_ids(strings)

    def detokenize(self, ids):
        return self.target_tokenizer.detokenize(ids)

    def call(self, strings):
        return self.source_ids(strings).to_tensor(0)

    def get_config(self):
        return {**super().get_config(), "source_length": self.source_length,
                "target_length": self.target_length}
