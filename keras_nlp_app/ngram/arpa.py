"""ARPA back-off language model files: write ours, read anyone's (KenLM's lmplz, SRILM).

Format: a `\\data\\` header with `ngram N=count` lines, then one `\\N-grams:` section per order
with lines `log10_prob<TAB>w1 ... wN[<TAB>log10_backoff]`, then `\\end\\`. Only back-off models
are representable: Kneser-Ney models round-trip exactly; MLE and add-k models are refused, because
their unseen-n-gram probabilities are not back-off probabilities.
"""

import os

import numpy as np

from keras_nlp_app.errors import DataError, UserError
from keras_nlp_app.ngram.corpus import BOS, UNK
from keras_nlp_app.ngram.model import NGramModel, Order
from keras_nlp_app.utils import atomic

_SEVEN_DIGITS = "{:.7g}".format
_PROB_WORDS = "{:.7g}\t{}\n".format
_PROB_WORDS_SUFFIX = "{:.7g}\t{}{}\n".format


def write_arpa(model, path):
    """Writes `model` as an ARPA file (atomically). Probabilities to 7 significant digits."""
    if model.smoothing != "kneser_ney":
        raise UserError(f"an ARPA file can hold only back-off models; this model uses "
                        f"{model.smoothing} (train with --smoothing kneser_ney)")
    with atomic.atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\n\\data\\\n")
        for i, order in enumerate(model.orders):
            f.write(f"ngram {i + 1}={len(order.keys)}\n")
        texts = None
        for i, order in enumerate(model.orders):
            f.write(f"\n\\{i + 1}-grams:\n")
            texts = _ngram_texts(model, i, texts)
            f.writelines(_arpa_lines(order, texts, with_backoff=i < model.order - 1))
        f.write("\n\\end\\\n")


def _ngram_texts(model, order_index, context_texts):
    """The words of every n-gram of an order, space-separated, in key order (an object array).
    Each is its context's text (the order below, already built) plus its last word: one string
    concatenation per n-gram instead of looking up and joining all its words."""
    keys = model.orders[order_index].keys
    if order_index == 0:
        return np.array(model.vocabulary, dtype=object)[keys]
    spaced = np.array([" " + word for word in model.vocabulary], dtype=object)
    contexts, words = np.divmod(keys, model.vocab_size)
    # Python lists and str methods: several times faster here than NumPy object arithmetic
    return np.array(list(map(str.__add__, context_texts[contexts].tolist(),
                             spaced[words].tolist())), dtype=object)


def _arpa_lines(order, texts, with_backoff):
    """`log10_prob<TAB>words[<TAB>log10_backoff]` lines, lazily; a zero backoff is left out.
    Backoffs take a few thousand distinct values per order, so each is formatted once."""
    probs = order.log10_prob.tolist()
    if not with_backoff:
        return map(_PROB_WORDS, probs, texts.tolist())
    distinct, which = np.unique(order.log10_backoff, return_inverse=True)
    suffixes = np.array(["" if b == 0 else "\t" + _SEVEN_DIGITS(b) for b in distinct.tolist()],
                        dtype=object)
    return map(_PROB_WORDS_SUFFIX, probs, texts.tolist(), suffixes[which].tolist())


