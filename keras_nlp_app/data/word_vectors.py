"""Skip-gram word vectors (word2vec with negative sampling, by gensim): learned from any text by
`knlp vectors`, read back by `model.word_vectors` to start a model's word embedding.

Pretrained vectors are the cheapest transfer there is: minutes on two cores over a few million
words of unlabeled text, and every from-scratch family with a word embedding (classifiers,
taggers, relation and QA readers) starts from words it has already seen in context. The file is
word2vec's text format (a `count dim` header, then a word and its numbers per line), so vectors
from elsewhere (GloVe with a header, fastText's `.vec`) load the same way.
"""

import os
import time

import numpy as np

from keras_nlp_app.data.readers import numbered_lines
from keras_nlp_app.errors import ConfigError, DataError, UserError
from keras_nlp_app.utils import atomic

NOT_WORDS = ("position", "segment", "case", "char")  # names of embeddings of something else than words


def skipgram(sentences, *, dim=100, epochs=5, window=5, min_count=1, seed=1):
    """gensim's skip-gram model of `sentences` (lists of token strings). Its threads make the
    vectors differ slightly from one run to the next."""
    from gensim.models import Word2Vec

    return Word2Vec(sentences, vector_size=dim, window=window, min_count=min_count, sg=1,
                    negative=5, epochs=epochs, seed=seed,
                    workers=max(1, min(4, os.cpu_count() or 1)))


def _sentences(texts, tokenize, batch=4096):
    """Token strings of each text with two tokens or more: `tokenize` maps a list of texts to
    ragged (or list) rows of ids or byte strings."""
    sentences = []
    for i in range(0, len(texts), batch):
        rows = tokenize(list(texts[i:i + batch]))
        rows = rows.to_list() if hasattr(rows, "to_list") else rows
        sentences += [[t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in row]
                      for row in rows if len(row) > 1]
    return sentences


def token_vectors(tokenizer, texts, dim, epochs, seed):
    """`[vocabulary, dim]` skip-gram vectors of a subword tokenizer's tokens (keras-hub's: ids
    out) over `texts`; tokens the text never shows keep small random vectors."""
    sentences = _sentences(texts, tokenizer)
    if not sentences:
        raise UserError("the training text holds no tokens to learn skip-gram vectors from")
    model = skipgram(sentences, dim=dim, epochs=epochs, seed=seed)
    size = tokenizer.vocabulary_size()
    vectors = np.random.default_rng(seed).normal(0.0, 0.1, (size, dim)).astype(np.float32)
    for index in range(size):
        if str(index) in model.wv:
            vectors[index] = model.wv[str(index)]
    return vectors


def check_settings(dim, epochs, window, min_count):
    """Refuses `knlp vectors` settings below 1 (before any text is read)."""
    for name, value in (("--dim", dim), ("--epochs", epochs), ("--window", window),
                        ("--min-count", min_count)):
        if value < 1:
            raise UserError(f"{name} must be at least 1, got {value}")


def learn_word_vectors(texts, output, *, sources, dim=100, epochs=5, window=5, min_count=3,
                       lowercase=True, seed=1):
    """Learns skip-gram vectors of the words of `texts` (split as the word tokenizer splits them)
    and writes them to `output` in word2vec's text format, atomically.

    Returns:
        A JSON-ready summary: words, dim, texts, tokens, sources, output, seconds.
    """
    import tensorflow as tf

    from keras_nlp_app.text.tokenizers import split_words

    started = time.time()
    check_settings(dim, epochs, window, min_count)
    sentences = _sentences(texts, lambda chunk: split_words(tf.constant(chunk), lowercase))
    if not sentences:
        raise DataError("holds no text to learn word vectors from", path=", ".join(sources))
    model = skipgram(sentences, dim=dim, epochs=epochs, window=window, min_count=min_count,
                     seed=seed)
    words = list(model.wv.index_to_key)
    lines = [f"{len(words)} {dim}"] + [
        word + " " + " ".join(f"{x:.5g}" for x in model.wv[word]) for word in words]
    atomic.write_text(output, "\n".join(lines) + "\n")
    return {"words": len(words), "dim": dim, "texts": len(texts),
            "tokens": sum(len(s) for s in sentences), "sources": list(sources), "output": output,
            "seconds": round(time.time() - started, 2)}


def _lines(path):
    """(line number, text) of each line of the vectors file `path`, decoded one by one so that
    an error names its line."""
    if not os.path.isfile(path):
        raise UserError(f"model.word_vectors: {path} is not a file; learn one with "
                        f"`knlp vectors TEXT... --output {path}` (docs/transfer.md)")
    yield from numbered_lines(path)


def read_word_vectors(path, vocabulary):
    """The rows of `vocabulary` that the vectors file `path` holds.

    Returns:
        (found: int array of vocabulary ids, vectors: float32 `[len(found), dim]`).
    Raises:
        DataError naming the file and line for a malformed file.
    """
    wanted = {word: index for index, word in enumerate(vocabulary)}
    found, rows, dim = [], [], None
    for number, line in _lines(path):
        parts = line.rstrip(" ").split(" ")
        if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
            dim = int(parts[1])  # word2vec's header
            continue
        if len(parts) < 2:
            raise DataError("expected a word and its numbers", path=path, line=number)
        if dim is None:
            dim = len(parts) - 1
        if len(parts) - 1 != dim:
            raise DataError(f"has {len(parts) - 1} numbers, the file's vectors have {dim}",
                            path=path, line=number)
        if parts[0] in wanted:
            try:
                rows.append(np.asarray(parts[1:], dtype=np.float32))
            except ValueError:
                raise DataError("holds a value that is not a number", path=path,
                                line=number) from None
            found.append(wanted.pop(parts[0]))
    if dim is None:
        raise DataError("holds no vectors", path=path)
    return np.asarray(found, np.int64), np.asarray(rows, np.float32).reshape(-1, dim)


