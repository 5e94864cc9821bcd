"""The epoch loop every task and every tf.distribute strategy shares.

The model's own `train_step` / `test_step` (loss scaling, gradient all-reduce, metric updates)
run on every replica through `strategy.run`; this module compiles and drives them instead of
`Model.fit`, for two reasons:

- Under `MultiWorkerMirroredStrategy`, Keras 3.15's `fit` all-reduces the first input batch
  before training (`_maybe_symbolic_build`), which fails on nested batches and on workers whose
  padded batches differ in shape (keras-team/keras#20329), and its compiled steps reduce each
  scalar metric "along axis 0", which fails too. Our loop takes neither path;
  `tests/training/test_loop.py` checks whether Keras still needs it.
- Keras' `BackupAndRestore` restarts an interrupted epoch from its first batch and writes its
  backup in place. `TrainingBackup` resumes at the exact batch, and each file it writes is
  complete or absent.
"""

import contextlib
import json
import logging
import os
import shutil
import time

import keras
import numpy as np

from keras_nlp_app.utils import atomic

log = logging.getLogger("keras_nlp_app")


def shard_by_data(dataset):
    """Each worker keeps its slice of every global batch (tf.data auto-shard by DATA).

    Set explicitly: the datasets are built from in-memory examples, so there are no files to
    shard by, and the global batch is split in place, keeping each step's padded shape the same
    on every worker.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _random_state(model):
    """The model's variables outside its weights: the dropout layers' seed-generator states,
    so a resumed run draws the same dropout masks as an uninterrupted one."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


class TrainingBackup:
    """Step-level training state under `folder`, for resuming an interrupted run exactly.

    `state.json` names the weights file (model and optimizer variables, `step-N.weights.h5`), the
    random state (dropout seeds, `step-N.random.npz`) and where training stood: epoch, batch within the epoch, batches consumed, epoch logs so far.
    Files are written to temporary names and renamed, the weights before the state that names
    them, so a crash at any moment leaves the previous backup whole.

    Args:
        folder: the backup folder (every worker reads the chief's).
        every_steps: also back up every N training batches; 0: only at the end of each epoch.
        writer: whether this process writes (the chief) or only restores.
    """

    def __init__(self, folder, every_steps=0, writer=True):
        self.folder, self.every_steps, self.writer = folder, every_steps, writer
        self._state_path = os.path.join(folder, "state.json")
        self._last_saved = 0

    def restore(self, model):
        """Loads the last backup into `model`; returns its state dict, or None when there is none."""
        if not os.path.exists(self._state_path):
            return None
        with open(self._state_path, encoding="utf-8") as f:
            state = json.load(f)
        model.load_weights(os.path.join(self.folder, state["weights"]))
        if state.get("random_state"):
            with np.load(os.path.join(self.folder, state["random_state"])) as saved:
                values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
            generators = _random_state(model)
            if len(values) == len(generators):
                for variable, value in zip(generators, values):
                    variable.assign(value)
        self._last_saved = state["batches"]
        return state

    def due(self, batches):
        return bool(self.every_steps) and batches - self._last_saved >= self.every_steps

    def save(self, model, state):
        self._last_saved = state["batches"]
        if not self.writer:
            return
        os.makedirs(self.folder, exist_ok=True)
        name = f"step-{state['batches']:09d}.weights.h5"
        with atomic.atomic_path(os.path.join(self.folder, name)) as tmp:
            model.save_weights(tmp)
        random_name = f"step-{state['batches']:09d}.random.npz"
        with atomic.atomic_path(os.path.join(self.folder, random_name)) as tmp, open(tmp, "wb") as f:
            np.savez(f, *[np.asarray(v.numpy()) for v in _random_state(model)])
        state = dict(state, weights=name, random_state=random_name)
        atomic.write_json(self._state_path, state)
        for old in os.listdir(self.folder):
            if old.startswith("step-") and old not in (name, random_name):
                os.remove(os.path.join(self.folder, old))

    def remove(self):
        if self.writer:
            shutil.rmtree(self.folder, ignore_errors=True)


