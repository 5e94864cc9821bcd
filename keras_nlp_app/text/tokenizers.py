"""In-graph tokenizers: word, WordPiece, character and byte level, with vocabularies learned from
training data.

A tokenizer is a Keras layer mapping a string tensor `[B]` (or a scalar) to ragged token ids. The
same object runs inside the tf.data pipeline and is traced into the exported SavedModel, so
training and serving tokenize identically. Id 0 is always padding and id 1 the unknown token.
Vocabularies are saved as run assets (`vocab.txt` + `tokenizer.json`) and rebuilt from them.
"""

import collections
import json
import os

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from keras_nlp_app.errors import ConfigError, UserError
from keras_nlp_app.utils import atomic

PAD = "[PAD]"
UNK = "[UNK]"
EOS = "<eos>"  # language models: appended to every line of word-level text
# Words are runs of letters, marks, digits and connector punctuation in any script; every other
# non-space character (punctuation, symbols, emoji) and every Han ideograph (Chinese and Japanese
# are written without spaces) is a token of its own.
_WORD_KEEP = r"[^\s\p{L}\p{M}\p{N}\p{Pc}]|\p{Han}"
_WORD_SPLIT = r"\s+|" + _WORD_KEEP


def normalize(strings, lowercase):
    """NFKC-normalizes (and case-folds when `lowercase`) UTF-8 strings, in graph."""
    if lowercase:
        return tf_text.case_fold_utf8(strings)  # NFKC + Unicode case folding
    return tf_text.normalize_utf8(strings, "NFKC")


def split_words(strings, lowercase=True, on_whitespace=False):
    """Splits `[B]` strings into a ragged `[B, None]` tensor of words (a scalar into `[None]`).

    By default words and punctuation are separated; `on_whitespace` keeps every
    whitespace-separated token whole (for text that is already tokenized, e.g. PTB's "n't").
    """
    strings = tf.convert_to_tensor(strings, dtype=tf.string)
    if on_whitespace:
        words = tf.strings.split(normalize(strings, lowercase))
    else:
        words = tf_text.regex_split(normalize(strings, lowercase), _WORD_SPLIT, _WORD_KEEP)
    if strings.shape.rank == 0:
        return words.values if isinstance(words, tf.RaggedTensor) else words
    return words


def split_words_with_offsets(strings):
    """`[B]` raw strings → (words, starts, ends), each ragged `[B, None]`: the words of
    `split_words` without normalization, and their byte offsets into the input (end exclusive)."""
    strings = tf.convert_to_tensor(strings, dtype=tf.string)
    return tf_text.regex_split_with_offsets(strings, _WORD_SPLIT, _WORD_KEEP)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class WordTokenizer(keras.layers.Layer):
    """Unicode-aware word tokenizer with a fixed vocabulary; unknown words map to id 1.

    Args:
        vocabulary: list of tokens; index 0 must be `[PAD]` and index 1 `[UNK]`.
        lowercase: case-fold before splitting.

    Example:
        tokenizer = WordTokenizer(vocabulary=["[PAD]", "[UNK]", "good", "film"])
        tokenizer(tf.constant(["A good film!"]))  # <tf.RaggedTensor [[1, 2, 3, 1]]>
    """

    kind = "word"
    on_whitespace = False

    def __init__(self, vocabulary, lowercase=True, **kwargs):
        super().__init__(**kwargs)
        vocabulary = list(vocabulary)
        if vocabulary[:2] != [PAD, UNK]:
            raise ConfigError(f"a word vocabulary must start with {PAD} and {UNK}")
        self.vocabulary = vocabulary
        self.lowercase = lowercase
        # entries joined by spaces are word n-grams (learn_word_vocabulary's ngrams)
        self.ngram_order = max(entry.count(" ") for entry in vocabulary) + 1
        self._lookup = keras.layers.StringLookup(
            vocabulary=vocabulary[2:], mask_token="", oov_token=UNK, num_oov_indices=1)

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def tokenize(self, strings):
        return split_words(strings, self.lowercase, self.on_whitespace)

    def lookup(self, tokens):
        """Ids of token strings (dense or ragged; n-grams joined by a space); unknown → 1."""
        if isinstance(tokens, tf.RaggedTensor):
            return tokens.with_flat_values(tf.cast(self._lookup(tokens.flat_values), tf.int32))
        return tf.cast(self._lookup(tokens), tf.int32)

    def call(self, strings):
        return self.lookup(self.tokenize(strings))

    def detokenize(self, ids):
        """`[B, T]` ids (dense or ragged) → `[B]` strings: words joined by spaces, padding
        dropped, `<eos>` written as a line break."""
        words = tf.gather(tf.constant(self.vocabulary), _ragged(ids))
        words = tf.ragged.boolean_mask(words, tf.not_equal(words, PAD))
        return _eos_as_line_break(tf.strings.reduce_join(words, axis=-1, separator=" "))

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary, "lowercase": self.lowercase}


