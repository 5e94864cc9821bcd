"""Text classification: labelled text in; one label (binary, multi-class) or a set of labels
(multi-label) per text out.

This module says what is particular to classification — how examples and labels are read, which
loss and metrics, how model outputs become probabilities, what the serving signature returns.
The trainer and exporter call it through `TASKS["classification"]`.
"""

import dataclasses
import json
import os

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
    source = datasets.split_source(data_cfg, split)
    if source is None:
        return None
    kind, value = source
    path = value if kind == "file" else datasets.split_path(data_cfg.dataset, value)
    return readers.read_examples(path, **read_options(data_cfg, value if kind == "file" else None))


def held_out_and_capped(train, validation, data_cfg, seed):
    """(train, validation) with a seeded `holdout_fraction` of train as validation when there
    is none, then train cut to its first `max_train_examples` (sequence tasks)."""
    if validation is None and data_cfg.holdout_fraction:
        train, validation = holdout(train, data_cfg.holdout_fraction, seed)
    if data_cfg.max_train_examples:
        keep = data_cfg.max_train_examples
        train = readers.Examples(train.texts[:keep], train.labels[:keep], train.lines[:keep],
                                 train.report)
    return train, validation


def load_splits(data_cfg, seed):
    """(train, validation) examples as training sees them: capped at `max_train_examples`, and
    with validation held out of train (seeded) when the config asks for a holdout."""
    train = read_split(data_cfg, "train")
    if train is not None and data_cfg.multi_label:
        split_multi_labels(train, data_cfg.label_separator)
    if data_cfg.max_train_examples:
        keep = data_cfg.max_train_examples
        train = readers.Examples(train.texts[:keep], train.labels[:keep], train.lines[:keep],
                                 dataclasses.replace(train.report, examples=min(keep, len(train.texts))))
    validation = read_split(data_cfg, "validation")
    if validation is not None and data_cfg.multi_label:
        split_multi_labels(validation, data_cfg.label_separator)
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


def split_multi_labels(examples, separator):
    """Multi-label data: each label becomes a list (JSON lists stay, strings split on separator)."""
    examples.labels = [
        label if isinstance(label, list) else [p.strip() for p in label.split(separator) if p.strip()]
        for label in examples.labels]
    return examples


@dataclasses.dataclass
class LabelSpace:
    """The labels a classifier knows, whether it is multi-label, and its decision thresholds."""

    labels: list
    multi_label: bool = False
    thresholds: list = None  # multi-label only: one probability threshold per label

    @property
    def num_classes(self):
        return len(self.labels)

    def threshold_vector(self):
        return np.asarray(self.thresholds or [0.5] * self.num_classes, dtype=np.float32)

    def save(self, folder):
        os.makedirs(folder, exist_ok=True)
        _atomic_write(os.path.join(folder, "labels.txt"), "\n".join(self.labels) + "\n")
        _atomic_write(os.path.join(folder, "label_space.json"), json.dumps(
            {"multi_label": self.multi_label, "thresholds": self.thresholds}, indent=2))

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


def _atomic_write(path, text):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


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


def compile_arguments(cfg, space):
    """Loss and metrics for `model.compile` (and XLA when `train.jit_compile` says so)."""
    import keras

    label_smoothing = cfg.train.label_smoothing
    extra = {} if cfg.train.jit_compile == "auto" else {"jit_compile": cfg.train.jit_compile == "on"}
    if space.multi_label or space.num_classes == 2:
        return {"loss": keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
                "metrics": [keras.metrics.BinaryAccuracy(name="accuracy")], **extra}
    return {"loss": keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
            "metrics": [keras.metrics.CategoricalAccuracy(name="accuracy")], **extra}


def probabilities(model_output):
    """`[B, C]` class probabilities from the head output (`[B, 1]` sigmoid → two columns)."""
    import tensorflow as tf

    model_output = tf.cast(model_output, tf.float32)
    if model_output.shape[-1] == 1:
        return tf.concat([1.0 - model_output, model_output], axis=-1)
    return model_output


