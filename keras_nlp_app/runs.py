"""The run folder: its layout, reading it without TensorFlow, and restoring a trained model.

Training writes it, and export, evaluation and prediction read it, all through this module:

    config.yaml              the resolved config; the run is rebuilt from it alone
    assets/                  tokenizer (vocab.txt, tokenizer.json), labels.txt, label_space.json
    checkpoints/best.weights.h5   best weights by train.monitor (written atomically)
    checkpoints/last.weights.h5   weights after the last epoch
    backup/                  step-level training state while training; the same command resumes
    workers/<i>/             what workers other than the chief write (multi-worker runs)
    logs/train, logs/validation   TensorBoard
    metrics.json             validation metrics of the best checkpoint, and every epoch's logs
"""

import contextlib
import dataclasses
import os
import shutil

from keras_nlp_app import config as config_lib
from keras_nlp_app.errors import UserError
from keras_nlp_app.tasks import get_task

CONFIG = config_lib.RUN_CONFIG
ASSETS = config_lib.RUN_ASSETS
CHECKPOINTS = "checkpoints"
BACKUP = "backup"
METRICS = "metrics.json"
BEST_WEIGHTS = "best.weights.h5"
LAST_WEIGHTS = "last.weights.h5"


def is_run_dir(path):
    return os.path.isfile(os.path.join(path, CONFIG))


def default_run_dir(cfg, root="runs"):
    """`runs/<name>`, or the first `runs/<name>-N` that is free or holds an unfinished run."""
    base = os.path.join(root, cfg.name)
    candidate, n = base, 1
    while os.path.exists(candidate):
        if os.path.isdir(os.path.join(candidate, BACKUP)) or not os.path.exists(
                os.path.join(candidate, METRICS)):
            return candidate
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def read_config(path):
    """The `Config` a run folder's config.yaml holds (defaults for keys it lacks)."""
    return config_lib.load_config([path])


@contextlib.contextmanager
def removed_on_failure(run_dir):
    """Removes the run folder again when the block fails and the folder did not exist before
    it: setup that refuses a config or a model leaves nothing behind. A folder that existed (a
    run being resumed) is kept as it was found."""
    created = not os.path.exists(run_dir)
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def prepare_run_dir(cfg, run_dir):
    """Creates the folder and saves the resolved config; refuses a trained run of another config."""
    os.makedirs(run_dir, exist_ok=True)
    saved = os.path.join(run_dir, CONFIG)
    if os.path.exists(saved):
        previous = read_config(saved)
        if config_lib.config_to_dict(previous) != config_lib.config_to_dict(cfg):
            trained = any(os.path.isdir(os.path.join(run_dir, d)) for d in (CHECKPOINTS, BACKUP))
            if trained:
                raise UserError(
                    f"{run_dir} holds a run with a different config; pick another --run-dir "
                    f"or delete that folder")
            # a run that stopped before training: nothing to lose, start it afresh
            shutil.rmtree(os.path.join(run_dir, ASSETS), ignore_errors=True)
    config_lib.dump_config(cfg, saved)


@dataclasses.dataclass
class RestoredRun:
    """Everything needed to predict with or export a trained run."""

    cfg: object
    preprocessor: object
    model: object
    space: object  # the task's label space; None for tasks without labels
    # other restored runs an export chains with this one, by role (a relation run's "tagger")
    companions: dict = dataclasses.field(default_factory=dict)

    @property
    def task(self):
        return get_task(self.cfg.task)

    def serve(self, inputs):
        """serving_default's outputs for `{input name: [B] string tensor}`."""
        return self.task.serve(self, inputs)


def read_run(run_dir):
    """(config, label space or None) of a run folder, without TensorFlow."""
    saved = os.path.join(run_dir, CONFIG)
    if not os.path.exists(saved):
        raise UserError(f"{run_dir}: not a run folder (no {CONFIG})")
    cfg = read_config(saved)
    return cfg, get_task(cfg.task).read_assets(os.path.join(run_dir, ASSETS))


def restore_run(run_dir):
    """Rebuilds the preprocessor and the model with its best weights from a run folder."""
    cfg, space = read_run(run_dir)
    task = get_task(cfg.task)
    preprocessor = task.build_preprocessor(cfg, task.load_tokenizer(os.path.join(run_dir, ASSETS)))
    model = task.build_model(cfg, preprocessor, space)
    for name in (BEST_WEIGHTS, LAST_WEIGHTS):
        path = os.path.join(run_dir, CHECKPOINTS, name)
        if os.path.exists(path):
            try:
                model.load_weights(path)
            except (OSError, ValueError) as exc:
                raise UserError(f"{path}: cannot load these weights into the run's model "
                                f"({str(exc).splitlines()[0][:200]})") from None
            break
    else:
        raise UserError(f"{run_dir}: no checkpoint yet ({CHECKPOINTS}/{BEST_WEIGHTS}); train it first")
    return RestoredRun(cfg, preprocessor, model, space)
