"""Count-based n-gram language models on numpy arrays: MLE, add-k and interpolated modified
Kneser-Ney (Chen & Goodman, with KenLM's conventions): the model, its scoring, perplexity and
sampling. Estimation is in estimate.py, files (text, .npz, ARPA) in io.py, the corpus as word-id
arrays in corpus.py.

Storage: every n-gram of order k is an int64 key `context_id * V + word`, where `context_id` is
the index of its (k-1)-word prefix in the sorted key array of order k-1 (unigram keys are the word
ids). Keys of each order are sorted, so counting is `np.unique` and lookup is `np.searchsorted`,
all vectorized over a whole corpus. No TensorFlow import here.

Sentences are scored as KenLM does: the context starts with `<s>`, every word and the final
`</s>` are predicted, and a word outside the vocabulary is scored as `<unk>` (and counted as OOV).
"""

import dataclasses
import math
import re

import numpy as np

from keras_nlp_app.errors import UserError
from keras_nlp_app.ngram.corpus import (
    BOS,
    BOS_ID,
    EOS_ID,
    UNK_ID,
    EncodedSentences,
    encode_sentences,
    with_sentence_marks,
)

SMOOTHINGS = ("kneser_ney", "add_k", "mle", "stupid_backoff")
TOKENIZERS = ("whitespace", "word")
LOG10_ZERO = -99.0  # ARPA's "probability zero" (used for <s>, which is never predicted)
_WORD = re.compile(r"\w+|[^\w\s]")


def tokenize(line, tokenizer="whitespace"):
    """Splits one line: on whitespace (KenLM, PTB), or into Unicode words and punctuation."""
    if tokenizer == "whitespace":
        return line.split()
    if tokenizer == "word":
        return _WORD.findall(line)
    raise UserError(f"unknown n-gram tokenizer {tokenizer!r}; choose {', '.join(TOKENIZERS)}")


@dataclasses.dataclass
class Order:
    """The n-grams of one order: sorted keys, log10 probabilities, log10 backoffs."""

    keys: np.ndarray  # int64 [n]
    log10_prob: np.ndarray  # float64 [n]
    log10_backoff: np.ndarray  # float64 [n]; 0 where the n-gram is not a context
    counts: np.ndarray = None  # raw counts (kept for MLE and add-k)


