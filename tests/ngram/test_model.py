import collections
import math
import random

import numpy as np
import pytest

from keras_nlp_app.errors import UserError
from keras_nlp_app.ngram.estimate import train_model
from keras_nlp_app.ngram.io import load_model, save_model
from keras_nlp_app.ngram.model import perplexity_report

TOY = [["a", "b"], ["a", "b"], ["a", "c"]]


def reference_kneser_ney(sentences, order):
    """Interpolated modified Kneser-Ney written from Chen & Goodman with plain dicts."""
    grams = collections.Counter()
    for s in sentences:
        tokens = ["<s>"] + s + ["</s>"]
        for n in range(1, order + 1):
            for i in range(len(tokens) - n + 1):
                grams[tuple(tokens[i:i + n])] += 1
    del grams[("<s>",)]
    adjusted = {}
    for g, c in grams.items():
        if len(g) == order or g[0] == "<s>":
            adjusted[g] = c
        else:
            adjusted[g] = sum(1 for h in grams if len(h) == len(g) + 1 and h[1:] == g)
    adjusted.setdefault(("<unk>",), 0)
    vocabulary_size = len({w for s in sentences for w in s} | {"</s>", "<unk>"})
    discounts = {}
    for n in range(1, order + 1):
        cc = collections.Counter(a for g, a in adjusted.items() if len(g) == n)
        y = cc[1] / (cc[1] + 2 * cc[2])
        discounts[n] = [0.0] + [j - (j + 1) * y * cc[j + 1] / cc[j] for j in (1, 2, 3)]

    def prob(word, context):
        n = len(context) + 1
        extensions = {g: a for g, a in adjusted.items() if len(g) == n and g[:-1] == context}
        denominator = sum(extensions.values())
        if n > 1 and denominator == 0:
            return prob(word, context[1:])
        a = extensions.get(context + (word,), 0)
        gamma = sum(discounts[n][min(x, 3)] for x in extensions.values() if x > 0) / denominator
        lower = prob(word, context[1:]) if n > 1 else 1 / vocabulary_size
        return (a - discounts[n][min(a, 3)]) / denominator + gamma * lower

    def sentence_log10(sentence):
        tokens = ["<s>"] + sentence + ["</s>"]
        return [math.log10(prob(tokens[i], tuple(tokens[max(0, i - order + 1):i])))
                for i in range(1, len(tokens))]

    return sentence_log10


WORDS = list("abcdefgh") + [f"w{i}" for i in range(400)]
ZIPF = [1 / (rank + 1) for rank in range(len(WORDS))]


def random_corpus(n, seed):
    """Text-like sentences: Zipf-distributed words, and phrases that recur with Zipf frequencies,
    so every order has n-grams seen once, twice, three and four times (Kneser-Ney needs them)."""
    rng = random.Random(seed)
    phrases = [rng.choices(WORDS, weights=ZIPF, k=rng.randint(2, 5)) for _ in range(300)]
    phrase_weights = [1 / (rank + 1) for rank in range(len(phrases))]
    sentences = []
    for _ in range(n):
        sentence = []
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.6:
                sentence += rng.choices(phrases, weights=phrase_weights)[0]
            else:
                sentence += rng.choices(WORDS, weights=ZIPF, k=rng.randint(1, 3))
        sentences.append(sentence)
    return sentences


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_kneser_ney_matches_the_textbook_formula(order):
    train, test = random_corpus(400, 2), random_corpus(40, 3) + [["a", "zzz", "b"]]
    model = train_model(train, order=order)
    reference = reference_kneser_ney(train, order)
    ours, _, _, sentence = model.token_log10_probs(test)
    known = set(model.vocabulary)
    expected = [p for s in test for p in reference([w if w in known else "<unk>" for w in s])]
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)


def test_mle_is_the_count_ratio_and_reports_zero_probability_events():
    model = train_model(TOY, order=2, smoothing="mle")
    scores, _, _, _ = model.token_log10_probs([["a", "b"], ["a", "a"]])
    # P(a|<s>) = 3/3, P(b|a) = 2/3, P(</s>|b) = 2/2; P(a|a) = 0/3, P(</s>|a) = 0/3
    np.testing.assert_allclose(10 ** scores[:3], [1.0, 2 / 3, 1.0])
    assert scores[4] == -np.inf and scores[5] == -np.inf
    report = perplexity_report(model, [["a", "b"], ["a", "a"]])
    assert report["zero_prob"] == 2 and report["perplexity"] == float("inf")
    assert perplexity_report(model, [["a", "b"]])["perplexity"] == pytest.approx((2 / 3) ** (-1 / 3))


