"""The shared trainer: `train(cfg) -> run_dir`, for every task, under any tf.distribute strategy.

Run folder layout (knlp train, evaluate and export rely on it):

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
import json
import logging
import os
import shutil
import sys
import time

from keras_nlp_app import config as config_lib
from keras_nlp_app.errors import ConfigError, UserError

log = logging.getLogger("keras_nlp_app")


def default_run_dir(cfg, root="runs"):
    """`runs/<name>`, or the first `runs/<name>-N` that is free or holds an unfinished run."""
    base = os.path.join(root, cfg.name)
    candidate, n = base, 1
    while os.path.exists(candidate):
        if os.path.isdir(os.path.join(candidate, "backup")) or not os.path.exists(
                os.path.join(candidate, "metrics.json")):
            return candidate
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _prepare_run_dir(cfg, run_dir):
    os.makedirs(run_dir, exist_ok=True)
    saved = os.path.join(run_dir, "config.yaml")
    if os.path.exists(saved):
        previous = config_lib.config_from_dict(_read_yaml(saved))
        if config_lib.config_to_dict(previous) != config_lib.config_to_dict(cfg):
            trained = any(os.path.isdir(os.path.join(run_dir, d)) for d in ("checkpoints", "backup"))
            if trained:
                raise UserError(
                    f"{run_dir} holds a run with a different config; pick another --run-dir "
                    f"or delete that folder")
            # a run that stopped before training: nothing to lose, start it afresh
            shutil.rmtree(os.path.join(run_dir, "assets"), ignore_errors=True)
    config_lib.dump_config(cfg, saved)


def _read_yaml(path):
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _write_json(path, payload):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def _task(cfg):
    from keras_nlp_app.tasks import TASKS

    return TASKS[cfg.task]


def build_preprocessor(cfg, tokenizer):
    """The task's preprocessor layer (strings → model inputs) around a tokenizer."""
    return _task(cfg).build_preprocessor(cfg, tokenizer)


def build_run_model(cfg, preprocessor, space):
    """The run's model for prediction and export (not the training variant)."""
    return _task(cfg).build_model(cfg, preprocessor, space)


@dataclasses.dataclass
class RestoredRun:
    """Everything needed to predict with or export a trained run."""

    cfg: object
    preprocessor: object
    model: object
    space: object  # the task's label space; None for tasks without labels

    def serve(self, text):
        """The serving signature's outputs for a `[B]` string tensor: what export writes out
        and what predicting with a run folder computes."""
        return _task(self.cfg).serve(self, text)


def read_run(run_dir):
    """(config, label space or None) of a run folder, without TensorFlow."""
    saved = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(saved):
        raise UserError(f"{run_dir}: not a run folder (no config.yaml)")
    cfg = config_lib.config_from_dict(_read_yaml(saved))
    return cfg, _task(cfg).read_assets(os.path.join(run_dir, "assets"))


def restore_run(run_dir):
    """Rebuilds the preprocessor and the model with its best weights from a run folder."""
    cfg, space = read_run(run_dir)
    preprocessor = build_preprocessor(cfg, _task(cfg).load_tokenizer(os.path.join(run_dir, "assets")))
    model = build_run_model(cfg, preprocessor, space)
    for name in ("best.weights.h5", "last.weights.h5"):
        path = os.path.join(run_dir, "checkpoints", name)
        if os.path.exists(path):
            model.load_weights(path)
            break
    else:
        raise UserError(f"{run_dir}: no checkpoint yet (checkpoints/best.weights.h5); train it first")
    return RestoredRun(cfg, preprocessor, model, space)