def read_arpa(path, tokenizer="whitespace"):
    """Reads an ARPA file into an `NGramModel` with Kneser-Ney (back-off) scoring.

    Every n-gram's context must be listed one order below (KenLM and SRILM guarantee it).
    Malformed files raise a DataError naming the line.
    """
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such ARPA file")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError("not valid UTF-8", path=path, line=line) from None
    lines = text.split("\n")
    number = 0

    def fail(message):
        raise DataError(message, path=path, line=number)

    # header
    while number < len(lines) and lines[number].strip() != "\\data\\":
        number += 1
    if number == len(lines):
        raise DataError("no \\data\\ header; not an ARPA file", path=path)
    counts = []
    number += 1
    while number < len(lines) and lines[number].strip():
        line = lines[number].strip()
        number += 1
        if not line.startswith("ngram ") or "=" not in line:
            fail(f"expected 'ngram N=count' in the header, found {line[:60]!r}")
        n, count = line[6:].split("=", 1)
        if not (n.strip().isdigit() and count.strip().isdigit()) or int(n) != len(counts) + 1:
            fail(f"bad header line {line[:60]!r}")
        counts.append(int(count))
    if not counts:
        fail("the header lists no n-gram counts")

    sections = []
    for n in range(1, len(counts) + 1):
        while number < len(lines) and not lines[number].strip():
            number += 1
        if number >= len(lines) or lines[number].strip() != f"\\{n}-grams:":
            fail(f"expected the \\{n}-grams: section")
        number += 1
        start = number
        while number < len(lines) and lines[number].strip() and not lines[number].startswith("\\"):
            number += 1
        found = number - start
        if found != counts[n - 1]:
            number = start  # the section's header line, 1-based
            fail(f"the header says ngram {n}={counts[n - 1]} but the \\{n}-grams: section has "
                 f"{found} lines")
        sections.append((start, lines[start:number]))
    while number < len(lines) and not lines[number].strip():
        number += 1
    if number >= len(lines) or lines[number].strip() != "\\end\\":
        fail("expected \\end\\ after the last section")

    # vocabulary from the unigrams: specials first, in our fixed order
    unigram_start, unigram_lines = sections[0]
    parsed = []
    for offset, line in enumerate(unigram_lines):
        number = unigram_start + offset + 1
        parsed.append(_parse(line, 1, len(counts) > 1, fail))
    words = [p[1][0] for p in parsed]
    if len(set(words)) != len(words):
        seen = set()
        repeat = next(i for i, w in enumerate(words) if w in seen or seen.add(w))
        number = unigram_start + repeat + 1
        fail(f"the unigram {words[repeat]!r} is listed twice")
    if UNK not in words:
        words.append(UNK)
        parsed.append((-100.0, [UNK], 0.0))
    for special in (BOS, "</s>"):
        if special not in words:
            raise DataError(f"the unigrams lack {special}", path=path)
    vocabulary = [UNK, BOS, "</s>"] + [w for w in words if w not in (UNK, BOS, "</s>")]
    index = {w: i for i, w in enumerate(vocabulary)}
    vocab_size = len(vocabulary)
    log10_prob = np.zeros(vocab_size)
    log10_backoff = np.zeros(vocab_size)
    for prob, (word,), backoff in parsed:
        log10_prob[index[word]] = prob
        log10_backoff[index[word]] = backoff
    orders = [Order(np.arange(vocab_size, dtype=np.int64), log10_prob, log10_backoff)]

    for n in range(2, len(counts) + 1):
        start, entries = sections[n - 1]
        probs = np.empty(len(entries))
        backoffs = np.zeros(len(entries))
        ids = np.empty((len(entries), n), dtype=np.int64)
        for offset, line in enumerate(entries):
            number = start + offset + 1
            prob, gram, backoff = _parse(line, n, n < len(counts), fail)
            try:
                ids[offset] = [index[w] for w in gram]
            except KeyError as exc:
                fail(f"word {exc.args[0]!r} is not among the unigrams")
            probs[offset] = prob
            backoffs[offset] = backoff
        context = ids[:, 0]
        for j in range(1, n - 1):
            wanted = context * vocab_size + ids[:, j]
            keys_j = orders[j].keys
            rows = np.minimum(np.searchsorted(keys_j, wanted), len(keys_j) - 1)
            missing = np.nonzero(keys_j[rows] != wanted)[0]
            if len(missing):
                number = start + int(missing[0]) + 1
                fail(f"the context of this {n}-gram is not listed among the {j + 1}-grams")
            context = rows
        keys = context * vocab_size + ids[:, -1]
        order = np.argsort(keys, kind="stable")
        keys, probs, backoffs = keys[order], probs[order], backoffs[order]
        duplicate = np.nonzero(keys[1:] == keys[:-1])[0]
        if len(duplicate):
            number = start + int(order[duplicate[0] + 1]) + 1
            fail(f"this {n}-gram is listed twice")
        orders.append(Order(keys, probs, backoffs))
    return NGramModel(vocabulary, orders, smoothing="kneser_ney", tokenizer=tokenizer)


def _parse(line, n, has_backoff, fail):
    fields = line.rstrip("\r").split("\t")
    if len(fields) == 1:  # some writers separate with spaces only
        fields = line.split()
        fields = [fields[0], " ".join(fields[1:n + 1])] + fields[n + 1:]
    if len(fields) not in (2, 3):
        fail(f"expected 'log10_prob<TAB>{n} words[<TAB>backoff]', found {line[:60]!r}")
    try:
        prob = float(fields[0])
        backoff = float(fields[2]) if len(fields) == 3 else 0.0
    except ValueError:
        fail(f"not a number in {line[:60]!r}")
    gram = fields[1].split()
    if len(gram) != n:
        fail(f"expected {n} words, found {len(gram)} in {line[:60]!r}")
    if len(fields) == 3 and not has_backoff:
        fail(f"highest-order n-grams carry no backoff: {line[:60]!r}")
    if prob > 0 or (prob != prob):
        fail(f"log10 probability must be <= 0, found {fields[0]!r}")
    return prob, gram, backoff
