"""Decoding strategies on toy models whose logits are known, and cached = uncached decoding."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from keras_nlp_app import decoding


class BigramLM:
    """A model whose next-token logits depend only on the current token: `table[token]`."""

    context_length = None

    def __init__(self, table):
        self.table = tf.constant(table, tf.float32)
        self.vocab_size = len(table)

    def __call__(self, tokens, training=False):
        return tf.gather(self.table, tokens)

    def init_cache(self, batch_size):
        return {"unused": tf.zeros([1, batch_size])}

    def decode_step(self, token, cache, index):
        return tf.gather(self.table, token), cache


def log_softmax(rows):
    rows = np.asarray(rows, np.float64)
    rows = rows - rows.max(-1, keepdims=True)
    return rows - np.log(np.exp(rows).sum(-1, keepdims=True))


def random_table(vocab, seed):
    return np.random.default_rng(seed).normal(size=(vocab, vocab)).astype(np.float32) * 2


def continuation(tokens, prompt_length, count):
    return tokens.numpy()[0, prompt_length:prompt_length + count].tolist()


def test_greedy_follows_the_argmax_chain_and_never_emits_padding_or_unknown():
    table = random_table(6, 0)
    table[:, 0] = table[:, 1] = 100.0  # the special ids are the most likely and must be skipped
    model = BigramLM(table)
    tokens = decoding.decode_ids(model, [[3]], max_new_tokens=6, strategy="greedy")
    expected, token = [], 3
    for _ in range(6):
        token = 2 + int(np.argmax(table[token, 2:]))
        expected.append(token)
    assert continuation(tokens, 1, 6) == expected


def test_top_k_never_leaves_the_k_best():
    table = random_table(12, 1)
    model = BigramLM(table)
    prompts = [[5]] * 256
    tokens = decoding.decode_ids(model, prompts, max_new_tokens=1, temperature=1.5, top_k=3,
                                 seed=7).numpy()
    allowed = set((2 + np.argsort(-table[5, 2:])[:3]).tolist())
    drawn = set(tokens[:, 1].tolist())
    assert drawn <= allowed
    assert len(drawn) > 1  # it samples, not argmax


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    probabilities = np.array([1e-9, 1e-9, 0.5, 0.3, 0.15, 0.05])
    logits = tf.constant(np.log(probabilities)[None, :], tf.float32)
    kept = decoding.filter_logits(logits, tf.constant(0), tf.constant(0.7)).numpy()[0] > -1e8
    assert kept.tolist() == [False, False, True, True, False, False]
    kept = decoding.filter_logits(logits, tf.constant(0), tf.constant(0.85)).numpy()[0] > -1e8
    assert kept.tolist() == [False, False, True, True, True, False]
    # sampling with top_p=0.7 draws only ids 2 and 3, in the renormalized 5:3 proportion
    model = BigramLM(np.tile(np.log(probabilities), (6, 1)))
    tokens = decoding.decode_ids(model, [[2]] * 1024, max_new_tokens=1, top_p=0.7, seed=3).numpy()
    drawn = tokens[:, 1]
    assert set(drawn.tolist()) == {2, 3}
    assert abs(np.mean(drawn == 2) - 0.625) < 0.06


def test_sampling_is_reproducible_by_seed_and_temperature_zero_is_greedy():
    model = BigramLM(random_table(9, 2))
    first = decoding.decode_ids(model, [[2], [4, 5]], max_new_tokens=12, top_k=5, seed=11)
    again = decoding.decode_ids(model, [[2], [4, 5]], max_new_tokens=12, top_k=5, seed=11)
    other = decoding.decode_ids(model, [[2], [4, 5]], max_new_tokens=12, top_k=5, seed=12)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    cold = decoding.decode_ids(model, [[2]], max_new_tokens=8, temperature=0.0)
    greedy = decoding.decode_ids(model, [[2]], max_new_tokens=8, strategy="greedy")
    assert np.array_equal(cold, greedy)


def test_repetition_penalty_steers_greedy_away_from_seen_tokens():
    table = np.full((5, 5), -5.0, np.float32)
    table[:, 3] = 2.0  # always most likely: greedy repeats 3 forever
    table[:, 4] = 1.0
    model = BigramLM(table)
    plain = decoding.decode_ids(model, [[2]], max_new_tokens=3, strategy="greedy")
    assert continuation(plain, 1, 3) == [3, 3, 3]
    penalized = decoding.decode_ids(model, [[2]], max_new_tokens=3, strategy="greedy",
                                    repetition_penalty=4.0)
    assert continuation(penalized, 1, 3) == [3, 4, 3]  # 3: 2/4 = 0.5 > 4: 1/4


def test_stop_ids_end_a_row_and_padding_follows():
    table = np.full((5, 5), -5.0, np.float32)
    table[2, 3] = table[3, 4] = table[4, 2] = 5.0  # 2 → 3 → 4 → 2 ...
    tokens = decoding.decode_ids(BigramLM(table), [[2]], max_new_tokens=6, strategy="greedy",
                                 stop_ids=(4,))
    assert continuation(tokens, 1, 6) == [3, 4, 0, 0, 0, 0]


def brute_force_best(table, start, steps):
    log_probs = log_softmax(table)
    best, best_score = None, -np.inf
    for sequence in itertools.product(range(2, len(table)), repeat=steps):
        score, previous = 0.0, start
        for token in sequence:
            score += log_probs[previous, token]
            previous = token
        if score > best_score:
            best, best_score = list(sequence), score
    return best


def test_beam_search_finds_the_brute_force_best_sequence():
    for seed in range(4):
        table = random_table(6, 10 + seed)
        table[:, :2] = -30.0  # the special ids carry (almost) no probability mass
        tokens = decoding.decode_ids(BigramLM(table), [[2]], max_new_tokens=4, strategy="beam",
                                     beam_size=16)
        assert continuation(tokens, 1, 4) == brute_force_best(table, 2, 4)


def test_beam_search_beats_greedy_where_the_greedy_first_step_is_a_trap():
    table = np.full((6, 6), -30.0, np.float32)
    table[2, 3], table[2, 4] = np.log(0.6), np.log(0.4)  # greedy takes 3 ...
    table[3, 2:] = 0.0                                   # ... which continues uniformly (1/4)
    table[4, 5], table[4, 2] = np.log(0.99), np.log(0.01)  # while 4 → 5 is almost sure
    table[5, 5] = 0.0
    model = BigramLM(table)
    greedy = decoding.decode_ids(model, [[2]], max_new_tokens=2, strategy="greedy")
    beam = decoding.decode_ids(model, [[2]], max_new_tokens=2, strategy="beam", beam_size=2)
    assert continuation(greedy, 1, 1) == [3]
    assert continuation(beam, 1, 2) == [4, 5] == brute_force_best(table, 2, 2)


def test_prompts_of_different_lengths_share_one_compiled_loop():
    model = BigramLM(random_table(8, 4))
    short, _, _ = decoding.bucketed_buffer([[2, 3, 4]], 20)
    long, _, _ = decoding.bucketed_buffer([[2, 3, 4, 5, 6, 7, 2]], 20)
    assert short.shape == long.shape  # the same (batch, length) bucket: XLA compiles once
    decoding.decode_ids(model, [[2, 3, 4]], max_new_tokens=20, top_k=3, seed=1)
    decoding.decode_ids(model, [[2, 3, 4, 5, 6, 7, 2]], max_new_tokens=20, temperature=0.5, seed=2)
    decoder = decoding.compiled_decoder(model)
    assert decoder.experimental_get_tracing_count() == 1


def test_each_row_keeps_its_prompt_and_gets_exactly_max_new_tokens():
    model = BigramLM(random_table(7, 5))
    prompts = [[2], [3, 4, 5], [6, 2]]
    tokens = decoding.decode_ids(model, prompts, max_new_tokens=5, top_k=4, seed=0).numpy()
    for row, prompt in zip(tokens, prompts):
        assert row[:len(prompt)].tolist() == prompt
        assert np.all(row[len(prompt):len(prompt) + 5] >= 2)
        assert np.all(row[len(prompt) + 5:] == 0)


@pytest.mark.parametrize("family", ["transformer", "lstm", "gru"])
def test_cached_and_uncached_decoding_give_identical_tokens(family):
    import keras

    from keras_nlp_app.models.lstm_lm import build_lstm_lm
    from keras_nlp_app.models.transformer_lm import build_transformer_lm

    keras.utils.set_random_seed(3)
    if family == "transformer":
        # context 8 and 30 new tokens: the window moves on (and the cache is refilled) 6 times
        model = build_transformer_lm(vocab_size=40, context_length=8, num_layers=2, num_heads=2,
                                     hidden_dim=16)
    else:
        model = build_lstm_lm(vocab_size=40, units=16, cell=family)
    model(np.zeros((1, 4), np.int32))
    prompts = [[3, 4, 5], [7], [9, 10, 11, 12, 13]]
    cached = decoding.decode_ids(model, prompts, max_new_tokens=30, strategy="greedy")
    uncached = decoding.decode_ids(model, prompts, max_new_tokens=30, strategy="greedy",
                                   use_cache=False)
    assert np.array_equal(cached.numpy(), uncached.numpy())
    sampled = [decoding.decode_ids(model, prompts, max_new_tokens=30, top_p=0.9, seed=5,
                                   use_cache=flag).numpy() for flag in (True, False)]
    assert np.array_equal(*sampled)


class ConditionalBigramLM(BigramLM):
    """`table[token] + bias` where every row's `bias [V]` comes from its source (seq2seq-like)."""

    def decode(self, tokens, source):
        return tf.gather(self.table, tokens) + source["bias"][:, None, :]

    static_cache = ("bias",)  # every beam of a row has its row's: beam search need not reorder it

    def init_cache(self, batch_size, source, length=None):
        return {"bias": source["bias"][None]}  # batch on axis 1

    def decode_step(self, token, cache, index):
        return tf.gather(self.table, token) + cache["bias"][0], cache


