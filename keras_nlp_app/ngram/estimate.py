"""Estimating n-gram models from tokenized sentences: vocabulary, counts, and the smoothing
(interpolated modified Kneser-Ney with KenLM's discounts, add-k, MLE, stupid backoff)."""

import dataclasses

import numpy as np

from keras_nlp_app.errors import UserError
from keras_nlp_app.ngram.corpus import (
    BOS,
    BOS_ID,
    EOS,
    UNK,
    UNK_ID,
    encode_sentences,
    with_sentence_marks,
)
from keras_nlp_app.ngram.model import LOG10_ZERO, SMOOTHINGS, NGramModel, Order


@dataclasses.dataclass
class Counted:
    """The n-grams of one order as counted: sorted keys, raw counts, the row of each one's
    suffix in the order below (None for unigrams), and whether each starts with `<s>`."""

    keys: np.ndarray
    counts: np.ndarray
    suffix_rows: np.ndarray
    starts_bos: np.ndarray


def train_model(sentences, order=5, smoothing="kneser_ney", k=1.0, min_count=1, max_vocab=None,
            tokenizer="whitespace", discount_fallback=None, alpha=0.4, vocabulary=None):
    """Counts n-grams of `sentences` (lists of tokens) and estimates probabilities.

    Args:
        sentences: tokenized training sentences: a list, or any iterable read once (a file's
            lines tokenized as they are read, so the corpus is never held as strings).
        order: 1 to 6.
        smoothing: kneser_ney (interpolated, modified, three discounts per order), add_k, mle,
            or stupid_backoff (Brants et al. 2007: relative frequency of the longest seen
            n-gram times alpha per order backed off; scores, not probabilities).
        k: the add-k constant.
        alpha: the stupid-backoff factor.
        min_count, max_vocab: words rarer than min_count, or beyond the max_vocab most frequent,
            become `<unk>` — here and at query time alike.
        tokenizer: recorded so that scoring splits text the same way.
        discount_fallback: Kneser-Ney discounts (D1, D2, D3+) for an order whose
            counts-of-counts cannot give valid ones (small or artificial corpora), as KenLM's
            `--discount_fallback`; None makes that an error.
        vocabulary: a fixed word list instead of the one counted from `sentences`, so that
            several models (one per class) share ids and their probabilities compare; words
            outside it become `<unk>`.
    """
    if not 1 <= order <= 6:
        raise UserError(f"n-gram order must be 1 to 6, got {order}")
    if smoothing not in SMOOTHINGS:
        raise UserError(f"unknown smoothing {smoothing!r}; choose {', '.join(SMOOTHINGS)}")
    seen, first_ids, lengths = _first_seen_ids(sentences)
    if not len(lengths):
        raise UserError("no sentences to train on")
    vocabulary, words = _vocabulary_ids(seen, first_ids, min_count, max_vocab, vocabulary)
    model = NGramModel(vocabulary, [], smoothing=smoothing, k=k, tokenizer=tokenizer, alpha=alpha)
    tokens, remaining = with_sentence_marks(words, lengths)
    del first_ids, words  # the counts below need only the marked copy
    counts = _count(tokens, remaining, order, len(vocabulary))
    del tokens, remaining  # the estimation needs only the counts
    if smoothing == "kneser_ney":
        model.orders, model.discounts = _kneser_ney(counts, len(vocabulary), discount_fallback)
    else:
        model.orders = _count_based(counts, len(vocabulary), smoothing, k)
    return model


class _NewIds(dict):
    """Word → id in order of first sight; a new word gets the next id (C-speed with `map`)."""

    def __missing__(self, word):
        self[word] = len(self)
        return self[word]


def _first_seen_ids(sentences):
    """One pass over the corpus: its distinct words in order of first sight, every token as the
    index of its word there, and each sentence's length. Words become integers as they are read,
    so no per-token string list is built (half the time of tokenizing, counting strings and
    encoding them on PTB)."""
    seen = _NewIds()
    encoded = encode_sentences(sentences, seen)
    return list(seen), encoded.words, encoded.lengths


def _vocabulary_ids(seen, first_ids, min_count=1, max_vocab=None, vocabulary=None):
    """The model's vocabulary and the corpus in its ids.

    Counted: `<unk>`, `<s>`, `</s>`, then words by descending count (ties alphabetical); words
    under min_count or beyond max_vocab become `<unk>`. Given (`vocabulary`): its words in its
    order after the three, and any other word becomes `<unk>`. The three marks written in the
    text keep their own ids.
    """
    if vocabulary is None:
        counts = np.bincount(first_ids, minlength=len(seen))
        kept = [i for i, w in enumerate(seen) if counts[i] >= min_count and w not in (UNK, BOS, EOS)]
        kept.sort(key=lambda i: (-counts[i], seen[i]))
        if max_vocab is not None:
            kept = kept[: max(max_vocab - 3, 0)]
        vocabulary = [UNK, BOS, EOS] + [seen[i] for i in kept]
    else:
        vocabulary = [UNK, BOS, EOS] + [w for w in vocabulary if w not in (UNK, BOS, EOS)]
    index = {w: i for i, w in enumerate(vocabulary)}
    to_model = np.fromiter((index.get(w, UNK_ID) for w in seen), dtype=np.int64, count=len(seen))
    return vocabulary, to_model[first_ids]


