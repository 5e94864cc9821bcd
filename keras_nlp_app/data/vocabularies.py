"""`knlp vocab`: learn a tokenizer's vocabulary from text files, into a folder a config names.

The folder is what a run keeps in `assets/` (`tokenizer.json`, `vocab.txt`, `spm.model` for
SentencePiece), so `tokenizer.vocabulary: FOLDER` makes a run use it as is instead of learning
one from its training split: one vocabulary for several runs, or one learned on more text than
the labelled data (the unlabelled IMDB reviews, say).
"""

import os
import shutil
import time

from keras_nlp_app.data import readers
from keras_nlp_app.errors import DataError, UserError

KINDS = ("wordpiece", "sentencepiece", "word", "whitespace", "char")


def read_texts(path, text_field="text"):
    """The texts of one file: a line each for plain text, `text_field` of tsv/csv/jsonl rows."""
    if os.path.splitext(path)[1].lower() in (".jsonl", ".tsv", ".csv"):
        return readers.read_examples(path, text_field=text_field, label_field=None).texts
    return readers.read_text_lines(path).texts


def learn_vocabulary(paths, output, *, kind="wordpiece", vocab_size=8000, model_type="unigram",
                     min_count=1, lowercase=True, text_field="text", max_texts=None):
    """Learns a tokenizer from the texts of `paths` and writes it to the folder `output`.

    Args:
        paths: text files (.txt: a sentence or document per line; .jsonl/.tsv/.csv: the
            `text_field` of each row).
        output: the folder to write; it must not hold another tokenizer already.
        kind, vocab_size, model_type, min_count, lowercase: as the `tokenizer` config section.
        max_texts: learn from at most this many texts (the first ones), None for all.

    Returns:
        A JSON-ready summary: kind, vocabulary_size, texts, characters, files, output, seconds.
    """
    from keras_nlp_app.text import tokenizers

    started = time.time()
    if kind not in KINDS:
        raise UserError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if vocab_size < 3:
        raise UserError(f"--vocab-size must be at least 3, got {vocab_size}")
    if os.path.exists(os.path.join(output, "tokenizer.json")):
        raise UserError(f"{output} already holds a tokenizer; choose another --output or delete it")
    texts = []
    for path in paths:
        texts += read_texts(path, text_field)
        if max_texts and len(texts) >= max_texts:
            texts = texts[:max_texts]
            break
    if not any(text.strip() for text in texts):
        raise DataError("holds no text to learn a vocabulary from", path=", ".join(paths))
    tokenizer = tokenizers.learn_tokenizer(texts, kind=kind, vocab_size=vocab_size,
                                           min_count=min_count, lowercase=lowercase,
                                           model_type=model_type)
    staging = os.path.join(os.path.dirname(os.path.abspath(output)),
                           f".tmp-vocab-{os.getpid()}-{os.path.basename(os.path.normpath(output))}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        tokenizers.save_tokenizer(tokenizer, staging)
        os.makedirs(output, exist_ok=True)
        for name in sorted(os.listdir(staging), key=lambda n: n == "tokenizer.json"):
            os.replace(os.path.join(staging, name), os.path.join(output, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"kind": tokenizer.kind, "vocabulary_size": tokenizer.vocabulary_size,
            "texts": len(texts), "characters": sum(len(t) for t in texts), "files": list(paths),
            "output": output, "seconds": round(time.time() - started, 2)}
