"""Text classification: labelled text in, one label per text out (binary or multi-class).

This module says what is particular to classification — how examples and labels are read, which
loss and metrics, how model outputs become probabilities, what the serving signature returns.
The trainer and exporter call it through `TASKS["classification"]`.
"""

import dataclasses

import numpy as np

from keras_nlp_app import metrics as metrics_lib
from keras_nlp_app.config import DataConfig
from keras_nlp_app.data import datasets, readers
from keras_nlp_app.errors import DataError, UserError

_DEFAULT_DATA = DataConfig()


def read_options(data_cfg, explicit_file):
    """Reader options: the registry dataset's columns, overridden by what the config changed.

    The registry's format applies only to its own files; an explicit file's format comes from
    `data.format` or its suffix.
    """
    options = {"fmt": data_cfg.format, "text_field": data_cfg.text_field,
               "label_field": data_cfg.label_field, "header": data_cfg.header,
               "columns": data_cfg.columns or None, "on_bad_line": data_cfg.on_bad_line}
    if data_cfg.dataset:
        dataset = datasets.get_dataset(data_cfg.dataset)
        for key, value in dataset.read_options.items():
            if getattr(data_cfg, key) == getattr(_DEFAULT_DATA, key):
                options[key] = value
        if data_cfg.format == "auto" and not explicit_file:
            options["fmt"] = dataset.format
    return options


def read_split(data_cfg, split):
    """Reads the `train` or `validation` examples a data config names; None if it names none."""
    explicit = data_cfg.train_file if split == "train" else data_cfg.validation_file
    if explicit:
        path = explicit
    elif data_cfg.dataset:
        registry_split = data_cfg.train_split if split == "train" else data_cfg.validation_split
        if registry_split is None:
            return None
        path = datasets.split_path(data_cfg.dataset, registry_split)
    else:
        if split == "train":
            raise UserError("the config names no training data: set data.dataset or data.train_file")
        return None
    return readers.read_examples(path, **read_options(data_cfg, explicit))


def load_splits(data_cfg, seed):
    """(train, validation) examples as training sees them: capped at `max_train_examples`, and
    with validation held out of train (seeded) when the config asks for a holdout."""
    train = read_split(data_cfg, "train")
    if data_cfg.max_train_examples:
        keep = data_cfg.max_train_examples
        train = readers.Examples(train.texts[:keep], train.labels[:keep], train.lines[:keep],
                                 dataclasses.replace(train.report, examples=min(keep, len(train.texts))))
    validation = read_split(data_cfg, "validation")
    if validation is None and data_cfg.holdout_fraction:
        train, validation = holdout(train, data_cfg.holdout_fraction, seed)
    return train, validation


def holdout(examples, fraction, seed):
    """Splits examples into (train, held-out) by a seeded permutation."""
    if not 0 < fraction < 1:
        raise UserError(f"data.holdout_fraction must be in (0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(len(examples.texts))
    cut = int(round(len(order) * (1 - fraction)))
    if cut == 0 or cut == len(order):
        raise UserError(f"{examples.report.path}: too few examples to hold out {fraction:.0%}")

    def subset(indices):
        indices = sorted(indices)
        return readers.Examples(
            [examples.texts[i] for i in indices], [examples.labels[i] for i in indices],
            [examples.lines[i] for i in indices],
            dataclasses.replace(examples.report, examples=len(indices)))

    return subset(order[:cut]), subset(order[cut:])


def label_vocabulary(labels):
    """Sorted distinct labels; numerically when every label is an integer ("2" before "10")."""
    distinct = set(labels)
    if len(distinct) < 2:
        raise UserError(f"training data has {len(distinct)} distinct label(s); need at least 2")
    if all(label.lstrip("-").isdigit() for label in distinct):
        return sorted(distinct, key=int)
    return sorted(distinct)


def class_ids(examples, labels):
    """Maps label strings to ids; a label the model does not know is an error naming the line."""
    index = {label: i for i, label in enumerate(labels)}
    ids = np.empty(len(examples.labels), dtype=np.int32)
    for position, label in enumerate(examples.labels):
        if label not in index:
            raise DataError(
                f"unknown label {label!r}; this model knows {', '.join(labels)}",
                path=examples.report.path, line=examples.lines[position])
        ids[position] = index[label]
    return ids


def targets(ids, num_classes):
    """Training targets: `[N, 1]` floats for the sigmoid head, `[N]` ids for softmax."""
    if num_classes == 2:
        return ids.astype(np.float32).reshape(-1, 1)
    return ids


def compile_arguments(num_classes):
    import keras

    if num_classes == 2:
        return {"loss": keras.losses.BinaryCrossentropy(),
                "metrics": [keras.metrics.BinaryAccuracy(name="accuracy")]}
    return {"loss": keras.losses.SparseCategoricalCrossentropy(),
            "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}


def probabilities(model_output):
    """`[B, C]` class probabilities from the head output (`[B, 1]` sigmoid → two columns)."""
    import tensorflow as tf

    model_output = tf.cast(model_output, tf.float32)
    if model_output.shape[-1] == 1:
        return tf.concat([1.0 - model_output, model_output], axis=-1)
    return model_output


def serving_outputs(probs, labels):
    """The classification signature's outputs: label[B], class_id[B], probabilities[B, C]."""
    import tensorflow as tf

    class_id = tf.argmax(probs, axis=-1, output_type=tf.int32)
    return {"label": tf.gather(tf.constant(labels), class_id), "class_id": class_id,
            "probabilities": probs}


def evaluate(true_ids, probs, labels):
    """Metrics over the whole evaluation set from `[N, C]` probabilities."""
    report = metrics_lib.classification_report(true_ids, np.argmax(probs, axis=-1), labels)
    return {"task": "classification", **report}


def predict(preprocessor, model, texts, batch_size=256):
    """`[N, C]` class probabilities for raw texts, in order, computed as the export computes them."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], reduce_retracing=True)
    def batch_probabilities(batch):
        return probabilities(model(preprocessor(batch), training=False))

    outputs = [batch_probabilities(tf.constant(texts[i:i + batch_size], dtype=tf.string)).numpy()
               for i in range(0, len(texts), batch_size)]
    return np.concatenate(outputs, axis=0) if outputs else np.zeros((0, 0), np.float32)