def test_a_source_conditions_every_strategy_and_beam_search_still_finds_the_best():
    table = random_table(6, 21)
    table[:, :2] = -30.0
    bias = np.zeros((2, 6), np.float32)
    bias[1, 5] = 6.0  # the second source pulls strongly toward token 5
    source = {"bias": tf.constant(bias)}
    model = ConditionalBigramLM(table)
    greedy = decoding.decode_ids(model, [[2], [2]], max_new_tokens=3, strategy="greedy",
                                 source=source).numpy()
    assert greedy[1, 1:4].tolist() == [5, 5, 5]
    uncached = decoding.decode_ids(model, [[2], [2]], max_new_tokens=3, strategy="greedy",
                                   source=source, use_cache=False).numpy()
    assert np.array_equal(greedy, uncached)
    beam = decoding.decode_ids(model, [[2], [2]], max_new_tokens=3, strategy="beam",
                               beam_size=16, source=source).numpy()
    for row in range(2):
        assert beam[row, 1:4].tolist() == brute_force_best(table + bias[row], 2, 3)


def test_length_penalty_ranks_finished_hypotheses_as_defined():
    eos = 3
    table = np.full((8, 8), -30.0, np.float32)
    table[2, 4], table[2, 5] = np.log(0.5), np.log(0.45)  # BOS → A (short) or B (long)
    table[4, eos] = 0.0                                    # A EOS: log p = log 0.5, 2 tokens
    table[5, 6] = table[6, 7] = table[7, eos] = 0.0        # B C D EOS: log 0.45, 4 tokens
    table[eos, eos] = 0.0
    model = BigramLM(table)

    def best(alpha):
        tokens = decoding.decode_ids(model, [[2]], max_new_tokens=6, strategy="beam",
                                     beam_size=2, length_penalty=alpha, stop_ids=(eos,))
        return [t for t in tokens.numpy()[0, 1:] if t]

    # alpha 0: raw log-probabilities, the short hypothesis wins (-0.69 > -0.80); alpha 1:
    # GNMT divides by (5 + len) / 6, giving -0.69 / (7/6) = -0.59 < -0.80 / (9/6) = -0.53
    assert best(0.0) == [4, eos]
    assert best(1.0) == [5, 6, 7, eos]


