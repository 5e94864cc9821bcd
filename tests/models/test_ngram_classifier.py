"""The n-gram LM classifier: its class scores are the class models' sentence log-probabilities
plus the log prior, and a run fits, learns the easy task and exports for a fresh process."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_nlp_app.models import build_model
from keras_nlp_app.models.ngram_classifier import fit_class_models


def test_scores_are_class_sentence_log_probs_plus_log_prior():
    rows = [[2, 3, 4], [2, 3, 5, 3], [6, 7], [6, 7, 2], [6, 1, 7]]
    fitted = fit_class_models(rows, [0, 0, 1, 1, 1], num_classes=2, vocab_size=8, order=2)
    model = build_model("ngram_classifier", vocab_size=8, class_models=fitted)
    got = model.scores(tf.constant([[2, 3, 1, 0, 0], [6, 7, 0, 0, 0]])).numpy()
    for row, text in enumerate([["2", "3", "<unk>"], ["6", "7"]]):
        for label in range(2):
            expected = fitted["models"][label].sentence_scores([text])[0]["ln_prob"]
            assert got[row, label] == pytest.approx(expected + np.log([0.4, 0.6][label]), abs=1e-4)
    uniform = build_model("ngram_classifier", vocab_size=8, class_models=fitted, prior="uniform")
    shift = got - uniform.scores(tf.constant([[2, 3, 1, 0, 0], [6, 7, 0, 0, 0]])).numpy()
    np.testing.assert_allclose(shift, np.log([[0.4, 0.6]] * 2), atol=1e-5)


@pytest.mark.slow  # about 25 s alone: fitting, export, and a fresh TensorFlow process
def test_ngram_classifier_run_learns_and_exports_for_a_fresh_process(easy_files, tmp_path):
    from keras_nlp_app.config import load_config
    from keras_nlp_app.errors import ConfigError
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.inference import load_predictor
    from keras_nlp_app.training.train import train
    from tests.conftest import fresh_process_outputs, tiny_overrides

    overrides = tiny_overrides(*easy_files, **{"model.name": "ngram_classifier",
                                               "model.params": "{order: 2}", "train.epochs": 1})
    run_dir = train(load_config(["configs/sst2_lstm.yaml"], overrides), run_dir=str(tmp_path / "run"))
    with open(f"{run_dir}/metrics.json") as f:
        assert json.load(f)["accuracy"] > 0.9
    version = export_run(run_dir, str(tmp_path / "export"))
    inputs = {"text": ["a great film", "an awful plot"]}
    fresh = fresh_process_outputs(version, inputs)
    expected = load_predictor(run_dir).predict(inputs)
    np.testing.assert_allclose(fresh["probabilities"], expected["probabilities"], atol=1e-5)
    assert fresh["class_id"] == [1, 0]
    with pytest.raises(ConfigError, match="tokenizer.ngrams: 1"):
        train(load_config(["configs/sst2_lstm.yaml"], overrides + ["tokenizer.ngrams=2"]),
              run_dir=str(tmp_path / "bad"))