def test_add_k_uses_the_vocabulary_without_bos():
    model = train_model(TOY, order=2, smoothing="add_k", k=0.5)
    scores, _, _, _ = model.token_log10_probs([["a", "b"]])
    vocab = 5  # <unk> </s> a b c
    np.testing.assert_allclose(10 ** scores, [(3 + 0.5) / (3 + 0.5 * vocab),
                                              (2 + 0.5) / (3 + 0.5 * vocab),
                                              (2 + 0.5) / (2 + 0.5 * vocab)])


def test_stupid_backoff_multiplies_alpha_per_order_backed_off():
    model = train_model(TOY, order=2, smoothing="stupid_backoff", alpha=0.4)
    scores, _, _, _ = model.token_log10_probs([["a", "a"], ["zzz"]])
    # S(a|<s>) = 3/3; S(a|a) = 0.4 * c(a)/N; S(</s>|a) = 0.4 * c(</s>)/N with N = 9 tokens;
    # an unseen word has no score at all
    np.testing.assert_allclose(10 ** scores[:3], [1.0, 0.4 * 3 / 9, 0.4 * 3 / 9])
    assert scores[3] == -np.inf
    report = perplexity_report(model, [["a", "b"]])
    assert report["normalized"] is False and report["perplexity"] > 0


@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k", "mle", "stupid_backoff"])
def test_probabilities_over_the_vocabulary_sum_to_one(smoothing):
    model = train_model(random_corpus(400, 5), order=3, smoothing=smoothing)
    for context in (["<s>"], ["<s>", "a"], ["a", "b"], ["c", "a", "b"], ["zzz", "yyy"], []):
        probs = 10 ** model.next_log10_probs(context)
        probs[1] = 0.0  # <s> is never predicted
        if smoothing == "mle" and probs.sum() == 0:
            continue  # an unseen context has no MLE distribution
        assert probs.sum() == pytest.approx(1.0, abs=1e-9), context


def test_unknown_words_map_to_unk_at_training_and_query_time():
    corpus = [["a", "b", "rare"], ["a", "b"], ["b", "a"]]
    model = train_model(corpus, order=2, min_count=2, smoothing="add_k")
    assert "rare" not in model.vocabulary
    report = perplexity_report(model, [["a", "rare"], ["never", "seen"]])
    assert report["oov"] == 3 and report["tokens"] == 6
    same = model.token_log10_probs([["a", "rare"]])[0]
    np.testing.assert_allclose(same, model.token_log10_probs([["a", "<unk>"]])[0])
    assert train_model(corpus, order=2, max_vocab=4, smoothing="mle").vocabulary == [
        "<unk>", "<s>", "</s>", "a"]


def test_perplexity_with_and_without_eos():
    model = train_model(random_corpus(400, 6), order=3)
    with_eos = perplexity_report(model, [["a", "b"]])
    without = perplexity_report(model, [["a", "b"]], include_eos=False)
    assert (with_eos["tokens"], without["tokens"]) == (3, 2)
    scores = model.token_log10_probs([["a", "b"]])[0]
    assert without["perplexity"] == pytest.approx(10 ** (-scores[:2].sum() / 2))


def test_generation_is_seeded_and_respects_top_k():
    model = train_model(random_corpus(400, 7), order=3)
    first = model.generate(prompt="a", seed=7, max_tokens=12)
    assert first == model.generate(prompt="a", seed=7, max_tokens=12)
    greedy = model.generate(prompt="a", temperature=0, max_tokens=5)
    assert greedy == model.generate(prompt="a", temperature=0, max_tokens=5, seed=99)
    for seed in range(5):
        text = model.generate(prompt="a b", seed=seed, top_k=1, max_tokens=5)
        assert text == model.generate(prompt="a b", temperature=0, max_tokens=5)


def test_save_and_load_give_the_same_scores(tmp_path):
    model = train_model(random_corpus(400, 8), order=3)
    save_model(model, str(tmp_path / "m.npz"))
    loaded = load_model(str(tmp_path / "m.npz"))
    probe = random_corpus(20, 7)
    np.testing.assert_array_equal(model.token_log10_probs(probe)[0], loaded.token_log10_probs(probe)[0])


