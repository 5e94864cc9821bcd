"""Text classification: labelled text in; one label (binary, multi-class) or a set of labels
(multi-label) per text out.

This module says what is particular to classification — how examples and labels are read, which
loss and metrics, how model outputs become probabilities, what the serving signature returns.
`ClassificationTask` holds the hooks the shared layers call (see tasks/base.py).
"""

import os

import numpy as np

from keras_nlp_app import metrics as metrics_lib
from keras_nlp_app.data import readers
from keras_nlp_app.data.splits import read_options
from keras_nlp_app.errors import ConfigError, UserError
from keras_nlp_app.tasks.base import Task, register, text_of
from keras_nlp_app.tasks.labels import (
    LabelSpace,
    classifier_kwargs,
    encode,
    example_weights,
    label_space,
    targets,
)


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


BACKBONE_MODEL = "backbone_classifier"  # the factory that fine-tunes model.backbone
THRESHOLD_GRID = np.arange(0.05, 0.96, 0.05)  # candidate multi-label thresholds


def tune_thresholds(encoded, probs, grid=THRESHOLD_GRID):
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




CLASS_MODELS = "class_lms"  # the ngram_classifier's per-class language models, in the assets


def _fit_class_models(cfg, tokenizer, train, space, assets_dir):
    """Fits and saves the n-gram LM of each class over the training texts' token ids."""
    import tensorflow as tf

    from keras_nlp_app.models.ngram_classifier import fit_class_models, save_class_models

    rows = []
    for start in range(0, len(train.texts), 4096):
        rows += tokenizer(tf.constant(train.texts[start:start + 4096])).to_list()
    fitted = fit_class_models(rows, encode(train, space), num_classes=space.num_classes,
                              vocab_size=tokenizer.vocabulary_size,
                              order=cfg.model.params.get("order", 3))
    save_class_models(fitted, os.path.join(assets_dir, CLASS_MODELS))
    return fitted


def split_multi_labels(examples, separator):
    """Multi-label data: each label becomes a list (JSON lists stay, strings split on separator)."""
    examples.labels = [
        label if isinstance(label, list) else [p.strip() for p in label.split(separator) if p.strip()]
        for label in examples.labels]
    return examples


def decode_targets(batch_targets, space):
    """Training targets back to what `evaluate` takes: class ids, or the multi-hot matrix."""
    if space.multi_label:
        return batch_targets.astype(np.int32)
    if batch_targets.shape[-1] == 1:
        return batch_targets[:, 0].astype(np.int32)
    return np.argmax(batch_targets, axis=-1)