class NGramModel:
    """An n-gram language model over a fixed vocabulary.

    Build one with `NGramModel.train(sentences, order=5)`, load one with `NGramModel.load(path)`
    or `keras_nlp_app.ngram.arpa.read_arpa(path)`.
    """

    def __init__(self, vocabulary, orders, smoothing="kneser_ney", k=1.0, tokenizer="whitespace",
                 discounts=None, alpha=0.4):
        self.vocabulary = list(vocabulary)
        self.index = _WordIds((word, i) for i, word in enumerate(self.vocabulary))
        self.orders = orders
        self.smoothing = smoothing
        self.k = k
        self.alpha = alpha
        self.tokenizer = tokenizer
        self.discounts = discounts or []

    @property
    def order(self):
        return len(self.orders)

    @property
    def vocab_size(self):
        return len(self.vocabulary)

    def encode(self, sentences):
        """Token lists (any iterable, read once: a file's lines tokenized as they are read) as
        `EncodedSentences` of this model's word ids; words outside the vocabulary get `<unk>`'s."""
        if isinstance(sentences, EncodedSentences):
            return sentences
        return encode_sentences(sentences, self.index)

    def _encode(self, sentences):
        """Flat ids `<s> w.. </s> <s> ...` and, per position, tokens left in its sentence."""
        encoded = self.encode(sentences)
        return with_sentence_marks(encoded.words, encoded.lengths)

    # ---------------------------------------------------------------- queries

    def _lookup(self, order_index, context_ids, words):
        """Row of each (context, word) in order `order_index` (0-based), or -1 when absent.

        The wanted keys are searched in sorted order: a binary search whose queries ascend stays
        in cache, several times faster than the same queries in text order on a large model."""
        keys = self.orders[order_index].keys
        if order_index == 0:
            return np.where(words < len(keys), words, -1)
        rows = np.full(len(words), -1, dtype=np.int64)
        valid = np.nonzero(context_ids >= 0)[0]
        wanted = context_ids[valid] * self.vocab_size + words[valid]
        ascending = np.argsort(wanted)
        rows[valid[ascending]] = _rows_in(keys, wanted[ascending])
        return rows

    def _position_ids(self, tokens, remaining):
        """For every order, the row of the n-gram starting at each position (or -1).

        Every order's searches run over the positions ordered once by the word they start
        with: each context then falls inside that word's contiguous block of sorted keys, so
        the binary searches stay in cache without sorting each order's queries again (one
        stable sort, a radix sort for 16-bit ids, instead of one per order)."""
        first_word = tokens.astype(np.uint16) if self.vocab_size <= 2 ** 16 else tokens
        by_first = np.argsort(first_word, kind="stable")
        rows = [self._lookup(0, None, tokens)]
        for k in range(1, self.order):
            keys = self.orders[k].keys
            context = rows[-1][by_first]
            usable = (context >= 0) & (remaining[by_first] > k)
            at = by_first[usable]
            order_rows = np.full(len(tokens), -1, dtype=np.int64)
            order_rows[at] = _rows_in(keys, context[usable] * self.vocab_size + tokens[at + k])
            rows.append(order_rows)
        return rows

    def token_log10_probs(self, sentences):
        """log10 P of each predicted token (every word and `</s>`), as one flat array in order.

        Returns:
            (log10 probabilities `[T]`, is_oov `[T]`, is_eos `[T]`, sentence index `[T]`).
        """
        tokens, remaining = self._encode(sentences)
        rows = self._position_ids(tokens, remaining)
        predicted = np.nonzero(tokens != BOS_ID)[0]
        # history: how many tokens of context (including <s>) precede each predicted position
        history = _tokens_before(remaining)[predicted]
        if self.smoothing == "kneser_ney":
            result = self._backoff_scores(rows, predicted, history)
        elif self.smoothing == "stupid_backoff":
            result = self._stupid_backoff_scores(rows, predicted, history)
        else:
            result = self._count_scores(rows, tokens, predicted, history)
        sentence = np.cumsum(tokens == BOS_ID)[predicted] - 1
        return result, tokens[predicted] == UNK_ID, tokens[predicted] == EOS_ID, sentence

    def _backoff_scores(self, rows, predicted, history):
        """ARPA semantics: the longest known n-gram's probability plus the backoffs skipped."""
        scores = np.full(len(predicted), np.nan)
        backoff = np.zeros(len(predicted))
        for n in range(min(self.order, int(history.max()) + 1), 0, -1):
            # n-gram of length n ending at p starts at p - n + 1
            start = predicted - (n - 1)
            usable = (history >= n - 1) & np.isnan(scores)
            row = np.where(usable, rows[n - 1][np.maximum(start, 0)], -1)
            hit = row >= 0
            scores[hit] = self.orders[n - 1].log10_prob[row[hit]] + backoff[hit]
            if n >= 2:
                # context of length n-1 ends at p-1 and starts at p-n+1: backoff if it exists
                ctx = np.where(usable & ~hit, rows[n - 2][np.maximum(start, 0)], -1)
                has = ctx >= 0
                backoff[has] += self.orders[n - 2].log10_backoff[ctx[has]]
        return scores

    def _stupid_backoff_scores(self, rows, predicted, history):
        """log10 of alpha^(orders backed off) × c(h w) / c(h) for the longest seen (h, w)."""
        longest = np.minimum(history + 1, self.order)
        scores = np.full(len(predicted), np.nan)
        for n in range(self.order, 0, -1):
            start = np.maximum(predicted - (n - 1), 0)
            usable = (longest >= n) & np.isnan(scores)
            row = np.where(usable, rows[n - 1][start], -1)
            count = np.where(row >= 0, self.orders[n - 1].counts[np.maximum(row, 0)], 0)
            hit = count > 0
            if n == 1:
                context = np.full(int(hit.sum()), self._unigram_total())
            else:
                context = self._context_totals(n - 2)[rows[n - 2][start[hit]]]
            scores[hit] = (np.log10(count[hit] / context)
                           + (longest[hit] - n) * math.log10(self.alpha))
        scores[np.isnan(scores)] = -np.inf  # a word never seen in training
        return scores

    def _count_scores(self, rows, tokens, predicted, history):
        """MLE and add-k from counts with the longest context the sentence allows (no backoff)."""
        n = np.minimum(history + 1, self.order)
        scores = np.empty(len(predicted))
        vocab = self.vocab_size - 1  # <s> is never predicted
        for length in np.unique(n):
            at = np.nonzero(n == length)[0]
            start = predicted[at] - (length - 1)
            gram_row = rows[length - 1][start]
            gram_count = np.where(gram_row >= 0, self.orders[length - 1].counts[np.maximum(gram_row, 0)], 0)
            if length == 1:
                context_count = np.full(len(at), self._unigram_total())
            else:
                ctx_row = rows[length - 2][start]
                context_count = np.where(
                    ctx_row >= 0, self._context_totals(length - 2)[np.maximum(ctx_row, 0)], 0)
            if self.smoothing == "add_k":
                p = (gram_count + self.k) / (context_count + self.k * vocab)
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    p = np.where(context_count > 0, gram_count / np.maximum(context_count, 1), 0.0)
            with np.errstate(divide="ignore"):
                scores[at] = np.log10(p)
        return scores

    def _unigram_total(self):
        counts = self.orders[0].counts.copy()
        counts[BOS_ID] = 0
        return counts.sum()

    def _context_totals(self, order_index):
        """For MLE/add-k: count of each n-gram of order `order_index` as a context (followed by
        something), i.e. the sum of the counts of its extensions."""
        cache = getattr(self, "_totals", {})
        if order_index not in cache:
            upper = self.orders[order_index + 1]
            contexts = upper.keys // self.vocab_size
            cache[order_index] = np.bincount(contexts, weights=upper.counts,
                                             minlength=len(self.orders[order_index].keys))
            self._totals = cache
        return cache[order_index]

    def sentence_scores(self, sentences):
        """Per sentence: total log10 and natural-log probability (words and `</s>`) and OOVs."""
        encoded = self.encode(sentences)
        scores, oov, _, sentence = self.token_log10_probs(encoded)
        log10 = np.bincount(sentence, weights=scores, minlength=len(encoded))
        oovs = np.bincount(sentence, weights=oov, minlength=len(encoded)).astype(int)
        return [{"log10_prob": float(l), "ln_prob": float(l * math.log(10)),
                 "tokens": int(n) + 1, "oov": int(o)}
                for l, o, n in zip(log10, oovs, encoded.lengths)]

    # ---------------------------------------------------------------- distributions, sampling

    def next_log10_probs(self, context):
        """log10 P(w | context) for every vocabulary word `[V]` (`<s>` gets ARPA's -99).

        `context` is a list of words; `<s>` may start it. Only the last order-1 words matter.
        """
        ids = [self.index.get(w, UNK_ID) for w in context][-(self.order - 1):] if self.order > 1 else []
        words = np.arange(self.vocab_size, dtype=np.int64)
        if self.smoothing == "stupid_backoff":
            return self._next_stupid_backoff(ids, words)
        if self.smoothing != "kneser_ney":
            return self._next_count_probs(ids, words)
        logp = self.orders[0].log10_prob.copy()
        # context rows of each suffix of ids, shortest first
        suffix_rows = self._context_rows(ids)
        for length, row in enumerate(suffix_rows, start=1):
            if row < 0:
                break
            found = self._lookup(length, np.full(len(words), row), words)
            backoff = self.orders[length - 1].log10_backoff[row]
            hit = found >= 0
            logp = np.where(hit, self.orders[length].log10_prob[np.maximum(found, 0)], logp + backoff)
        logp[BOS_ID] = LOG10_ZERO
        return logp

    def _context_rows(self, ids):
        """Rows of the context suffixes ids[-1:], ids[-2:], ... (-1 from the first missing)."""
        rows = []
        for length in range(1, len(ids) + 1):
            suffix = ids[-length:]
            row = suffix[0]
            for j, word in enumerate(suffix[1:], start=1):
                row = int(self._lookup(j, np.array([row]), np.array([word]))[0])
                if row < 0:
                    break
            rows.append(row if length == 1 or row >= 0 else -1)
            if rows[-1] < 0:
                break
        return rows

    def _next_stupid_backoff(self, ids, words):
        """Stupid-backoff scores of every word after `ids`, normalized to sum to 1 (for sampling)."""
        history = [BOS_ID] if not ids else ids
        context = history[-(self.order - 1):] if self.order > 1 else []
        rows = self._context_rows(context) if context else []
        scores = np.zeros(len(words))
        settled = np.zeros(len(words), dtype=bool)
        for length in range(len(rows), -1, -1):  # longest known context first
            if length and rows[length - 1] < 0:
                continue
            if length == 0:
                counts = self.orders[0].counts.astype(np.float64)
                total = self._unigram_total()
            else:
                found = self._lookup(length, np.full(len(words), rows[length - 1]), words)
                counts = np.where(found >= 0, self.orders[length].counts[np.maximum(found, 0)], 0)
                total = counts.sum()
            fresh = (counts > 0) & ~settled
            scores[fresh] = counts[fresh] / total * self.alpha ** (len(context) - length)
            settled |= fresh
        scores[BOS_ID] = 0.0
        with np.errstate(divide="ignore"):
            logp = np.log10(scores / scores.sum())
        logp[BOS_ID] = LOG10_ZERO
        return logp

    def _next_count_probs(self, ids, words):
        history = [BOS_ID] if not ids else ids
        length = min(len(history) + 1, self.order)
        context = history[-(length - 1):] if length > 1 else []
        vocab = self.vocab_size - 1
        if not context:
            counts = self.orders[0].counts.astype(np.float64).copy()
            counts[BOS_ID] = 0
            total = counts.sum()
        else:
            rows = self._context_rows(context)
            row = rows[-1] if len(rows) == len(context) else -1
            if row >= 0:
                found = self._lookup(length - 1, np.full(len(words), row), words)
                counts = np.where(found >= 0, self.orders[length - 1].counts[np.maximum(found, 0)], 0).astype(np.float64)
            else:
                counts = np.zeros(len(words))
            total = counts.sum()
        if self.smoothing == "add_k":
            p = (counts + self.k) / (total + self.k * vocab)
        else:
            p = counts / total if total > 0 else np.zeros_like(counts)
        p[BOS_ID] = 0.0
        with np.errstate(divide="ignore"):
            logp = np.log10(p)
        logp[BOS_ID] = LOG10_ZERO
        return logp

    def generate(self, *, prompt="", max_tokens=30, temperature=1.0, top_k=0, seed=0,
                 allow_unk=False):
        """Samples a continuation of `prompt` word by word until `</s>` or `max_tokens`.

        Args:
            temperature: divides log-probabilities; 0 picks the most probable word (greedy).
            top_k: sample among the k most probable words only (0: all).
            seed: the random generator's seed; the same seed gives the same text.
            allow_unk: whether `<unk>` may be generated.
        """
        rng = np.random.default_rng(seed)
        context = [BOS] + tokenize(prompt, self.tokenizer)
        generated = []
        for _ in range(max_tokens):
            logp = self.next_log10_probs(context) * math.log(10)
            logp[BOS_ID] = -np.inf
            if not allow_unk:
                logp[UNK_ID] = -np.inf
            if temperature <= 0:
                choice = int(np.argmax(logp))
            else:
                logits = logp / temperature
                if top_k and top_k < len(logits):
                    cutoff = np.partition(logits, -top_k)[-top_k]
                    logits = np.where(logits >= cutoff, logits, -np.inf)
                probs = np.exp(logits - np.max(logits))
                probs /= probs.sum()
                choice = int(rng.choice(len(probs), p=probs))
            if choice == EOS_ID:
                break
            word = self.vocabulary[choice]
            generated.append(word)
            context.append(word)
        return " ".join(generated)


