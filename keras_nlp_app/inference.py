"""Predict and evaluate with a run folder or an exported SavedModel, through one interface.

`load_predictor(target)` accepts a run folder (config.yaml + checkpoints), a SavedModel version
folder, or its parent (the highest version is used). Both kinds answer `predict(texts)` with the
serving signature's outputs, so `knlp evaluate` scores exactly what would be served.
"""

import dataclasses
import os

import numpy as np

from keras_nlp_app.errors import UserError


@dataclasses.dataclass
class Predictor:
    task: str
    space: object  # the task's label space (labels, multi_label, thresholds)
    source: str
    _predict_batch: object  # callable: list[str] -> dict of numpy arrays
    run_config: object = None  # the run's Config (from the run folder or the export's metadata)

    @property
    def labels(self):
        return self.space.labels

    def predict(self, texts, batch_size=256):
        """The serving signature's outputs for raw texts, in order (numpy arrays)."""
        chunks = [self._predict_batch(texts[i:i + batch_size])
                  for i in range(0, len(texts) or 1, batch_size)]
        return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


def _is_run_dir(path):
    return os.path.isfile(os.path.join(path, "config.yaml"))


@dataclasses.dataclass
class Target:
    """What a run folder or SavedModel is, read from its files without importing TensorFlow, so
    that bad input can be refused before the slow (and noisy) TensorFlow start-up."""

    path: str  # the run folder, or the resolved SavedModel version folder
    is_run: bool
    task: str
    space: object
    run_config: object


def describe(target):
    """A `Target` for a run folder or a SavedModel (version folder or its parent)."""
    from keras_nlp_app.config import config_from_dict
    from keras_nlp_app.export.saved_model import read_metadata, resolve_model_dir
    from keras_nlp_app.tasks import TASKS
    from keras_nlp_app.training.train import read_run

    if not os.path.exists(target):
        raise UserError(f"{target}: no such run or model folder")
    if _is_run_dir(target):
        cfg, space = read_run(target)
        return Target(target, True, cfg.task, space, cfg)
    model_dir = resolve_model_dir(target)
    metadata = read_metadata(model_dir)
    space = TASKS[metadata["task"]].LabelSpace(
        metadata["labels"], metadata.get("multi_label", False), metadata.get("thresholds"))
    return Target(model_dir, False, metadata["task"], space,
                  config_from_dict(metadata.get("config", {})))


def load_predictor(target):
    """A `Predictor` for a run folder or a SavedModel (version folder or its parent)."""
    info = target if isinstance(target, Target) else describe(target)
    if info.is_run:
        return _run_predictor(info.path)
    return _saved_model_predictor(info)


def _run_predictor(run_dir):
    import tensorflow as tf

    from keras_nlp_app.training.train import restore_run

    run = restore_run(run_dir)
    serve = tf.function(run.serve, input_signature=[tf.TensorSpec([None], tf.string)])

    def predict_batch(texts):
        outputs = serve(tf.constant(texts, dtype=tf.string))
        return {key: value.numpy() for key, value in outputs.items()}

    return Predictor(run.cfg.task, run.space, run_dir, predict_batch, run_config=run.cfg)


def _saved_model_predictor(info):
    import tensorflow as tf

    from keras_nlp_app.export.saved_model import load_saved_model

    signature = load_saved_model(info.path).signatures["serving_default"]

    def predict_batch(texts):
        outputs = signature(text=tf.constant(texts, dtype=tf.string))
        return {key: value.numpy() for key, value in outputs.items()}

    return Predictor(info.task, info.space, info.path, predict_batch, run_config=info.run_config)


def evaluate(target, data=None, split=None):
    """Scores a run or SavedModel on a labelled file (`data`) or a split of the run's config.

    Args:
        target: run folder or SavedModel folder.
        data: a labelled data file in any reader format (columns as in the training config).
        split: `validation` (default when `data` is None) or `train`.

    Returns:
        A JSON-ready dict: task, examples, accuracy, macro_f1, per_class, confusion_matrix.
    """
    from keras_nlp_app.data import readers
    from keras_nlp_app.tasks import TASKS

    info = describe(target)
    task = TASKS[info.task]
    data_cfg = info.run_config.data
    if data is not None:
        examples = readers.read_examples(data, **task.read_options(data_cfg, explicit_file=True))
        if data_cfg.multi_label:
            task.split_multi_labels(examples, data_cfg.label_separator)
    else:
        train, validation = task.load_splits(data_cfg, info.run_config.train.seed)
        examples = train if split == "train" else validation
        if examples is None:
            raise UserError(f"{target}: its config names no {split or 'validation'} data; use --data")
    encoded = task.encode(examples, info.space)  # bad labels are refused before TensorFlow loads
    probabilities = load_predictor(info).predict(examples.texts)["probabilities"]
    report = task.evaluate(encoded, probabilities, info.space)
    if examples.report.skipped:
        report["skipped_lines"] = examples.report.skipped
    return report
