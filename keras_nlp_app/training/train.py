"""The shared trainer: `train(cfg) -> run_dir`, for every task, under any tf.distribute strategy.

The trainer knows a task only through the `Task` hooks it is handed (tasks/base.py) and writes
the run folder that `keras_nlp_app.runs` describes.
"""

import contextlib
import logging
import os
import sys
import time

import numpy as np

from keras_nlp_app import runs
from keras_nlp_app.errors import ConfigError, UserError
from keras_nlp_app.tasks import get_task
from keras_nlp_app.tasks.base import refuse_other_tasks_settings, word_vocabulary
from keras_nlp_app.training import tracking
from keras_nlp_app.training.warm_start import start_from_run
from keras_nlp_app.utils import atomic

log = logging.getLogger("keras_nlp_app")


def _set_seeds(seed):
    import keras

    keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def precision_scope(setting, compile_arguments):
    """Layers built inside use `train.mixed_precision`, `auto` resolved for this machine and the
    task's step (`resolved_precision`), which the scope yields. Variables stay float32; Keras
    wraps the optimizer in a LossScaleOptimizer for mixed_float16. The previous policy comes
    back after, so models restored later in the same process are float32."""
    import keras

    policy = resolved_precision(setting, compile_arguments)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(
        {"none": "float32", "bfloat16": "mixed_bfloat16"}.get(policy, policy))
    try:
        yield policy
    finally:
        keras.mixed_precision.set_global_policy(previous)


def resolved_precision(setting, compile_arguments):
    """`train.mixed_precision` with `auto` decided for this machine and this task's step:
    bfloat16 where its products run in hardware (`strategy.native_bfloat16`), else none."""
    if setting != "auto":
        return setting
    from keras_nlp_app.training.strategy import native_bfloat16

    precision = "bfloat16" if native_bfloat16(xla=compile_arguments.get("jit_compile") is True) else "none"
    log.info("train.mixed_precision auto: %s on this machine", precision)
    return precision


def _verbosity(setting):
    if setting == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(setting)


