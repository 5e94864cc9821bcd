"""Relation classification: a text and two entity spans (head, tail) in; the directed relation
between them out (SemEval-2010 Task 8: 9 relations × 2 directions + Other).

The relation task is classification over marked text: the readers (data/relations.py) insert
entity markers (`__e1s__ head __e1e__ … __e2s__ tail __e2e__`) into each training text, the
markers are reserved tokens (ids 2-5) of the word vocabulary, and the models pool the states at
the two start markers. The exported `serving_default(text, head_start, head_end, tail_start,
tail_end)` inserts the same markers in the graph (tasks/relation_graphs.py), so it takes raw text and
character spans. Evaluation reports the official SemEval score (metrics.semeval_report).
"""

import os

import numpy as np

from keras_nlp_app import metrics as metrics_lib
from keras_nlp_app.data.relations import (
    HEAD_END,
    HEAD_START,
    MARKERS,
    TAIL_END,
    TAIL_START,
    mirrored_label,
    parse_marked,
    read_relations,
    read_texts,
    with_mirrored_pairs,
)
from keras_nlp_app.errors import ConfigError, UserError
from keras_nlp_app.tasks.base import register, text_of
from keras_nlp_app.tasks.classification import (
    ClassificationTask,
    predict,
    probabilities,
    serving_outputs,
)
from keras_nlp_app.tasks.labels import LabelSpace, encode, label_space

NAME = "relation"
SPANS = ("head_start", "head_end", "tail_start", "tail_end")
RELATION_MODELS = ("relation_bilstm", "relation_transformer")
ENSEMBLE = "ensemble_classifier"  # members averaged, each a relation model


def span_columns(sources):
    """`{text, head_start, head_end, tail_start, tail_end}` columns of (text, spans) tuples."""
    return {name: [source[i] for source in sources] for i, name in enumerate(("text", *SPANS))}


def both_directions(space):
    """The label space with the mirror of every directed label (`R(e1,e2)` ↔ `R(e2,e1)`): a
    relation seen in one direction may hold in the other (SemEval's rarest label has one
    training example)."""
    return LabelSpace(sorted(set(space.labels) | {mirrored_label(label) for label in space.labels}))


def marker_pieces(tokenizer):
    """The shifted ids (`text.presets`) of the pieces a preset's tokenizer cuts the head-start
    and the tail-start marker into, as they stand in marked text (after a space)."""
    from keras_nlp_app.text.presets import tokenize

    head, tail = tokenize(tokenizer, [f" {HEAD_START}", f" {TAIL_START}"]).to_list()
    if head == tail:
        raise ConfigError(f"the preset's tokenizer cuts {HEAD_START} and {TAIL_START} into the same "
                          f"pieces (its vocabulary lacks their characters), so the markers cannot "
                          f"be told apart; set model.params.pooling to first or mean")
    return [[piece + 1 for piece in marker] for marker in (head, tail)]


def report(encoded, probs, space):
    return {"task": NAME, **metrics_lib.semeval_report(encoded, np.argmax(probs, axis=-1),
                                                       space.labels)}


