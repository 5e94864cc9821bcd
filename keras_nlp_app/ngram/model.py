"""Count-based n-gram language models on numpy arrays: MLE, add-k and interpolated modified
Kneser-Ney (Chen & Goodman, with KenLM's conventions), scoring, perplexity and sampling.

Storage: every n-gram of order k is an int64 key `context_id * V + word`, where `context_id` is
the index of its (k-1)-word prefix in the sorted key array of order k-1 (unigram keys are the word
ids). Keys of each order are sorted, so counting is `np.unique` and lookup is `np.searchsorted`,
all vectorized over a whole corpus. No TensorFlow import here.

Sentences are scored as KenLM does: the context starts with `<s>`, every word and the final
`</s>` are predicted, and a word outside the vocabulary is scored as `<unk>` (and counted as OOV).
"""

import collections
import dataclasses
import json
import math
import os
import re

import numpy as np

from keras_nlp_app.errors import UserError

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
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


def read_sentences(path, tokenizer="whitespace"):
    """Tokenized non-empty lines of a UTF-8 text file (blank lines are not sentences)."""
    from keras_nlp_app.data.readers import read_text_lines

    lines = read_text_lines(path).texts
    sentences = [tokenize(line, tokenizer) for line in lines]
    return [s for s in sentences if s]


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
        self.index = {word: i for i, word in enumerate(self.vocabulary)}
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

    # ---------------------------------------------------------------- training

    @classmethod
    def train(cls, sentences, order=5, smoothing="kneser_ney", k=1.0, min_count=1, max_vocab=None,
              tokenizer="whitespace", discount_fallback=None, alpha=0.4):
        """Counts n-grams of `sentences` (lists of tokens) and estimates probabilities.

        Args:
            sentences: tokenized training sentences.
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
        """
        if not 1 <= order <= 6:
            raise UserError(f"n-gram order must be 1 to 6, got {order}")
        if smoothing not in SMOOTHINGS:
            raise UserError(f"unknown smoothing {smoothing!r}; choose {', '.join(SMOOTHINGS)}")
        if not sentences:
            raise UserError("no sentences to train on")
        vocabulary = _build_vocabulary(sentences, min_count, max_vocab)
        model = cls(vocabulary, [], smoothing=smoothing, k=k, tokenizer=tokenizer, alpha=alpha)
        tokens, remaining = model._encode(sentences)
        counts = _count(tokens, remaining, order, len(vocabulary))
        if smoothing == "kneser_ney":
            model.orders, model.discounts = _kneser_ney(counts, tokens, len(vocabulary),
                                                        discount_fallback)
        else:
            model.orders = _count_based(counts, len(vocabulary), smoothing, k)
        return model

    def _encode(self, sentences):
        """Flat ids `<s> w.. </s> <s> ...` and, per position, tokens left in its sentence."""
        index = self.index
        lengths = np.fromiter((len(s) + 2 for s in sentences), dtype=np.int64, count=len(sentences))
        ids = np.fromiter(
            (i for s in sentences for i in (BOS_ID, *[index.get(w, UNK_ID) for w in s], EOS_ID)),
            dtype=np.int64, count=int(lengths.sum()))
        ends = np.cumsum(lengths)
        remaining = np.repeat(ends, lengths) - np.arange(len(ids))
        return ids, remaining

    # ---------------------------------------------------------------- queries

    def _lookup(self, order_index, context_ids, words):
        """Row of each (context, word) in order `order_index` (0-based), or -1 when absent."""
        keys = self.orders[order_index].keys
        if order_index == 0:
            return np.where(words < len(keys), words, -1)
        valid = context_ids >= 0
        wanted = np.where(valid, context_ids, 0) * self.vocab_size + words
        rows = np.searchsorted(keys, wanted)
        rows_clipped = np.minimum(rows, len(keys) - 1)
        found = valid & (keys[rows_clipped] == wanted)
        return np.where(found, rows_clipped, -1)

    def _position_ids(self, tokens, remaining):
        """For every order, the row of the n-gram starting at each position (or -1)."""
        rows = [self._lookup(0, None, tokens)]
        for k in range(1, self.order):
            last_word = np.zeros_like(tokens)
            last_word[: len(tokens) - k] = tokens[k:]
            rows.append(np.where(remaining > k, self._lookup(k, rows[-1], last_word), -1))
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
        scores, oov, _, sentence = self.token_log10_probs(sentences)
        log10 = np.bincount(sentence, weights=scores, minlength=len(sentences))
        oovs = np.bincount(sentence, weights=oov, minlength=len(sentences)).astype(int)
        return [{"log10_prob": float(l), "ln_prob": float(l * math.log(10)),
                 "tokens": len(s) + 1, "oov": int(o)}
                for l, o, s in zip(log10, oovs, sentences)]

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

    # ---------------------------------------------------------------- n-gram words

    def ngram_words(self, order_index):
        """Word-id matrix `[n, order_index+1]` of every n-gram of an order, in key order."""
        keys = self.orders[order_index].keys
        columns = [keys % self.vocab_size if order_index else keys]
        context = keys // self.vocab_size
        for lower in range(order_index - 1, -1, -1):
            lower_keys = self.orders[lower].keys[context]
            columns.append(lower_keys % self.vocab_size if lower else lower_keys)
            context = lower_keys // self.vocab_size
        return np.stack(columns[::-1], axis=1)

    # ---------------------------------------------------------------- persistence

    def save(self, path):
        """Writes the fast binary form (`.npz`), atomically."""
        arrays = {"vocabulary": np.array(self.vocabulary)}
        for i, order in enumerate(self.orders):
            arrays[f"keys_{i}"] = order.keys
            arrays[f"log10_prob_{i}"] = order.log10_prob
            arrays[f"log10_backoff_{i}"] = order.log10_backoff
            if order.counts is not None:
                arrays[f"counts_{i}"] = order.counts
        meta = {"format": "keras_nlp_app.ngram", "version": 1, "order": self.order,
                "smoothing": self.smoothing, "k": self.k, "alpha": self.alpha,
                "tokenizer": self.tokenizer,
                "discounts": self.discounts}
        arrays["meta"] = np.array(json.dumps(meta))
        tmp = path + ".tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path):
        """Loads a model saved by `save` (`.npz`) or an ARPA file (`.arpa`)."""
        if not os.path.exists(path):
            raise UserError(f"{path}: no such n-gram model")
        if not path.endswith(".npz"):
            from keras_nlp_app.ngram.arpa import read_arpa

            return read_arpa(path)
        try:
            data = np.load(path, allow_pickle=False)
            meta = json.loads(str(data["meta"]))
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"{path}: not an n-gram model written by knlp ngram train ({exc})") from None
        orders = [Order(data[f"keys_{i}"], data[f"log10_prob_{i}"], data[f"log10_backoff_{i}"],
                        data[f"counts_{i}"] if f"counts_{i}" in data else None)
                  for i in range(meta["order"])]
        return cls([str(w) for w in data["vocabulary"]], orders, smoothing=meta["smoothing"],
                   k=meta["k"], tokenizer=meta["tokenizer"], discounts=meta["discounts"],
                   alpha=meta.get("alpha", 0.4))