def _set_seeds(seed):
    import keras

    keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def _precision(policy):
    """Layers built inside use `train.mixed_precision` (variables stay float32; Keras wraps the
    optimizer in a LossScaleOptimizer for mixed_float16); the previous policy comes back after,
    so models restored later in the same process are float32."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(
        {"none": "float32", "bfloat16": "mixed_bfloat16"}.get(policy, policy))
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _verbosity(setting):
    if setting == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(setting)


def train(cfg, run_dir=None):
    """Trains the model a config describes and returns its run folder.

    The model is built and compiled inside the strategy's scope; the global batch is
    `train.batch_size` × replicas. Running the same command on the same run folder after an
    interruption resumes from the last backup.

    Args:
        cfg: a `keras_nlp_app.config.Config`.
        run_dir: output folder; default `runs/<cfg.name>` (see `default_run_dir`).
    """
    task = _task(cfg)
    run_dir = run_dir or default_run_dir(cfg)
    started = time.time()
    # Data and settings are checked before TensorFlow starts, so bad input fails fast and quietly.
    task.check_config(cfg)
    train_examples, validation_examples = task.load_splits(cfg.data, cfg.train.seed)
    for examples in (train_examples, validation_examples):
        report = getattr(examples, "report", None)
        if report is not None and report.skipped:
            log.warning("%s: skipped %d malformed lines (first: %s)", report.path,
                        report.skipped, report.first_skipped)

    valid_monitors = task.monitorable(cfg.data, validation_examples is not None)
    if cfg.train.monitor not in valid_monitors:
        hint = ("" if validation_examples is not None or not cfg.train.monitor.startswith("val_") else
                " (there is no validation data: set data.validation_file or data.holdout_fraction)")
        raise ConfigError(f"train.monitor {cfg.train.monitor!r} is not logged{hint}; choose one of "
                          f"{', '.join(valid_monitors)}")

    import keras

    from keras_nlp_app.training import callbacks as callbacks_lib
    from keras_nlp_app.training import loop
    from keras_nlp_app.training.schedules import make_optimizer
    from keras_nlp_app.training.strategy import get_strategy, is_chief, worker_count, worker_index

    _set_seeds(cfg.train.seed)
    strategy = get_strategy(cfg.train.strategy)
    chief = is_chief(strategy)
    # Workers other than the chief train the same model but keep what they write (assets, logs)
    # in a folder of their own; they resume from the chief's backup.
    work_dir = run_dir if chief else os.path.join(run_dir, "workers", str(worker_index(strategy)))
    _prepare_run_dir(cfg, work_dir)
    tokenizer, space = task.prepare_assets(cfg, train_examples, os.path.join(work_dir, "assets"))
    preprocessor = build_preprocessor(cfg, tokenizer)

    replicas = strategy.num_replicas_in_sync
    global_batch = cfg.train.batch_size * replicas
    train_data, validation_data, steps_per_pass = task.datasets_for(
        cfg, preprocessor, space, train_examples, validation_examples, global_batch)
    steps_per_epoch = cfg.train.steps_per_epoch or steps_per_pass
    with _precision(cfg.train.mixed_precision), strategy.scope():
        model = task.build_model(cfg, preprocessor, space, training=True,
                                 batch_size=cfg.train.batch_size)
        model.compile(optimizer=make_optimizer(cfg.train, steps_per_epoch * cfg.train.epochs,
                                               steps_per_epoch, replicas=replicas),
                      steps_per_execution=cfg.train.steps_per_execution,
                      **task.compile_arguments(cfg, space))

    checkpoints = os.path.join(run_dir, "checkpoints")
    best_path = os.path.join(checkpoints, "best.weights.h5")
    callbacks = [
        *task.callbacks(cfg=cfg, run_dir=work_dir, preprocessor=preprocessor, model=model,
                        validation_data=validation_data, validation_examples=validation_examples,
                        space=space),
        callbacks_lib.LearningRateLogger(),
    ]
    # callbacks that rewrite the run's checkpoints run on the chief only
    callbacks = [c for c in callbacks if chief or not getattr(c, "chief_only", False)]
    if chief:
        callbacks += [
            callbacks_lib.AtomicBestCheckpoint(best_path, monitor=cfg.train.monitor),
            keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), update_freq="epoch"),
        ]
    if cfg.train.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=cfg.train.monitor, patience=cfg.train.early_stopping_patience,
            mode="min" if "loss" in cfg.train.monitor or "perplexity" in cfg.train.monitor
            else "max"))

    backup = loop.TrainingBackup(os.path.join(run_dir, "backup"), cfg.train.backup_every_steps,
                                 writer=chief)
    progress = loop.fit(model, strategy, train_data, validation_data, epochs=cfg.train.epochs,
                       steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                       verbose=_verbosity(cfg.train.verbose), backup=backup)

    if not chief:
        return run_dir
    os.makedirs(checkpoints, exist_ok=True)
    model.save_weights(os.path.join(checkpoints, "last.tmp.weights.h5"))
    os.replace(os.path.join(checkpoints, "last.tmp.weights.h5"),
               os.path.join(checkpoints, "last.weights.h5"))
    if os.path.exists(best_path):
        model.load_weights(best_path)
    result = {"task": cfg.task, "epochs_run": len(progress["history"]),
              "train_batches": progress["batches"], "resumed_at_batches": progress["resumed_at"],
              "train_seconds": round(time.time() - started, 1), "replicas": replicas,
              "workers": worker_count(strategy),
              "global_batch_size": global_batch}
    if hasattr(train_examples, "texts"):
        result["train_examples"] = len(train_examples.texts)
    result.update(task.final_metrics(cfg, preprocessor, model, space, validation_examples, run_dir))
    result["parameters"] = int(model.count_params())
    result["history"] = progress["history"]
    _write_json(os.path.join(run_dir, "metrics.json"), result)
    return run_dir
