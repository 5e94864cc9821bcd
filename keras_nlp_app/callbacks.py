"""Callbacks every task shares: learning-rate logging and an atomic best-checkpoint writer."""

import os

import keras
import numpy as np

from keras_nlp_app.utils import atomic


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the current learning rate to the epoch logs, so TensorBoard plots it."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(
                self.model.optimizer.learning_rate))


def monitor_mode(monitor):
    """"min" for metrics that improve downwards (losses, perplexities), else "max"."""
    return "min" if "loss" in monitor or "perplexity" in monitor else "max"


class AtomicBestCheckpoint(keras.callbacks.Callback):
    """Saves weights whenever `monitor` improves: to a temporary file, then renamed into place.

    A crash mid-write leaves the previous best checkpoint intact. The best value is kept in a
    sidecar file so that a resumed run does not overwrite a better checkpoint with a worse one.
    """

    def __init__(self, path, monitor="val_accuracy", mode="auto"):
        super().__init__()
        self.path = path
        self.monitor = monitor
        if mode == "auto":
            mode = monitor_mode(monitor)
        self.better = np.less if mode == "min" else np.greater
        self.best = np.inf if mode == "min" else -np.inf
        self._best_file = path + ".best"
        if os.path.exists(self._best_file) and os.path.exists(path):
            with open(self._best_file) as f:
                self.best = float(f.read())

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            available = ", ".join(sorted(logs or {}))
            from keras_nlp_app.errors import ConfigError

            raise ConfigError(f"train.monitor {self.monitor!r} is not among the logged metrics: {available}")
        if not self.better(value, self.best):
            return
        self.best = float(value)
        with atomic.atomic_path(self.path) as tmp:
            self.model.save_weights(tmp)
        atomic.write_text(self._best_file, repr(self.best))


def confusion_image(matrix, cell=24):
    """`[1, H, W, 3]` uint8 heatmap of a confusion matrix, rows normalized (true class recall).

    Diagonal cells are green, off-diagonal red; brighter means a larger share of the row.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = len(matrix)
    image = np.zeros((size, size, 3), dtype=np.float64)
    diagonal = np.eye(size, dtype=bool)
    image[..., 1] = np.where(diagonal, shares, 0)
    image[..., 0] = np.where(diagonal, 0, shares)
    image = 40 + 215 * image
    image = np.kron(image, np.ones((cell, cell, 1)))
    image[::cell, :, :] = image[:, ::cell, :] = 255  # grid lines between cells
    return image.astype(np.uint8)[None]


def confusion_table(matrix, labels):
    """The confusion matrix as a Markdown table (TensorBoard's text dashboard renders it)."""
    header = "| true \\ predicted | " + " | ".join(labels) + " |"
    rule = "|---" * (len(labels) + 1) + "|"
    rows = [f"| {label} | " + " | ".join(str(int(v)) for v in row) + " |"
            for label, row in zip(labels, matrix)]
    return "\n".join([header, rule, *rows])


class ValidationReport(keras.callbacks.Callback):
    """Scores the whole validation set at each epoch end with a task's report function.

    `report(targets, outputs) -> (scalars, confusion_matrix or None, labels)`: the scalars go into
    the epoch logs as `val_<name>` (so checkpointing, early stopping and the TensorBoard callback
    placed after this one see them); the confusion matrix is written as an image and a table.

    Args:
        validation_data: batched (inputs, targets) dataset, as given to `fit`.
        report: the task's function of all targets and model outputs.
        log_dir: TensorBoard folder for the validation summaries.
        transform: applied to each batch of model outputs before `report` (e.g. to probabilities).
    """

    def __init__(self, validation_data, report, log_dir, transform=None):
        super().__init__()
        self.validation_data = validation_data
        self.report = report
        self.log_dir = log_dir
        self.transform = transform
        self._writer = None
        self._predict = None

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        if self._predict is None:
            model, transform = self.model, self.transform or (lambda x: x)
            self._predict = tf.function(lambda x: transform(model(x, training=False)),
                                        reduce_retracing=True, autograph=False)
        targets, outputs = [], []
        for inputs, batch_targets, *_ in self.validation_data:
            outputs.append(self._predict(inputs).numpy())
            targets.append(batch_targets.numpy())
        scalars, matrix, labels = self.report(np.concatenate(targets), np.concatenate(outputs))
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in scalars.items()})
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        if matrix is None:
            return
        with self._writer.as_default(step=epoch):
            tf.summary.image("confusion_matrix", confusion_image(matrix))
            tf.summary.text("confusion_matrix", confusion_table(matrix, labels))
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class ResetStates(keras.callbacks.Callback):
    """Zeroes a stateful model's carried state when each epoch and each evaluation starts, so
    every pass over a stream starts from the beginning (truncated back-propagation)."""

    def _reset(self, *_):
        self.model.reset_states()

    on_epoch_begin = on_test_begin = _reset