def serving_outputs(probs, space, top_k=5):
    """The signature's outputs for `[B, C]` probabilities.

    Always: label[B] and class_id[B] (the most probable class), probabilities[B, C],
    top_k_labels[B, k] and top_k_probabilities[B, k]. Multi-label models add labels[B, C]: every
    label over its threshold, most probable first, padded with "" (and predicted[B, C], 0/1).
    """
    import tensorflow as tf

    names = tf.constant(space.labels)
    class_id = tf.argmax(probs, axis=-1, output_type=tf.int32)
    k = min(top_k, space.num_classes)
    top_probs, top_ids = tf.math.top_k(probs, k=k)
    outputs = {"label": tf.gather(names, class_id), "class_id": class_id, "probabilities": probs,
               "top_k_labels": tf.gather(names, top_ids), "top_k_probabilities": top_probs}
    if space.multi_label:
        chosen = probs >= tf.constant(space.threshold_vector())
        order = tf.argsort(probs, axis=-1, direction="DESCENDING")
        chosen_in_order = tf.gather(chosen, order, batch_dims=1)
        outputs["labels"] = tf.where(chosen_in_order, tf.gather(names, order), "")
        outputs["predicted"] = tf.cast(chosen, tf.int32)
    return outputs


def decisions(probs, space):
    """Predicted class ids `[N]`, or the multi-hot `[N, C]` decisions of a multi-label model."""
    if space.multi_label:
        return (probs >= space.threshold_vector()).astype(np.int32)
    return np.argmax(probs, axis=-1)


def evaluate(encoded, probs, space):
    """Metrics over the whole evaluation set from `[N, C]` probabilities.

    Single-label: accuracy, macro_f1, per_class, confusion_matrix. Multi-label: accuracy is the
    exact-match ratio, macro_f1 and micro_f1 are over labels, per_class has each label's scores.
    """
    predicted = decisions(probs, space)
    if not space.multi_label:
        return {"task": "classification",
                **metrics_lib.classification_report(encoded, predicted, space.labels)}
    return {"task": "classification", "multi_label": True,
            **metrics_lib.multilabel_report(encoded, predicted, space.labels)}


def tune_thresholds(encoded, probs, grid=np.arange(0.05, 0.96, 0.05)):
    """Per-label thresholds that maximize each label's F1 on `[N, C]` multi-hot truth."""
    thresholds = []
    for c in range(encoded.shape[1]):
        truth = encoded[:, c].astype(bool)
        scores = []
        for t in grid:
            guess = probs[:, c] >= t
            tp = np.sum(guess & truth)
            denominator = guess.sum() + truth.sum()
            scores.append(2 * tp / denominator if denominator else 0.0)
        thresholds.append(round(float(grid[int(np.argmax(scores))]), 2))
    return thresholds


