"""Learning-rate schedules and optimizer settings."""

import numpy as np
import pytest

from keras_nlp_app.config import load_config
from keras_nlp_app.training.schedules import WarmupDecay, make_optimizer


def rate(schedule, step):
    return float(schedule(step))


def test_noam_warms_up_linearly_then_decays_with_the_inverse_square_root():
    schedule = WarmupDecay(1e-3, 10_000, warmup_steps=100, decay="noam")
    assert rate(schedule, 49) == pytest.approx(0.5e-3)
    assert rate(schedule, 99) == pytest.approx(1e-3)
    assert rate(schedule, 399) == pytest.approx(0.5e-3)  # sqrt(100 / 400)


def test_step_decay_halves_every_epoch_from_the_start_epoch():
    schedule = WarmupDecay(1.0, 1000, decay="step", steps_per_epoch=10, decay_rate=0.5,
                           decay_start_epoch=5)
    assert [rate(schedule, 10 * epoch) for epoch in range(6)] == [1, 1, 1, 1, 0.5, 0.25]


def test_cosine_ends_at_the_floor():
    schedule = WarmupDecay(2e-3, 2000, warmup_steps=100, decay="cosine", floor=0.1)
    assert rate(schedule, 1999) == pytest.approx(2e-4, rel=1e-3)


def test_gradient_accumulation_applies_the_update_every_n_batches():
    import keras

    cfg = load_config([], ["train.gradient_accumulation_steps=2", "train.optimizer=sgd",
                           "train.momentum=0.0", "train.learning_rate=0.1"])
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=make_optimizer(cfg.train, 10), loss="mse")
    x, y = np.ones((1, 2), np.float32), np.ones((1, 1), np.float32) * 5
    before = model.get_weights()[0].copy()
    model.train_on_batch(x, y)
    assert np.allclose(model.get_weights()[0], before)  # accumulated, not applied
    model.train_on_batch(x, y)
    assert not np.allclose(model.get_weights()[0], before)


def test_adamw_leaves_biases_and_layer_norms_undecayed():
    import keras

    cfg = load_config([], ["train.optimizer=adamw", "train.weight_decay=0.5",
                           "train.learning_rate=0.001"])
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, bias_initializer="ones"),
                              keras.layers.LayerNormalization()])
    optimizer = make_optimizer(cfg.train, 10)
    model.compile(optimizer=optimizer, loss="mse")
    decayed = [v.path for v in model.trainable_variables if optimizer._use_weight_decay(v)]
    assert decayed == [model.layers[0].kernel.path]


def test_moving_averages_are_what_validation_checkpoints_and_the_final_model_see(tmp_path):
    import keras
    import tensorflow as tf

    from keras_nlp_app.training import loop

    cfg = load_config([], ["train.optimizer=sgd", "train.momentum=0.0",
                           "train.learning_rate=0.1", "train.ema_decay=0.5"])
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=make_optimizer(cfg.train, 6), loss="mse")
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    y = np.array([[2.0], [-1.0], [1.0]], np.float32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(1)

    class Record(keras.callbacks.Callback):
        raw, averaged, validation = [], [], []

        def on_train_batch_end(self, batch, logs=None):
            self.raw.append([w.copy() for w in self.model.get_weights()])

        def on_epoch_end(self, epoch, logs=None):
            self.averaged.append([w.copy() for w in self.model.get_weights()])
            kernel, bias = self.averaged[-1]
            self.validation.append((float(np.mean((x @ kernel + bias - y) ** 2)), logs["val_loss"]))

    record = Record()
    loop.fit(model, tf.distribute.get_strategy(), data, data, epochs=2, steps_per_epoch=3,
             callbacks=[record], verbose=0,
             backup=loop.TrainingBackup(str(tmp_path / "backup"), every_steps=2))
    expected = record.raw[0]
    for step, raw in enumerate(record.raw[1:], start=2):
        expected = [0.5 * a + 0.5 * w for a, w in zip(expected, raw)]
        if step % 3 == 0:  # an epoch's end: the averages are in the model
            for got, want in zip(record.averaged[step // 3 - 1], expected):
                np.testing.assert_allclose(got, want, rtol=1e-6)
    assert not np.allclose(record.averaged[0][0], record.raw[2][0])  # averaging did something
    # training went on from the raw weights: the first step of epoch 2 (the first example again)
    # is one SGD step on the squared error from the raw weights, not from the averages
    kernel, bias = record.raw[2]
    error = (x[0] @ kernel + bias - y[0]).item()
    np.testing.assert_allclose(record.raw[3][0], kernel - 0.1 * 2 * error * x[0][:, None], rtol=1e-5)
    for by_hand, logged in record.validation:  # validation scored the averaged model
        assert logged == pytest.approx(by_hand, rel=1e-5)
    for final, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(final, want, rtol=1e-6)


def test_a_constraint_holds_for_the_moving_average_too(tmp_path):
    """Keras updates the averages before it applies constraints; rows that `KeepRows` holds fixed
    must be fixed in the averaged model the epoch ends and training finishes with."""
    import keras
    import tensorflow as tf

    from keras_nlp_app.data.word_vectors import KeepRows
    from keras_nlp_app.training import loop

    cfg = load_config([], ["train.optimizer=adamw", "train.weight_decay=0.5",
                           "train.learning_rate=0.1", "train.ema_decay=0.5"])
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    kernel = model.layers[0].kernel
    kernel.assign([[3.0], [0.0]])
    kernel.constraint = KeepRows(np.array([0]), np.array([[3.0]], np.float32), 2)
    model.compile(optimizer=make_optimizer(cfg.train, 6), loss="mse")
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    data = tf.data.Dataset.from_tensor_slices((x, np.array([[2.0], [-1.0], [1.0]]))).batch(1)

    class Record(keras.callbacks.Callback):
        kernels = []

        def on_epoch_end(self, epoch, logs=None):
            self.kernels.append(self.model.layers[0].kernel.numpy().copy())

    record = Record()
    loop.fit(model, tf.distribute.get_strategy(), data, data, epochs=2, steps_per_epoch=3,
             callbacks=[record], verbose=0,
             backup=loop.TrainingBackup(str(tmp_path / "backup"), every_steps=0))
    for averaged in [*record.kernels, kernel.numpy()]:
        assert averaged[0, 0] == 3.0 and abs(averaged[1, 0]) > 1e-3
