"""Sequence to sequence: one text in, another out (translation, summarization, dialogue).

Pairs come from line-aligned parallel files (`data.format: parallel`, the registry's multi30k,
or `--data SRC_FILE,TGT_FILE`), TSV/CSV/JSONL columns (`data.text_field` → `data.label_field`),
or dialogues (`data.format: dialog`). SentencePiece vocabularies are learned from the training
pairs. Training is teacher-forced with label smoothing; validation BLEU (greedy, on up to
`train.eval_examples` pairs) is logged every epoch as `val_bleu`; the final report and the
export decode with beam search (`model.beam_size`, `model.length_penalty`); the graph code is
in seq2seq_graphs.py.
"""

import os

import numpy as np

from keras_nlp_app import metrics as metrics_lib
from keras_nlp_app.data import datasets, readers
from keras_nlp_app.data.splits import DEFAULT_DATA, read_options
from keras_nlp_app.errors import ConfigError, UserError
from keras_nlp_app.tasks.base import Task, register, text_of
from keras_nlp_app.tasks.seq2seq_graphs import (
    decode_graph,
    smoothed_loss,
    target_perplexity,
    token_accuracy,
    translate,
)

NAME = "seq2seq"
SAMPLES = 5  # validation pairs shown in TensorBoard every epoch




def _format(data_cfg, path):
    if data_cfg.format != "auto":
        return data_cfg.format
    if data_cfg.dataset and not path:
        return datasets.get_dataset(data_cfg.dataset).format
    return "parallel" if "," in path else readers.detect_format(path)


def _tokenizer_folders(assets_dir, shared):
    if shared:
        return {"source": assets_dir, "target": assets_dir}
    return {side: os.path.join(assets_dir, side) for side in ("source", "target")}


def _target_ids(preprocessor, texts, chunk=4096):
    import tensorflow as tf

    parts = [preprocessor.target_ids(tf.constant(texts[i:i + chunk]))
             for i in range(0, len(texts), chunk)]
    return tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]


def _teacher_forcing(source, target):
    return {"source": source, "target": target[:, :-1]}, target[:, 1:]


def score(outputs, references):
    report = {"examples": len(references), **metrics_lib.bleu_report(outputs, references),
              **metrics_lib.rouge_report(outputs, references)}
    report["distinct_1"] = metrics_lib.distinct_n(outputs, 1)
    report["distinct_2"] = metrics_lib.distinct_n(outputs, 2)
    return report