def _plain(logs):
    """Metric values as Python numbers (lists for per-class metrics), for JSON and callbacks."""
    import numpy as np

    values = {}
    for name, value in logs.items():
        array = np.asarray(value)
        if array.dtype.kind in "biuf":
            values[name] = float(array) if array.ndim == 0 else array.tolist()
    return values


def _build_training_state(model, first_batch, replicas):
    """Creates the metric, loss and optimizer variables (in the strategy's scope, across
    replicas) before the steps are traced: one replica's share of a real batch goes through the
    model, the loss and the metrics eagerly, and the metric values are then reset."""
    import tensorflow as tf

    rows = max(int(tf.shape(tf.nest.flatten(first_batch)[0])[0]) // replicas, 1)
    inputs, targets, *weights = tf.nest.map_structure(lambda t: t[:rows], first_batch)
    weights = weights[0] if weights else None
    predictions = model(inputs, training=False)
    model.compute_loss(inputs, targets, predictions, weights, training=False)
    model.compute_metrics(inputs, targets, predictions, weights)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.reset_metrics()


class _Steps:
    """The compiled train and test steps: `model.train_step` / `test_step` run on every replica
    by `strategy.run`, under XLA when the model was compiled with `jit_compile` and there is
    one replica.

    The per-step logs are the first local replica's running metrics (for the progress bar, no
    cross-worker traffic); epoch logs come from `model.get_metrics_result()`, which aggregates
    every replica's metric state.
    """

    def __init__(self, model, strategy):
        import tensorflow as tf

        def first_replica(outputs):
            return tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0],
                                         outputs)

        def train_one(batch):
            return first_replica(strategy.run(model.train_step, args=(batch,)))

        def test_one(batch):
            return first_replica(strategy.run(model.test_step, args=(batch,)))

        jit = bool(model.jit_compile)
        if jit and strategy.num_replicas_in_sync > 1:
            # XLA would compile `strategy.run` itself, reaching into the other replicas'
            # variables; a multi-replica step runs without it
            log.warning("jit_compile is off: XLA is used with one replica only (this run has %d)",
                        strategy.num_replicas_in_sync)
            jit = False
        # No AutoGraph: the steps are keras ops with no Python control flow on tensors (as JAX
        # needs), so converting their source would change nothing and cost about a second of
        # a run's start-up (NB's whole fit on AG News: 2.5 s -> 1.0 s, loaded machine)
        train_one = tf.function(train_one, jit_compile=jit, reduce_retracing=True,
                                autograph=False)
        calls = int(model.steps_per_execution)

        @tf.function(autograph=False)
        def train(iterator):
            outputs = train_one(next(iterator))
            if calls > 1:
                _, outputs = tf.while_loop(lambda i, _: i < calls - 1,
                                           lambda i, _: (i + 1, train_one(next(iterator))),
                                           (tf.constant(0), outputs))
            return outputs

        self.train, self.steps_per_call = train, calls
        self.test = tf.function(test_one, reduce_retracing=True, autograph=False)


class _EpochEndLogs(keras.callbacks.Callback):
    """Last in the callback list: keeps the epoch logs as the other callbacks left them
    (`CallbackList` hands them a copy, to which they add `val_bleu`, `val_f1`, ...)."""

    def __init__(self):
        super().__init__()
        self.logs = {}

    def on_epoch_end(self, epoch, logs=None):
        self.logs = dict(logs or {})


def _moving_averages(model):
    """(weight, its moving average) pairs when the optimizer keeps averages (`train.ema_decay`),
    else none."""
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)  # loss-scaled
    if not getattr(optimizer, "use_ema", False):
        return []
    return list(zip(optimizer._trainable_variables, optimizer._model_variables_moving_average))


@contextlib.contextmanager
def averaged_weights(model):
    """Inside, the model holds the moving averages of its trainable weights and the optimizer
    the raw weights (swapped back on exit), so validation and the epoch-end callbacks
    (checkpoints, reports) see the averaged model while training and its backups go on from
    the raw one. Without moving averages it does nothing.

    A weight's constraint holds for its average too: Keras updates the averages before it
    applies constraints, so rows a constraint keeps fixed (`word_vectors.KeepRows`) would
    otherwise drift in the average by the steps the constraint undid."""
    pairs = _moving_averages(model)

    def swap():
        for weight, average in pairs:
            raw = np.array(weight)
            weight.assign(weight.constraint(average) if weight.constraint else average)
            average.assign(raw)

    swap()
    try:
        yield
    finally:
        swap()


