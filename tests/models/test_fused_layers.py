"""The tagger's fast layers against the Keras layers they replace: the fused BiLSTM against
`Bidirectional(LSTM)` (outputs and gradients, on right-padded rows), the character CNN's
matrix-product form against `Conv1D`."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def padded_batch():
    rng = np.random.default_rng(0)
    lengths = np.array([6, 3, 1, 0, 5])
    inputs = rng.normal(size=(len(lengths), 6, 7)).astype("float32")
    mask = np.arange(6)[None, :] < lengths[:, None]
    return inputs, mask


def _keras_twin(fused, units):
    """A Keras `Bidirectional(LSTM)` holding the fused layer's weights."""
    import keras

    twin = keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=True))
    twin.build((None, None, 7))
    for layer, direction in ((twin.forward_layer, "forward"), (twin.backward_layer, "backward")):
        for target, source in zip(layer.cell.weights, fused.directions[direction]):
            target.assign(source)
    return twin


def test_fused_bilstm_equals_keras_bidirectional_lstm(padded_batch):
    import tensorflow as tf

    from keras_nlp_app.models.recurrent import FusedBidirectionalLSTM

    inputs, mask = padded_batch
    fused = FusedBidirectionalLSTM(4)
    fused.build(inputs.shape)
    rng = np.random.default_rng(1)
    for weight in fused.weights:  # biases away from their initial value, so gate order shows
        weight.assign(rng.normal(scale=0.5, size=weight.shape).astype("float32"))
    twin = _keras_twin(fused, 4)
    x = tf.constant(inputs)
    results = []
    for layer in (fused, twin):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = layer(x, mask=tf.constant(mask))
            loss = tf.reduce_sum(tf.sin(outputs) * tf.cast(mask, tf.float32)[..., None])
        results.append((outputs.numpy(), tape.gradient(loss, [x, *layer.trainable_weights])))
    (ours, our_grads), (theirs, their_grads) = results
    assert ours.shape == (5, 6, 8)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert np.all(ours[~mask] == 0) and np.abs(ours[mask]).min() > 0
    for a, b in zip(our_grads, their_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_fused_bilstm_without_a_mask_reads_every_step_and_round_trips_its_config(padded_batch):
    from keras_nlp_app.models.recurrent import FusedBidirectionalLSTM

    inputs, _ = padded_batch
    fused = FusedBidirectionalLSTM(3, name="bilstm")
    outputs = fused(inputs).numpy()
    np.testing.assert_allclose(outputs, _keras_twin(fused, 3)(inputs).numpy(), atol=1e-5)
    again = FusedBidirectionalLSTM.from_config(fused.get_config())
    assert (again.units, again.name) == (3, "bilstm")


@pytest.mark.parametrize("kernel", [3, 4])
def test_char_cnn_as_a_matrix_product_equals_its_convolution(kernel):
    from keras_nlp_app.models.tagger_model import CharCNN

    chars = np.random.default_rng(kernel).integers(0, 40, size=(3, 5, 9)).astype("int32")
    chars[0, 1, 4:] = 0
    chars[2, 4] = 0  # a padding token
    layer = CharCNN(40, 7, 11, kernel, 0.0)
    pooled = layer(chars).numpy()
    flat = chars.reshape(-1, 9)
    convolved = layer.conv(layer.embedding(flat)).numpy()
    real = (flat != 0)[..., None]
    expected = np.where(real.any(1), np.max(np.where(real, convolved, -1e4), 1), 0)
    np.testing.assert_allclose(pooled, expected.reshape(3, 5, 11), atol=1e-6)
    assert np.all(pooled[2, 4] == 0) and np.abs(pooled).max() > 0


def test_the_tagger_builds_keras_bilstms_when_fused_lstm_is_off():
    """`fused_lstm: false` gives Keras' `Bidirectional(LSTM)`, the same shapes and parameters."""
    import keras

    from keras_nlp_app.models import build_model
    from keras_nlp_app.models.recurrent import FusedBidirectionalLSTM

    sizes = dict(vocab_size=20, char_vocab_size=10, num_tags=5, max_word_length=6, word_dim=8,
                 char_dim=4, char_filters=4, case_dim=2, lstm_units=6)
    fused = build_model("bilstm_crf_tagger", **sizes)
    plain = build_model("bilstm_crf_tagger", fused_lstm=False, **sizes)
    assert any(isinstance(layer, FusedBidirectionalLSTM) for layer in fused.layers)
    assert not any(isinstance(layer, FusedBidirectionalLSTM) for layer in plain.layers)
    assert any(isinstance(layer, keras.layers.Bidirectional) for layer in plain.layers)
    assert fused.count_params() == plain.count_params()