def test_bad_settings_and_tiny_corpora_are_clear_errors():
    with pytest.raises(UserError, match="order must be 1 to 6"):
        train_model(TOY, order=7)
    with pytest.raises(UserError, match="unknown smoothing"):
        train_model(TOY, smoothing="witten_bell")
    with pytest.raises(UserError, match="cannot estimate Kneser-Ney discounts.*--discount-fallback"):
        train_model(TOY, order=3)
    fallback = train_model(TOY, order=3, discount_fallback=[0.5, 1.0, 1.5])
    assert fallback.discounts[0] == [0.5, 1.0, 1.5]


def test_lookup_finds_every_stored_ngram_and_no_absent_one():
    model = train_model(random_corpus(300, 3), order=3)
    rng = np.random.default_rng(0)
    for k in (1, 2):
        keys = model.orders[k].keys
        stored = {int(key): row for row, key in enumerate(keys)}
        # every stored n-gram, then as many random (context, word) pairs, most of them absent
        contexts = np.concatenate([keys // model.vocab_size,
                                   rng.integers(-1, len(model.orders[k - 1].keys), len(keys))])
        words = np.concatenate([keys % model.vocab_size,
                                rng.integers(0, model.vocab_size, len(keys))])
        order = rng.permutation(len(words))
        contexts, words = contexts[order], words[order]
        expected = [stored.get(int(c) * model.vocab_size + int(w), -1) if c >= 0 else -1
                    for c, w in zip(contexts, words)]
        assert 0 < expected.count(-1) < len(expected)
        np.testing.assert_array_equal(model._lookup(k, contexts, words), expected)


@pytest.mark.parametrize("extra_words", [0, 70_000])  # word ids past 16 bits take the other sort
def test_every_position_finds_the_ngram_that_starts_there(extra_words):
    corpus = random_corpus(300, 4) + [[f"x{i}" for i in range(j, j + 10)]
                                      for j in range(0, extra_words, 10)]
    model = train_model(corpus, order=4, smoothing="mle")
    probe = corpus[:50] + random_corpus(50, 5) + [["a", "never", "seen"], corpus[-1]]
    tokens, remaining = model._encode(probe)
    expected = [model._lookup(0, None, tokens)]
    for k in range(1, model.order):
        following = np.zeros_like(tokens)
        following[: len(tokens) - k] = tokens[k:]
        expected.append(model._lookup(k, np.where(remaining > k, expected[-1], -1), following))
    found = model._position_ids(tokens, remaining)
    for mine, theirs in zip(found, expected):
        np.testing.assert_array_equal(mine, theirs)
    assert (found[3] >= 0).sum() > 10 and (found[3] < 0).sum() > 10


def test_a_file_streamed_into_ids_trains_the_model_its_sentence_list_trains(tmp_path):
    """`knlp ngram train` turns words into ids as it reads the file; the model must equal the
    one trained from the file's token lists, vocabulary order and `<unk>` included."""
    from keras_nlp_app.ngram.io import read_sentences, train_files

    corpus = random_corpus(300, 11) + [["rare", "</s>", "<unk>", "a"]]
    path = tmp_path / "train.txt"
    path.write_text("\n\n".join(" ".join(s) for s in corpus) + "\n   \n", encoding="utf-8")
    for options in ({"order": 3}, {"order": 2, "min_count": 2, "smoothing": "add_k"},
                    {"order": 2, "max_vocab": 50, "smoothing": "mle"}):
        train_files(str(path), str(tmp_path / "model"), **options)
        streamed = load_model(str(tmp_path / "model.npz"))
        listed = train_model(read_sentences(str(path)), **options)
        assert streamed.vocabulary == listed.vocabulary
        for mine, theirs in zip(streamed.orders, listed.orders):
            np.testing.assert_array_equal(mine.keys, theirs.keys)
            np.testing.assert_array_equal(mine.log10_prob, theirs.log10_prob)
            np.testing.assert_array_equal(mine.log10_backoff, theirs.log10_backoff)
    counted = train_model([["b", "a", "c"], ["c", "a"], ["d"]], order=1, smoothing="mle")
    assert counted.vocabulary == ["<unk>", "<s>", "</s>", "a", "c", "b", "d"]
    fixed = train_model([["b", "z", "a"]], order=1, smoothing="mle", vocabulary=["a", "b", "<s>"])
    assert fixed.vocabulary == ["<unk>", "<s>", "</s>", "a", "b"]
    assert fixed.orders[0].counts.tolist() == [1, 1, 1, 1, 1]  # z became <unk>
