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
    labels: list
    source: str
    _predict_batch: object  # callable: list[str] -> dict of numpy arrays
    run_config: object = None  # the run's Config when loaded from a run folder

    def predict(self, texts, batch_size=256):
        """Serving outputs (`label`, `class_id`, `probabilities`) for raw texts, in order."""
        chunks = [self._predict_batch(texts[i:i + batch_size])
                  for i in range(0, len(texts), batch_size)]
        if not chunks:
            return {"label": np.array([], dtype=object), "class_id": np.array([], np.int32),
                    "probabilities": np.zeros((0, len(self.labels)), np.float32)}
        return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


def _is_run_dir(path):
    return os.path.isfile(os.path.join(path, "config.yaml"))


def load_predictor(target):
    """A `Predictor` for a run folder or a SavedModel (version folder or its parent)."""
    if not os.path.exists(target):
        raise UserError(f"{target}: no such run or model folder")
    if _is_run_dir(target):
        return _run_predictor(target)
    return _saved_model_predictor(target)


def _run_predictor(run_dir):
    import tensorflow as tf

    from keras_nlp_app.tasks import TASKS
    from keras_nlp_app.training.train import restore_run

    cfg, preprocessor, model, labels = restore_run(run_dir)
    task = TASKS[cfg.task]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], reduce_retracing=True)
    def serve(text):
        return task.serving_outputs(task.probabilities(model(preprocessor(text), training=False)), labels)

    def predict_batch(texts):
        outputs = serve(tf.constant(texts, dtype=tf.string))
        return {key: value.numpy() for key, value in outputs.items()}

    return Predictor(cfg.task, labels, run_dir, predict_batch, run_config=cfg)


def _saved_model_predictor(path):
    import tensorflow as tf

    from keras_nlp_app.export.saved_model import load_saved_model, read_metadata, resolve_model_dir

    model_dir = resolve_model_dir(path)
    metadata = read_metadata(model_dir)
    loaded = load_saved_model(model_dir)
    signature = loaded.signatures["serving_default"]

    def predict_batch(texts):
        outputs = signature(text=tf.constant(texts, dtype=tf.string))
        return {key: value.numpy() for key, value in outputs.items()}

    predictor = Predictor(metadata["task"], metadata["labels"], model_dir, predict_batch)
    predictor.metadata = metadata
    return predictor


def _data_config_for(predictor):
    from keras_nlp_app.config import config_from_dict

    if predictor.run_config is not None:
        return predictor.run_config.data
    return config_from_dict(getattr(predictor, "metadata", {}).get("config", {})).data


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

    predictor = load_predictor(target)
    task = TASKS[predictor.task]
    data_cfg = _data_config_for(predictor)
    if data is not None:
        examples = readers.read_examples(data, **task.read_options(data_cfg, explicit_file=True))
    else:
        seed = predictor.run_config.train.seed if predictor.run_config else 0
        train, validation = task.load_splits(data_cfg, seed)
        examples = train if split == "train" else validation
        if examples is None:
            raise UserError(f"{target}: its config names no {split or 'validation'} data; use --data")
    ids = task.class_ids(examples, predictor.labels)
    probabilities = predictor.predict(examples.texts)["probabilities"]
    report = task.evaluate(ids, probabilities, predictor.labels)
    if examples.report.skipped:
        report["skipped_lines"] = examples.report.skipped
    return report
