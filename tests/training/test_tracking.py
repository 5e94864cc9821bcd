"""Experiment tracking offline (W&B offline files, MLflow's local store) and TensorBoard's HParams
and projector files, read back with each tool's own readers."""

import glob
import json
import os

import pytest

from keras_nlp_app.cli import main
from tests.conftest import tiny_overrides
from tests.training.wandb_files import history


@pytest.fixture(scope="module")
def tracked_run(easy_files, tmp_path_factory, monkeypatch_module):
    from keras_nlp_app.config import load_config
    from keras_nlp_app.training.train import train

    monkeypatch_module.setenv("WANDB_MODE", "offline")
    monkeypatch_module.delenv("MLFLOW_TRACKING_URI", raising=False)
    runs_root = tmp_path_factory.mktemp("tracked")
    cfg = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(
        *easy_files, **{"train.tracking": "[wandb, mlflow]", "train.epochs": 2,
                        "train.projector_tokens": 10000}))
    return train(cfg, run_dir=str(runs_root / "easy"))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _mlflow(run_dir):
    from mlflow.tracking import MlflowClient

    root = os.path.dirname(os.path.abspath(run_dir))
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    ids = json.load(open(os.path.join(run_dir, "tracking.json")))
    return client, ids["mlflow"]


def test_mlflow_records_config_epochs_metrics_and_artifacts(tracked_run):
    client, run_id = _mlflow(tracked_run)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["train.epochs"] == "2"
    assert run.data.params["model.params.lstm_units"] == "16"
    assert run.data.tags["task"] == "classification" and "version.tensorflow" in run.data.tags
    assert [m.step for m in client.get_metric_history(run_id, "val_accuracy")] == [1, 2]
    metrics = json.load(open(os.path.join(tracked_run, "metrics.json")))
    assert run.data.metrics["final_accuracy"] == pytest.approx(metrics["accuracy"])
    artifacts = {a.path for a in client.list_artifacts(run_id, "run")}
    assert {"run/config.yaml", "run/metrics.json", "run/checkpoints", "run/assets"} <= artifacts


def test_wandb_offline_run_holds_every_epoch(tracked_run):
    ids = json.load(open(os.path.join(tracked_run, "tracking.json")))
    [path] = glob.glob(os.path.join(tracked_run, "wandb", f"offline-run-*-{ids['wandb']}",
                                    f"run-{ids['wandb']}.wandb"))
    rows = [row for row in history(path) if "val_accuracy" in row]
    assert [row["epoch"] for row in rows] == [1, 2]
    assert all(0 <= row["val_accuracy"] <= 1 for row in rows)


def test_export_is_added_to_the_tracked_run(tracked_run, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert main(["export", tracked_run, "--output", str(tmp_path / "model")]) == 0
    client, run_id = _mlflow(tracked_run)
    assert "export/saved_model.pb" in {a.path for a in client.list_artifacts(run_id, "export")}


def test_hparams_and_projector_are_readable_by_tensorboard(tracked_run):
    from google.protobuf import text_format
    from tensorboard.backend.event_processing import event_multiplexer
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.plugins.projector import projector_config_pb2, projector_plugin

    logs = os.path.join(tracked_run, "logs")
    multiplexer = event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(logs)
    multiplexer.Reload()
    content = multiplexer.PluginRunToTagToContent("hparams")["."]
    data = {tag: plugin_data_pb2.HParamsPluginData.FromString(blob) for tag, blob in content.items()}
    session = next(d.session_start_info for d in data.values() if d.HasField("session_start_info"))
    assert session.hparams["train.learning_rate"].number_value == pytest.approx(0.01)
    assert session.hparams["model.name"].string_value == "lstm_classifier"
    experiment = next(d.experiment for d in data.values() if d.HasField("experiment"))
    assert "final/accuracy" in {m.name.tag for m in experiment.metric_infos}

    config = text_format.Parse(open(os.path.join(logs, "projector_config.pbtxt")).read(),
                               projector_config_pb2.ProjectorConfig())
    [embedding] = config.embeddings
    vectors = projector_plugin._read_tensor_tsv_file(os.path.join(logs, embedding.tensor_path))
    tokens = open(os.path.join(logs, embedding.metadata_path), encoding="utf-8").read().splitlines()
    assert vectors.shape == (len(tokens), 16) and "good" in tokens and tokens[0] == "[PAD]"


def test_unknown_or_missing_tracker_is_a_config_error(easy_files, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("train:\n  epochs: 1\n  tracking: [mlflow, comet]\n")
    run_dir = tmp_path / "never"
    assert main(["train", str(config), "--run-dir", str(run_dir)]) == 2
    assert "bad.yaml:3: " in capsys.readouterr().err
    assert not run_dir.exists()


def test_a_tracking_server_that_cannot_be_reached_refuses_the_run(easy_files, tmp_path, capsys,
                                                                   monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    run_dir = tmp_path / "never"
    args = ["train", "configs/sst2_lstm.yaml", "--run-dir", str(run_dir)]
    for override in tiny_overrides(*easy_files, **{"train.tracking": "mlflow",
                                                   "train.tracking_uri": "http://127.0.0.1:9"}):
        args += ["--set", override]
    assert main(args) == 2
    assert "train.tracking mlflow could not start" in capsys.readouterr().err
    assert not run_dir.exists()
