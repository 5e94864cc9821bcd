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
