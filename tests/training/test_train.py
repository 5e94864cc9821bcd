import json
import os

import pytest

from keras_nlp_app.config import load_config
from keras_nlp_app.errors import UserError
from keras_nlp_app.inference import evaluate
from keras_nlp_app.runs import default_run_dir
from keras_nlp_app.training.train import train
from tests.conftest import tiny_overrides


def test_tiny_run_learns_the_easy_task_and_writes_the_run_folder(trained_run):
    with open(os.path.join(trained_run, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["accuracy"] > 0.9
    for path in ["config.yaml", "assets/vocab.txt", "assets/labels.txt", "assets/tokenizer.json",
                 "checkpoints/best.weights.h5", "checkpoints/last.weights.h5"]:
        assert os.path.exists(os.path.join(trained_run, path)), path
    # TensorBoard: the two curves' folders, the HParams session (an event file at the root)
    logs = os.listdir(os.path.join(trained_run, "logs"))
    assert {"train", "validation"} <= set(logs) and any(n.startswith("events.out") for n in logs)
    assert not os.path.exists(os.path.join(trained_run, "backup"))  # removed once training ends


def test_evaluate_run_folder_on_its_validation_split(trained_run, easy_files):
    report = evaluate(trained_run)
    assert report["task"] == "classification" and report["examples"] == 120
    assert report["accuracy"] > 0.9 and 0 < report["macro_f1"] <= 1
    assert sum(map(sum, report["confusion_matrix"])) == 120
    assert report == evaluate(trained_run, data=easy_files[1])


def test_unknown_label_at_evaluation_is_an_error(trained_run, tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("sentence\tlabel\ngood film\t1\nbad film\tpositive\n")
    with pytest.raises(UserError, match=r"bad.tsv:3: unknown label 'positive'"):
        evaluate(trained_run, data=str(path))


def test_rerun_with_another_config_in_the_same_folder_is_refused(trained_run, easy_files):
    cfg = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(*easy_files, **{"train.epochs": 9}))
    with pytest.raises(UserError, match="different config"):
        train(cfg, run_dir=trained_run)


def test_default_run_dir_never_reuses_a_finished_run(tmp_path):
    cfg = load_config([], ["name=demo"])
    root = str(tmp_path)
    assert default_run_dir(cfg, root) == os.path.join(root, "demo")
    os.makedirs(os.path.join(root, "demo"))
    open(os.path.join(root, "demo", "metrics.json"), "w").close()
    assert default_run_dir(cfg, root) == os.path.join(root, "demo-2")


def test_interrupted_run_resumes_from_backup_with_the_same_command(easy_files, tmp_path, monkeypatch):
    from keras_nlp_app import callbacks

    cfg = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(*easy_files, **{"train.epochs": 3}))
    run_dir = str(tmp_path / "resumable")
    original = callbacks.LearningRateLogger.on_epoch_end

    def crash_in_second_epoch(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("power cut")
        return original(self, epoch, logs)

    monkeypatch.setattr(callbacks.LearningRateLogger, "on_epoch_end", crash_in_second_epoch)
    with pytest.raises(RuntimeError, match="power cut"):
        train(cfg, run_dir=run_dir)
    assert os.path.isdir(os.path.join(run_dir, "backup"))
    assert os.path.exists(os.path.join(run_dir, "checkpoints", "best.weights.h5"))
    assert not os.path.exists(os.path.join(run_dir, "metrics.json"))
    monkeypatch.setattr(callbacks.LearningRateLogger, "on_epoch_end", original)

    train(cfg, run_dir=run_dir)
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["epochs_run"] == 3  # epoch 1 came from the backup, epochs 2 and 3 ran now
    assert metrics["resumed_at_batches"] == [19]  # 600 examples / 32 per batch
    assert metrics["accuracy"] > 0.9
    assert not os.path.isdir(os.path.join(run_dir, "backup"))


@pytest.mark.slow  # over 20 s on 2 cores
def test_mid_epoch_crash_resumes_at_the_backed_up_batch_with_the_same_result(
        easy_files, tmp_path, monkeypatch):
    """A run killed mid-epoch and resumed ends with the weights of a run never interrupted."""
    import numpy as np

    from keras_nlp_app import callbacks

    overrides = tiny_overrides(*easy_files, **{
        "train.epochs": 2, "train.backup_every_steps": 5,
        "model.params": "{embedding_dim: 16, lstm_units: 16, dropout: 0.3}"})  # seeds resume too
    cfg = load_config(["configs/sst2_lstm.yaml"], overrides)
    straight = train(cfg, run_dir=str(tmp_path / "straight"))

    def power_cut_at_batch_12(self, batch, logs=None):
        if self.model.optimizer.iterations.numpy() == 19 + 12:  # epoch 2, batch 12
            raise RuntimeError("power cut")

    monkeypatch.setattr(callbacks.LearningRateLogger, "on_train_batch_end", power_cut_at_batch_12,
                        raising=False)
    run_dir = str(tmp_path / "cut")
    with pytest.raises(RuntimeError, match="power cut"):
        train(cfg, run_dir=run_dir)
    with open(os.path.join(run_dir, "backup", "state.json")) as f:
        state = json.load(f)
    assert (state["epoch"], state["step"], state["batches"]) == (1, 10, 29)
    monkeypatch.delattr(callbacks.LearningRateLogger, "on_train_batch_end")

    train(cfg, run_dir=run_dir)
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["resumed_at_batches"] == [29] and metrics["train_batches"] == 38
    expected = _weights(os.path.join(straight, "checkpoints", "last.weights.h5"))
    resumed = _weights(os.path.join(run_dir, "checkpoints", "last.weights.h5"))
    assert len(expected) == len(resumed) > 0
    for a, b in zip(expected, resumed):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _weights(path):
    import h5py

    arrays = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: arrays.append(item[()]) if hasattr(item, "shape") else None)
    return arrays


def test_unknown_monitor_is_refused_before_anything_is_written(easy_files, tmp_path):
    from keras_nlp_app.errors import ConfigError

    cfg = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(*easy_files, **{"train.monitor": "val_f1"}))
    with pytest.raises(ConfigError, match="val_f1.*choose one of.*val_macro_f1"):
        train(cfg, run_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