def _count(tokens, remaining, order, vocab_size):
    """Raw counts of every order: a list of `Counted`, lowest order first.

    Each order's n-grams are its (k-1)-gram prefix's row times V plus the last word, counted
    with one `np.unique` over the positions where they fit. Only two orders' per-position rows
    are alive at a time: what the estimation needs of the corpus afterwards (each n-gram's
    suffix row, whether it starts with `<s>`) is taken from them as each order is counted.
    """
    words = np.arange(vocab_size, dtype=np.int64)
    result = [Counted(words, np.bincount(tokens, minlength=vocab_size), None, words == BOS_ID)]
    rows = tokens  # unigram row == word id
    for k in range(1, order):
        positions = np.nonzero(remaining > k)[0]
        keys = rows[positions] * vocab_size + tokens[positions + k]
        unique, index, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                                   return_counts=True)
        del keys
        at = positions[index]  # where each n-gram occurs (its first occurrence)
        # its suffix (all words but the first) is an n-gram one order down, one position later
        result.append(Counted(unique, counts, rows[at + 1], tokens[at] == BOS_ID))
        rows = np.full(len(tokens), -1, dtype=np.int64)
        rows[positions] = inverse
        del positions, inverse, index, at
    return result


def _kneser_ney(counts, vocab_size, discount_fallback=None):
    """Interpolated modified Kneser-Ney, with KenLM's conventions.

    Adjusted counts: the highest order and n-grams starting with `<s>` keep their counts; other
    n-grams count their distinct one-word left extensions. Discounts D1, D2, D3+ per order from
    the counts-of-counts of adjusted counts (Chen & Goodman eq. 26). The unigram distribution is
    interpolated with the uniform one over the vocabulary without `<s>`.
    """
    order = len(counts)
    adjusted = []
    for k, counted in enumerate(counts):
        if k == order - 1:
            a = counted.counts.astype(np.int64)
        else:
            # distinct left extensions: the n-grams one order up whose suffix is this one
            a = np.bincount(counts[k + 1].suffix_rows, minlength=len(counted.keys))
            a = np.where(counted.starts_bos, counted.counts, a).astype(np.int64)
        if k == 0:
            a[BOS_ID] = 0
        adjusted.append(a)

    discounts = [_discounts(a, k + 1, discount_fallback) for k, a in enumerate(adjusted)]

    orders = []
    lower_prob = None
    gammas = []
    for k, counted in enumerate(counts):
        keys = counted.keys
        a = adjusted[k].astype(np.float64)
        d = np.asarray(discounts[k])[np.minimum(adjusted[k], 3)]
        adjusted[k] = None
        groups = keys // vocab_size if k else np.zeros(len(keys), dtype=np.int64)
        n_groups = len(counts[k - 1].keys) if k else 1
        denominator = np.bincount(groups, weights=a, minlength=n_groups)
        gamma = np.bincount(groups, weights=np.where(a > 0, d, 0.0), minlength=n_groups)
        with np.errstate(divide="ignore", invalid="ignore"):
            prob = np.where(denominator[groups] > 0, (a - d) / denominator[groups], 0.0)
            gamma = np.where(denominator > 0, gamma / np.maximum(denominator, 1e-300), 0.0)
        del a, d, denominator
        if k == 0:
            prob += gamma[0] / (vocab_size - 1)
        else:
            prob += gamma[groups] * lower_prob[counted.suffix_rows]
        del groups
        gammas.append(gamma)
        lower_prob = prob
        with np.errstate(divide="ignore"):
            log10_prob = np.log10(prob)
        if k == 0:
            log10_prob[BOS_ID] = LOG10_ZERO
        orders.append(Order(keys, log10_prob, np.zeros(len(keys)), counted.counts))
    for k in range(order - 1):
        gamma = gammas[k + 1]  # contexts of order k+2 are the n-grams of order k+1
        with np.errstate(divide="ignore"):
            orders[k].log10_backoff = np.where(gamma > 0, np.log10(np.maximum(gamma, 1e-300)), 0.0)
    return orders, [d[1:] for d in discounts]


def _discounts(adjusted, order, fallback):
    """[0, D1, D2, D3+] from counts-of-counts (Chen & Goodman eq. 26), or the fallback."""
    n = [int(np.sum(adjusted == j)) for j in range(1, 5)]
    problem = None
    if min(n) == 0:
        problem = f"no {order}-grams with adjusted count {n.index(0) + 1}"
    else:
        y = n[0] / (n[0] + 2 * n[1])
        d = [0.0] + [j - (j + 1) * y * n[j] / n[j - 1] for j in range(1, 4)]
        if any(not 0 <= d[j] <= j for j in range(1, 4)):
            problem = f"{order}-gram discounts out of range ({', '.join(f'{x:.3f}' for x in d[1:])})"
    if problem is None:
        return d
    if fallback is None:
        raise UserError(
            f"cannot estimate Kneser-Ney discounts: {problem}; the corpus is too small or "
            f"artificial. Use --discount-fallback (as KenLM's), a lower order, or add_k")
    return [0.0] + [float(x) for x in fallback]


def _count_based(counts, vocab_size, smoothing, k):
    """MLE or add-k: counts are kept and probabilities computed at query time; the stored
    log10 probabilities are those of each seen n-gram given its full context."""
    orders = []
    for i, counted in enumerate(counts):
        keys, raw = counted.keys, counted.counts
        raw = raw.astype(np.float64)
        if i == 0:
            total = raw.sum() - raw[BOS_ID]
            context_total = np.full(len(keys), total)
        else:
            groups = keys // vocab_size
            upper = np.bincount(groups, weights=raw, minlength=len(counts[i - 1].keys))
            context_total = upper[groups]
        if smoothing == "add_k":
            p = (raw + k) / (context_total + k * (vocab_size - 1))
        else:
            p = raw / np.maximum(context_total, 1)
        with np.errstate(divide="ignore"):
            logp = np.log10(p)
        if i == 0:
            logp[BOS_ID] = LOG10_ZERO
        orders.append(Order(keys, logp, np.zeros(len(keys)), counted.counts))
    return orders