def _tokens_before(remaining):
    """How many tokens of the sentence precede each position (0 at `<s>`)."""
    starts = np.zeros(len(remaining), dtype=np.int64)
    if len(remaining):
        is_start = np.ones(len(remaining), dtype=bool)
        is_start[1:] = remaining[:-1] == 1
        start_positions = np.nonzero(is_start)[0]
        starts = start_positions[np.cumsum(is_start) - 1]
    return np.arange(len(remaining)) - starts


def _build_vocabulary(sentences, min_count=1, max_vocab=None):
    """`<unk>`, `<s>`, `</s>`, then words by descending count (ties alphabetical)."""
    counts = collections.Counter(w for s in sentences for w in s)
    for special in (UNK, BOS, EOS):
        counts.pop(special, None)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if max_vocab is not None:
        words = words[: max(max_vocab - 3, 0)]
    return [UNK, BOS, EOS] + words


def _count(tokens, remaining, order, vocab_size):
    """Raw counts of every order: list of (keys, counts, first_position, row_at_position)."""
    result = []
    rows = tokens.copy()  # unigram row == word id
    unigram_counts = np.bincount(tokens, minlength=vocab_size)
    first = np.full(vocab_size, -1, dtype=np.int64)
    seen = np.unique(tokens, return_index=True)
    first[seen[0]] = seen[1]
    result.append((np.arange(vocab_size, dtype=np.int64), unigram_counts, first, rows))
    for k in range(1, order):
        positions = np.nonzero(remaining > k)[0]
        keys = rows[positions] * vocab_size + tokens[positions + k]
        unique, index, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                                   return_counts=True)
        rows = np.full(len(tokens), -1, dtype=np.int64)
        rows[positions] = inverse
        result.append((unique, counts, positions[index], rows))
    return result