def test_n_best_returns_every_beam_best_first_with_its_normalized_score():
    table = random_table(6, 30)
    table[:, :2] = -30.0
    model = BigramLM(table)
    buffer, lengths, _ = decoding.bucketed_buffer([[2]], 3)
    decode = decoding.compiled_decoder(model, strategy="beam", beam_size=4, n_best=True)
    tokens, scores = decode(buffer, lengths, tf.constant(3), tf.constant(0.0), tf.constant(0),
                            tf.constant(1.0), tf.constant(1.0), tf.constant(0), tf.constant(0.0))
    scores = scores.numpy()[0]
    assert np.all(np.diff(scores) <= 0)
    log_probs = log_softmax(table)
    for row, score in zip(tokens.numpy()[0], scores):
        sequence = row[:4].tolist()
        assert score == pytest.approx(sum(log_probs[a, b] for a, b in zip(sequence, sequence[1:])),
                                      abs=1e-3)
    assert tokens.numpy()[0, 0, 1:4].tolist() == brute_force_best(table, 2, 3)


@pytest.mark.parametrize("seed, rows", [(0, 16), (1, 16), (2, 16), (3, 13), (4, 1)])
def test_beam_search_that_stops_when_each_row_is_settled_answers_as_the_full_search(seed, rows):
    """Rows stop costing steps once no live beam can beat their best ended one, and the search
    goes on over the live half of the batch when at most half is live; the answers are those of
    running every beam of every row to its end (the n-best search's best), for prompts of any
    length, stop tokens of any likelihood, any length penalty and batches of any size."""
    rng = np.random.default_rng(seed)
    table = random_table(30, seed)
    eos = 5
    table[:, eos] += rng.uniform(-1.0, 3.0, size=30)  # rows end early, late or never
    model = BigramLM(table)
    prompts = [rng.integers(2, 30, rng.integers(1, 6)).tolist() for _ in range(16)]
    buffer, lengths, _ = decoding.bucketed_buffer(prompts, 20)
    buffer, lengths = buffer[:rows], lengths[:rows]
    fast = decoding.compiled_decoder(model, strategy="beam", beam_size=4, stop_ids=(eos,))
    full = decoding.compiled_decoder(model, strategy="beam", beam_size=4, stop_ids=(eos,),
                                     n_best=True)
    for alpha in (0.0, 0.6, 1.5):
        settings = (tf.constant(20), tf.constant(0.0), tf.constant(0), tf.constant(1.0),
                    tf.constant(1.0), tf.constant(0), tf.constant(alpha))
        best_of_all, _ = full(buffer, lengths, *settings)
        np.testing.assert_array_equal(fast(buffer, lengths, *settings).numpy(),
                                      best_of_all.numpy()[:, 0])