def _eos_as_line_break(text):
    return tf.strings.regex_replace(text, r" ?<eos> ?", "\n")


def _ragged(ids):
    ids = tf.convert_to_tensor(ids) if not isinstance(ids, tf.RaggedTensor) else ids
    return ids if isinstance(ids, tf.RaggedTensor) else tf.RaggedTensor.from_tensor(ids)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class WordPieceTokenizer(keras.layers.Layer):
    """WordPiece subwords over the same word split as `WordTokenizer` (tensorflow-text's
    FastWordpieceTokenizer), so rare and unseen words become known pieces instead of `[UNK]`."""

    kind = "wordpiece"

    def __init__(self, vocabulary, lowercase=True, **kwargs):
        super().__init__(**kwargs)
        vocabulary = list(vocabulary)
        if vocabulary[:2] != [PAD, UNK]:
            raise ConfigError(f"a WordPiece vocabulary must start with {PAD} and {UNK}")
        self.vocabulary = vocabulary
        self.lowercase = lowercase
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocabulary, suffix_indicator="##", unknown_token=UNK, no_pretokenization=True,
            support_detokenization=True)

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def tokenize(self, strings):
        ids = self.call(strings)
        vocabulary = tf.constant(self.vocabulary)
        if isinstance(ids, tf.RaggedTensor):
            return ids.with_flat_values(tf.gather(vocabulary, ids.flat_values))
        return tf.gather(vocabulary, ids)

    def call(self, strings):
        words = split_words(strings, self.lowercase)
        pieces = tf.cast(self._wordpiece.tokenize(words), tf.int32)  # [B, words, pieces]
        return pieces.merge_dims(-2, -1)

    def detokenize(self, ids):
        """`[B, T]` ids → `[B]` strings: pieces merged into words, words joined by spaces,
        `<eos>` written as a line break."""
        ids = _ragged(ids)
        ids = tf.ragged.boolean_mask(ids, tf.not_equal(ids, 0))
        return _eos_as_line_break(self._wordpiece.detokenize(ids))

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary, "lowercase": self.lowercase}


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class WhitespaceTokenizer(WordTokenizer):
    """WordTokenizer for pre-tokenized text: whitespace-separated tokens are kept whole."""

    kind = "whitespace"
    on_whitespace = True


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class CharTokenizer(keras.layers.Layer):
    """One token per Unicode character, spaces and line breaks included; unseen characters map
    to id 1. Text is neither normalized nor case-folded, so detokenizing gives it back exactly.

    Example:
        tokenizer = CharTokenizer(vocabulary=["[PAD]", "[UNK]", "a", "b", "\\n"])
        tokenizer(tf.constant(["ab\\n"]))  # <tf.RaggedTensor [[2, 3, 4]]>
    """

    kind = "char"
    lowercase = False

    def __init__(self, vocabulary, lowercase=False, **kwargs):
        super().__init__(**kwargs)
        vocabulary = list(vocabulary)
        if vocabulary[:2] != [PAD, UNK]:
            raise ConfigError(f"a character vocabulary must start with {PAD} and {UNK}")
        self.vocabulary = vocabulary
        self._lookup = keras.layers.StringLookup(
            vocabulary=vocabulary[2:], mask_token=None, oov_token=UNK, num_oov_indices=1)

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def call(self, strings):
        chars = tf.strings.unicode_split(strings, "UTF-8", errors="replace")
        if isinstance(chars, tf.RaggedTensor):
            # StringLookup counts the OOV index first: its ids are ours minus one
            return chars.with_flat_values(tf.cast(self._lookup(chars.flat_values), tf.int32) + 1)
        return tf.cast(self._lookup(chars), tf.int32) + 1

    def detokenize(self, ids):
        """`[B, T]` ids → `[B]` strings; padding is dropped, unknown ids become U+FFFD."""
        table = tf.constant([""] + ["\ufffd"] + self.vocabulary[2:])
        return tf.strings.reduce_join(tf.gather(table, _ragged(ids)), axis=-1)

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary}


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class ByteTokenizer(keras.layers.Layer):
    """One token per UTF-8 byte (id = byte + 2): a fixed 258-id vocabulary that never meets an
    unknown token, for code and mixed-script text."""

    kind = "byte"
    lowercase = False

    def __init__(self, vocabulary=None, lowercase=False, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary = [PAD, UNK] + [f"<0x{b:02X}>" for b in range(256)]

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def call(self, strings):
        pieces = tf.strings.bytes_split(strings)
        flat = pieces.flat_values if isinstance(pieces, tf.RaggedTensor) else pieces
        ids = tf.cast(tf.reshape(tf.io.decode_raw(flat, tf.uint8), [-1]), tf.int32) + 2
        return pieces.with_flat_values(ids) if isinstance(pieces, tf.RaggedTensor) else ids

    def detokenize(self, ids):
        """`[B, T]` ids → `[B]` byte strings; padding and the unknown id are dropped."""
        table = tf.constant([b"", b""] + [bytes([b]) for b in range(256)])
        return tf.strings.reduce_join(tf.gather(table, _ragged(ids)), axis=-1)

    def get_config(self):
        return super().get_config()


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class SentencePieceTokenizer(keras.layers.Layer):
    """SentencePiece subwords (unigram or BPE, trained with the `sentencepiece` library), run in
    graph by tensorflow-text. Ids: 0 padding, 1 unknown, 2 begin (BOS), 3 end (EOS).

    Args:
        model: the serialized SentencePiece model (bytes of `spm.model`).
    """

    kind = "sentencepiece"
    lowercase = False
    BOS, EOS = 2, 3

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self._sentencepiece = tf_text.SentencepieceTokenizer(model=model, out_type=tf.int32)
        size = int(self._sentencepiece.vocab_size())
        self.vocabulary = [t.decode("utf-8") for t in
                           self._sentencepiece.id_to_string(tf.range(size)).numpy().tolist()]

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def call(self, strings):
        return self._sentencepiece.tokenize(strings)

    def detokenize(self, ids):
        """`[B, T]` ids → `[B]` strings; padding, BOS and EOS are dropped."""
        ids = _ragged(ids)
        keep = (ids != 0) & (ids != self.BOS) & (ids != self.EOS)
        return self._sentencepiece.detokenize(tf.ragged.boolean_mask(ids, keep))


# the special pieces of a SentencePiece model: the package's own layout, and Gemma's (whose
# keras-hub tokenizer expects <pad> 0, <eos> 1, <bos> 2, <unk> 3; text kept byte for byte, no
# space invented before a text or a line)
SENTENCEPIECE_LAYOUTS = {
    "package": dict(pad_id=0, unk_id=1, bos_id=2, eos_id=3),
    "gemma": dict(pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>",
                  bos_piece="<bos>", unk_piece="<unk>", byte_fallback=True,
                  normalization_rule_name="nfkc", remove_extra_whitespaces=False,
                  add_dummy_prefix=False,
                  allow_whitespace_only_pieces=True, user_defined_symbols=["\n"]),
}


def learn_sentencepiece(texts, *, vocab_size=8000, model_type="unigram", character_coverage=1.0,
                        layout="package"):
    """Trains a SentencePiece model on `texts` (training split only) with the special pieces of
    `layout` (see SENTENCEPIECE_LAYOUTS); returns its bytes."""
    import io

    import sentencepiece

    texts = [t for t in texts if t.strip()]
    if not texts:
        raise UserError("the training data yields an empty vocabulary; is the text column empty?")
    model = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, vocab_size=vocab_size,
            model_type=model_type, character_coverage=character_coverage,
            **SENTENCEPIECE_LAYOUTS[layout], hard_vocab_limit=False, num_threads=2, minloglevel=2,
            input_sentence_size=2_000_000, shuffle_input_sentence=True)
    except RuntimeError as exc:
        raise ConfigError(f"SentencePiece training failed: {str(exc).strip().splitlines()[-1]}") from None
    return model.getvalue()