def train(cfg, run_dir=None, *, task=None, extra_callbacks=()):
    """Trains the model a config describes and returns its run folder.

    The model is built and compiled inside the strategy's scope; the global batch is
    `train.batch_size` × replicas. Running the same command on the same run folder after an
    interruption resumes from the last backup.

    Args:
        cfg: a `keras_nlp_app.config.Config`.
        run_dir: output folder; default `runs/<cfg.name>` (see `runs.default_run_dir`).
        task: the `Task` to train; default the registered task `cfg.task` names.
        extra_callbacks: Keras callbacks added to the task's (knlp tune's pruning).
    """
    task = task or get_task(cfg.task)
    run_dir = run_dir or runs.default_run_dir(cfg)
    started = time.time()
    # Data and settings are checked before TensorFlow starts, so bad input fails fast and quietly.
    refuse_other_tasks_settings(cfg, task)
    task.check_config(cfg)
    tracked = tracking.tracker_names(cfg)
    train_examples, validation_examples = task.load_splits(cfg.data, cfg.train.seed)
    for examples in (train_examples, validation_examples):
        report = getattr(examples, "report", None)
        if report is not None and report.skipped:
            log.warning("%s: skipped %d malformed lines (first: %s)", report.path,
                        report.skipped, report.first_skipped)

    if not 0 < cfg.train.layerwise_lr_decay <= 1 or cfg.train.gradual_unfreezing < 0:
        raise ConfigError("train.layerwise_lr_decay must be in (0, 1] and train.gradual_unfreezing "
                          "at least 0")
    grouped = cfg.train.layerwise_lr_decay != 1 or cfg.train.gradual_unfreezing > 0
    if grouped and not (cfg.model.backbone or cfg.model.init_from or cfg.model.word_vectors):
        raise ConfigError("train.layerwise_lr_decay and train.gradual_unfreezing act on pretrained "
                          "layers; set model.backbone, model.init_from or model.word_vectors")
    valid_monitors = task.monitorable(cfg.data, validation_examples is not None)
    if cfg.train.monitor not in valid_monitors:
        hint = ("" if validation_examples is not None or not cfg.train.monitor.startswith("val_") else
                " (there is no validation data: set data.validation_file or data.holdout_fraction)")
        raise ConfigError(f"train.monitor {cfg.train.monitor!r} is not logged{hint}; choose one of "
                          f"{', '.join(valid_monitors)}", key="train.monitor")

    import keras

    from keras_nlp_app import callbacks as callbacks_lib
    from keras_nlp_app.inspection.explain import explanation_callbacks
    from keras_nlp_app.training import loop
    from keras_nlp_app.training.schedules import GroupRatesCallback, make_optimizer
    from keras_nlp_app.training.strategy import get_strategy, is_chief, worker_count, worker_index

    _set_seeds(cfg.train.seed)
    strategy = get_strategy(cfg.train.strategy)
    chief = is_chief(strategy)
    # Workers other than the chief train the same model but keep what they write (assets, logs)
    # in a folder of their own; they resume from the chief's backup.
    work_dir = run_dir if chief else os.path.join(run_dir, "workers", str(worker_index(strategy)))
    # a refused setting or a model that cannot be built leaves no run folder behind
    with runs.removed_on_failure(work_dir):
        runs.prepare_run_dir(cfg, work_dir)
        tokenizer, space = task.prepare_assets(cfg, train_examples, os.path.join(work_dir, runs.ASSETS))
        preprocessor = task.build_preprocessor(cfg, tokenizer)

        replicas = strategy.num_replicas_in_sync
        global_batch = cfg.train.batch_size * replicas
        train_data, validation_data, steps_per_pass = task.datasets_for(
            cfg, preprocessor, space, train_examples, validation_examples, global_batch)
        steps_per_epoch = cfg.train.steps_per_epoch or steps_per_pass
        with strategy.scope():
            compile_arguments = task.compile_arguments(cfg, space)
        with precision_scope(cfg.train.mixed_precision, compile_arguments) as precision, \
                strategy.scope():
            model = task.build_model(cfg, preprocessor, space, training=True,
                                     batch_size=cfg.train.batch_size)
            warm_start = start_from_run(cfg, preprocessor, model)
            vectors = _start_from_word_vectors(cfg, preprocessor, model)
            word_classes = _start_from_word_classes(cfg, preprocessor, model)
            groups = task.layer_groups(model) if grouped else None
            if grouped and not groups:
                raise ConfigError(f"model {cfg.model.name} has no backbone or recurrent layers "
                                  f"to give layer-wise rates to")
            optimizer = make_optimizer(cfg.train, steps_per_epoch * cfg.train.epochs,
                                       steps_per_epoch, replicas=replicas, variable_groups=groups)
            model.compile(optimizer=optimizer,
                          steps_per_execution=cfg.train.steps_per_execution,
                          **compile_arguments)

        checkpoints = os.path.join(run_dir, runs.CHECKPOINTS)
        best_path = os.path.join(checkpoints, runs.BEST_WEIGHTS)
        callbacks = [
            *task.callbacks(cfg=cfg, run_dir=work_dir, preprocessor=preprocessor, model=model,
                            validation_data=validation_data, validation_examples=validation_examples,
                            space=space),
            callbacks_lib.LearningRateLogger(),
            # a model with training phases of its own (NBSVM's counting epoch) brings their callbacks
            *getattr(model, "training_callbacks", list)(),
        ]
        if groups:
            callbacks.insert(0, GroupRatesCallback(optimizer, len(groups), cfg.train.layerwise_lr_decay,
                                                   cfg.train.gradual_unfreezing))
        # callbacks that rewrite the run's checkpoints run on the chief only
        callbacks = [c for c in callbacks if chief or not getattr(c, "chief_only", False)]
        if chief:
            callbacks += explanation_callbacks(cfg, preprocessor, model, space, validation_examples,
                                               os.path.join(run_dir, "logs", "validation"))
            callbacks += [
                callbacks_lib.AtomicBestCheckpoint(best_path, monitor=cfg.train.monitor),
                keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), update_freq="epoch"),
            ]
        if cfg.train.early_stopping_patience:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=cfg.train.monitor, patience=cfg.train.early_stopping_patience,
                mode=callbacks_lib.monitor_mode(cfg.train.monitor)))

        # a tracker that cannot start is refused like a bad setting: before any training
        trackers = tracking.start_trackers(cfg, run_dir) if chief and tracked else []

    backup = loop.TrainingBackup(os.path.join(run_dir, runs.BACKUP), cfg.train.backup_every_steps,
                                 writer=chief)
    if chief:
        tracking.write_hparams(cfg, os.path.join(run_dir, "logs"))
    if trackers:
        callbacks.append(tracking.tracking_callback(trackers))
    try:
        progress = loop.fit(model, strategy, train_data, validation_data, epochs=cfg.train.epochs,
                           steps_per_epoch=steps_per_epoch, callbacks=callbacks + list(extra_callbacks),
                           verbose=_verbosity(cfg.train.verbose), backup=backup)
    except BaseException:
        tracking.finish_trackers(trackers, run_dir, failed=True)
        raise

    if not chief:
        return run_dir
    with atomic.atomic_path(os.path.join(checkpoints, runs.LAST_WEIGHTS)) as tmp:
        model.save_weights(tmp)
    if os.path.exists(best_path):
        model.load_weights(best_path)
    result = {"task": cfg.task, "epochs_run": len(progress["history"]),
              "train_batches": progress["batches"], "resumed_at_batches": progress["resumed_at"],
              "train_seconds": round(time.time() - started, 1), "replicas": replicas,
              "workers": worker_count(strategy),
              "global_batch_size": global_batch, "mixed_precision": precision}
    if hasattr(train_examples, "texts"):
        result["train_examples"] = len(train_examples.texts)
    if vectors:
        result["word_vectors"] = vectors
    if warm_start:
        result["init_from"] = warm_start
    if word_classes:
        result["word_classes"] = word_classes
    result.update(task.final_metrics(cfg, preprocessor, model, space, validation_examples, run_dir))
    result["parameters"] = int(model.count_params())
    # rows of a partly fixed word embedding are trainable weights that never change
    fixed = vectors["fixed_parameters"] if vectors and vectors["trainable_words"] else 0
    result["trainable_parameters"] = int(sum(int(np.prod(v.shape)) for v in model.trainable_weights)
                                         - fixed)
    result["history"] = progress["history"]
    atomic.write_json(os.path.join(run_dir, runs.METRICS), result)
    _write_inspection_files(cfg, preprocessor, model, run_dir, result)
    tracking.finish_trackers(trackers, run_dir, result)
    return run_dir


