"""n-gram model files: tokenized text in, the fast `.npz` form and ARPA out and back, and the
whole `knlp ngram train` job (count a file, write PATH.npz and PATH.arpa)."""

import json
import os
import time

import numpy as np

from keras_nlp_app.errors import UserError
from keras_nlp_app.ngram.arpa import read_arpa, write_arpa
from keras_nlp_app.ngram.estimate import train_model
from keras_nlp_app.ngram.model import NGramModel, Order, tokenize
from keras_nlp_app.utils import atomic


def token_lists(path, tokenizer="whitespace"):
    """The tokenized non-empty lines of a UTF-8 text file, one list at a time (blank lines are
    not sentences). The file is read and checked first; its lines go once this is spent."""
    from keras_nlp_app.data.readers import read_text_lines

    lines = read_text_lines(path).texts
    return (words for words in (tokenize(line, tokenizer) for line in lines) if words)


def read_sentences(path, tokenizer="whitespace"):
    """Tokenized non-empty lines of a UTF-8 text file, as a list."""
    # one string object per distinct word: a large corpus' tokens then cost a pointer each
    shared = {}
    return [[shared.setdefault(w, w) for w in words] for words in token_lists(path, tokenizer)]


def read_encoded(path, model):
    """A UTF-8 text file's non-empty lines as `model`'s word ids, tokenized by its tokenizer.
    Words become ids line by line, so scoring a large file holds no per-token strings."""
    return model.encode(token_lists(path, model.tokenizer))


def save_model(model, path):
    """Writes a model in the fast binary form (`.npz`), atomically."""
    arrays = {"vocabulary": np.array(model.vocabulary)}
    for i, order in enumerate(model.orders):
        arrays[f"keys_{i}"] = order.keys
        arrays[f"log10_prob_{i}"] = order.log10_prob
        arrays[f"log10_backoff_{i}"] = order.log10_backoff
        if order.counts is not None:
            arrays[f"counts_{i}"] = order.counts
    meta = {"format": "keras_nlp_app.ngram", "version": 1, "order": model.order,
            "smoothing": model.smoothing, "k": model.k, "alpha": model.alpha,
            "tokenizer": model.tokenizer,
            "discounts": model.discounts}
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_model(path):
    """Loads a model saved by `save_model` (`.npz`) or an ARPA file (`.arpa`)."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such n-gram model")
    if not path.endswith(".npz"):
        return read_arpa(path)
    try:
        data = np.load(path, allow_pickle=False)
        meta = json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path}: not an n-gram model written by knlp ngram train ({exc})") from None
    # Kneser-Ney scores from probabilities and backoffs alone: its counts are not read
    counted = meta["smoothing"] != "kneser_ney"
    orders = [Order(data[f"keys_{i}"], data[f"log10_prob_{i}"], data[f"log10_backoff_{i}"],
                    data[f"counts_{i}"] if counted and f"counts_{i}" in data else None)
              for i in range(meta["order"])]
    return NGramModel([str(w) for w in data["vocabulary"]], orders, smoothing=meta["smoothing"],
               k=meta["k"], tokenizer=meta["tokenizer"], discounts=meta["discounts"],
               alpha=meta.get("alpha", 0.4))


def model_path(path):
    """`PATH` as given, or `PATH.npz` / `PATH.arpa` (what `knlp ngram train --output PATH` writes)."""
    for candidate in (path, path + ".npz", path + ".arpa"):
        if os.path.isfile(candidate):
            return candidate
    raise UserError(f"{path}: no such n-gram model (.npz or .arpa)")


def train_files(train_file, output, *, order=5, smoothing="kneser_ney", k=1.0, min_count=1,
                max_vocab=None, tokenizer="whitespace", discount_fallback=None, alpha=0.4,
                write_arpa_file=False):
    """Counts a text file and writes `output.npz` (and, asked, `output.arpa` for Kneser-Ney).

    Returns:
        A JSON-ready summary: order, smoothing, vocabulary, ngrams per order, discounts, files,
        seconds.
    """
    started = time.time()
    model = train_model(token_lists(train_file, tokenizer), order=order, smoothing=smoothing,
                        k=k, min_count=min_count, max_vocab=max_vocab, tokenizer=tokenizer,
                        discount_fallback=discount_fallback, alpha=alpha)
    output = output[:-4] if output.endswith(".npz") else output
    output = output[:-5] if output.endswith(".arpa") else output
    save_model(model, output + ".npz")
    written = [output + ".npz"]
    if model.smoothing == "kneser_ney" and write_arpa_file:
        write_arpa(model, output + ".arpa")
        written.append(output + ".arpa")
    return {"order": model.order, "smoothing": model.smoothing, "vocabulary": model.vocab_size,
            "ngrams": [len(o.keys) for o in model.orders], "discounts": model.discounts,
            "files": written, "seconds": round(time.time() - started, 2)}