def predict(preprocessor, model, texts, batch_size=256):
    """`[N, C]` class probabilities for raw texts, in order, computed as the export computes them."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], reduce_retracing=True)
    def batch_probabilities(batch):
        return probabilities(model(preprocessor(batch), training=False))

    outputs = [batch_probabilities(tf.constant(texts[i:i + batch_size], dtype=tf.string)).numpy()
               for i in range(0, len(texts), batch_size)]
    return np.concatenate(outputs, axis=0) if outputs else np.zeros((0, 0), np.float32)


def monitorable(data_cfg, with_validation):
    """Names `train.monitor` may take: what fit logs, plus what `callbacks` adds."""
    names = ["loss", "accuracy"]
    if with_validation:
        names += ["val_loss", "val_accuracy", "val_macro_f1"]
        if data_cfg.multi_label:
            names.append("val_micro_f1")
    return names


def decode_targets(batch_targets, space):
    """Training targets back to what `evaluate` takes: class ids, or the multi-hot matrix."""
    if space.multi_label:
        return batch_targets.astype(np.int32)
    if batch_targets.shape[-1] == 1:
        return batch_targets[:, 0].astype(np.int32)
    return np.argmax(batch_targets, axis=-1)


def callbacks(*, cfg, run_dir, preprocessor, model, validation_data, validation_examples, space):
    """Validation macro-F1 into the epoch logs (`val_macro_f1`, usable as train.monitor) and the
    confusion matrix as an image and a table in TensorBoard, each epoch."""
    from keras_nlp_app.training.callbacks import ValidationReport

    if validation_data is None:
        return []

    def report(batch_targets, probs):
        result = evaluate(decode_targets(batch_targets, space), probs, space)
        scalars = {"macro_f1": result["macro_f1"]}
        if "micro_f1" in result:
            scalars["micro_f1"] = result["micro_f1"]
        return scalars, result.get("confusion_matrix"), space.labels

    return [ValidationReport(validation_data, report, os.path.join(run_dir, "logs", "validation"),
                             transform=probabilities)]


# -- the trainer's and exporter's hooks (see training/train.py) --------------------------------


def prepare_assets(cfg, train_examples, assets_dir):
    """(tokenizer, label space) learned from the training split, or loaded when resuming."""
    from keras_nlp_app.text import tokenizers

    if LabelSpace.exists(assets_dir) and os.path.exists(os.path.join(assets_dir, "tokenizer.json")):
        return tokenizers.load_tokenizer(assets_dir), LabelSpace.load(assets_dir)
    tok_cfg = cfg.tokenizer
    tokenizer = tokenizers.learn_tokenizer(
        train_examples.texts, kind=tok_cfg.kind, vocab_size=tok_cfg.vocab_size,
        min_count=tok_cfg.min_count, lowercase=tok_cfg.lowercase)
    space = label_space(train_examples, cfg.data.multi_label)
    tokenizers.save_tokenizer(tokenizer, assets_dir)
    space.save(assets_dir)
    return tokenizer, space


def read_assets(assets_dir):
    """The label space a run folder's assets hold."""
    if not LabelSpace.exists(assets_dir):
        raise UserError(f"{os.path.dirname(assets_dir)}: the run has no assets yet; train it first")
    return LabelSpace.load(assets_dir)


def check_config(cfg):
    """Settings a classifier cannot train with, refused before TensorFlow starts."""
    from keras_nlp_app.errors import ConfigError

    if cfg.tokenizer.kind in ("char", "byte"):
        raise ConfigError(f"tokenizer.kind {cfg.tokenizer.kind} is for language models; "
                          f"classifiers use word, whitespace or wordpiece")
    if cfg.model.name.endswith("_lm"):
        raise ConfigError(f"model {cfg.model.name} is a language model; set task: lm")


def build_preprocessor(cfg, tokenizer):
    from keras_nlp_app.errors import ConfigError
    from keras_nlp_app.text.preprocessors import ClassifierPreprocessor

    tok = cfg.tokenizer
    try:
        return ClassifierPreprocessor(tokenizer, tok.sequence_length, truncation=tok.truncation,
                                      ngrams=tok.ngrams, ngram_buckets=tok.ngram_buckets)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def build_model(cfg, preprocessor, space, *, training=False, batch_size=None):
    from keras_nlp_app.models import build_model as build

    return build(cfg.model.name, vocab_size=preprocessor.input_vocabulary_size,
                 sequence_length=preprocessor.sequence_length * max(preprocessor.ngrams, 1),
                 **classifier_kwargs(space), **cfg.model.params)