TOKENIZERS = {"word": WordTokenizer, "whitespace": WhitespaceTokenizer,
              "wordpiece": WordPieceTokenizer, "char": CharTokenizer, "byte": ByteTokenizer,
              "sentencepiece": SentencePieceTokenizer}


def learn_word_vocabulary(texts, *, vocab_size=20000, min_count=1, lowercase=True,
                          on_whitespace=False, ngrams=1, ngram_vocab_size=0):
    """Counts words over `texts` and keeps the most frequent (ties broken alphabetically).

    With `ngrams` > 1 the word n-grams of orders 2..ngrams seen at least `min_count` times follow
    the words, most frequent first (at most `ngram_vocab_size`; 0: all), as entries joined by a
    space: exact n-gram features, as scikit-learn's CountVectorizer has, instead of hashed ones.
    """
    counts, grams = collections.Counter(), collections.Counter()
    for chunk in (texts[start:start + 4096] for start in range(0, len(texts), 4096)):
        words = split_words(tf.constant(chunk), lowercase, on_whitespace)
        counts.update(words.flat_values.numpy().tolist())
        for order in range(2, ngrams + 1):
            grams.update(tf.strings.ngrams(words, order, separator=" ").flat_values.numpy().tolist())

    def ranked(counter, limit):
        kept = sorted(((c, w) for w, c in counter.items() if c >= min_count),
                      key=lambda cw: (-cw[0], cw[1]))
        return [w.decode("utf-8") for _, w in (kept[:limit] if limit else kept)]

    return [PAD, UNK] + ranked(counts, max(vocab_size - 2, 0)) + ranked(grams, ngram_vocab_size)


