import json
import os
import subprocess
import sys

import pytest

from keras_nlp_app.config import load_config
from keras_nlp_app.errors import ConfigError

# Two logical CPU devices must be configured before TensorFlow starts, so each task type trains
# under MirroredStrategy over the two devices in a child process of its own.
SCRIPT = """
import json, pathlib, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_nlp_app.config import load_config
from keras_nlp_app.training.train import train
from tests.conftest import tiny_overrides
from tests.tasks.test_seq2seq import reverse_task
from tests.tasks.test_tagging import write_conll
train_file, dev_file, root, task = sys.argv[1:5]
root = pathlib.Path(root)
mirrored = ["train.strategy=mirrored", "train.verbose=0"]
runs = {}
for strategy in ("one_device", "mirrored"):
    runs[f"classification_{strategy}"] = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(
        train_file, dev_file, **{"train.strategy": strategy, "train.batch_size": 16}))
conll_train = write_conll(root / "train.conll", 300, 1)
conll_valid = write_conll(root / "valid.conll", 40, 2)
runs["tagging"] = load_config([], mirrored + [
    "task=tagging", "data.dataset=null", f"data.train_file={conll_train}",
    f"data.validation_file={conll_valid}", "model.name=bilstm_crf_tagger",
    "model.params={word_dim: 16, lstm_units: 16, char_filters: 8}",
    "tokenizer.sequence_length=32", "train.epochs=3", "train.batch_size=8",
    "train.learning_rate=0.005", "train.monitor=val_f1"])
text = "the quick brown fox jumps over the lazy dog.\\n"
(root / "lm.txt").write_text(text * 200)
(root / "lm_valid.txt").write_text(text * 20)
runs["lm"] = load_config(["configs/shakespeare_char.yaml"], mirrored + [
    "data.dataset=null", f"data.train_file={root / 'lm.txt'}",
    f"data.validation_file={root / 'lm_valid.txt'}", "data.holdout_fraction=0.0",
    "tokenizer.sequence_length=32", "model.params={num_layers: 1, num_heads: 2, hidden_dim: 32}",
    "train.epochs=2", "train.steps_per_epoch=40", "train.steps_per_execution=20",
    "train.batch_size=8", "train.learning_rate=0.01", "train.warmup_steps=10"])
s2s_train = ",".join(reverse_task(root, "s2s_train", 600, 1))
s2s_valid = ",".join(reverse_task(root, "s2s_valid", 30, 2))
runs["seq2seq"] = load_config([], mirrored + [
    "task=seq2seq", "data.dataset=null", f"data.train_file={s2s_train}",
    f"data.validation_file={s2s_valid}", "tokenizer.kind=sentencepiece",
    "tokenizer.vocab_size=40", "tokenizer.sequence_length=16", "tokenizer.target_length=16",
    "model.name=transformer_seq2seq",
    "model.params={num_layers: 1, num_heads: 2, hidden_dim: 32, dropout: 0.0}",
    "train.epochs=2", "train.batch_size=16", "train.learning_rate=0.005",
    "train.monitor=val_loss", "train.eval_examples=10"])
result = {}
for name, cfg in runs.items():
    if not name.startswith(task):
        continue
    run_dir = train(cfg, run_dir=str(root / name))
    result[name] = json.load(open(f"{run_dir}/metrics.json"))
print(json.dumps(result))
"""


def mirrored_run(task, easy_files, root):
    completed = subprocess.run([sys.executable, "-c", SCRIPT, *easy_files, str(root), task],
                               capture_output=True, text=True, timeout=600,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # over 20 s: pytest -m slow
def test_mirrored_over_two_cpus_matches_one_device(easy_files, tmp_path):
    runs = mirrored_run("classification", easy_files, tmp_path)
    one, mirrored = runs["classification_one_device"], runs["classification_mirrored"]
    assert mirrored["replicas"] == 2 and mirrored["global_batch_size"] == 32
    assert one["replicas"] == 1
    assert mirrored["accuracy"] > 0.9
    assert abs(mirrored["accuracy"] - one["accuracy"]) <= 0.05


@pytest.mark.slow  # over 20 s on 2 cores
def test_a_tagger_trains_under_mirrored_strategy(easy_files, tmp_path):
    run = mirrored_run("tagging", easy_files, tmp_path)["tagging"]
    assert run["replicas"] == 2 and run["f1"] > 0.8


@pytest.mark.slow  # over 20 s on 2 cores
def test_a_transformer_lm_trains_under_mirrored_strategy(easy_files, tmp_path):
    run = mirrored_run("lm", easy_files, tmp_path)["lm"]
    assert run["replicas"] == 2 and run["perplexity"] < 2.0  # uniform over ~30 characters: ~30


@pytest.mark.slow  # over 20 s on 2 cores
def test_a_seq2seq_transformer_trains_under_mirrored_strategy(easy_files, tmp_path):
    run = mirrored_run("seq2seq", easy_files, tmp_path)["seq2seq"]
    assert run["replicas"] == 2 and "bleu" in run
    assert run["history"][-1]["loss"] < run["history"][0]["loss"]


def test_multi_worker_without_tf_config_is_a_config_error(monkeypatch):
    from keras_nlp_app.training.strategy import get_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        get_strategy("multi_worker")


def test_parameter_server_clusters_are_refused_by_name(monkeypatch):
    from keras_nlp_app.training.strategy import get_strategy

    monkeypatch.setenv("TF_CONFIG", json.dumps({
        "cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "worker", "index": 0}}))
    with pytest.raises(ConfigError, match="ps tasks.*ParameterServerStrategy is not"):
        get_strategy("auto")


def test_learning_rate_scaling_follows_the_replicas():
    from keras_nlp_app.training.schedules import scaled_learning_rate

    train_cfg = load_config([], ["train.learning_rate=0.001"]).train
    assert scaled_learning_rate(train_cfg, 4) == 0.001
    train_cfg.scale_learning_rate = "linear"
    assert scaled_learning_rate(train_cfg, 4) == pytest.approx(0.004)
    train_cfg.scale_learning_rate = "sqrt"
    assert scaled_learning_rate(train_cfg, 4) == pytest.approx(0.002)
