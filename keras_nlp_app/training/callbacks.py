"""Callbacks every task shares: learning-rate logging and an atomic best-checkpoint writer."""

import os

import keras
import numpy as np


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the current learning rate to the epoch logs, so TensorBoard plots it."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(
                self.model.optimizer.learning_rate))


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
            mode = "min" if "loss" in monitor or "perplexity" in monitor else "max"
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
            raise KeyError(f"train.monitor {self.monitor!r} is not among the logged metrics: {available}")
        if not self.better(value, self.best):
            return
        self.best = float(value)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path.replace(".weights.h5", ".tmp.weights.h5")
        self.model.save_weights(tmp)
        os.replace(tmp, self.path)
        with open(self._best_file + ".tmp", "w") as f:
            f.write(repr(self.best))
        os.replace(self._best_file + ".tmp", self._best_file)