def _start_from_word_vectors(cfg, preprocessor, model):
    """`model.word_vectors` written into the model's word embedding (None without them), which
    `model.freeze_word_vectors` then keeps fixed (but for `model.trainable_words`)."""
    if not cfg.model.word_vectors:
        for key in ("freeze_word_vectors", "trainable_words"):
            if getattr(cfg.model, key):
                raise ConfigError(f"model.{key} applies to the vectors of model.word_vectors; "
                                  f"set model.word_vectors or model.{key} to its default")
        return None
    if cfg.model.trainable_words and not cfg.model.freeze_word_vectors:
        raise ConfigError("model.trainable_words picks the rows of a fixed word embedding that "
                          "still train; set model.freeze_word_vectors: true or "
                          "model.trainable_words: 0")
    from keras_nlp_app.data.word_vectors import initialize_embeddings

    vocabulary = word_vocabulary(preprocessor)
    if vocabulary is None:
        raise ConfigError(f"model.word_vectors needs a word vocabulary (tokenizer.kind: word); "
                          f"the {cfg.task} run's tokenizer has none")
    return initialize_embeddings(model, vocabulary, cfg.model.word_vectors,
                                 freeze=cfg.model.freeze_word_vectors,
                                 trainable_words=cfg.model.trainable_words)


def _start_from_word_classes(cfg, preprocessor, model):
    """`model.word_classes` written into the model's word-class table (None without them)."""
    from keras_nlp_app.models.word_classes import initialize_word_classes, word_class_layers

    if not cfg.model.word_classes:
        if word_class_layers(model):
            raise ConfigError("model.params.word_class_dim embeds each word's class; set "
                              "model.word_classes to a lexicon (a WordNet folder such as "
                              "/usr/share/wordnet, or a word<TAB>class file)",
                              key="model.word_classes")
        return None
    vocabulary = word_vocabulary(preprocessor)
    if vocabulary is None:
        raise ConfigError(f"model.word_classes needs a word vocabulary (tokenizer.kind: word); "
                          f"the {cfg.task} run's tokenizer has none", key="model.word_classes")
    return initialize_word_classes(model, vocabulary, cfg.model.word_classes)


def _write_inspection_files(cfg, preprocessor, model, run_dir, result):
    """TensorBoard's HParams outcome and embedding projector files for the finished run."""
    from keras_nlp_app.inspection.attributions import token_embedding
    from keras_nlp_app.inspection.explain import token_strings

    log_dir = os.path.join(run_dir, "logs")
    tracking.write_final_metrics(cfg, log_dir, result)
    tokenizer = getattr(preprocessor, "tokenizer", None)
    if not cfg.train.projector_tokens or tokenizer is None:
        return
    try:
        token_embedding(model)
    except UserError:  # a model without a token embedding (Naive Bayes) has nothing to project
        return
    tracking.write_projector(model, lambda ids: token_strings(tokenizer, ids), log_dir,
                             cfg.train.projector_tokens)
