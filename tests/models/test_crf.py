"""The CRF against brute-force enumeration of every tag sequence on tiny inputs."""

import itertools

import numpy as np
import pytest


def _sequence_score(crf, emissions, tags):
    transitions, start, end = (w.numpy() for w in (crf.transitions, crf.start, crf.end))
    score = start[tags[0]] + end[tags[-1]] + sum(emissions[t, tag] for t, tag in enumerate(tags))
    return score + sum(transitions[a, b] for a, b in zip(tags, tags[1:]))


@pytest.fixture(scope="module")
def crf_and_inputs():
    from keras_nlp_app.models.crf import CRF

    rng = np.random.default_rng(0)
    k, lengths = 3, [4, 2, 1, 3]
    crf = CRF(k)
    emissions = rng.normal(size=(len(lengths), 4, k)).astype("float32")
    crf(emissions)
    for weight in (crf.transitions, crf.start, crf.end):
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    mask = np.array([[t < n for t in range(4)] for n in lengths])
    return crf, emissions, mask, lengths


def test_log_partition_and_likelihood_equal_brute_force(crf_and_inputs):
    crf, emissions, mask, lengths = crf_and_inputs
    log_z = crf.log_partition(emissions, mask).numpy()
    tags = np.array([[2, 0, 1, 1], [1, 2, 0, 0], [0, 0, 0, 0], [2, 2, 1, 0]])
    nll = crf.negative_log_likelihood(emissions, tags, mask).numpy()
    for row, n in enumerate(lengths):
        scores = [_sequence_score(crf, emissions[row], seq)
                  for seq in itertools.product(range(3), repeat=n)]
        expected = np.logaddexp.reduce(scores)
        assert log_z[row] == pytest.approx(expected, rel=1e-5)
        gold = _sequence_score(crf, emissions[row], tags[row, :n])
        assert nll[row] == pytest.approx(expected - gold, rel=1e-5, abs=1e-5)


def test_viterbi_finds_the_best_sequence_and_zeros_padding(crf_and_inputs):
    crf, emissions, mask, lengths = crf_and_inputs
    decoded = crf.decode(emissions, mask).numpy()
    for row, n in enumerate(lengths):
        best = max(itertools.product(range(3), repeat=n),
                   key=lambda seq: _sequence_score(crf, emissions[row], seq))
        assert tuple(decoded[row, :n]) == best
        assert not decoded[row, n:].any()


def test_the_likelihood_is_differentiable_and_training_lowers_it(crf_and_inputs):
    import tensorflow as tf

    crf, emissions, mask, _ = crf_and_inputs
    tags = np.zeros((4, 4), np.int32)
    before = float(tf.reduce_mean(crf.negative_log_likelihood(emissions, tags, mask)))
    logits = tf.Variable(emissions)
    for _ in range(20):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(crf.negative_log_likelihood(tf.identity(logits), tags, mask))
        grads = tape.gradient(loss, [logits, crf.transitions])
        assert all(g is not None for g in grads)
        logits.assign_sub(0.5 * grads[0])
    assert float(loss) < before / 2


def test_one_token_batches_work(crf_and_inputs):
    crf, emissions, _, _ = crf_and_inputs
    single = emissions[:, :1]
    mask = np.ones((4, 1), bool)
    best = crf.decode(single, mask).numpy()
    scores = [[_sequence_score(crf, single[row], (tag,)) for tag in range(3)] for row in range(4)]
    assert best[:, 0].tolist() == np.argmax(scores, axis=1).tolist()
    log_z = crf.log_partition(single, mask).numpy()
    assert log_z == pytest.approx(np.logaddexp.reduce(scores, axis=1), rel=1e-5)
