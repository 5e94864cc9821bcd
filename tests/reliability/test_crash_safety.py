"""Crash safety: a full disk during an export or a checkpoint is a clear error that leaves the
previous artifact as it was; a process killed (SIGKILL) at any moment while it writes a
checkpoint, an export or an n-gram model leaves the previous one intact and loadable, and the
next run resumes or rewrites cleanly.

The full disk is a small tmpfs the test mounts when it can (root), else the error is injected.
"""

import contextlib
import errno
import os
import random
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_nlp_app.cli import main
from keras_nlp_app.utils.saved_models import versions


@contextlib.contextmanager
def full_disk(folder, monkeypatch):
    """Yields (folder, fill): a small file system at `folder` and a function that fills it.
    Without the right to mount one, `fill` makes every later flush fail with ENOSPC instead."""
    os.makedirs(folder, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", folder],
                             capture_output=True).returncode == 0

    def fill():
        if not mounted:
            def no_space(path):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
            monkeypatch.setattr("keras_nlp_app.utils.atomic.sync_tree", no_space)
            return
        with open(os.path.join(folder, "filler"), "wb") as f:
            chunk = b"\0" * 65536
            try:
                while True:
                    f.write(chunk)
                    f.flush()
            except OSError:
                pass

    try:
        yield fill
    finally:
        if mounted:
            subprocess.run(["umount", "-l", folder], capture_output=True)


def test_a_full_disk_during_export_and_checkpoint_is_a_clear_error(trained_run, tmp_path,
                                                                   monkeypatch, capsys):
    import keras

    from keras_nlp_app.errors import UserError
    from keras_nlp_app.inference import load_predictor
    from keras_nlp_app.utils import atomic

    small = str(tmp_path / "small")
    with full_disk(small, monkeypatch) as fill:
        model_folder = os.path.join(small, "model")
        assert main(["export", trained_run, "--output", model_folder]) == 0
        checkpoint = os.path.join(small, "best.weights.h5")
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        with atomic.atomic_path(checkpoint) as tmp:
            model.save_weights(tmp)
        before = model.get_weights()
        fill()
        capsys.readouterr()
        assert main(["export", trained_run, "--output", model_folder]) == 2
        error = capsys.readouterr().err
        assert "disk is full" in error and len(error.strip().splitlines()) == 1, error
        assert versions(model_folder) == [1] and os.listdir(model_folder) == ["1"]
        assert "probabilities" in load_predictor(model_folder).predict({"text": ["a fine film"]})
        model.set_weights([w + 1 for w in before])
        with pytest.raises(UserError, match="disk is full"):
            with atomic.atomic_path(checkpoint) as tmp:
                model.save_weights(tmp)
        model.load_weights(checkpoint)  # the previous checkpoint, whole
        for got, expected in zip(model.get_weights(), before):
            np.testing.assert_array_equal(got, expected)


def _kill_at_random_moments(argv, duration, moments=3, seed=0):
    """Runs `argv` `moments` times, each killed with SIGKILL at a random moment within the
    `duration` a whole run takes (the writes come near its end)."""
    rng = random.Random(seed)
    for _ in range(moments):
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3 * duration, duration))
        process.kill()
        process.wait()


def _timed(argv):
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


@pytest.mark.slow
def test_killed_writers_leave_the_previous_artifact_intact(trained_run, easy_files, tmp_path):
    from keras_nlp_app.inference import load_predictor
    from keras_nlp_app.ngram.io import load_model

    knlp = [sys.executable, "-m", "keras_nlp_app"]
    # n-gram model: rewritten over the previous one
    corpus = tmp_path / "corpus.txt"
    rng = random.Random(1)
    words = [f"w{i}" for i in range(300)]
    zipf = [1 / (rank + 1) for rank in range(len(words))]
    corpus.write_text("\n".join(" ".join(rng.choices(words, zipf, k=12))
                                for _ in range(60000)) + "\n")
    ngram = [*knlp, "ngram", "train", str(corpus), "--output", str(tmp_path / "lm"),
             "--order", "4", "--discount-fallback"]
    duration = _timed(ngram)
    before = load_model(str(tmp_path / "lm.npz"))
    _kill_at_random_moments(ngram, duration)
    after = load_model(str(tmp_path / "lm.npz"))  # loads: never a half-written file
    assert after.vocabulary == before.vocabulary

    # export: a killed export never shows a numbered version that is incomplete
    exports = str(tmp_path / "exports")
    export = [*knlp, "export", trained_run, "--output", exports]
    duration = _timed(export)
    _kill_at_random_moments(export, duration, seed=2)
    for version in versions(exports):
        load_predictor(os.path.join(exports, str(version))).predict({"text": ["a fine film"]})
    subprocess.run(export, check=True, capture_output=True)  # the next export works

    # training: killed while checkpointing and backing up, then resumed to the end
    run_dir = str(tmp_path / "run")
    train = [*knlp, "train", "configs/sst2_lstm.yaml", "--run-dir", run_dir,
             *[a for pair in (("--set", o) for o in _tiny(easy_files)) for a in pair]]
    duration = _timed(train)
    shutil.rmtree(run_dir)
    _kill_at_random_moments(train, duration, seed=3)
    subprocess.run(train, check=True, capture_output=True)
    assert load_predictor(run_dir).predict({"text": ["a fine film"]})["probabilities"] is not None


def _tiny(easy_files):
    from tests.conftest import tiny_overrides

    return tiny_overrides(*easy_files, **{"train.epochs": 6, "train.backup_every_steps": 3})


def test_the_next_write_sweeps_what_killed_writers_left(tmp_path):
    from keras_nlp_app.utils import atomic
    from keras_nlp_app.utils.saved_models import NewVersion

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / f".tmp-{dead}-best.weights.h5").write_bytes(b"half")
    (tmp_path / f".tmp-{dead}-v3").mkdir()
    (tmp_path / f".tmp-{os.getppid()}-other.json").write_text("a live writer's")
    atomic.write_text(str(tmp_path / "metrics.json"), "{}")
    assert sorted(os.listdir(tmp_path)) == [f".tmp-{os.getppid()}-other.json", "metrics.json"]
    (tmp_path / f".tmp-{dead}-v4").mkdir()
    with NewVersion(str(tmp_path)) as version:
        os.makedirs(version.path)
        (open(os.path.join(version.path, "saved_model.pb"), "w")).close()
    assert f".tmp-{dead}-v4" not in os.listdir(tmp_path) and "1" in os.listdir(tmp_path)