@register
class ClassificationTask(Task):
    """Binary, multi-class and multi-label text classification."""

    name = "classification"
    ensembles = True
    settings = ("tokenizer.start_token",)

    def read_file(self, path, data_cfg, fmt=None):
        explicit = fmt is None
        options = read_options(data_cfg, path if explicit else None)
        if fmt is not None and data_cfg.format == "auto":
            options["fmt"] = fmt
        examples = readers.read_examples(path, **options)
        if data_cfg.multi_label:
            split_multi_labels(examples, data_cfg.label_separator)
        return examples

    def check_config(self, cfg):
        from keras_nlp_app.text.presets import check_backbone_config

        if check_backbone_config(cfg, BACKBONE_MODEL):
            return
        if cfg.tokenizer.kind in ("char", "byte"):
            raise ConfigError(f"tokenizer.kind {cfg.tokenizer.kind} is for language models; "
                              f"classifiers use word, whitespace or wordpiece")
        if cfg.model.name.endswith("_lm"):
            raise ConfigError(f"model {cfg.model.name} is a language model; set task: lm")
        if cfg.model.name == "nb_classifier" and (cfg.train.epochs != 1 or cfg.data.multi_label):
            raise ConfigError("nb_classifier counts in one pass over single-label data: set "
                              "train.epochs: 1 (and data.multi_label: false)")
        if cfg.model.name == "ngram_classifier" and (
                cfg.train.epochs != 1 or cfg.data.multi_label or cfg.tokenizer.ngrams > 1
                or "class_models" in cfg.model.params):
            raise ConfigError("ngram_classifier fits one n-gram LM per class from single-label "
                              "data before training: set train.epochs: 1, tokenizer.ngrams: 1 "
                              "(model.params.order sets the n-gram order)")
        if cfg.model.name == "nbsvm_classifier" and (cfg.train.epochs < 2 or cfg.data.multi_label):
            raise ConfigError("nbsvm_classifier counts in its first epoch and trains in the later "
                              "ones, on single-label data: set train.epochs: 2 or more (and "
                              "data.multi_label: false)")

    def monitorable(self, data_cfg, with_validation):
        names = ["loss", "accuracy"]
        if with_validation:
            names += ["val_loss", "val_accuracy", "val_macro_f1"]
            if data_cfg.multi_label:
                names.append("val_micro_f1")
        return names

    def prepare_assets(self, cfg, train, assets_dir):
        """(tokenizer, label space): learned from the training split, or the backbone preset's
        tokenizer (its files copied into the assets); loaded when resuming."""
        from keras_nlp_app.text import presets, tokenizers

        marker = os.path.join(assets_dir, presets.PRESET_FOLDER if cfg.model.backbone else "",
                              "tokenizer.json")
        if LabelSpace.exists(assets_dir) and os.path.exists(marker):
            return self.load_tokenizer(assets_dir), self.read_assets(assets_dir)
        if cfg.model.backbone:
            tokenizer = presets.PresetTokenizer.from_preset(cfg.model.backbone)
        else:
            tok = cfg.tokenizer
            exact = tok.ngrams > 1 and not tok.ngram_buckets  # n-grams in the vocabulary
            tokenizer = self.learned_tokenizer(
                cfg, train.texts, **({"ngrams": tok.ngrams, "ngram_vocab_size": tok.ngram_vocab_size}
                                     if exact else {}))
        space = label_space(train, cfg.data.multi_label)
        if cfg.model.backbone:
            tokenizer.save(assets_dir)
        else:
            tokenizers.save_tokenizer(tokenizer, assets_dir)
        space.save(assets_dir)
        if cfg.model.name == "ngram_classifier":
            space.class_models = _fit_class_models(cfg, tokenizer, train, space, assets_dir)
        return tokenizer, space

    def read_assets(self, assets_dir):
        if not LabelSpace.exists(assets_dir):
            raise UserError(f"{os.path.dirname(assets_dir)}: the run has no assets yet; train it first")
        from keras_nlp_app.models.ngram_classifier import load_class_models

        space = LabelSpace.load(assets_dir)
        space.class_models = load_class_models(os.path.join(assets_dir, CLASS_MODELS))
        return space

    def label_space_from_metadata(self, metadata):
        return LabelSpace(metadata["labels"], metadata.get("multi_label", False),
                          metadata.get("thresholds"))

    def build_preprocessor(self, cfg, tokenizer):
        from keras_nlp_app.text.preprocessors import ClassifierPreprocessor

        tok = cfg.tokenizer
        if cfg.model.backbone:
            from keras_nlp_app.text.presets import PresetPreprocessor

            try:
                return PresetPreprocessor(tokenizer, tok.sequence_length, tok.truncation)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        start_id = None
        if tok.start_token:
            vocabulary = getattr(tokenizer, "vocabulary", None) or []
            if tok.start_token not in vocabulary:
                raise ConfigError(f"tokenizer.start_token {tok.start_token!r} is not in the "
                                  f"vocabulary (a tokenizer.vocabulary folder must hold it)")
            start_id = vocabulary.index(tok.start_token)
        try:
            return ClassifierPreprocessor(tokenizer, tok.sequence_length, truncation=tok.truncation,
                                          ngrams=tok.ngrams, ngram_buckets=tok.ngram_buckets,
                                          start_id=start_id)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def build_model(self, cfg, preprocessor, space, *, training=False, batch_size=None):
        from keras_nlp_app.models import build_model as build

        if cfg.model.backbone:
            return self.build_backbone_model(cfg, preprocessor, space, training, cfg.model.params)
        fitted = {"class_models": space.class_models} if space.class_models else {}
        if cfg.model.name == "nb_classifier":  # training metrics only when they are monitored
            fitted["training_metrics"] = not cfg.train.monitor.startswith("val_")
        return build(cfg.model.name, vocab_size=preprocessor.input_vocabulary_size,
                     sequence_length=preprocessor.sequence_length * max(preprocessor.ngrams, 1),
                     **classifier_kwargs(space), **fitted, **cfg.model.params)

    def build_backbone_model(self, cfg, preprocessor, space, training, params):
        """`backbone_classifier` over the preset `model.backbone` with the factory's `params`."""
        from keras_nlp_app.models import build_model as build
        from keras_nlp_app.text.presets import load_backbone, loads_weights

        backbone = load_backbone(cfg.model.backbone, load_weights=loads_weights(cfg.model, training))
        positions = getattr(backbone, "max_sequence_length", None)
        if positions is not None and positions < preprocessor.sequence_length:
            raise ConfigError(f"tokenizer.sequence_length {preprocessor.sequence_length} exceeds "
                              f"the backbone's {positions} positions")
        return build(cfg.model.name, backbone=backbone, pad_token_id=preprocessor.pad_id,
                     finetune=cfg.model.finetune, lora_rank=cfg.model.lora_rank,
                     **classifier_kwargs(space), **params)

    def datasets_for(self, cfg, preprocessor, space, train, validation, global_batch):
        from keras_nlp_app.data.pipelines import make_dataset

        train_encoded = encode(train, space)
        pipeline = dict(preprocessor=preprocessor, batch_size=global_batch, seed=cfg.train.seed,
                        sort_window=cfg.train.sort_window)
        train_data = make_dataset(
            train.texts, targets(train_encoded, space), training=True,
            weights=example_weights(train_encoded, space, cfg.train.class_weight), **pipeline)
        validation_data = None
        if validation is not None:
            validation_data = make_dataset(
                validation.texts, targets(encode(validation, space), space), training=False,
                **pipeline)
        return train_data, validation_data, -(-len(train.texts) // global_batch)

    def compile_arguments(self, cfg, space):
        """Loss and metrics for `model.compile` (and XLA when `train.jit_compile` says so)."""
        import keras

        label_smoothing = cfg.train.label_smoothing
        extra = {} if cfg.train.jit_compile == "auto" else {"jit_compile": cfg.train.jit_compile == "on"}
        if space.multi_label or space.num_classes == 2:
            return {"loss": keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
                    "metrics": [keras.metrics.BinaryAccuracy(name="accuracy")], **extra}
        return {"loss": keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                "metrics": [keras.metrics.CategoricalAccuracy(name="accuracy")], **extra}

    def callbacks(self, *, cfg, run_dir, preprocessor, model, validation_data,
                  validation_examples, space):
        """Validation macro-F1 into the epoch logs (`val_macro_f1`, usable as train.monitor) and
        the confusion matrix as an image and a table in TensorBoard, each epoch."""
        from keras_nlp_app.callbacks import ValidationReport

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

    def final_metrics(self, cfg, preprocessor, model, space, validation, run_dir):
        """Validation metrics of the best weights; multi-label thresholds are tuned (and saved)."""
        if validation is None:
            return {}
        encoded = encode(validation, space)
        probs = predict(preprocessor, model, validation.texts)
        if space.multi_label and cfg.train.tune_thresholds:
            space.thresholds = tune_thresholds(encoded, probs)
            space.save(os.path.join(run_dir, "assets"))
        report = evaluate(encoded, probs, space)
        return {k: report[k] for k in ("examples", "accuracy", "balanced_accuracy", "macro_f1",
                                       "micro_f1") if k in report}

    explains = True

    def explanation_setup(self, run, text):
        """Each class's probability."""
        import tensorflow as tf

        return {"inputs": run.preprocessor(tf.constant([text])), "score_fn": probabilities,
                "classes": run.space.labels}

    def serve(self, run, inputs):
        return serving_outputs(
            probabilities(run.model(run.preprocessor(inputs["text"]), training=False)),
            run.space, run.cfg.model.top_k)

    def export_metadata(self, run):
        preprocessor, space = run.preprocessor, run.space
        return {
            "labels": space.labels, "multi_label": space.multi_label, "thresholds": space.thresholds,
            "tokenizer": preprocessor.describe(),
            "data": {"text_field": run.cfg.data.text_field, "label_field": run.cfg.data.label_field},
        }

    def check_export(self, run, reloaded, texts=None):
        """The reloaded export's probabilities must equal the trained model's."""
        import tensorflow as tf

        texts = texts or ["a great film", "a dull , lifeless film", "", "ünïcödé ✓ 映画"]
        expected = predict(run.preprocessor, run.model, texts)
        got = reloaded.signatures["serving_default"](text=tf.constant(texts))["probabilities"]
        if not np.allclose(expected, got.numpy(), atol=1e-5):
            raise RuntimeError("the exported model's predictions differ from the trained model's")

    def evaluate(self, target, *, data=None, split=None):
        """accuracy, macro_f1 (micro_f1 for multi-label), per_class, confusion_matrix."""
        examples = self.evaluation_examples(target, data, split)
        encoded = encode(examples, target.space)  # bad labels are refused before TensorFlow loads
        probs = target.predictor().predict({"text": examples.texts})["probabilities"]
        report = evaluate(encoded, probs, target.space)
        if examples.report.skipped:
            report["skipped_lines"] = examples.report.skipped
        return report

    def format_report(self, report):
        lines = [f"task: {report['task']}   examples: {report['examples']}"]
        extra = f"   micro-F1: {report['micro_f1']:.4f}" if "micro_f1" in report else ""
        exact = " (exact match)" if report.get("multi_label") else ""
        lines.append(f"accuracy{exact}: {report['accuracy']:.4f}   "
                     f"macro-F1: {report['macro_f1']:.4f}{extra}")
        labels = list(report["per_class"])
        width = max(8, *(len(label) for label in labels))
        lines.append(f"\n{'label':<{width}} precision  recall      f1  support")
        for label, row in report["per_class"].items():
            lines.append(f"{label:<{width}} {row['precision']:9.4f} {row['recall']:7.4f} "
                         f"{row['f1']:7.4f} {row['support']:8d}")
        if "confusion_matrix" in report:
            lines.append("\nconfusion matrix (rows: true, columns: predicted)")
            lines.append(" " * width + "".join(f"{label[:8]:>9}" for label in labels))
            for label, row in zip(labels, report["confusion_matrix"]):
                lines.append(f"{label:<{width}}" + "".join(f"{v:>9d}" for v in row))
        return "\n".join(lines)

    def prediction_records(self, inputs, outputs, target):
        records = []
        for i, text in enumerate(inputs["text"]):
            record = {
                "text": text,
                "label": text_of(outputs["label"][i]),
                "class_id": int(outputs["class_id"][i]),
                "probabilities": {label: round(float(p), 6)
                                  for label, p in zip(target.space.labels, outputs["probabilities"][i])},
                "top_k": [{"label": text_of(label), "probability": round(float(p), 6)}
                          for label, p in zip(outputs["top_k_labels"][i],
                                              outputs["top_k_probabilities"][i])],
            }
            if "labels" in outputs:
                record["labels"] = [text_of(label) for label in outputs["labels"][i] if label]
            records.append(record)
        return records

    def format_prediction(self, record):
        if "labels" in record:
            return f"{','.join(record['labels']) or '(none)'}\t{record['text']}"
        return f"{record['label']}\t{max(record['probabilities'].values()):.3f}\t{record['text']}"
