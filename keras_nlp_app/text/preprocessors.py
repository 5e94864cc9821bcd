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


class _SavesTokenizer:
    """Preprocessors built around one tokenizer write it into an export's assets folder."""

    def save_assets(self, folder):
        from keras_nlp_app.text.tokenizers import save_tokenizer

        save_tokenizer(self.tokenizer, folder)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class ClassifierPreprocessor(_SavesTokenizer, keras.layers.Layer):
    """Strings → token ids for a classifier.

    Args:
        tokenizer: a tokenizer layer from `keras_nlp_app.text.tokenizers` (id 0 = padding).
        sequence_length: most tokens kept per text.
        truncation: head | tail | head+tail.
        ngrams: with 2 or more, n-grams of the tokens (orders 2..ngrams) follow the token ids,
            each order truncated like the tokens.
        ngram_buckets: hash buckets for the n-grams, whose ids start at the vocabulary size; 0
            looks them up in the tokenizer's vocabulary instead (exact n-grams learned with it,
            unknown ones get the unknown id).
        start_id: an id every text starts with (`tokenizer.start_token`; within
            `sequence_length`), or None.

    Call with a batch `[B]` of strings to get padded int32 ids `[B, T]`, `T >= 1`; `ragged_ids`
    gives the unpadded rows that tf.data buckets by length.
    """

    def __init__(self, tokenizer, sequence_length=128, truncation="head", ngrams=1,
                 ngram_buckets=0, start_id=None, **kwargs):
        super().__init__(**kwargs)
        if truncation not in TRUNCATIONS:
            raise ValueError(f"unknown truncation {truncation!r}; choose one of {', '.join(TRUNCATIONS)}")
        if ngrams > 1 and ngram_buckets <= 0 and getattr(tokenizer, "ngram_order", 1) < ngrams:
            raise ValueError(f"tokenizer.ngrams {ngrams} needs tokenizer.ngram_buckets > 0 (hashed "
                             f"n-grams) or a word vocabulary learned with its n-grams")
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)
        self.truncation = truncation
        self.ngrams = int(ngrams)
        self.ngram_buckets = int(ngram_buckets) if ngrams > 1 else 0
        self.start_id = None if start_id is None else int(start_id)

    @property
    def input_vocabulary_size(self):
        """Size of the id space the model's embedding must cover."""
        return self.tokenizer.vocabulary_size + self.ngram_buckets

    def ragged_ids(self, strings):
        if self.start_id is None:
            ids = truncate(self.tokenizer(strings), self.sequence_length, self.truncation)
        else:
            ids = truncate(self.tokenizer(strings), self.sequence_length - 1, self.truncation)
            start = tf.fill([ids.nrows(), 1], tf.cast(self.start_id, ids.dtype))
            ids = tf.concat([tf.RaggedTensor.from_tensor(start), ids], axis=1)
        if self.ngrams < 2:
            return ids
        tokens = self.tokenizer.tokenize(strings)
        rows = [ids]
        for order in range(2, self.ngrams + 1):
            grams = tf.strings.ngrams(tokens, order, separator=" ")
            if self.ngram_buckets:
                found = tf.strings.to_hash_bucket_fast(grams, self.ngram_buckets)
                found = tf.cast(found, tf.int32) + self.tokenizer.vocabulary_size
            else:
                found = self.tokenizer.lookup(grams)
            rows.append(truncate(found, self.sequence_length, self.truncation))
        return tf.concat(rows, axis=1)

    def describe(self):
        """The tokenizer as export metadata records it."""
        return {"kind": self.tokenizer.kind, "lowercase": self.tokenizer.lowercase,
                "vocabulary_size": self.tokenizer.vocabulary_size,
                "sequence_length": self.sequence_length, "truncation": self.truncation,
                "ngrams": self.ngrams, "ngram_buckets": self.ngram_buckets,
                "start_id": self.start_id}

    def call(self, strings):
        ids = self.ragged_ids(strings).to_tensor(0)
        width = tf.shape(ids)[1]
        # An all-empty batch still gets one (padding) step so recurrent layers have a time axis.
        return tf.pad(ids, [[0, 0], [0, tf.maximum(1 - width, 0)]])

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length,
                "truncation": self.truncation, "ngrams": self.ngrams,
                "ngram_buckets": self.ngram_buckets, "start_id": self.start_id}


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class LMPreprocessor(_SavesTokenizer, keras.layers.Layer):
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
        self.document_end_id = None  # documents of the training stream run on
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

    def continuation(self, tokens, prompt_lengths):
        """`[B]` strings of the tokens after each row's prompt in decoded buffers `[B, L]`."""
        positions = tf.range(tf.shape(tokens)[1])[None, :]
        keep = (positions >= prompt_lengths[:, None]) & (tokens > 0)
        return self.detokenize(tf.ragged.boolean_mask(tokens, keep))

    def call(self, strings):
        return self.ragged_ids(strings)

    def describe(self):
        """The tokenizer as export metadata records it."""
        return {"kind": self.tokenizer.kind, "lowercase": self.tokenizer.lowercase,
                "vocabulary_size": self.tokenizer.vocabulary_size,
                "sequence_length": self.sequence_length}

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length}


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class Seq2SeqPreprocessor(_SavesTokenizer, keras.layers.Layer):
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


