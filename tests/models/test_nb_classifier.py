"""Naive Bayes: counting gives the hand-computed posterior, complement NB equals scikit-learn's,
and a run fits in one pass and learns the easy task."""

import numpy as np
import pytest
import tensorflow as tf

from keras_nlp_app.models import build_model


def _fit(model, ids, targets):
    model.compile(loss="binary_crossentropy" if model.num_classes == 2 else "categorical_crossentropy")
    model.train_step((tf.constant(ids, tf.int32), tf.constant(targets, tf.float32)))
    model.count_seen_features()  # as the training loop's callback does before evaluating


def test_counting_gives_the_hand_computed_posterior():
    model = build_model("nb_classifier", vocab_size=6, alpha=1.0)
    _fit(model, [[2, 2, 3, 0], [4, 5, 0, 0], [2, 4, 1, 0]], [[1.0], [0.0], [1.0]])
    # class 1 saw ids 2, 2, 3, 2, 4 (5 tokens), class 0 ids 4, 5; four real ids (2..5); the
    # unknown id 1 and padding carry no evidence
    log_1 = np.log(2 / 3) + np.log((3 + 1) / (5 + 4)) + np.log((0 + 1) / (5 + 4))
    log_0 = np.log(1 / 3) + np.log((0 + 1) / (2 + 4)) + np.log((1 + 1) / (2 + 4))
    got = float(model(np.array([[2, 5, 1]], np.int32))[0, 0])
    assert got == pytest.approx(1 / (1 + np.exp(log_0 - log_1)), rel=1e-5)
    uniform = build_model("nb_classifier", vocab_size=6, alpha=1.0, prior="uniform")
    uniform.set_weights(model.get_weights())
    got = float(uniform(np.array([[2, 5, 1]], np.int32))[0, 0])
    prior_free = (log_1 - np.log(2 / 3)) - (log_0 - np.log(1 / 3))
    assert got == pytest.approx(1 / (1 + np.exp(-prior_free)), rel=1e-5)


@pytest.mark.parametrize("complement", [False, True])
def test_multiclass_scores_equal_scikit_learn(complement):
    from sklearn.naive_bayes import ComplementNB, MultinomialNB

    rng = np.random.default_rng(0)
    ids = rng.integers(2, 12, size=(40, 7))
    ids[rng.random(ids.shape) < 0.2] = 0
    labels = rng.integers(0, 3, size=40)
    # ids 12..29 are hashed n-gram buckets that never occur in training: as outside
    # scikit-learn's vectorizer vocabulary, they neither share the smoothing mass nor score
    model = build_model("nb_classifier", vocab_size=30, num_classes=3, alpha=0.5,
                        complement=complement)
    _fit(model, ids, np.eye(3)[labels])
    assert float(model.seen_features) == 10
    counts = np.stack([np.bincount(row[row >= 2] - 2, minlength=10) for row in ids])
    peer = (ComplementNB if complement else MultinomialNB)(alpha=0.5).fit(counts, labels)
    test = rng.integers(2, 12, size=(5, 7))
    test_counts = np.stack([np.bincount(row - 2, minlength=10) for row in test])
    test = np.concatenate([test, rng.integers(12, 30, size=(5, 2))], axis=1)
    np.testing.assert_allclose(model(test.astype(np.int32)).numpy(),
                               peer.predict_proba(test_counts), rtol=1e-4, atol=1e-6)


def test_naive_bayes_fits_in_one_pass_and_learns_the_easy_task(easy_files, tmp_path):
    import json

    from keras_nlp_app.config import load_config
    from keras_nlp_app.errors import ConfigError
    from keras_nlp_app.training.train import train
    from tests.conftest import tiny_overrides

    overrides = tiny_overrides(*easy_files, **{"model.name": "nb_classifier", "model.params": "{}",
                                               "train.epochs": 1})
    run_dir = train(load_config(["configs/sst2_lstm.yaml"], overrides), run_dir=str(tmp_path / "run"))
    with open(f"{run_dir}/metrics.json") as f:
        metrics = json.load(f)
    assert metrics["accuracy"] > 0.9
    # the training epoch only counts: it logs validation metrics, no training loss or accuracy
    epoch = metrics["history"][0]
    assert "loss" not in epoch and "accuracy" not in epoch
    assert epoch["val_accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-6)
    with pytest.raises(ConfigError, match="train.epochs: 1"):
        bad = load_config(["configs/sst2_lstm.yaml"], overrides + ["train.epochs=3"])
        train(bad, run_dir=str(tmp_path / "bad"))
    # monitoring a training metric (a run without validation data) logs them
    cfg = load_config(["configs/sst2_lstm.yaml"], overrides + ["train.monitor=loss"])
    with open(f"{train(cfg, run_dir=str(tmp_path / 'monitored'))}/metrics.json") as f:
        assert json.load(f)["history"][0]["loss"] > 0


def test_nbsvm_ratios_count_each_id_once_per_example():
    model = build_model("nbsvm_classifier", vocab_size=6, alpha=1.0)
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    ids = tf.constant([[2, 2, 3, 0], [4, 5, 0, 0], [2, 4, 1, 0]], tf.int32)
    model.train_step((ids, tf.constant([[1.0], [0.0], [1.0]])))
    model.count_seen_features()
    # document frequencies: positive {2: 2, 3: 1, 4: 1}, negative {4: 1, 5: 1}
    p = np.array([2, 1, 1, 0]) + 1.0
    q = np.array([0, 0, 1, 1]) + 1.0
    r = np.log(p / p.sum()) - np.log(q / q.sum())
    got = model.log_count_ratios(tf.constant([[2, 3, 4, 5]], tf.int32)).numpy()[0, :, 0]
    np.testing.assert_allclose(got, r, rtol=1e-5)
    # the counting epoch leaves the weights at 1: the logit is the sum of distinct ids' ratios
    logit = float(model.logits(tf.constant([[2, 2, 5, 1]], tf.int32))[0, 0])
    assert logit == pytest.approx(r[0] + r[3], rel=1e-5)


@pytest.mark.slow  # about 26 s on 2 cores (the default suite keeps to 10 minutes)
def test_nbsvm_counts_then_trains_and_exports_for_a_fresh_process(easy_files, tmp_path):
    import json

    from keras_nlp_app.config import load_config
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.inference import load_predictor
    from keras_nlp_app.training.train import train
    from tests.conftest import fresh_process_outputs, tiny_overrides

    overrides = tiny_overrides(*easy_files, **{"model.name": "nbsvm_classifier",
                                               "model.params": "{alpha: 1.0}", "train.epochs": 3})
    run_dir = train(load_config(["configs/sst2_lstm.yaml"], overrides), run_dir=str(tmp_path / "run"))
    with open(f"{run_dir}/metrics.json") as f:
        metrics = json.load(f)
    assert metrics["accuracy"] > 0.9 and metrics["epochs_run"] == 3
    version = export_run(run_dir, str(tmp_path / "export"))
    inputs = {"text": ["a great film", "an awful plot"]}
    fresh = fresh_process_outputs(version, inputs)
    expected = load_predictor(run_dir).predict(inputs)
    np.testing.assert_allclose(fresh["probabilities"], expected["probabilities"], atol=1e-5)
