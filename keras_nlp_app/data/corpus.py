"""Plain-text corpora for language models: a file, a folder of files, or the Python standard
library's own sources (a corpus present on every machine that runs Python)."""

import dataclasses
import os
import sysconfig
import zlib

from keras_nlp_app.data import readers
from keras_nlp_app.errors import DataError, UserError


@dataclasses.dataclass
class Corpus:
    """The text of one split: `documents` (a file each, or the part of one file a holdout keeps)."""

    path: str
    documents: list

    @property
    def characters(self):
        return sum(len(d) for d in self.documents)


def _python_stdlib_files():
    root = sysconfig.get_paths()["stdlib"]
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "__pycache__", "test",
                                                      "tests", "idlelib", "lib2to3"))
        found += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".py")]
    return root, found


def stdlib_split(split):
    """The Python standard library's own .py files: every file whose path hashes to 0 mod 20 is
    validation (a stable 5%), the rest train. Present on every machine that runs Python."""
    root, files = _python_stdlib_files()
    if split not in ("train", "validation"):
        raise UserError(f"dataset python_stdlib has no split {split!r}; its splits: train, validation")
    chosen = [f for f in files
              if (zlib.crc32(os.path.relpath(f, root).encode()) % 20 == 0) == (split == "validation")]
    return root, chosen


def read_corpus(path):
    """A text file, or every file of a folder (sorted), as a `Corpus`; strict UTF-8."""
    if os.path.isdir(path):
        files = sorted(os.path.join(folder, f) for folder, _, names in os.walk(path) for f in names)
        if not files:
            raise DataError("the folder holds no files", path=path)
        return Corpus(path, [readers.read_text(f) for f in files])
    text = readers.read_text(path)
    if not text.strip():
        raise DataError("holds no text", path=path)
    return Corpus(path, [text])


def line_chunks(corpus, size=2000):
    """The corpus as pieces of whole lines of about `size` characters each."""
    for document in corpus.documents:
        chunk = []
        length = 0
        for line in document.splitlines(keepends=True):
            chunk.append(line)
            length += len(line)
            if length >= size:
                yield "".join(chunk)
                chunk, length = [], 0
        if chunk:
            yield "".join(chunk)


def read_documents(path, options):
    """A file's documents: the text of a txt/jsonl/tsv/csv file; for the registry's other
    formats, their text only — a DailyDialog dialogue (`dialog`: its turns, one per line), a
    SQuAD file's distinct paragraphs (`json`)."""
    if options["fmt"] == "dialog":
        found = readers.read_text_lines(path, on_bad_line=options["on_bad_line"])
        found.texts = ["\n".join(t.strip() for t in text.split("__eou__") if t.strip())
                       for text in found.texts]
        return found
    if options["fmt"] == "json":
        from keras_nlp_app.data.squad import read_squad

        found = read_squad(path, on_bad_line=options["on_bad_line"])
        first = {}
        for (_, context), line in zip(found.texts, found.lines):
            first.setdefault(context, line)
        found.texts, found.lines = list(first), list(first.values())
        found.labels, found.groups = [None] * len(found.texts), None
        found.report.examples = len(found.texts)
        return found
    return readers.read_examples(path, **options)


def dataset_documents(name, split="train"):
    """The documents of a registry dataset's split, read as `read_documents` reads them (its
    first file: DailyDialog's dialogues, not the act and emotion labels beside them)."""
    from keras_nlp_app.data import datasets

    dataset = datasets.get_dataset(name)
    options = {"fmt": dataset.format, "text_field": "text", "label_field": None, "header": True,
               "columns": None, "on_bad_line": "error", **dataset.read_options}
    options["label_field"] = None
    return read_documents(datasets.split_paths(name, split)[0], options).texts
