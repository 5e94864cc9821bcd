"""Training under tf.distribute: two local workers, a SIGKILLed run resumed, the Keras bug the
loop works around, mixed precision."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import easy_sentiment, tiny_overrides, write_tsv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def knlp(*args, **kwargs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-m", "keras_nlp_app", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def sets(overrides):
    return [arg for override in overrides for arg in ("--set", override)]


@pytest.fixture(scope="module")
def harder_files(tmp_path_factory):
    """The easy task with a validation set of an odd size (uneven last batch across workers)."""
    folder = tmp_path_factory.mktemp("mw")
    return (write_tsv(folder / "train.tsv", easy_sentiment(600, 1)),
            write_tsv(folder / "dev.tsv", easy_sentiment(123, 3)))


@pytest.mark.slow  # over 20 s: pytest -m slow
def test_two_local_workers_train_as_one_job_and_score_the_whole_validation_set(
        harder_files, tmp_path):
    run_dir = str(tmp_path / "two")
    overrides = tiny_overrides(*harder_files, **{"train.epochs": 3, "train.batch_size": 16,
                                                 "train.learning_rate": 0.003})
    process = knlp("train", "configs/sst2_lstm.yaml", "--workers", "2", "--run-dir", run_dir,
                   *sets(overrides))
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err[-3000:]
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["workers"] == 2 and metrics["replicas"] == 2
    assert metrics["global_batch_size"] == 32 and metrics["train_batches"] == 3 * 19
    # val_accuracy comes from both workers' metric states (each saw part of the 123 examples);
    # the final accuracy is the chief alone predicting all of them with the best weights.
    best = max(metrics["history"], key=lambda logs: logs["val_accuracy"])
    assert best["val_accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-6)
    # what callbacks add (the validation report's macro-F1, the learning rate) is kept too
    assert {"val_macro_f1", "learning_rate", "train_seconds"} <= set(best)
    assert metrics["examples"] == 123
    assert os.path.exists(os.path.join(run_dir, "checkpoints", "best.weights.h5"))
    assert not os.path.exists(os.path.join(run_dir, "backup"))
    assert os.path.exists(os.path.join(run_dir, "workers", "1.log"))
    assert "run folder" in out


@pytest.mark.slow  # over 20 s on 2 cores
def test_two_workers_train_a_seq2seq_model_with_checkpoint_averaging(tmp_path):
    """Decoding callbacks run on both workers; checkpoint averaging on the chief only."""
    from tests.tasks.test_seq2seq import reverse_task

    train_pair = ",".join(reverse_task(tmp_path, "train", 600, 1))
    valid_pair = ",".join(reverse_task(tmp_path, "valid", 30, 2))
    run_dir = str(tmp_path / "s2s")
    process = knlp("train", "configs/multi30k_en_de.yaml", "--workers", "2", "--run-dir", run_dir,
                   *sets(["data.dataset=null", f"data.train_file={train_pair}",
                          f"data.validation_file={valid_pair}", "tokenizer.vocab_size=40",
                          "tokenizer.sequence_length=16", "tokenizer.target_length=16",
                          "model.params={num_layers: 1, num_heads: 2, hidden_dim: 32}",
                          "train.epochs=3", "train.batch_size=8", "train.warmup_steps=10",
                          "train.eval_examples=10", "train.verbose=0"]))
    _, err = process.communicate(timeout=240)
    assert process.returncode == 0, err[-3000:]
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["workers"] == 2 and "bleu" in metrics and "perplexity" in metrics
    assert all("val_bleu" in logs for logs in metrics["history"])
    with open(os.path.join(run_dir, "checkpoints", "averaged.json")) as f:
        assert json.load(f)["epochs_averaged"] == 3
    assert not os.path.exists(os.path.join(run_dir, "workers", "1", "checkpoints"))


def wait_for_backup(run_dir, batches, process, timeout=120):
    state = os.path.join(run_dir, "backup", "state.json")
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        if os.path.exists(state):
            with open(state) as f:
                if json.load(f)["batches"] >= batches:
                    return
        time.sleep(0.1)
    raise AssertionError(f"no backup past {batches} batches in {timeout} s")


@pytest.mark.slow  # over 20 s on 2 cores
def test_sigkill_then_the_same_command_resumes_from_the_last_backup(easy_files, tmp_path):
    run_dir = str(tmp_path / "killed")
    command = ["train", "configs/sst2_lstm.yaml", "--run-dir", run_dir, *sets(tiny_overrides(
        *easy_files, **{"train.epochs": 3, "train.backup_every_steps": 4,
                        "train.batch_size": 8}))]
    process = knlp(*command)
    wait_for_backup(run_dir, 80, process)  # into the second epoch (75 batches each)
    process.send_signal(signal.SIGKILL)
    process.wait()

    resumed = knlp(*command)
    _, err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, err[-3000:]
    assert "resuming from" in err
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["resumed_at_batches"] and metrics["resumed_at_batches"][0] >= 80
    assert metrics["train_batches"] == 3 * 75 and metrics["epochs_run"] == 3
    assert metrics["accuracy"] > 0.9


@pytest.mark.slow  # over 20 s on 2 cores
def test_a_killed_worker_is_restarted_and_the_job_resumes(easy_files, tmp_path):
    run_dir = str(tmp_path / "restarted")
    launcher = knlp("train", "configs/sst2_lstm.yaml", "--workers", "2", "--max-restarts", "1",
                    "--run-dir", run_dir, *sets(tiny_overrides(
                        *easy_files, **{"train.epochs": 2, "train.backup_every_steps": 4,
                                        "train.batch_size": 4})))
    wait_for_backup(run_dir, 40, launcher)  # mid-way through the first of 2 epochs of 75 batches
    workers = subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True,
                             text=True).stdout.split()
    assert len(workers) == 2
    os.kill(int(workers[1]), signal.SIGKILL)
    _, err = launcher.communicate(timeout=240)
    assert launcher.returncode == 0, err[-3000:]
    assert "worker 1 stopped: killed by SIGKILL" in err and "restarting the 2 workers" in err
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["workers"] == 2 and len(metrics["resumed_at_batches"]) == 1
    assert metrics["train_batches"] == 2 * 75 and metrics["accuracy"] > 0.9


def test_keras_fit_still_fails_under_multi_worker_mirrored_strategy():
    """The loop drives `train_step` itself because `Model.fit` breaks under
    MultiWorkerMirroredStrategy (keras-team/keras#20329). When this test fails, Keras has fixed
    it, and `training/loop.py` can go back to `fit`."""
    from keras_nlp_app.training.launcher import worker_environments

    script = """
import keras, numpy as np, tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
data = tf.data.Dataset.from_tensor_slices((np.ones((8, 4)), np.ones((8, 1)))).batch(4)
try:
    model.fit(data, epochs=1, verbose=0)
    print("fit works")
except Exception as exc:
    print("fit fails:", type(exc).__name__)
"""
    workers = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env=dict(env, TF_CPP_MIN_LOG_LEVEL="3"))
               for env in worker_environments(2)]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert all("fit fails" in out for out, _ in outputs), outputs


@pytest.mark.parametrize("policy", ["mixed_float16", "bfloat16"])
def test_mixed_precision_trains_with_float32_outputs_and_loss_scaling(easy_files, tmp_path, policy):
    import keras

    from keras_nlp_app.config import load_config
    from keras_nlp_app.runs import restore_run
    from keras_nlp_app.training.train import train

    cfg = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(
        *easy_files, **{"train.mixed_precision": policy}))
    try:
        run_dir = train(cfg, run_dir=str(tmp_path / policy))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["accuracy"] > 0.9 and metrics["mixed_precision"] == policy
    # float16 needs loss scaling: the checkpoint's optimizer wraps an inner one (LossScaleOptimizer)
    import h5py

    with h5py.File(os.path.join(run_dir, "checkpoints", "best.weights.h5"), "r") as f:
        assert ("optimizer/inner_optimizer" in f) == (policy == "mixed_float16")
    run = restore_run(run_dir)
    probabilities = run.serve({"text": __import__("tensorflow").constant(["a great film"])})
    assert all(v.dtype.name in ("float32", "string", "int32", "int64")
               for v in probabilities.values())


def test_auto_precision_is_bfloat16_only_where_the_hardware_multiplies_in_it(monkeypatch):
    import tensorflow as tf

    from keras_nlp_app.training import strategy
    from keras_nlp_app.training.train import resolved_precision

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("the CPU rule is checked on a CPU-only machine")
    assert strategy.native_bfloat16(xla=False, cpu_flags={"avx512f", "amx_bf16", "amx_tile"})
    assert not strategy.native_bfloat16(xla=True, cpu_flags={"amx_bf16"})  # XLA's CPU code: no AMX
    assert not strategy.native_bfloat16(xla=False, cpu_flags={"avx512f", "avx512_bf16"})
    monkeypatch.setattr(strategy, "_cpu_flags", lambda: {"amx_bf16"})
    assert resolved_precision("auto", {}) == "bfloat16"
    assert resolved_precision("auto", {"jit_compile": True}) == "none"
    assert resolved_precision("mixed_float16", {"jit_compile": True}) == "mixed_float16"
    monkeypatch.setattr(strategy, "_cpu_flags", lambda: set())
    assert resolved_precision("auto", {"jit_compile": False}) == "none"


def test_cpu_flags_are_read_from_the_flags_line(tmp_path):
    from keras_nlp_app.training.strategy import _cpu_flags

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 amx_bf16 avx512f\n\n")
    assert _cpu_flags(str(cpuinfo)) == {"fpu", "sse2", "amx_bf16", "avx512f"}
    assert _cpu_flags(str(tmp_path / "missing")) == set()


@pytest.mark.slow  # over 20 s: pytest -m slow
def test_a_mixed_precision_lm_decodes_with_its_key_value_cache(tmp_path):
    """The cache is allocated in the compute dtype: the epoch-end samples (cached decoding
    under XLA) used to fail with float32 zeros updated by float16 keys."""
    from keras_nlp_app.config import load_config
    from keras_nlp_app.inference import generate
    from keras_nlp_app.training.train import train

    text = "the quick brown fox jumps over the lazy dog.\n"
    (tmp_path / "train.txt").write_text(text * 100)
    (tmp_path / "valid.txt").write_text(text * 10)
    cfg = load_config(["configs/shakespeare_char.yaml"], [
        "train.mixed_precision=mixed_float16", "train.verbose=0", "data.dataset=null",
        f"data.train_file={tmp_path / 'train.txt'}", f"data.validation_file={tmp_path / 'valid.txt'}",
        "data.holdout_fraction=0.0", "tokenizer.sequence_length=32",
        "model.params={num_layers: 1, num_heads: 2, hidden_dim: 32}", "train.epochs=1",
        "train.steps_per_epoch=60", "train.steps_per_execution=20", "train.batch_size=8",
        "train.learning_rate=0.01", "train.warmup_steps=10"])
    run_dir = train(cfg, str(tmp_path / "run"))
    assert os.listdir(os.path.join(run_dir, "logs", "samples"))
    assert generate(run_dir, ["the quick"], max_new_tokens=6, strategy="greedy") == [" brown"]