def missing_words(candidates, vocabulary, limit, lowercase=True):
    """The first `limit` of `candidates` (most frequent first) that `vocabulary` lacks and a
    tokenizer could produce (case-folded ones only when it folds case), each once: words unseen
    in training that keep what pretraining learned of them."""
    known, added = set(vocabulary), []
    for word in candidates:
        if len(added) >= limit:
            break
        if not word or word in known or (lowercase and word != word.casefold()):
            continue
        known.add(word)
        added.append(word)
    return added


def words_to_add(path, vocabulary, limit, lowercase=True):
    """`missing_words` of the vectors file `path` (word2vec and GloVe files list the most
    frequent first).

    Raises:
        UserError for a missing file; DataError naming the line for one that is not UTF-8.
    """
    def words():
        for number, line in _lines(path):
            word, _, numbers = line.partition(" ")
            if not (number == 1 and word.isdigit() and numbers.strip().isdigit()):  # word2vec's header
                yield word

    return missing_words(words(), vocabulary, limit, lowercase)


class KeepRows:
    """A variable constraint that puts `rows` of an embedding table back to `values` after every
    optimizer update: those rows stay fixed while the rest of the table trains."""

    def __init__(self, rows, values, table_rows):
        import tensorflow as tf

        mask = np.zeros((table_rows, 1), bool)
        mask[rows] = True
        kept = np.zeros((table_rows, values.shape[1]), np.float32)
        kept[rows] = values
        self.mask, self.values = tf.constant(mask), tf.constant(kept)

    def __call__(self, table):
        import tensorflow as tf

        return tf.where(self.mask, self.values, table)


def initialize_embeddings(model, vocabulary, path, freeze=False, trainable_words=0):
    """Writes the vectors of `path` into every word embedding of `model` (see
    `set_word_rows`); words without a vector keep their random start.

    With `freeze` those embeddings are made untrainable; with `freeze` and `trainable_words` N
    only the rows that got a vector, bar the vocabulary's first N entries (the most frequent
    words), stay fixed (`KeepRows`): those N and every row without a vector (reserved entries,
    words the file lacks, hashed n-grams) train, as DrQA tunes its 1,000 most frequent words.

    Returns:
        {"path", "coverage": the fraction of the vocabulary found, "embeddings": layers set,
        "frozen", "fixed_parameters": the embedding weights that do not train}.
    """
    found, vectors = read_word_vectors(path, vocabulary)
    report = set_word_rows(model, vocabulary, found, vectors, setting="model.word_vectors",
                           source=path, freeze=freeze, trainable_words=trainable_words)
    return {"path": os.path.abspath(path), **report}


def word_embeddings(model, vocabulary_size):
    """The Keras `Embedding` layers of `model` with a row for each of `vocabulary_size` entries
    (hashed n-gram rows after them allowed) that embed neither positions, segments nor casing."""
    import keras

    return [layer for layer in model._flatten_layers()
            if isinstance(layer, keras.layers.Embedding) and layer.input_dim >= vocabulary_size
            and not any(other in layer.name for other in NOT_WORDS)]


def set_word_rows(model, vocabulary, found, vectors, *, setting, source, freeze=False,
                  trainable_words=0):
    """Writes `vectors` (one per id of `found`) into every word embedding of `model`; the other
    rows keep their random start. `freeze` and `trainable_words` as `initialize_embeddings`.

    Raises:
        ConfigError (naming `setting` and `source`) when the model has no word embedding of the
        vocabulary's size or its width differs from the vectors'.
    """
    dim = vectors.shape[1]
    layers = word_embeddings(model, len(vocabulary))
    if not layers:
        raise ConfigError(f"{setting}: model {model.name} has no word embedding with "
                          f"{len(vocabulary)} rows to start from {source}")
    for layer in layers:
        if layer.output_dim != dim:
            raise ConfigError(f"{setting}: {source} holds vectors of {dim} numbers but "
                              f"the word embedding has {layer.output_dim}; set the model's "
                              f"embedding width to {dim}")
    partly = freeze and trainable_words > 0
    fixed = found >= trainable_words if partly else np.ones(len(found), bool)
    fixed_parameters = 0
    for layer in layers:
        table = np.array(layer.embeddings.numpy())
        table[found] = vectors
        layer.embeddings.assign(table)
        if partly:
            layer.embeddings.constraint = KeepRows(found[fixed], vectors[fixed], table.shape[0])
            fixed_parameters += int(fixed.sum()) * dim
        else:
            layer.trainable = not freeze
            fixed_parameters += table.size if freeze else 0
    return {"coverage": round(len(found) / len(vocabulary), 4), "embeddings": len(layers),
            "frozen": bool(freeze), "trainable_words": int(trainable_words) if partly else 0,
            "fixed_parameters": fixed_parameters}
