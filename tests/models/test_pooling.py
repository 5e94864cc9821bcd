"""Pooling over time ignores padding whatever the shapes, and the LSTM classifier's ULMFiT
concat pooling sees through padding too."""

import numpy as np
import pytest


def test_masked_max_and_mean_when_the_length_equals_the_width():
    """One row of length T = D: Keras' TensorFlow `add` once took the `[1, T, 1]` mask term
    for a bias over the last axis and added it transposed."""
    from keras_nlp_app.models.pooling import masked_max, masked_mean

    rng = np.random.default_rng(0)
    for length, width in ((6, 6), (6, 4), (3, 3)):
        sequence = rng.normal(size=(1, length, width)).astype("float32")
        token_ids = np.array([[4] * (length - 2) + [0, 0]])
        real = sequence[:, : length - 2]
        np.testing.assert_allclose(masked_max(sequence, token_ids), real.max(axis=1), rtol=1e-6)
        np.testing.assert_allclose(masked_mean(sequence, token_ids), real.mean(axis=1),
                                   rtol=1e-5)
    empty = masked_max(rng.normal(size=(1, 4, 4)).astype("float32"), np.zeros((1, 4), int))
    np.testing.assert_array_equal(empty, np.zeros((1, 4)))


@pytest.mark.parametrize("pooling", ["last", "concat"])
def test_the_lstm_classifier_ignores_padding(pooling):
    from keras_nlp_app.models.lstm_classifier import build_lstm_classifier

    model = build_lstm_classifier(vocab_size=50, embedding_dim=8, lstm_units=6, pooling=pooling)
    short, padded = model(np.array([[5, 9, 2, 7]])), model(np.array([[5, 9, 2, 7, 0, 0]]))
    assert short.shape == (1, 1)
    np.testing.assert_allclose(short, padded, atol=1e-6)


def test_an_unknown_pooling_is_refused():
    from keras_nlp_app.models.lstm_classifier import build_lstm_classifier

    with pytest.raises(ValueError, match="pooling must be one of last, concat"):
        build_lstm_classifier(vocab_size=50, pooling="mean")
