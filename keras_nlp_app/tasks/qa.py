"""Extractive question answering (SQuAD v1.1 / v2.0): a question and a paragraph in, the answer
as a span of the paragraph out.

Examples come from SQuAD JSON or JSONL (`data.squad.read_squad`: every answer is checked
against its context); validation is held out by article. Contexts are cut into overlapping
windows in graph (`text.qa`), readers (`bidaf_reader`, `transformer_reader`) score each window
token as the answer's start and end, and the best span over all windows wins. Scores are the
official SQuAD EM and F1; with unanswerable questions in the training data the model abstains
when its null score beats the best span by a threshold tuned on validation.
"""

import json
import os

import numpy as np

from keras_nlp_app import metrics as metrics_lib
from keras_nlp_app.data import readers, squad
from keras_nlp_app.errors import ConfigError
from keras_nlp_app.tasks.base import Task, register, text_of, with_vector_words
from keras_nlp_app.utils import atomic

NAME = "qa"
MODELS = ("bidaf_reader", "transformer_reader", "backbone_reader")
BACKBONE_MODEL = "backbone_reader"  # the factory that fine-tunes model.backbone
SAMPLES = 5  # validation questions shown in TensorBoard every epoch
_ASSETS = "qa.json"
# Reader factory parameters whose defaults changed after runs were written, with the value that
# gives the model of a run from before the change. A run records the values it was built with;
# a run lacking a key restores with the old value, so its weights fit the model rebuilt.
BUILD_SETTINGS = {"lexical_match": False, "fused_lstm": False}


class Reader:
    """A QA run's vocabularies and no-answer settings (what `prepare_assets` learns)."""

    def __init__(self, words, chars, abstains=False, null_threshold=0.0, preset=None,
                 built_with=None):
        self.words, self.chars = words, chars
        self.preset = preset  # a backbone's `presets.PresetTokenizer`, or None
        self.abstains = abstains  # trained on unanswerable questions: may answer ""
        self.null_threshold = null_threshold
        # the `BUILD_SETTINGS` the reader was built with
        self.built_with = dict(built_with or {})

    def save(self, assets_dir):
        from keras_nlp_app.text.presets import PRESET_FOLDER

        if self.preset is not None and not os.path.isdir(os.path.join(assets_dir, PRESET_FOLDER)):
            self.preset.save(assets_dir)
        atomic.write_json(os.path.join(assets_dir, _ASSETS),
                          {"words": self.words, "chars": self.chars, "abstains": self.abstains,
                           "null_threshold": self.null_threshold, **self.built_with},
                          ensure_ascii=False, indent=None)


def _learn_vocabularies(cfg, train):
    import tensorflow as tf

    from keras_nlp_app.text.preprocessors import TaggerPreprocessor, split_with_offsets
    from keras_nlp_app.text.qa import NULL_TOKEN
    from keras_nlp_app.text.tokenizers import PAD, UNK

    texts = sorted({c for _, c in train.texts}) + [q for q, _ in train.texts]
    counts, chars = {}, {}
    for start in range(0, len(texts), 2048):
        tokens = split_with_offsets(tf.constant(texts[start:start + 2048]))[0].flat_values
        for word in TaggerPreprocessor.normalize_words(tokens).numpy():
            counts[word] = counts.get(word, 0) + 1
        for token in tokens.numpy():
            for char in token.decode("utf-8", errors="replace"):
                chars[char] = chars.get(char, 0) + 1
    ranked = sorted((w for w, c in counts.items() if c >= cfg.tokenizer.min_count),
                    key=lambda w: (-counts[w], w))[:max(cfg.tokenizer.vocab_size - 3, 0)]
    words = [PAD, UNK, NULL_TOKEN] + [w.decode("utf-8") for w in ranked]
    return Reader(with_vector_words(cfg, words, lowercase=True),
                  [PAD, UNK] + sorted(chars, key=lambda c: (-chars[c], c)),
                  abstains=any(not answers for answers in train.labels))


def _factory_parameters(model_name):
    """The keyword parameters of the reader factory `model_name` with their defaults."""
    import inspect

    from keras_nlp_app.models import MODELS as FACTORIES

    factory = FACTORIES[model_name]
    return {name: p.default for name, p in inspect.signature(factory).parameters.items()}


def _build_settings(model_name, params):
    """The `BUILD_SETTINGS` that a new run of `model_name` is built with: its params', else the
    factory's defaults (only those the factory takes)."""
    accepted = _factory_parameters(model_name)
    return {key: bool(params.get(key, accepted[key])) for key in BUILD_SETTINGS if key in accepted}


def references(examples):
    return [[text for text, _ in answers] for answers in examples.labels]