class CountingBigramLM(BigramLM):
    """A BigramLM that counts the beam rows its decoding steps are given."""

    def __init__(self, table):
        super().__init__(table)
        self.row_steps = tf.Variable(0)

    def decode_step(self, token, cache, index):
        self.row_steps.assign_add(tf.shape(token)[0])
        return super().decode_step(token, cache, index)


def test_beam_search_answers_rows_that_settle_at_very_different_steps():
    """Most rows end at once and a few run to the length limit: the search compacts down to
    the few, so it does a fraction of the full search's row-steps, and each compaction writes
    the settled rows' answers out, so every row's answer is still the full search's."""
    eos = 3
    table = np.full((8, 8), -4.0, np.float32)
    table[2, eos] = 3.0            # token 2 ends almost surely: most prompts end at once
    table[4, 5] = table[5, 4] = 3.0  # 4 and 5 alternate and never end
    table[6, 7] = table[7, eos] = 2.0
    model = CountingBigramLM(table)
    prompts = [[2]] * 12 + [[4], [6], [5], [4, 5]]
    buffer, lengths, _ = decoding.bucketed_buffer(prompts, 30)
    settings = (tf.constant(30), tf.constant(0.0), tf.constant(0), tf.constant(1.0),
                tf.constant(1.0), tf.constant(0), tf.constant(0.6))
    fast = decoding.compiled_decoder(model, strategy="beam", beam_size=3, stop_ids=(eos,))
    full = decoding.compiled_decoder(model, strategy="beam", beam_size=3, stop_ids=(eos,),
                                     n_best=True)
    answers = fast(buffer, lengths, *settings).numpy()
    fast_row_steps = int(model.row_steps.numpy())
    np.testing.assert_array_equal(answers, full(buffer, lengths, *settings)[0].numpy()[:, 0])
    full_row_steps = int(model.row_steps.numpy()) - fast_row_steps
    # the full search keeps all 16 rows to the end; compacting keeps 4 after the first steps
    assert fast_row_steps < full_row_steps / 2
    assert answers[0, 1:3].tolist() == [eos, 0]
    assert answers[12, 1:5].tolist() == [5, 4, 5, 4]  # still going at the limit