def learn_wordpiece_vocabulary(texts, *, vocab_size=20000, lowercase=True):
    """Learns WordPiece pieces (keras-hub's trainer, tensorflow-text's BERT learner) over the
    words `split_words` produces, so training and tokenizing split text the same way."""
    import keras_hub

    words = tf.data.Dataset.from_tensor_slices(tf.constant(texts, dtype=tf.string)).batch(1024).map(
        lambda batch: split_words(batch, lowercase).flat_values)
    return keras_hub.tokenizers.compute_word_piece_vocabulary(
        words, vocabulary_size=vocab_size, lowercase=False, strip_accents=False, split=False,
        reserved_tokens=[PAD, UNK])


def learn_char_vocabulary(texts, *, vocab_size=20000, min_count=1):
    """The characters of `texts` seen at least `min_count` times, most frequent first."""
    counts = collections.Counter(character for text in texts for character in text)
    ranked = sorted(((c, ch) for ch, c in counts.items() if c >= min_count),
                    key=lambda cw: (-cw[0], cw[1]))
    return [PAD, UNK] + sorted(ch for _, ch in ranked[: max(vocab_size - 2, 0)])


def learn_tokenizer(texts, *, kind="word", vocab_size=20000, min_count=1, lowercase=True,
                    reserved=(), model_type="unigram", ngrams=1, ngram_vocab_size=0):
    """Builds a tokenizer of `kind` with a vocabulary learned from `texts` (training split only).

    `reserved` tokens (e.g. `<eos>` for language models) follow `[PAD]` and `[UNK]` in word and
    WordPiece vocabularies. `ngrams` > 1 adds exact word n-grams (word kinds only; see
    `learn_word_vocabulary`)."""
    if ngrams > 1 and kind not in ("word", "whitespace"):
        raise ConfigError(f"exact n-grams (tokenizer.ngrams > 1 with ngram_buckets 0) need a word "
                          f"or whitespace tokenizer, not {kind}; or set tokenizer.ngram_buckets")
    if kind in ("word", "whitespace"):
        vocabulary = learn_word_vocabulary(
            texts, vocab_size=vocab_size - len(reserved), min_count=min_count,
            lowercase=lowercase, on_whitespace=kind == "whitespace", ngrams=ngrams,
            ngram_vocab_size=ngram_vocab_size)
        vocabulary = vocabulary[:2] + list(reserved) + [w for w in vocabulary[2:] if w not in reserved]
    elif kind == "wordpiece":
        vocabulary = learn_wordpiece_vocabulary(texts, vocab_size=vocab_size - len(reserved),
                                                lowercase=lowercase)
        vocabulary = vocabulary[:2] + list(reserved) + [w for w in vocabulary[2:] if w not in reserved]
    elif kind == "char":
        vocabulary = learn_char_vocabulary(texts, vocab_size=vocab_size, min_count=min_count)
    elif kind == "byte":
        return ByteTokenizer()
    elif kind == "sentencepiece":
        return SentencePieceTokenizer(learn_sentencepiece(
            texts, vocab_size=vocab_size, model_type=model_type))
    else:
        raise ConfigError(f"unknown tokenizer kind {kind!r}; choose one of {', '.join(TOKENIZERS)}")
    if len(vocabulary) <= 2:
        raise UserError("the training data yields an empty vocabulary; is the text column empty?")
    return TOKENIZERS[kind](vocabulary=vocabulary, lowercase=lowercase)