def _evaluate(model, strategy, steps, validation_data, callbacks):
    model.reset_metrics()
    callbacks.on_test_begin()
    for step, batch in enumerate(strategy.experimental_distribute_dataset(
            shard_by_data(validation_data))):
        callbacks.on_test_batch_begin(step)
        callbacks.on_test_batch_end(step, steps.test(batch))
    results = _plain(model.get_metrics_result())
    callbacks.on_test_end(results)
    return results


def fit(model, strategy, train_data, validation_data, *, epochs, steps_per_epoch, callbacks,
        verbose, backup):
    """Trains `model` (compiled inside `strategy.scope()`).

    Returns `history` (epoch logs, one dict per epoch, including those run before a resume),
    `batches` (training batches done) and `resumed_at` (batches done at each resume).

    `train_data` yields global batches; it is repeated and sharded here, and on resume the
    batches already consumed are skipped, so the run sees the same data in the same order as an
    uninterrupted one.
    """
    with strategy.scope():
        _build_training_state(model, next(iter(train_data)), strategy.num_replicas_in_sync)
    state = backup.restore(model) or {"epoch": 0, "step": 0, "batches": 0, "history": []}
    resumed_at = list(state.get("resumed_at", []))
    if state["batches"]:
        resumed_at.append(state["batches"])
        log.warning("resuming from %s: epoch %d, batch %d of %d (%d batches done)", backup.folder,
                    state["epoch"] + 1, state["step"], steps_per_epoch, state["batches"])
    stream = shard_by_data(train_data.repeat().skip(state["batches"]))
    iterator = iter(strategy.experimental_distribute_dataset(stream))

    epoch_end = _EpochEndLogs()
    callbacks = keras.callbacks.CallbackList(
        [*callbacks, epoch_end], add_history=False, add_progbar=verbose != 0, verbose=verbose, epochs=epochs,
        steps=steps_per_epoch, model=model)
    model.stop_training = False
    steps = _Steps(model, strategy)
    per_call = steps.steps_per_call
    history, batches = list(state["history"]), state["batches"]
    callbacks.on_train_begin()
    for epoch in range(state["epoch"], epochs):
        model.reset_metrics()
        callbacks.on_epoch_begin(epoch)
        epoch_started = time.perf_counter()
        step = state["step"] if epoch == state["epoch"] else 0
        while step < steps_per_epoch:
            callbacks.on_train_batch_begin(step)
            logs = steps.train(iterator)
            callbacks.on_train_batch_end(step + per_call - 1, logs)
            step += per_call
            batches += per_call
            if backup.due(batches) and step < steps_per_epoch:
                backup.save(model, {"epoch": epoch, "step": step, "batches": batches,
                                    "history": history, "resumed_at": resumed_at})
            if model.stop_training:
                break
        # a model whose training steps update no metrics (Naive Bayes only counts) says so
        trained = getattr(model, "reports_training_metrics", True)
        epoch_logs = _plain(model.get_metrics_result()) if trained else {}
        epoch_logs["train_seconds"] = round(time.perf_counter() - epoch_started, 3)
        with averaged_weights(model):
            if validation_data is not None:
                epoch_logs.update({f"val_{name}": value for name, value in _evaluate(
                    model, strategy, steps, validation_data, callbacks).items()})
            callbacks.on_epoch_end(epoch, epoch_logs)
        history.append(_plain(epoch_end.logs))
        if model.stop_training:
            break
        if epoch + 1 < epochs:
            backup.save(model, {"epoch": epoch + 1, "step": 0, "batches": batches,
                                "history": history, "resumed_at": resumed_at})
    # with moving averages, the model ends with them (as every epoch's validation saw it)
    model.optimizer.finalize_variable_values(model.trainable_weights)
    for weight, _ in _moving_averages(model):
        if weight.constraint is not None:
            weight.assign(weight.constraint(weight))
    callbacks.on_train_end(history[-1] if history else None)
    backup.remove()
    return {"history": history, "batches": batches, "resumed_at": resumed_at}
