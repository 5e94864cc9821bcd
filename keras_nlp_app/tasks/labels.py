"""Label spaces of classifiers: the labels, their order, multi-label thresholds, and the
encodings (class ids, one-hot/multi-hot targets, class weights) training and evaluation use."""

import dataclasses
import json
import os

import numpy as np

from keras_nlp_app.errors import DataError, UserError
from keras_nlp_app.utils import atomic


@dataclasses.dataclass
class LabelSpace:
    """The labels a classifier knows, whether it is multi-label, and its decision thresholds."""

    labels: list
    multi_label: bool = False
    thresholds: list = None  # multi-label only: one probability threshold per label
    # fitted per-class statistics a model is built from (the ngram_classifier's class LMs);
    # kept in their own asset files, not in label_space.json
    class_models: dict = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def num_classes(self):
        return len(self.labels)

    def threshold_vector(self):
        return np.asarray(self.thresholds or [0.5] * self.num_classes, dtype=np.float32)

    def save(self, folder):
        os.makedirs(folder, exist_ok=True)
        atomic.write_text(os.path.join(folder, "labels.txt"), "\n".join(self.labels) + "\n")
        atomic.write_json(os.path.join(folder, "label_space.json"),
                          {"multi_label": self.multi_label, "thresholds": self.thresholds})

    @classmethod
    def load(cls, folder):
        with open(os.path.join(folder, "labels.txt"), encoding="utf-8") as f:
            labels = f.read().split("\n")[:-1]
        with open(os.path.join(folder, "label_space.json"), encoding="utf-8") as f:
            spec = json.load(f)
        return cls(labels, spec["multi_label"], spec["thresholds"])

    @staticmethod
    def exists(folder):
        return os.path.exists(os.path.join(folder, "label_space.json"))


def _sorted_labels(distinct):
    if all(label.lstrip("-").isdigit() for label in distinct):
        return sorted(distinct, key=int)
    return sorted(distinct)


def label_space(examples, multi_label=False):
    """The label space of the training data: labels sorted (numerically when all are integers)."""
    if multi_label:
        distinct = {label for labels in examples.labels for label in labels}
        if not distinct:
            raise UserError(f"{examples.report.path}: no labels in the multi-label training data")
        return LabelSpace(_sorted_labels(distinct), multi_label=True)
    for position, label in enumerate(examples.labels):
        if isinstance(label, list):
            raise DataError("a list of labels in single-label data; set data.multi_label: true",
                            path=examples.report.path, line=examples.lines[position])
    distinct = set(examples.labels)
    if len(distinct) < 2:
        raise UserError(f"training data has {len(distinct)} distinct label(s); need at least 2")
    return LabelSpace(_sorted_labels(distinct))


def encode(examples, space):
    """Class ids `[N]` (single-label) or a multi-hot `[N, C]` matrix (multi-label).

    A label the model does not know is an error naming the file and line.
    """
    index = {label: i for i, label in enumerate(space.labels)}

    def lookup(label, position):
        if not isinstance(label, str) or label not in index:
            raise DataError(
                f"unknown label {label!r}; this model knows {', '.join(space.labels)}",
                path=examples.report.path, line=examples.lines[position])
        return index[label]

    if space.multi_label:
        hot = np.zeros((len(examples.labels), space.num_classes), dtype=np.int32)
        for position, labels in enumerate(examples.labels):
            for label in labels:
                hot[position, lookup(label, position)] = 1
        return hot
    return np.array([lookup(label, i) for i, label in enumerate(examples.labels)], dtype=np.int32)


def targets(encoded, space):
    """Training targets: `[N, 1]` for the binary sigmoid head, one-hot or multi-hot `[N, C]`."""
    if space.multi_label:
        return encoded.astype(np.float32)
    if space.num_classes == 2:
        return encoded.astype(np.float32).reshape(-1, 1)
    return np.eye(space.num_classes, dtype=np.float32)[encoded]


def example_weights(encoded, space, class_weight):
    """Per-example loss weights from `train.class_weight`, or None when every weight is 1.

    balanced: weight of class c = N / (C * count(c)), as scikit-learn defines it.
    """
    if class_weight in ("none", None):
        return None
    if space.multi_label:
        raise UserError("train.class_weight is for single-label data; multi-label data has no "
                        "single class per example")
    counts = np.bincount(encoded, minlength=space.num_classes).astype(np.float64)
    if class_weight == "balanced":
        weights = len(encoded) / (space.num_classes * np.maximum(counts, 1))
    elif isinstance(class_weight, dict):
        unknown = [k for k in map(str, class_weight) if k not in space.labels]
        if unknown:
            raise UserError(f"train.class_weight names unknown label {unknown[0]!r}; labels: "
                            f"{', '.join(space.labels)}")
        weights = np.array([float(class_weight.get(l, class_weight.get(_maybe_int(l), 1.0)))
                            for l in space.labels])
    else:
        raise UserError(f"train.class_weight must be none, balanced or a mapping label: weight, "
                        f"got {class_weight!r}")
    return weights[encoded].astype(np.float32)


def _maybe_int(label):
    return int(label) if label.lstrip("-").isdigit() else label


def classifier_kwargs(space):
    """Keyword arguments every classifier factory takes for the label space."""
    return {"num_classes": space.num_classes, "multi_label": space.multi_label}