def datasets_for(cfg, preprocessor, space, train_examples, validation_examples, global_batch):
    """(train dataset, validation dataset or None, batches in one pass over train)."""
    from keras_nlp_app.data.pipelines import make_dataset

    train_encoded = encode(train_examples, space)
    pipeline = dict(preprocessor=preprocessor, batch_size=global_batch, seed=cfg.train.seed,
                    sort_window=cfg.train.sort_window)
    train_data = make_dataset(
        train_examples.texts, targets(train_encoded, space), training=True,
        weights=example_weights(train_encoded, space, cfg.train.class_weight), **pipeline)
    validation_data = None
    if validation_examples is not None:
        validation_data = make_dataset(
            validation_examples.texts, targets(encode(validation_examples, space), space),
            training=False, **pipeline)
    return train_data, validation_data, -(-len(train_examples.texts) // global_batch)


def final_metrics(cfg, preprocessor, model, space, validation_examples, run_dir):
    """Validation metrics of the best weights; multi-label thresholds are tuned (and saved)."""
    if validation_examples is None:
        return {}
    encoded = encode(validation_examples, space)
    probs = predict(preprocessor, model, validation_examples.texts)
    if space.multi_label and cfg.train.tune_thresholds:
        space.thresholds = tune_thresholds(encoded, probs)
        space.save(os.path.join(run_dir, "assets"))
    report = evaluate(encoded, probs, space)
    return {k: report[k] for k in ("examples", "accuracy", "macro_f1", "micro_f1") if k in report}


def serve(run, text):
    """serving_default's outputs for a `[B]` string tensor."""
    return serving_outputs(probabilities(run.model(run.preprocessor(text), training=False)),
                           run.space, run.cfg.model.top_k)


def export_signatures(run):
    import tensorflow as tf

    return {"serving_default": (run.serve, [tf.TensorSpec([None], tf.string, name="text")])}


def export_metadata(run):
    preprocessor, space = run.preprocessor, run.space
    return {
        "labels": space.labels, "multi_label": space.multi_label, "thresholds": space.thresholds,
        "tokenizer": {"kind": preprocessor.tokenizer.kind,
                      "lowercase": preprocessor.tokenizer.lowercase,
                      "vocabulary_size": preprocessor.tokenizer.vocabulary_size,
                      "sequence_length": preprocessor.sequence_length,
                      "truncation": preprocessor.truncation, "ngrams": preprocessor.ngrams,
                      "ngram_buckets": preprocessor.ngram_buckets},
        "data": {"text_field": run.cfg.data.text_field, "label_field": run.cfg.data.label_field},
    }


def check_export(run, reloaded, texts=None):
    """The reloaded export's probabilities must equal the trained model's."""
    import tensorflow as tf

    texts = texts or ["a great film", "a dull , lifeless film", "", "ünïcödé ✓ 映画"]
    expected = predict(run.preprocessor, run.model, texts)
    got = reloaded.signatures["serving_default"](text=tf.constant(texts))["probabilities"]
    if not np.allclose(expected, got.numpy(), atol=1e-5):
        raise RuntimeError("the exported model's predictions differ from the trained model's")


def label_space_from_metadata(metadata):
    return LabelSpace(metadata["labels"], metadata.get("multi_label", False),
                      metadata.get("thresholds"))


def evaluate_target(info, *, data=None, split=None):
    """`knlp evaluate` for a run or SavedModel (an `inference.Target`): metrics on a labelled
    file, or on a split of the run's config."""
    from keras_nlp_app.inference import load_predictor

    data_cfg = info.run_config.data
    if data is not None:
        examples = readers.read_examples(data, **read_options(data_cfg, explicit_file=True))
        if data_cfg.multi_label:
            split_multi_labels(examples, data_cfg.label_separator)
    else:
        train, validation = load_splits(data_cfg, info.run_config.train.seed)
        examples = train if split == "train" else validation
        if examples is None:
            raise UserError(f"{info.path}: its config names no {split or 'validation'} data; use --data")
    encoded = encode(examples, info.space)  # bad labels are refused before TensorFlow loads
    probabilities = load_predictor(info).predict(examples.texts)["probabilities"]
    report = evaluate(encoded, probabilities, info.space)
    if examples.report.skipped:
        report["skipped_lines"] = examples.report.skipped
    return report


def load_tokenizer(assets_dir):
    """The tokenizer saved in a run's assets."""
    from keras_nlp_app.text import tokenizers

    return tokenizers.load_tokenizer(assets_dir)
