"""The language-model task's text: conditioned corpora (one `__CONDITION__ text` line per
labelled example) and the token stream a corpus becomes."""

import re

import numpy as np

from keras_nlp_app.data import readers
from keras_nlp_app.data.corpus import Corpus
from keras_nlp_app.data.splits import read_options
from keras_nlp_app.errors import DataError

CONDITIONS = "conditions.json"  # assets of a conditioned LM: the condition names it knows
_CONDITION = re.compile(r"[a-z0-9_]+")


def control_token(condition):
    """The token that starts every text of a condition: one word for every tokenizer kind."""
    return f"__{condition}__"


RECORD_FORMATS = ("jsonl", "tsv", "csv")  # files of records whose text field an LM reads


def is_records_file(path, data_cfg, fmt=None):
    """Whether `path` holds records (JSONL, TSV, CSV: a text field each) rather than plain text."""
    chosen = fmt if fmt is not None and data_cfg.format == "auto" else data_cfg.format
    if chosen != "auto":
        return chosen in RECORD_FORMATS
    return str(path).lower().endswith(tuple(f".{f}" for f in RECORD_FORMATS))


def records_corpus(path, data_cfg, fmt=None):
    """Records (JSONL, TSV, CSV) as one line of text each, whitespace collapsed: `data.text_field`
    of every record (IMDB's unlabeled reviews for an LM to pretrain on), or with
    `data.condition_field` labelled examples as `__CONDITION__ text` (the condition: that field's
    value, renamed by `data.condition_names`)."""
    options = read_options(data_cfg, path if fmt is None else None)
    if fmt is not None and data_cfg.format == "auto":
        options["fmt"] = fmt
    options["label_field"] = data_cfg.condition_field
    examples = readers.read_examples(path, **options)
    if not data_cfg.condition_field:
        return Corpus(path, ["".join(" ".join(text.split()) + "\n" for text in examples.texts)])
    names = {str(k): str(v) for k, v in data_cfg.condition_names.items()}
    lines = []
    for position, (text, value) in enumerate(zip(examples.texts, examples.labels)):
        name = names.get(str(value), str(value))
        if not _CONDITION.fullmatch(name):
            raise DataError(f"condition {name!r} (field {data_cfg.condition_field!r}) must be "
                            f"lower-case letters, digits and underscores; rename it with "
                            f"data.condition_names", path=path, line=examples.lines[position])
        lines.append(f"{control_token(name)} {' '.join(text.split())}")
    return Corpus(path, ["\n".join(lines) + "\n"])


def corpus_conditions(corpus):
    """The condition names whose control tokens start the lines of a conditioned corpus."""
    return sorted({m for d in corpus.documents for m in re.findall(r"(?m)^__([a-z0-9_]+)__ ", d)})


def token_stream(preprocessor, corpus, chunk_lines=20000):
    """The corpus as one int32 array of ids (in-graph tokenization, a chunk of lines at a time;
    each document closed by the preprocessor's `document_end_id` when it has one)."""
    import tensorflow as tf

    parts = []
    for document in corpus.documents:
        lines = document.splitlines(keepends=True)
        for start in range(0, len(lines), chunk_lines):
            chunk = lines[start:start + chunk_lines]
            if preprocessor.word_level:
                ids = preprocessor.ragged_ids(tf.constant(["".join(chunk)]))
            else:
                ids = preprocessor.ragged_ids(tf.constant(chunk))
            parts.append(ids.flat_values.numpy())
        if preprocessor.document_end_id is not None:  # a preset's end token closes a document
            parts.append(np.array([preprocessor.document_end_id]))
    stream = np.concatenate(parts).astype(np.int32) if parts else np.zeros([0], np.int32)
    if len(stream) < 2:
        raise DataError("has fewer than two tokens; a language model needs more text",
                        path=corpus.path)
    return stream