@pytest.mark.parametrize("beam_size, vocab", [(4, 50), (3, 2), (1, 7)])
def test_best_candidates_equal_one_top_k_over_every_beam_and_token(beam_size, vocab):
    rng = np.random.default_rng(beam_size)
    # few distinct values: many ties, which must resolve as one top-k does (lower beam, lower id)
    candidates = rng.integers(-3, 1, size=(5 * beam_size, vocab)).astype(np.float32)
    best, beam, token = decoding.best_candidates(tf.constant(candidates), beam_size)
    expected, flat_index = tf.math.top_k(candidates.reshape(5, beam_size * vocab), k=beam_size)
    np.testing.assert_array_equal(best, expected)
    np.testing.assert_array_equal(beam, flat_index // vocab)
    np.testing.assert_array_equal(token, flat_index % vocab)


@pytest.mark.parametrize("strategy, n_best", [("beam", False), ("beam", True), ("greedy", False),
                                             ("sample", False)])
def test_decoding_over_a_growing_cache_answers_as_over_the_whole_buffer(strategy, n_best):
    """A Transformer's decoding starts with a self-attention cache of a quarter of the buffer
    and grows it once; its tokens are those of a cache of the whole buffer from the start, for
    sentences that end before the growth and sentences that run past it."""
    import keras

    from keras_nlp_app.models.transformer_seq2seq import build_transformer_seq2seq

    keras.utils.set_random_seed(5)
    model = build_transformer_seq2seq(source_vocab_size=30, target_vocab_size=30, num_layers=2,
                                      num_heads=2, hidden_dim=16, dropout=0.0, max_length=64)
    model({"source": np.ones((1, 4), np.int32), "target": np.ones((1, 4), np.int32)})
    for block in model.decoder_blocks:  # the tokens then depend on the history in the cache
        kernel = block.self_attention.output_projection.kernel
        kernel.assign(kernel * 30.0)
    eos = 4
    embeddings = model.target_embedding.embeddings  # (tied output) some sentences then end early
    embeddings.assign(tf.tensor_scatter_nd_update(embeddings, [[eos]], embeddings[eos:eos + 1] * 2.4))
    rng = np.random.default_rng(5)
    source = model.encode(tf.constant(rng.integers(3, 30, (8, 6)), tf.int32))
    prompts = [[2] + rng.integers(5, 30, n).tolist() for n in range(8)]
    buffer, lengths, _ = decoding.bucketed_buffer(prompts, 40)
    temperature = 1.0 if strategy == "sample" else 0.0
    settings = (tf.constant(40), tf.constant(temperature), tf.constant(0), tf.constant(1.0),
                tf.constant(1.0), tf.constant(7), tf.constant(0.6), source)
    spec = tf.nest.map_structure(lambda t: tf.TensorSpec([None] * t.shape.rank, t.dtype), source)

    def search():
        decode = decoding.compiled_decoder(model, strategy=strategy, beam_size=3, stop_ids=(eos,),
                                           source_spec=spec, n_best=n_best)
        return tf.nest.map_structure(lambda t: t.numpy(), decode(buffer, lengths, *settings))

    growing = search()
    model.grow_cache = None  # the decoder then keeps a cache of the whole buffer throughout
    model.__dict__.pop("_knlp_decoders")
    whole = search()
    # the same tokens; the n-best scores to rounding (sums over 16 and 64 positions round apart)
    np.testing.assert_array_equal(growing[0] if n_best else growing, whole[0] if n_best else whole)
    if n_best:
        np.testing.assert_allclose(growing[1], whole[1], rtol=1e-5)
    best = growing[0][:, 0] if n_best else growing
    ends = np.where((best == eos).any(-1), (best == eos).argmax(-1), best.shape[1])
    assert ends.min() < 16 < ends.max()  # the cache grows at position 16 (a quarter of 64)