@register
class Seq2SeqTask(Task):
    """Translation, summarization and dialogue: a Transformer or attentional LSTM encoder-decoder."""

    name = NAME
    settings = ("data.context_turns",)
    generates = True
    converses = True

    # -- data --------------------------------------------------------------------------------

    def read_file(self, path, data_cfg, fmt=None):
        """Examples(texts=sources, labels=targets) from one data argument: `SRC,TGT` parallel
        files, a dialogue file, or a TSV/CSV/JSONL file with source and target columns."""
        fmt = fmt or _format(data_cfg, path)
        if fmt == "parallel":
            paths = path.split(",") if isinstance(path, str) else list(path)
            if len(paths) != 2:
                raise UserError(f"{path}: parallel data is two files, SOURCE_FILE,TARGET_FILE")
            return readers.read_parallel(*paths, on_bad_line=data_cfg.on_bad_line)
        if fmt == "dialog":
            return readers.read_dialogues(path, context_turns=data_cfg.context_turns,
                                          on_bad_line=data_cfg.on_bad_line)
        return readers.read_examples(path, **read_options(data_cfg, True))

    def read_registry(self, data_cfg, split_name):
        dataset = datasets.get_dataset(data_cfg.dataset)
        paths = datasets.split_paths(data_cfg.dataset, split_name)
        options = {**dataset.read_options}
        for key in ("text_field", "label_field", "columns", "header"):
            if getattr(data_cfg, key) != getattr(DEFAULT_DATA, key):
                options[key] = getattr(data_cfg, key)
        if dataset.format == "parallel":
            by_suffix = {os.path.splitext(p)[1].lstrip("."): p for p in paths}
            try:
                pair = [by_suffix[data_cfg.text_field], by_suffix[data_cfg.label_field]]
            except KeyError:
                raise ConfigError(f"dataset {data_cfg.dataset} has the languages "
                                  f"{', '.join(sorted(by_suffix))}; set data.text_field (source) and "
                                  f"data.label_field (target) to two of them") from None
            return readers.read_parallel(*pair, on_bad_line=data_cfg.on_bad_line)
        if dataset.format == "dialog":
            return readers.read_dialogues(paths[0], context_turns=data_cfg.context_turns,
                                          on_bad_line=data_cfg.on_bad_line)
        return readers.read_examples(paths[0], fmt=dataset.format, on_bad_line=data_cfg.on_bad_line,
                                     **{k: v for k, v in options.items() if k != "fmt"})

    def check_config(self, cfg):
        if cfg.model.name not in ("transformer_seq2seq", "lstm_seq2seq"):
            raise ConfigError(f"model {cfg.model.name!r} is not a sequence-to-sequence model; use "
                              f"transformer_seq2seq or lstm_seq2seq")
        if cfg.tokenizer.kind != "sentencepiece":
            raise ConfigError("sequence-to-sequence models use tokenizer.kind: sentencepiece")
        if cfg.tokenizer.vocabulary and not cfg.tokenizer.shared_vocabulary:
            raise ConfigError("tokenizer.vocabulary is one vocabulary for source and target; set "
                              "tokenizer.shared_vocabulary: true")
        if cfg.model.beam_size < 1:
            raise ConfigError("model.beam_size must be at least 1")
        if cfg.train.average_checkpoints > 1 and cfg.train.monitor != "val_bleu":
            raise ConfigError("train.average_checkpoints compares the average by validation BLEU; "
                              "set train.monitor: val_bleu")

    def monitorable(self, data_cfg, with_validation):
        names = ["loss", "token_accuracy"]
        if with_validation:
            names += ["val_loss", "val_token_accuracy", "val_bleu"]
        return names

    # -- assets, model, training -------------------------------------------------------------

    def load_tokenizer(self, assets_dir):
        """(source tokenizer, target tokenizer) saved in a run's assets (one object when shared)."""
        from keras_nlp_app.text import tokenizers

        if os.path.exists(os.path.join(assets_dir, "tokenizer.json")):
            shared = tokenizers.load_tokenizer(assets_dir)
            return shared, shared
        return (tokenizers.load_tokenizer(os.path.join(assets_dir, "source")),
                tokenizers.load_tokenizer(os.path.join(assets_dir, "target")))

    def prepare_assets(self, cfg, train, assets_dir):
        """SentencePiece model(s) learned from the training pairs, or loaded when resuming."""
        from keras_nlp_app.text import tokenizers

        tok = cfg.tokenizer
        folders = _tokenizer_folders(assets_dir, tok.shared_vocabulary)
        if all(os.path.exists(os.path.join(f, "tokenizer.json")) for f in folders.values()):
            return self.load_tokenizer(assets_dir), None

        if tok.shared_vocabulary:
            shared = self.learned_tokenizer(cfg, train.texts + train.labels)
            pair = (shared, shared)
        else:
            pair = (self.learned_tokenizer(cfg, train.texts),
                    self.learned_tokenizer(cfg, train.labels))
        for tokenizer, folder in zip(pair, folders.values()):
            tokenizers.save_tokenizer(tokenizer, folder)
        return pair, None

    def read_assets(self, assets_dir):
        if not (os.path.exists(os.path.join(assets_dir, "tokenizer.json"))
                or os.path.exists(os.path.join(assets_dir, "target", "tokenizer.json"))):
            raise UserError(f"{os.path.dirname(assets_dir)}: the run has no assets yet; train it first")
        return None

    def build_preprocessor(self, cfg, tokenizer):
        from keras_nlp_app.text.preprocessors import Seq2SeqPreprocessor

        source, target = tokenizer
        return Seq2SeqPreprocessor(source, target, cfg.tokenizer.sequence_length,
                                   cfg.tokenizer.target_length)

    def build_model(self, cfg, preprocessor, space, *, training=False, batch_size=None):
        from keras_nlp_app.models import build_model as build

        self.check_config(cfg)
        params = dict(cfg.model.params)
        longest = max(preprocessor.source_length, preprocessor.target_length)
        params.setdefault("max_length", -(-longest // 64) * 64)
        if params["max_length"] < longest:
            raise ConfigError(f"model.params.max_length {params['max_length']} is shorter than the "
                              f"longest sequence ({longest} tokens)")
        model = build(cfg.model.name, source_vocab_size=preprocessor.source_tokenizer.vocabulary_size,
                      target_vocab_size=preprocessor.target_tokenizer.vocabulary_size, **params)
        model({"source": np.ones((1, 4), np.int32), "target": np.ones((1, 4), np.int32)})
        return model

    def datasets_for(self, cfg, preprocessor, space, train, validation, global_batch):
        from keras_nlp_app.data.pipelines import make_dataset

        common = dict(preprocessor=preprocessor, batch_size=global_batch, seed=cfg.train.seed,
                      sort_window=cfg.train.sort_window, assemble=_teacher_forcing,
                      length_buckets=cfg.train.length_buckets)
        train_data = make_dataset(train.texts, _target_ids(preprocessor, train.labels),
                                  training=True, **common)
        validation_data = None
        if validation is not None:
            validation_data = make_dataset(validation.texts, _target_ids(preprocessor, validation.labels),
                                           training=False, **common)
        return train_data, validation_data, -(-len(train.texts) // global_batch)

    def compile_arguments(self, cfg, space):
        """Loss and metrics; XLA with `train.jit_compile: on`, or `auto` with length buckets:
        batches padded to their own longest pair would make XLA compile again for every new
        (source, target) length, bucketed ones only once per bucket pair."""
        jit = cfg.train.jit_compile == "on" or (cfg.train.jit_compile == "auto"
                                                and cfg.train.length_buckets > 0)
        return {"loss": smoothed_loss(cfg.train.label_smoothing), "metrics": [token_accuracy],
                "jit_compile": jit}

    def callbacks(self, *, cfg, run_dir, preprocessor, model, validation_data, validation_examples, space):
        from keras_nlp_app.callbacks import AverageLastEpochs, DecodingReport

        if validation_data is None:
            return []
        validation = validation_examples
        limit = cfg.train.eval_examples or len(validation.texts)
        sources, references = validation.texts[:limit], validation.labels[:limit]

        def report(current):
            outputs = translate(current, preprocessor, sources, beam_size=1)
            return metrics_lib.bleu_report(outputs, references)["bleu"], list(zip(
                sources[:SAMPLES], references[:SAMPLES], outputs[:SAMPLES]))

        found = [DecodingReport(report, os.path.join(run_dir, "logs", "validation"))]
        if cfg.train.average_checkpoints > 1:
            found.append(AverageLastEpochs(
                cfg.train.average_checkpoints, os.path.join(run_dir, "checkpoints", "best.weights.h5"),
                lambda current: report(current)[0]))
        return found

    def final_metrics(self, cfg, preprocessor, model, space, validation, run_dir):
        """BLEU, chrF and ROUGE of the best weights on all validation pairs, with beam search and
        with greedy decoding (beam size 1) side by side."""
        if validation is None:
            return {}
        beam = translate(model, preprocessor, validation.texts, beam_size=cfg.model.beam_size,
                         length_penalty=cfg.model.length_penalty)
        greedy = translate(model, preprocessor, validation.texts, beam_size=1)
        report = score(beam, validation.labels)
        report["bleu_greedy"] = metrics_lib.bleu_report(greedy, validation.labels)["bleu"]
        report["beam_size"] = cfg.model.beam_size
        report.update(target_perplexity(model, preprocessor, validation.texts, validation.labels))
        return report

    # -- export ------------------------------------------------------------------------------

    def serve(self, run, inputs):
        """serving_default: `output [B]`, decoded with the run's beam size inside the graph."""
        return {"output": decode_graph(run.model, run.preprocessor, inputs["text"],
                                       run.cfg.model.beam_size,
                                        run.cfg.model.length_penalty)}

    def export_signatures(self, run):
        """serving_default (beam search with the run's beam size) and generate (sampling with
        temperature, top_k, top_p and seed; temperature 0 is greedy)."""
        import tensorflow as tf

        def generate(text, temperature, top_k, top_p, seed):
            return {"output": decode_graph(run.model, run.preprocessor, text, 1,
                                            run.cfg.model.length_penalty,
                                            sampling=(temperature, top_k, top_p, seed))}

        scalar = lambda dtype, name: tf.TensorSpec([], dtype, name=name)  # noqa: E731
        text = tf.TensorSpec([None], tf.string, name="text")
        return {**super().export_signatures(run),
                "generate": (generate, [text, scalar(tf.float32, "temperature"),
                                        scalar(tf.int32, "top_k"), scalar(tf.float32, "top_p"),
                                        scalar(tf.int32, "seed")])}

    def export_metadata(self, run):
        preprocessor = run.preprocessor
        return {"labels": None, "beam_size": run.cfg.model.beam_size,
                "length_penalty": run.cfg.model.length_penalty,
                "tokenizer": {"kind": "sentencepiece", "shared": preprocessor.shared,
                              "source_vocabulary_size": preprocessor.source_tokenizer.vocabulary_size,
                              "target_vocabulary_size": preprocessor.target_tokenizer.vocabulary_size,
                              "source_length": preprocessor.source_length,
                              "target_length": preprocessor.target_length}}

    def check_export(self, run, reloaded, texts=None):
        """The export's beam search and its seeded sampling give what the trained model gives."""
        import tensorflow as tf

        texts = texts or ["A man is riding a bike.", "", "Zwei Hunde spielen im Schnee."]
        sampling = {"temperature": 0.8, "top_k": 20, "top_p": 0.9, "seed": 7}
        checks = (
            ("serving_default", {}, translate(run.model, run.preprocessor, texts,
                                              beam_size=run.cfg.model.beam_size,
                                              length_penalty=run.cfg.model.length_penalty)),
            ("generate", sampling, translate(run.model, run.preprocessor, texts, strategy="sample",
                                             batch_size=len(texts), **sampling)))
        for name, settings, expected in checks:
            # in-process translate sorts by length; the signature keeps the order of its batch
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            batch = [texts[i] for i in order] if settings else texts
            outputs = reloaded.signatures[name](
                text=tf.constant(batch), **{k: tf.constant(v) for k, v in settings.items()})["output"]
            got = [t.decode("utf-8", errors="replace") for t in outputs.numpy()]
            if settings:
                got = [got[order.index(i)] for i in range(len(texts))]
            if got != expected:
                raise RuntimeError(f"the exported {name} outputs {got!r}, the trained model "
                                   f"{expected!r}")

    # -- evaluate, predict, generate ---------------------------------------------------------

    def evaluate(self, target, *, data=None, split=None):
        """bleu, chrf, rouge1/2/L, distinct-1/2, examples; a run folder adds the teacher-forced
        loss and perplexity."""
        if data is not None:
            fmt = "parallel" if "," in data and not os.path.exists(data) else None
            pairs = self.read_file(data, target.run_config.data, fmt=fmt)
        else:
            pairs = self.evaluation_examples(target, None, split)
        perplexity = {}
        if target.is_run:  # one restore: beam search in process, and token-by-token scores
            run = target.restore()
            outputs = translate(run.model, run.preprocessor, pairs.texts,
                                beam_size=run.cfg.model.beam_size,
                                length_penalty=run.cfg.model.length_penalty)
            perplexity = target_perplexity(run.model, run.preprocessor, pairs.texts, pairs.labels)
        else:
            outputs = [text_of(o) for o in
                       target.predictor().predict({"text": pairs.texts})["output"]]
        report = {"task": NAME, **score(outputs, pairs.labels), **perplexity}
        if pairs.report.skipped:
            report["skipped_lines"] = pairs.report.skipped
        return report

    def format_report(self, report):
        lines = [f"task: seq2seq   examples: {report['examples']}",
                 f"BLEU: {report['bleu']:.2f}   chrF: {report['chrf']:.2f}   ROUGE-1/2/L: "
                 f"{report['rouge1']:.2f} / {report['rouge2']:.2f} / {report['rougeL']:.2f}   "
                 f"distinct-1/2: {report['distinct_1']:.3f} / {report['distinct_2']:.3f}"]
        if "perplexity" in report:
            lines.append(f"teacher-forced loss: {report['loss']:.4f} nats/token   "
                         f"perplexity: {report['perplexity']:.3f}")
        lines.append(f"sacrebleu: {report['bleu_signature']}")
        return "\n".join(lines)

    def prediction_records(self, inputs, outputs, target):
        return [{"text": text, "output": text_of(output)}
                for text, output in zip(inputs["text"], outputs["output"])]

    def format_prediction(self, record):
        if "n_best" in record:
            return "\n".join(f"{score:.4f}\t{text}" for text, score in record["n_best"]) + "\n"
        return record["output"]

    def n_best(self, target, texts):
        """Every beam of a run folder's beam search, best first, with its score."""
        if not target.is_run:
            raise UserError("--n-best needs a seq2seq run folder (a SavedModel returns the best only)")
        run = target.restore()
        lists = translate(run.model, run.preprocessor, list(texts), beam_size=run.cfg.model.beam_size,
                          length_penalty=run.cfg.model.length_penalty, n_best=True)
        return [{"text": text, "n_best": found} for text, found in zip(texts, lists)]

    def decode(self, run, prompts, *, max_new_tokens, strategy, temperature, top_k, top_p,
               repetition_penalty, beam_size, seed):
        if repetition_penalty != 1.0:
            raise UserError("--repetition-penalty applies to language models only")
        return translate(run.model, run.preprocessor, prompts, strategy=strategy,
                         beam_size=beam_size, length_penalty=run.cfg.model.length_penalty,
                         temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)

    def decode_saved_model(self, model, metadata, prompts, *, max_new_tokens, strategy,
                           temperature, top_k, top_p, repetition_penalty, beam_size, seed):
        import tensorflow as tf

        texts = tf.constant(prompts)
        if strategy == "beam":
            outputs = model.signatures["serving_default"](text=texts)
        else:
            outputs = model.signatures["generate"](
                text=texts, temperature=tf.constant(float(temperature)), top_k=tf.constant(top_k),
                top_p=tf.constant(float(top_p)), seed=tf.constant(seed))
        return [t.decode("utf-8", errors="replace") for t in outputs["output"].numpy()]
