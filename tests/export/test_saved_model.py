import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_nlp_app.errors import UserError
from keras_nlp_app.export.saved_model import export_run
from keras_nlp_app.inference import evaluate, load_predictor
from keras_nlp_app.utils.saved_models import resolve_model_dir

TEXTS = ["the film was great", "an awful plot", "", "ünïcödé 映画 😀", "good " * 500]

# Runs in a fresh interpreter that has only TensorFlow and TensorFlow Text.
LOAD_SCRIPT = """
import json, sys
import tensorflow as tf
import tensorflow_text
model = tf.saved_model.load(sys.argv[1])
out = model.signatures["serving_default"](text=tf.constant(json.loads(sys.argv[2])))
assert not any(m.startswith(("keras_nlp_app", "keras_hub")) for m in sys.modules)
decode = lambda x: [decode(y) for y in x] if isinstance(x, list) else (
    x.decode() if isinstance(x, bytes) else x)
print(json.dumps({k: decode(v.numpy().tolist()) for k, v in out.items()}))
"""


def test_exports_go_to_the_next_version_folder(exported_versions):
    output, first, second = exported_versions
    assert (os.path.basename(first), os.path.basename(second)) == ("1", "2")
    assert resolve_model_dir(output) == second
    assert sorted(os.listdir(output)) == ["1", "2"]  # no temporary folders left
    with open(os.path.join(first, "assets", "metadata.json")) as f:
        metadata = json.load(f)
    assert metadata["task"] == "classification" and metadata["labels"] == ["0", "1"]
    assert {"tensorflow", "tensorflow_text", "keras"} <= set(metadata["versions"])


def test_fresh_process_with_only_tensorflow_predicts_as_the_trained_model(exported_versions, trained_run):
    _, first, _ = exported_versions
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, first, json.dumps(TEXTS)],
        capture_output=True, text=True, timeout=120, cwd="/",
        env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    expected = load_predictor(trained_run).predict(TEXTS)
    np.testing.assert_allclose(served["probabilities"], expected["probabilities"], atol=1e-5)
    assert served["class_id"] == expected["class_id"].tolist()
    assert served["label"] == [l.decode() for l in expected["label"]]
    assert set(served) == {"label", "class_id", "probabilities", "top_k_labels", "top_k_probabilities"}
    assert served["top_k_labels"][0] == ["1", "0"]  # top-k is capped at the two labels
    assert served["class_id"][0] == 1 and served["class_id"][1] == 0


def test_evaluate_saved_model_equals_evaluate_run(exported_versions, trained_run, easy_files):
    output, _, _ = exported_versions
    assert evaluate(output, data=easy_files[1]) == evaluate(trained_run, data=easy_files[1])


def test_failed_export_leaves_existing_versions_untouched(exported_versions, trained_run, monkeypatch):
    output, _, _ = exported_versions
    import keras_nlp_app.export.saved_model as saved_model

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(saved_model, "load_saved_model", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_run(trained_run, output)
    assert sorted(os.listdir(output)) == ["1", "2"]


def test_missing_model_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such"):
        load_predictor(str(tmp_path / "nothing"))
    with pytest.raises(UserError, match="holds no version folder"):
        resolve_model_dir(str(tmp_path))


def test_the_export_lists_the_ops_core_tensorflow_lacks(exported_versions):
    from keras_nlp_app.export.saved_model import graph_ops
    from keras_nlp_app.utils.saved_models import read_metadata

    _, first, _ = exported_versions
    extra = read_metadata(first)["non_core_ops"]
    assert extra and set(extra) <= set(graph_ops(first))
    assert "CaseFoldUTF8" in extra and "MatMul" not in extra