def _rows_in(keys, wanted):
    """The row of each wanted key in the sorted `keys`, or -1 where it is absent."""
    found = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[found] == wanted, found, -1)


class _WordIds(dict):
    """Word → id, `<unk>`'s id for a word outside the vocabulary (a C-speed lookup with `map`)."""

    def __missing__(self, word):
        return UNK_ID


def _tokens_before(remaining):
    """How many tokens of the sentence precede each position (0 at `<s>`)."""
    starts = np.zeros(len(remaining), dtype=np.int64)
    if len(remaining):
        is_start = np.ones(len(remaining), dtype=bool)
        is_start[1:] = remaining[:-1] == 1
        start_positions = np.nonzero(is_start)[0]
        starts = start_positions[np.cumsum(is_start) - 1]
    return np.arange(len(remaining)) - starts


def perplexity_report(model, sentences, *, include_eos=True):
    """KenLM-style scores of tokenized sentences.

    Perplexity = 10^(-sum log10 p / N), N = words (+ one `</s>` per sentence when include_eos).
    OOV words are scored as `<unk>` and counted; `perplexity_excluding_oov` leaves them out.
    Zero-probability tokens (MLE) make the perplexity infinite; they are counted in `zero_prob`.
    """
    sentences = model.encode(sentences)
    if not len(sentences):
        raise UserError("no sentences to score")
    scores, oov, eos, _ = model.token_log10_probs(sentences)
    keep = np.ones(len(scores), dtype=bool) if include_eos else ~eos
    zero = ~np.isfinite(scores) & keep
    total = float(scores[keep].sum())
    tokens = int(keep.sum())
    oov_count = int((oov & keep).sum())
    no_oov = keep & ~oov
    report = {
        "sentences": len(sentences), "tokens": tokens, "oov": oov_count,
        "log10_prob": total, "ln_prob": total * math.log(10),
        "perplexity": float(10 ** (-total / tokens)) if not zero.any() else float("inf"),
        "perplexity_excluding_oov": (
            float(10 ** (-float(scores[no_oov].sum()) / max(int(no_oov.sum()), 1)))
            if not (zero & no_oov).any() else float("inf")),
        "include_eos": include_eos, "zero_prob": int(zero.sum()),
        # stupid backoff gives scores, not probabilities: its "perplexity" ranks, it does not compare
        "normalized": model.smoothing != "stupid_backoff",
        "order": model.order, "smoothing": model.smoothing,
    }
    return report