# casing classes of a token, checked in order (0 is padding); the word embedding is case-folded
_CASES = (r"\p{Ll}+", r"\p{Lu}+", r"\p{Lu}[\p{Ll}\p{M}]+", r"[\p{N}.,:/-]+", r".*\p{N}.*",
          r"[^\p{L}\p{N}]+", r".*")


def split_with_offsets(text, max_tokens=None):
    """`[B]` raw strings → (tokens, char_starts, char_ends, byte_starts, byte_ends), ragged
    `[B, None]`: words and punctuation as `tokenizers.split_words` splits them (without
    normalization), with offsets into the input in characters and in bytes (end exclusive)."""
    from keras_nlp_app.text.tokenizers import split_words_with_offsets

    text = tf.convert_to_tensor(text, tf.string)
    tokens, starts, ends = split_words_with_offsets(text)
    if max_tokens:
        tokens, starts, ends = (t[:, :max_tokens] for t in (tokens, starts, ends))
    # character index of a byte offset: how many characters start before it
    _, char_bytes = tf.strings.unicode_decode_with_offsets(text, "UTF-8", errors="replace")
    char_bytes = char_bytes.to_tensor(tf.int64.max)

    def to_chars(offsets):
        found = tf.searchsorted(char_bytes, offsets.to_tensor(0), side="left", out_type=tf.int64)
        return tf.RaggedTensor.from_tensor(found, lengths=offsets.row_lengths())

    return tokens, to_chars(starts), to_chars(ends), starts, ends


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class TaggerPreprocessor(keras.layers.Layer):
    """Tokens → the inputs of a tagger; raw text → tokens with character offsets.

    Features per token: a case-folded word id (digits read as 0, unseen words id 1), the ids of
    its first `max_word_length` characters (original case), and its casing class (lower, upper,
    title, number, has a digit, punctuation, other).

    Args:
        word_vocabulary: normalized words; index 0 `[PAD]`, 1 `[UNK]`.
        char_vocabulary: characters; index 0 `[PAD]`, 1 `[UNK]`.
        tags: the tag set; tag id i is `tags[i]`.
        sequence_length: most tokens tagged per text (later tokens are tagged `O`).
        max_word_length: characters per token seen by the character features.
        subword_vocabulary: a WordPiece vocabulary; when given, the features also hold the
            subword pieces of each text (`pieces [B, P]`, at most `MAX_PIECES_PER_WORD` per token
            and `2 * sequence_length` per text) and each token's first piece (`first [B, T]`),
            so a subword encoder labels a word at its first piece.
        piece_tokenizer: instead of `subword_vocabulary`, a pretrained backbone's tokenizer
            (`text.presets.PresetTokenizer`): the pieces are its ids shifted by one (0 pads),
            between its start and end tokens, for `model.backbone` taggers.
    """

    MAX_PIECES_PER_WORD = 4

    def __init__(self, word_vocabulary, char_vocabulary, tags, sequence_length=256,
                 max_word_length=20, subword_vocabulary=None, piece_tokenizer=None, **kwargs):
        super().__init__(**kwargs)
        self.piece_tokenizer = piece_tokenizer
        # tracked, so an export carries the tokenizer's tables
        self._piece_layer = piece_tokenizer.tokenizer if piece_tokenizer is not None else None
        self.word_vocabulary, self.char_vocabulary = list(word_vocabulary), list(char_vocabulary)
        self.tags = list(tags)
        self.sequence_length, self.max_word_length = sequence_length, max_word_length
        self.subword_vocabulary = list(subword_vocabulary) if subword_vocabulary else None
        self._pieces = None
        if self.subword_vocabulary:
            from keras_nlp_app.text.tokenizers import WordPieceTokenizer

            self._pieces = WordPieceTokenizer(self.subword_vocabulary)
        self._words = keras.layers.StringLookup(vocabulary=self.word_vocabulary[2:], mask_token=None,
                                                num_oov_indices=1)
        self._chars = keras.layers.StringLookup(vocabulary=self.char_vocabulary[2:], mask_token=None,
                                                num_oov_indices=1)

    @staticmethod
    def normalize_words(words):
        """The word-embedding key of each token (any shape): NFKC, case-folded, digits → 0."""
        import tensorflow_text as tf_text

        return tf.strings.regex_replace(tf_text.case_fold_utf8(words), r"\p{Nd}", "0")

    def split(self, text):
        """`[B]` raw strings → (tokens, char_starts, char_ends, byte_starts, byte_ends), ragged
        `[B, None]`, cut to `sequence_length` tokens; offsets index the input (end exclusive)."""
        return split_with_offsets(text, self.sequence_length)

    def features(self, tokens):
        """Ragged `[B, None]` token strings → {"words": [B, T], "chars": [B, T, C],
        "case": [B, T]} int32, zero-padded (T the longest row, at most `sequence_length`)."""
        tokens = tokens[:, :self.sequence_length]
        flat = tokens.flat_values
        words = tf.cast(self._words(self.normalize_words(flat)), tf.int32) + 1
        case = tf.fill(tf.shape(flat), len(_CASES))
        for index in reversed(range(len(_CASES))):
            case = tf.where(tf.strings.regex_full_match(flat, _CASES[index]), index + 1, case)
        chars = tf.strings.unicode_split(flat, "UTF-8", errors="replace")[:, :self.max_word_length]
        chars = chars.with_flat_values(tf.cast(self._chars(chars.flat_values), tf.int32) + 1)
        rows = tokens.row_splits
        # at least one column, so a batch of empty texts still has a time axis
        width = tf.maximum(tf.reduce_max(tokens.row_lengths()), 1)
        shape = tf.stack([tokens.nrows(), width])
        found = {
            "words": tf.RaggedTensor.from_row_splits(words, rows).to_tensor(0, shape=shape),
            "case": tf.RaggedTensor.from_row_splits(case, rows).to_tensor(0, shape=shape),
            "chars": tf.RaggedTensor.from_row_splits(chars, rows).to_tensor(
                0, shape=tf.concat([shape, tf.constant([self.max_word_length], tf.int64)], 0)),
        }
        if self._pieces is not None or self.piece_tokenizer is not None:
            found.update(self._subword_features(flat, rows, shape))
        return found

    def _subword_features(self, flat, rows, shape):
        """`pieces [B, P]` and `first [B, T]`: every token's WordPiece ids (an unknown piece
        when it yields none) and the position of its first piece in its text."""
        preset = self.piece_tokenizer
        if preset is not None:
            pieces = preset.word_pieces(flat)[:, :self.MAX_PIECES_PER_WORD]
            fallback = tf.fill(tf.shape(pieces.row_lengths()), preset.fallback_id)[:, None]
        else:
            pieces = self._pieces(flat)[:, :self.MAX_PIECES_PER_WORD]
            fallback = tf.ones_like(pieces.row_lengths(), tf.int32)[:, None]
        pieces = tf.concat([pieces, tf.RaggedTensor.from_tensor(fallback)], axis=1)
        counts = tf.maximum(pieces.row_lengths() - 1, 1)
        pieces = tf.ragged.boolean_mask(pieces, tf.ragged.range(pieces.row_lengths()) < counts[:, None])
        starts = tf.cumsum(counts, exclusive=True)
        text_start = tf.gather(tf.concat([starts, [tf.reduce_sum(counts)]], 0), rows[:-1])
        first = starts - tf.repeat(text_start, rows[1:] - rows[:-1])
        limit = 2 * self.sequence_length
        per_text = tf.RaggedTensor.from_row_splits(pieces, rows).merge_dims(1, 2)[:, :limit]
        first = tf.minimum(first, limit - 1)
        if preset is not None:
            per_text, offset = preset.add_special_pieces(per_text)
            first = first + offset
        return {"pieces": per_text.to_tensor(0),
                "first": tf.cast(tf.RaggedTensor.from_row_splits(first, rows).to_tensor(
                    0, shape=shape), tf.int32)}

    def call(self, text):
        return self.features(self.split(text)[0])

    def save_assets(self, folder):
        """The vocabularies and the tag set, as a run's `tagger.json`."""
        import os

        from keras_nlp_app.utils import atomic

        atomic.write_json(os.path.join(folder, "tagger.json"),
                          {"words": self.word_vocabulary, "chars": self.char_vocabulary,
                           "tags": self.tags, "subwords": self.subword_vocabulary},
                          ensure_ascii=False, indent=None)
        if self.piece_tokenizer is not None:
            self.piece_tokenizer.save(folder)

    def get_config(self):
        return {**super().get_config(), "word_vocabulary": self.word_vocabulary,
                "char_vocabulary": self.char_vocabulary, "tags": self.tags,
                "subword_vocabulary": self.subword_vocabulary,
                "sequence_length": self.sequence_length, "max_word_length": self.max_word_length}