def _kneser_ney(counts, tokens, vocab_size, discount_fallback=None):
    """Interpolated modified Kneser-Ney, with KenLM's conventions.

    Adjusted counts: the highest order and n-grams starting with `<s>` keep their counts; other
    n-grams count their distinct one-word left extensions. Discounts D1, D2, D3+ per order from
    the counts-of-counts of adjusted counts (Chen & Goodman eq. 26). The unigram distribution is
    interpolated with the uniform one over the vocabulary without `<s>`.
    """
    order = len(counts)
    adjusted = []
    for k in range(order):
        keys, raw, first, _ = counts[k]
        if k == order - 1:
            a = raw.astype(np.int64)
        else:
            upper_first = counts[k + 1][2]
            suffix_rows = counts[k][3][upper_first + 1]
            a = np.bincount(suffix_rows, minlength=len(keys)).astype(np.int64)
            starts_bos = np.zeros(len(keys), dtype=bool)
            present = first >= 0
            starts_bos[present] = tokens[first[present]] == BOS_ID
            a = np.where(starts_bos, raw, a)
        if k == 0:
            a[BOS_ID] = 0
        adjusted.append(a)

    discounts = [_discounts(a, k + 1, discount_fallback) for k, a in enumerate(adjusted)]

    orders = []
    lower_prob = None
    gammas = []
    for k in range(order):
        keys = counts[k][0]
        a = adjusted[k].astype(np.float64)
        d = np.asarray(discounts[k])[np.minimum(adjusted[k], 3)]
        groups = keys // vocab_size if k else np.zeros(len(keys), dtype=np.int64)
        n_groups = len(counts[k - 1][0]) if k else 1
        denominator = np.bincount(groups, weights=a, minlength=n_groups)
        gamma = np.bincount(groups, weights=np.where(a > 0, d, 0.0), minlength=n_groups)
        with np.errstate(divide="ignore", invalid="ignore"):
            uninterpolated = np.where(denominator[groups] > 0, (a - d) / denominator[groups], 0.0)
            gamma = np.where(denominator > 0, gamma / np.maximum(denominator, 1e-300), 0.0)
        if k == 0:
            prob = uninterpolated + gamma[0] / (vocab_size - 1)
        else:
            suffix = counts[k - 1][3][counts[k][2] + 1]
            prob = uninterpolated + gamma[groups] * lower_prob[suffix]
        gammas.append(gamma)
        lower_prob = prob
        with np.errstate(divide="ignore"):
            log10_prob = np.log10(prob)
        if k == 0:
            log10_prob[BOS_ID] = LOG10_ZERO
        orders.append(Order(keys, log10_prob, np.zeros(len(keys)), counts[k][1]))
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
    for i, (keys, raw, _, _) in enumerate(counts):
        raw = raw.astype(np.float64)
        if i == 0:
            total = raw.sum() - raw[BOS_ID]
            context_total = np.full(len(keys), total)
        else:
            groups = keys // vocab_size
            upper = np.bincount(groups, weights=raw, minlength=len(counts[i - 1][0]))
            context_total = upper[groups]
        if smoothing == "add_k":
            p = (raw + k) / (context_total + k * (vocab_size - 1))
        else:
            p = raw / np.maximum(context_total, 1)
        with np.errstate(divide="ignore"):
            logp = np.log10(p)
        if i == 0:
            logp[BOS_ID] = LOG10_ZERO
        orders.append(Order(keys, logp, np.zeros(len(keys)), counts[i][1]))
    return orders


def perplexity_report(model, sentences, *, include_eos=True):
    """KenLM-style scores of tokenized sentences.

    Perplexity = 10^(-sum log10 p / N), N = words (+ one `</s>` per sentence when include_eos).
    OOV words are scored as `<unk>` and counted; `perplexity_excluding_oov` leaves them out.
    Zero-probability tokens (MLE) make the perplexity infinite; they are counted in `zero_prob`.
    """
    if not sentences:
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