@register
class RelationTask(ClassificationTask):
    """Directed relation between two marked entities of a text."""

    name = NAME
    settings = (*ClassificationTask.settings, "data.mirror_pairs")
    signature_inputs = ("text", *SPANS)
    option_inputs = ()  # `knlp predict` reads the spans from <e1>…</e1> <e2>…</e2> in the text

    def read_file(self, path, data_cfg, fmt=None):
        return read_relations(path, on_bad_line=data_cfg.on_bad_line)

    def load_splits(self, data_cfg, seed):
        """The classifier's splits; with `data.mirror_pairs`, training also reads every pair the
        other way round (after the holdout, so no validation pair leaks into training)."""
        train, validation = super().load_splits(data_cfg, seed)
        if data_cfg.mirror_pairs:
            train = with_mirrored_pairs(train)
        return train, validation

    def check_config(self, cfg):
        from keras_nlp_app.tasks.classification import BACKBONE_MODEL
        from keras_nlp_app.text.presets import check_backbone_config

        if cfg.data.multi_label:
            raise ConfigError("task relation: one relation per entity pair (data.multi_label: false)")
        if check_backbone_config(cfg, BACKBONE_MODEL):
            return  # the preset's tokenizer cuts the marked text, markers included
        if cfg.model.name not in (*RELATION_MODELS, ENSEMBLE):
            raise ConfigError(f"task relation: model {cfg.model.name!r} is not a relation model; "
                              f"use {', '.join(RELATION_MODELS)} or {ENSEMBLE} of them")
        if cfg.model.name == ENSEMBLE:
            members = cfg.model.params.get("members") or []
            for i, member in enumerate(members):
                name = member.get("name") if isinstance(member, dict) else member
                if name not in RELATION_MODELS:
                    raise ConfigError(f"task relation: ensemble member {i} names {name!r}; "
                                      f"members are {' or '.join(RELATION_MODELS)}")
            if not members:
                raise ConfigError(f"task relation: {ENSEMBLE} needs model.params.members, a list "
                                  f"of relation models ({' or '.join(RELATION_MODELS)})")
        if cfg.tokenizer.kind not in ("word", "whitespace") or cfg.tokenizer.ngrams > 1:
            raise ConfigError("task relation: tokenizer.kind word or whitespace and "
                              "tokenizer.ngrams 1 (the entity markers are whole words)")

    def prepare_assets(self, cfg, train, assets_dir):
        """Word vocabulary with the four markers reserved (ids 2-5), or the backbone preset's
        tokenizer, and the label space."""
        from keras_nlp_app.text import presets, tokenizers

        marker = os.path.join(assets_dir, presets.PRESET_FOLDER if cfg.model.backbone else "",
                              "tokenizer.json")
        if LabelSpace.exists(assets_dir) and os.path.exists(marker):
            return self.load_tokenizer(assets_dir), self.read_assets(assets_dir)
        if cfg.model.backbone:
            tokenizer = presets.PresetTokenizer.from_preset(cfg.model.backbone)
            tokenizer.save(assets_dir)
        else:
            tokenizer = self.learned_tokenizer(cfg, read_texts(train), reserved=MARKERS)
            tokenizers.save_tokenizer(tokenizer, assets_dir)
        space = both_directions(label_space(train))
        space.save(assets_dir)
        return tokenizer, space

    def build_model(self, cfg, preprocessor, space, *, training=False, batch_size=None):
        from keras_nlp_app.models import build_model as build

        self.check_config(cfg)
        if cfg.model.backbone:  # the backbone's states where the start markers' pieces begin
            params = {"pooling": "markers", **cfg.model.params}
            if params["pooling"] == "markers":
                params["marker_pieces"] = marker_pieces(preprocessor.tokenizer)
            return self.build_backbone_model(cfg, preprocessor, space, training, params)
        vocabulary = preprocessor.tokenizer.vocabulary
        return build(cfg.model.name, vocab_size=preprocessor.input_vocabulary_size,
                     sequence_length=preprocessor.sequence_length,
                     head_marker_id=vocabulary.index(HEAD_START),
                     tail_marker_id=vocabulary.index(TAIL_START),
                     head_end_marker_id=vocabulary.index(HEAD_END),
                     tail_end_marker_id=vocabulary.index(TAIL_END),
                     num_classes=space.num_classes, **cfg.model.params)

    def monitorable(self, data_cfg, with_validation):
        names = ["loss", "accuracy"]
        return names + (["val_loss", "val_accuracy", "val_macro_f1"] if with_validation else [])

    def callbacks(self, *, cfg, run_dir, preprocessor, model, validation_data,
                  validation_examples, space):
        """The official macro-F1 (`val_macro_f1`) and the confusion matrix each epoch."""
        from keras_nlp_app.callbacks import ValidationReport

        if validation_data is None:
            return []

        def epoch_report(batch_targets, probs):
            result = report(np.argmax(batch_targets, axis=-1), probs, space)
            return {"macro_f1": result["macro_f1"]}, result["confusion_matrix"], space.labels

        return [ValidationReport(validation_data, epoch_report,
                                 os.path.join(run_dir, "logs", "validation"),
                                 transform=probabilities)]

    def final_metrics(self, cfg, preprocessor, model, space, validation, run_dir):
        if validation is None:
            return {}
        result = report(encode(validation, space), predict(preprocessor, model, validation.texts),
                        space)
        return {k: result[k] for k in ("examples", "accuracy", "macro_f1")}

    # -- export ------------------------------------------------------------------------------

    def serving_specs(self):
        import tensorflow as tf

        return {"text": tf.TensorSpec([None], tf.string, name="text"),
                **{name: tf.TensorSpec([None], tf.int32, name=name) for name in SPANS}}

    def serve(self, run, inputs):
        """label, class_id, probabilities and top-k of raw texts with character spans."""
        import tensorflow as tf

        from keras_nlp_app.tasks.relation_graphs import check_spans_graph, mark_graph

        spans = [tf.cast(inputs[name], tf.int32) for name in SPANS]
        with tf.control_dependencies([check_spans_graph(inputs["text"], *spans)]):
            marked = mark_graph(inputs["text"], *spans)
        return serving_outputs(probabilities(run.model(run.preprocessor(marked), training=False)),
                               run.space, run.cfg.model.top_k)

    def export_signatures(self, run):
        """serving_default, and with a `tagger` companion run, `extract(text[B])` → `triples`
        (JSON) and `num_triples`: entities tagged, paired within sentences, related."""
        signatures = super().export_signatures(run)
        tagger = run.companions.get("tagger")
        if tagger is not None:
            import tensorflow as tf

            from keras_nlp_app.tasks.relation_graphs import extraction_endpoint

            if tagger.cfg.task != "tagging":
                raise UserError(f"--tagger needs a tagging run, not a {tagger.cfg.task} run")
            signatures["extract"] = (extraction_endpoint(run, tagger),
                                     [tf.TensorSpec([None], tf.string, name="text")])
        return signatures

    def check_export(self, run, reloaded, texts=None):
        import tensorflow as tf

        sources = [("The fire was caused by a short circuit.", 4, 8, 25, 38),
                   ("A ünïcödé 映画 appeared.", 10, 12, 2, 9)]
        columns = span_columns(sources)
        got = reloaded.signatures["serving_default"](
            **{k: tf.constant(v, dtype=tf.string if k == "text" else tf.int32)
               for k, v in columns.items()})["probabilities"].numpy()
        from keras_nlp_app.data.relations import mark

        expected = predict(run.preprocessor, run.model,
                           [mark(t, (hs, he), (ts, te)) for t, hs, he, ts, te in sources])
        if not np.allclose(expected, got, atol=1e-5):
            raise RuntimeError("the exported model's predictions differ from the trained model's")
        if "extract" in reloaded.signatures:
            import json

            found = reloaded.signatures["extract"](text=tf.constant(
                ["", "Smoke from the fire reached Paris .", "ünïcödé ✓ 映画 ."]))
            for triples in found["triples"].numpy():
                json.loads(triples.decode("utf-8"))

    # -- evaluate and predict ----------------------------------------------------------------

    def evaluate(self, target, *, data=None, split=None):
        """The official macro_f1, accuracy, per_class (directed labels), per_relation, and the
        confusion matrix."""
        examples = self.evaluation_examples(target, data, split)
        encoded = encode(examples, target.space)
        probs = target.predictor().predict(span_columns(examples.sources))["probabilities"]
        result = report(encoded, probs, target.space)
        if examples.report.skipped:
            result["skipped_lines"] = examples.report.skipped
        return result

    def format_report(self, report):
        lines = [super().format_report(report),
                 f"\nofficial SemEval-2010 Task 8 score (macro-F1 over relations, direction "
                 f"counted, Other excluded): {report['macro_f1']:.4f}",
                 f"{'relation':<20} precision  recall      f1  support  wrong direction"]
        for name, row in report["per_relation"].items():
            lines.append(f"{name:<20} {row['precision']:9.4f} {row['recall']:7.4f} "
                         f"{row['f1']:7.4f} {row['support']:8d} {row['wrong_direction']:16d}")
        return "\n".join(lines).replace(f"macro-F1: {report['macro_f1']:.4f}",
                                        f"macro-F1 (19 labels): {report['classification_macro_f1']:.4f}", 1)

    def inputs_from_texts(self, source, texts):
        """Texts with `<e1>head</e1>` and `<e2>tail</e2>` marked, as SemEval writes them."""
        parsed = []
        for text in texts:
            try:
                raw, head, tail = parse_marked(text)
            except ValueError as exc:
                raise UserError(f"{text!r}: {exc}") from None
            parsed.append((raw, *head, *tail))
        return span_columns(parsed)

    def read_inputs(self, path, run_config):
        return span_columns(read_relations(path, labelled=False).sources)

    def prediction_records(self, inputs, outputs, target):
        records = []
        for i, text in enumerate(inputs["text"]):
            hs, he, ts, te = (int(inputs[name][i]) for name in SPANS)
            records.append({
                "text": text, "head": {"text": text[hs:he], "start": hs, "end": he},
                "tail": {"text": text[ts:te], "start": ts, "end": te},
                "label": text_of(outputs["label"][i]),
                "probability": round(float(np.max(outputs["probabilities"][i])), 6),
                "top_k": [{"label": text_of(label), "probability": round(float(p), 6)}
                          for label, p in zip(outputs["top_k_labels"][i],
                                              outputs["top_k_probabilities"][i])]})
        return records

    def format_prediction(self, record):
        return (f"{record['label']}\t{record['probability']:.3f}\t{record['head']['text']}\t"
                f"{record['tail']['text']}\t{record['text']}")