@register
class QATask(Task):
    """Extractive question answering with BiDAF-style and Transformer readers."""

    name = NAME
    settings = ("data.answer_occurrences", "tokenizer.question_length", "tokenizer.doc_stride",
                "model.max_answer_length")
    signature_inputs = ("question", "context")

    # -- data --------------------------------------------------------------------------------

    def read_file(self, path, data_cfg, fmt=None):
        """Examples(texts=(question, context), labels=[(answer, start)], lines=question ids,
        groups=articles) from SQuAD JSON or JSONL."""
        return squad.read_squad(path, on_bad_line=data_cfg.on_bad_line)

    def check_config(self, cfg):
        if cfg.model.name not in MODELS:
            raise ConfigError(f"model {cfg.model.name!r} is not a reader; use {' or '.join(MODELS)}")
        from keras_nlp_app.text.presets import check_backbone_config

        check_backbone_config(cfg, BACKBONE_MODEL)
        if cfg.tokenizer.kind != "word" or cfg.tokenizer.vocabulary:
            raise ConfigError("qa readers take tokenizer.kind: word and learn their word and "
                              "character vocabularies from the training split")
        tok = cfg.tokenizer
        for key, value in (("tokenizer.sequence_length", tok.sequence_length),
                           ("tokenizer.question_length", tok.question_length),
                           ("tokenizer.doc_stride", tok.doc_stride),
                           ("model.max_answer_length", cfg.model.max_answer_length),
                           ("model.top_k", cfg.model.top_k)):
            if value < 1:
                raise ConfigError(f"{key} must be at least 1, got {value}")
        if tok.doc_stride > tok.sequence_length:
            raise ConfigError(f"tokenizer.doc_stride ({tok.doc_stride}) must not exceed "
                              f"tokenizer.sequence_length ({tok.sequence_length}), or windows "
                              f"would skip tokens")

    def monitorable(self, data_cfg, with_validation):
        return ["loss"] + (["val_loss", "val_f1", "val_exact_match"] if with_validation else [])

    # -- assets, model, training -------------------------------------------------------------

    def prepare_assets(self, cfg, train, assets_dir):
        """Word and character vocabularies from the training split (or, resuming, the run's)."""
        if os.path.exists(os.path.join(assets_dir, _ASSETS)):
            return self.load_tokenizer(assets_dir), None
        reader = _learn_vocabularies(cfg, train)
        reader.built_with = _build_settings(cfg.model.name, cfg.model.params)
        if cfg.model.backbone:
            from keras_nlp_app.text.presets import PresetTokenizer

            reader.preset = PresetTokenizer.from_preset(cfg.model.backbone)
        reader.save(assets_dir)
        return reader, None

    def load_tokenizer(self, assets_dir):
        found = self.read_json_assets(assets_dir, _ASSETS)
        preset = None
        from keras_nlp_app.text.presets import PRESET_FOLDER, PresetTokenizer

        if os.path.isdir(os.path.join(assets_dir, PRESET_FOLDER)):
            preset = PresetTokenizer.load(os.path.join(assets_dir, PRESET_FOLDER))
        return Reader(found["words"], found["chars"], found.get("abstains", False),
                      found.get("null_threshold", 0.0), preset,
                      {key: found.get(key, old) for key, old in BUILD_SETTINGS.items()})

    def read_assets(self, assets_dir):
        self.load_tokenizer(assets_dir)
        return None

    def build_preprocessor(self, cfg, tokenizer):
        from keras_nlp_app.text.qa import QAPreprocessor

        tok = cfg.tokenizer
        preprocessor = QAPreprocessor(tokenizer.words, tokenizer.chars,
                                      context_length=tok.sequence_length, doc_stride=tok.doc_stride,
                                      question_length=tok.question_length,
                                      max_word_length=tok.max_word_length,
                                      piece_tokenizer=tokenizer.preset)
        preprocessor.reader = tokenizer
        return preprocessor

    def build_model(self, cfg, preprocessor, space, *, training=False, batch_size=None):
        from keras_nlp_app.models import build_model as build

        self.check_config(cfg)
        params = dict(cfg.model.params)
        if cfg.model.backbone:
            from keras_nlp_app.text.presets import backbone_factory_params

            params.update(backbone_factory_params(
                cfg.model, preprocessor.piece_tokenizer, pieces=preprocessor.max_pieces(),
                allows=f"tokenizer.sequence_length {preprocessor.context_length} and "
                       f"tokenizer.question_length {preprocessor.question_length} allow",
                remedy=lambda positions: f"lower them (2 x sequence_length + 4 x "
                                         f"question_length + 5 <= {positions})",
                training=training))
        else:
            accepted = _factory_parameters(cfg.model.name)
            for key, value in preprocessor.reader.built_with.items():
                if key in accepted:
                    params.setdefault(key, value)
        if cfg.model.name == "transformer_reader":
            params.setdefault("max_length", preprocessor.context_length + 1
                              + preprocessor.question_length)
        return build(cfg.model.name, vocab_size=len(preprocessor.word_vocabulary),
                     char_vocab_size=len(preprocessor.char_vocabulary),
                     max_word_length=preprocessor.max_word_length, **params)

    def datasets_for(self, cfg, preprocessor, space, train, validation, global_batch):
        from keras_nlp_app.tasks.qa_graphs import window_dataset

        common = dict(batch_size=global_batch, seed=cfg.train.seed, window=cfg.train.sort_window,
                      occurrences=cfg.data.answer_occurrences)
        train_data = window_dataset(preprocessor, train, training=True, **common)
        validation_data = None
        if validation is not None:
            validation_data = window_dataset(preprocessor, validation, training=False, **common)
        return train_data, validation_data, -(-len(train.texts) // global_batch)

    def compile_arguments(self, cfg, space):
        """The reader computes its own loss. No XLA unless asked: window batches vary in shape."""
        return {"jit_compile": cfg.train.jit_compile == "on"}

    def _answers(self, cfg, preprocessor, model, examples):
        from keras_nlp_app.tasks.qa_graphs import abstain, predict_answers

        texts, scores, nulls = predict_answers(model, preprocessor, examples.texts,
                                               max_answer_length=cfg.model.max_answer_length)
        reader = preprocessor.reader
        threshold = reader.null_threshold if reader.abstains else None
        return abstain(texts, scores, nulls, threshold), (texts, scores, nulls)

    def callbacks(self, *, cfg, run_dir, preprocessor, model, validation_data, validation_examples,
                  space):
        from keras_nlp_app.callbacks import DecodingReport

        if validation_data is None:
            return []
        gold = references(validation_examples)

        def report(current):
            predicted, _ = self._answers(cfg, preprocessor, current, validation_examples)
            scores = metrics_lib.squad_report(predicted, gold)
            samples = [(q, " / ".join(g) or "(no answer)", p or "(no answer)")
                       for (q, _), g, p in zip(validation_examples.texts[:SAMPLES],
                                               gold[:SAMPLES], predicted[:SAMPLES])]
            return scores["f1"], samples, {"exact_match": scores["exact_match"]}

        return [DecodingReport(report, os.path.join(run_dir, "logs", "validation"), metric="f1",
                               columns=("question", "gold", "predicted"))]

    def final_metrics(self, cfg, preprocessor, model, space, validation, run_dir):
        """EM and F1 of the best weights on validation; a model that may abstain first tunes its
        no-answer threshold there (saved in the run's assets, used by the export)."""
        from keras_nlp_app.tasks.qa_graphs import tune_threshold

        if validation is None:
            return {}
        gold = references(validation)
        reader = preprocessor.reader
        if reader.abstains:
            _, raw = self._answers(cfg, preprocessor, model, validation)
            reader.null_threshold = tune_threshold(*raw, gold, metrics_lib.squad_report)
            reader.save(os.path.join(run_dir, "assets"))
        predicted, _ = self._answers(cfg, preprocessor, model, validation)
        report = {"examples": len(gold), **metrics_lib.squad_report(predicted, gold)}
        if reader.abstains:
            report["null_threshold"] = reader.null_threshold
        return report

    # -- export ------------------------------------------------------------------------------

    def serve(self, run, inputs):
        """serving_default: `answer [B]`, `start [B]` / `end [B]` (characters of the context, end
        exclusive; -1 with no answer), `score [B]` (start + end score) and `n_best [B]` (JSON list
        of the `model.top_k` best spans)."""
        import tensorflow as tf

        preprocessor = run.preprocessor
        question = tf.convert_to_tensor(inputs["question"], tf.string)
        context = tf.convert_to_tensor(inputs["context"], tf.string)
        features, windows = preprocessor.windows(question, context)
        decoded = preprocessor.decode(run.model(features, training=False), windows, context,
                                      max_answer_length=run.cfg.model.max_answer_length,
                                      n_best=max(run.cfg.model.top_k, 1))
        from keras_nlp_app.tasks.qa_graphs import json_list

        answer, start = decoded["answers"][:, 0], decoded["starts"][:, 0]
        end, score = decoded["ends"][:, 0], decoded["scores"][:, 0]
        found = score > -1e8
        if preprocessor.reader.abstains:
            found &= decoded["null_score"] - score <= preprocessor.reader.null_threshold
        return {"answer": tf.where(found, answer, ""), "start": tf.where(found, start, -1),
                "end": tf.where(found, end, -1), "score": tf.where(found, score, 0.0),
                "n_best": json_list(decoded, run.cfg.model.top_k)}

    def export_metadata(self, run):
        preprocessor, reader = run.preprocessor, run.preprocessor.reader
        return {"tokenizer": {"kind": "qa", "vocabulary_size": len(preprocessor.word_vocabulary),
                              "characters": len(preprocessor.char_vocabulary),
                              "context_length": preprocessor.context_length,
                              "doc_stride": preprocessor.doc_stride,
                              "question_length": preprocessor.question_length},
                "abstains": reader.abstains,
                "null_threshold": reader.null_threshold if reader.abstains else None}

    def check_export(self, run, reloaded, texts=None):
        """The export's outputs equal the trained model's on a context spanning several windows,
        Unicode text, an empty context and an empty question."""
        import tensorflow as tf

        long_context = " ".join(["The Köln cathedral, finished in 1880, is tall."] * 40)
        batches = [(["When was it finished?", "Wer?", ""], [long_context, "Zoë wohnt in Köln.", "x"]),
                   (["Who?"], [""])]
        for questions, contexts in batches:
            inputs = {"question": tf.constant(questions), "context": tf.constant(contexts)}
            expected = {k: v.numpy() for k, v in self.serve(run, inputs).items()}
            got = {k: v.numpy() for k, v in reloaded.signatures["serving_default"](**inputs).items()}
            for key, value in expected.items():
                same = (np.allclose(value, got[key], atol=1e-3) if value.dtype.kind == "f"
                        else np.array_equal(value, got[key]))
                if not same and key != "n_best":
                    raise RuntimeError(f"the exported model's {key} is {got[key]!r}, the trained "
                                       f"model's {value!r}")

    # -- evaluate, predict -------------------------------------------------------------------

    def evaluate(self, target, *, data=None, split=None):
        """exact_match and f1 (official SQuAD, in percent); with unanswerable questions the
        HasAns/NoAns scores too."""
        examples = self.evaluation_examples(target, data, split)
        if target.is_run:
            run = target.restore()
            predicted, _ = self._answers(run.cfg, run.preprocessor, run.model, examples)
        else:
            outputs = target.predictor().predict(
                {"question": [q for q, _ in examples.texts],
                 "context": [c for _, c in examples.texts]}, batch_size=64)
            predicted = [text_of(a) for a in outputs["answer"]]
        report = {"task": NAME, "examples": len(examples.texts),
                  **metrics_lib.squad_report(predicted, references(examples))}
        if examples.report.skipped:
            report["skipped_lines"] = examples.report.skipped
        return report

    def format_report(self, report):
        lines = [f"task: qa   questions: {report['examples']}",
                 f"exact match: {report['exact_match']:.2f}   F1: {report['f1']:.2f}   "
                 f"(official SQuAD, percent)"]
        if "HasAns_f1" in report:
            lines.append(f"has answer: EM {report['HasAns_exact']:.2f} F1 {report['HasAns_f1']:.2f}"
                         f"   no answer: EM {report.get('NoAns_exact', 0):.2f}")
        if report.get("skipped_lines"):
            lines.append(f"(skipped questions: {report['skipped_lines']})")
        return "\n".join(lines)

    def read_inputs(self, path, run_config):
        """`knlp predict --input`: SQuAD JSON, or JSONL with `question` and `context` fields."""
        if os.path.splitext(path)[1].lower() == ".json":
            examples = squad.read_squad(path)
            return {"question": [q for q, _ in examples.texts],
                    "context": [c for _, c in examples.texts]}
        questions = readers.read_examples(path, fmt="jsonl", text_field="question", label_field=None)
        contexts = readers.read_examples(path, fmt="jsonl", text_field="context", label_field=None)
        return {"question": questions.texts, "context": contexts.texts}

    def prediction_records(self, inputs, outputs, target):
        records = []
        for i, question in enumerate(inputs["question"]):
            records.append({"question": question, "answer": text_of(outputs["answer"][i]),
                            "start": int(outputs["start"][i]), "end": int(outputs["end"][i]),
                            "score": float(outputs["score"][i]),
                            "n_best": json.loads(text_of(outputs["n_best"][i]))})
        return records

    def format_prediction(self, record):
        if not record["answer"]:
            return f"Q: {record['question']}\nA: (no answer)\n"
        return (f"Q: {record['question']}\nA: {record['answer']}   "
                f"[{record['start']}:{record['end']}]   score {record['score']:.2f}\n")