def save_tokenizer(tokenizer, folder):
    """Writes `vocab.txt` (one token per line) and `tokenizer.json` into `folder`."""
    spec = {"kind": tokenizer.kind, "lowercase": tokenizer.lowercase,
            "vocabulary_size": tokenizer.vocabulary_size}
    if tokenizer.kind == "sentencepiece":
        atomic.write_bytes(os.path.join(folder, "spm.model"), tokenizer.model)
    if tokenizer.kind == "char":
        # characters include line breaks, which a one-token-per-line file cannot hold
        spec["vocabulary"] = tokenizer.vocabulary
    atomic.write_text(os.path.join(folder, "vocab.txt"), "\n".join(
        tokenizer.vocabulary if tokenizer.kind != "char" else
        [repr(t) for t in tokenizer.vocabulary]) + "\n")
    # tokenizer.json last: its presence marks a complete tokenizer folder
    atomic.write_json(os.path.join(folder, "tokenizer.json"), spec, ensure_ascii=False)


def load_tokenizer(folder):
    """Rebuilds the tokenizer saved by `save_tokenizer`; a folder that cannot give one back (no
    or bad `tokenizer.json`, a missing or damaged vocabulary) is a UserError naming the file."""
    spec_path, vocab_path = os.path.join(folder, "tokenizer.json"), os.path.join(folder, "vocab.txt")
    spec = _read_file(spec_path, json.load)
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind not in TOKENIZERS:
        raise UserError(f"{spec_path}: names no tokenizer kind of {', '.join(TOKENIZERS)} ({kind!r})")
    if kind == "sentencepiece":
        return _read_file(os.path.join(folder, "spm.model"), lambda f: SentencePieceTokenizer(f.read()), "rb")
    if "vocabulary" in spec or kind == "byte":
        return TOKENIZERS[kind](vocabulary=spec.get("vocabulary"))
    vocabulary = _read_file(vocab_path, lambda f: f.read().split("\n")[:-1])
    if len(vocabulary) <= 2:
        raise UserError(f"{vocab_path}: holds {len(vocabulary)} tokens; is it truncated?")
    return TOKENIZERS[kind](vocabulary=vocabulary, lowercase=bool(spec.get("lowercase")))


def _read_file(path, read, mode="r"):
    """`read(the open file)`; a missing, unreadable or malformed file is a UserError naming it."""
    try:
        with open(path, mode, encoding=None if "b" in mode else "utf-8") as f:
            return read(f)
    except FileNotFoundError:
        reason = "missing"
    except tf.errors.OpError:
        reason = "not a valid SentencePiece model"
    except (OSError, ValueError, RuntimeError) as exc:  # unreadable, not JSON, not UTF-8
        reason = f"cannot be read ({(str(exc).strip() or type(exc).__name__).splitlines()[0][:120]})"
    raise UserError(f"{path}: {reason}; tokenizer folders are written by knlp vocab and training runs")