class PerplexityLogger(keras.callbacks.Callback):
    """Adds `perplexity` and `val_perplexity` (exp of the mean token loss) to the epoch logs."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for key in ("loss", "val_loss"):
            if key in logs:
                logs[key.replace("loss", "perplexity")] = float(np.exp(min(logs[key], 50.0)))


class LMSamples(keras.callbacks.Callback):
    """Writes text generated from fixed prompts to TensorBoard (Text tab) after every epoch.

    Args:
        log_dir: TensorBoard folder for the samples.
        sample: callable(model) → list of continuations, one per prompt.
        prompts: the prompts, shown beside their continuations.
    """

    def __init__(self, log_dir, sample, prompts):
        super().__init__()
        self.log_dir, self.sample, self.prompts = log_dir, sample, prompts
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        texts = self.sample(self.model)
        rows = ["| prompt | continuation |", "|---|---|"] + [
            f"| `{p!r}` | `{t!r}` |" for p, t in zip(self.prompts, texts)]
        with self._writer.as_default():
            tf.summary.text("samples", "\n".join(rows), step=epoch)
        self._writer.flush()


class DecodingReport(keras.callbacks.Callback):
    """Adds `val_<metric>` (e.g. BLEU, entity F1) to the epoch logs and writes sample outputs to
    TensorBoard (Text tab), for tasks whose validation score needs decoding.

    Args:
        report: callable(model) → (score, [row, ...]) or (score, [row, ...], {name: value}),
            each row a tuple of `columns` strings; the mapping adds more `val_<name>` scores.
        log_dir: TensorBoard folder (the validation logs).
        metric: the score's name.
        columns: the sample table's header.
    """

    def __init__(self, report, log_dir, metric="bleu", columns=("source", "reference", "output")):
        super().__init__()
        self.report, self.log_dir = report, log_dir
        self.metric, self.columns = metric, columns
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        value, samples, *more = self.report(self.model)
        scores = {self.metric: float(value), **(more[0] if more else {})}
        if logs is not None:
            logs.update({f"val_{name}": float(score) for name, score in scores.items()})
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        rows = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)] + [
            "| " + " | ".join(text.replace("|", "\\|").replace("\n", " / ") for text in sample) + " |"
            for sample in samples]
        with self._writer.as_default():
            tf.summary.text("samples", "\n".join(rows), step=epoch)
            for name, score in scores.items():
                tf.summary.scalar(f"epoch_{name}", score, step=epoch)
        self._writer.flush()


class AverageLastEpochs(keras.callbacks.Callback):
    """Averages the weights of the last `count` epochs when training ends (checkpoint averaging,
    as in Vaswani et al. and OpenNMT), scores the average, and replaces the best checkpoint with
    it when it scores higher than the best single epoch. `averaged.json` beside the checkpoint
    records the outcome.

    Args:
        count: epochs to average (at least 2).
        best_path: the best checkpoint `AtomicBestCheckpoint` writes.
        score: callable(model) → the monitored value (higher is better).
    """

    chief_only = True  # it rewrites the run's best checkpoint: one writer per run

    def __init__(self, count, best_path, score):
        super().__init__()
        self.count, self.best_path, self.score = count, best_path, score
        self._recent = []

    def on_epoch_end(self, epoch, logs=None):
        self._recent = (self._recent + [[np.array(w) for w in self.model.get_weights()]])[-self.count:]

    def on_train_end(self, logs=None):
        if len(self._recent) < 2:
            return
        final = self.model.get_weights()
        averaged = [np.mean(ws, axis=0).astype(ws[0].dtype) for ws in zip(*self._recent)]
        self.model.set_weights(averaged)
        score = float(self.score(self.model))
        best_file = self.best_path + ".best"
        best = float(open(best_file).read()) if os.path.exists(best_file) else -np.inf
        kept = score > best
        if kept:
            with atomic.atomic_path(self.best_path) as tmp:
                self.model.save_weights(tmp)
            atomic.write_text(best_file, repr(score))
        else:
            self.model.set_weights(final)
        atomic.write_json(os.path.join(os.path.dirname(self.best_path), "averaged.json"),
                          {"epochs_averaged": len(self._recent), "score": round(score, 4),
                           "best_single_epoch": round(best, 4), "kept": kept})


class EpochTimer(keras.callbacks.Callback):
    """Records each epoch's wall time in `seconds` (the benchmarks' training speed)."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        import time

        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        import time

        self.seconds.append(time.perf_counter() - self._start)
