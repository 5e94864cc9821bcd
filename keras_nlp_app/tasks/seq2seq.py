"""Sequence to sequence: one text in, another out (translation, summarization, dialogue).

Pairs come from line-aligned parallel files (`data.format: parallel`, the registry's multi30k,
or `--data SRC_FILE,TGT_FILE`), TSV/CSV/JSONL columns (`data.text_field` → `data.label_field`),
or dialogues (`data.format: dialog`). SentencePiece vocabularies are learned from the training
pairs. Training is teacher-forced with label smoothing; validation BLEU (greedy, on up to
`train.eval_examples` pairs) is logged every epoch as `val_bleu`; the final report and the
export decode with beam search (`model.beam_size`, `model.length_penalty`).
"""

import os

import numpy as np

from keras_nlp_app import metrics as metrics_lib
from keras_nlp_app.data import datasets, readers
from keras_nlp_app.errors import ConfigError, UserError
from keras_nlp_app.tasks import classification

NAME = "seq2seq"
SAMPLES = 5  # validation pairs shown in TensorBoard every epoch


# -- data -------------------------------------------------------------------------------------


def _format(data_cfg, path):
    if data_cfg.format != "auto":
        return data_cfg.format
    if data_cfg.dataset and not path:
        return datasets.get_dataset(data_cfg.dataset).format
    return "parallel" if "," in path else readers.detect_format(path)


def read_pairs(path, data_cfg, fmt=None):
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
    examples = readers.read_examples(path, **classification.read_options(data_cfg, True))
    return examples


def _registry_pairs(data_cfg, split):
    dataset = datasets.get_dataset(data_cfg.dataset)
    paths = datasets.split_paths(data_cfg.dataset, split)
    options = {**dataset.read_options}
    for key in ("text_field", "label_field", "columns", "header"):
        if getattr(data_cfg, key) != getattr(classification._DEFAULT_DATA, key):
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


def _read_split(data_cfg, split):
    source = datasets.split_source(data_cfg, split)
    if source is None:
        return None
    kind, value = source
    return read_pairs(value, data_cfg) if kind == "file" else _registry_pairs(data_cfg, value)


def load_splits(data_cfg, seed):
    """(train, validation) pairs; a seeded holdout of train when the data has no validation."""
    return classification.held_out_and_capped(
        _read_split(data_cfg, "train"), _read_split(data_cfg, "validation"), data_cfg, seed)


# -- assets, model, training ------------------------------------------------------------------


def check_config(cfg):
    if cfg.model.name not in ("transformer_seq2seq", "lstm_seq2seq"):
        raise ConfigError(f"model {cfg.model.name!r} is not a sequence-to-sequence model; use "
                          f"transformer_seq2seq or lstm_seq2seq")
    if cfg.tokenizer.kind != "sentencepiece":
        raise ConfigError("sequence-to-sequence models use tokenizer.kind: sentencepiece")
    if cfg.model.beam_size < 1:
        raise ConfigError("model.beam_size must be at least 1")
    if cfg.train.average_checkpoints > 1 and cfg.train.monitor != "val_bleu":
        raise ConfigError("train.average_checkpoints compares the average by validation BLEU; "
                          "set train.monitor: val_bleu")


def _tokenizer_folders(assets_dir, shared):
    if shared:
        return {"source": assets_dir, "target": assets_dir}
    return {side: os.path.join(assets_dir, side) for side in ("source", "target")}


def load_tokenizer(assets_dir):
    """(source tokenizer, target tokenizer) saved in a run's assets (one object when shared)."""
    from keras_nlp_app.text import tokenizers

    if os.path.exists(os.path.join(assets_dir, "tokenizer.json")):
        shared = tokenizers.load_tokenizer(assets_dir)
        return shared, shared
    return (tokenizers.load_tokenizer(os.path.join(assets_dir, "source")),
            tokenizers.load_tokenizer(os.path.join(assets_dir, "target")))


def prepare_assets(cfg, train, assets_dir):
    """SentencePiece model(s) learned from the training pairs, or loaded when resuming."""
    from keras_nlp_app.text import tokenizers

    tok = cfg.tokenizer
    folders = _tokenizer_folders(assets_dir, tok.shared_vocabulary)
    if all(os.path.exists(os.path.join(f, "tokenizer.json")) for f in folders.values()):
        return load_tokenizer(assets_dir), None

    def learn(texts):
        return tokenizers.learn_tokenizer(texts, kind="sentencepiece", vocab_size=tok.vocab_size,
                                          model_type=tok.model_type)

    if tok.shared_vocabulary:
        shared = learn(train.texts + train.labels)
        pair = (shared, shared)
    else:
        pair = (learn(train.texts), learn(train.labels))
    for tokenizer, folder in zip(pair, folders.values()):
        tokenizers.save_tokenizer(tokenizer, folder)
    return pair, None


def read_assets(assets_dir):
    if not (os.path.exists(os.path.join(assets_dir, "tokenizer.json"))
            or os.path.exists(os.path.join(assets_dir, "target", "tokenizer.json"))):
        raise UserError(f"{os.path.dirname(assets_dir)}: the run has no assets yet; train it first")
    return None


def build_preprocessor(cfg, tokenizer):
    from keras_nlp_app.text.preprocessors import Seq2SeqPreprocessor

    source, target = tokenizer
    return Seq2SeqPreprocessor(source, target, cfg.tokenizer.sequence_length,
                               cfg.tokenizer.target_length)


def build_model(cfg, preprocessor, space, *, training=False, batch_size=None):
    from keras_nlp_app.models import build_model as build

    check_config(cfg)
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


def _target_ids(preprocessor, texts, chunk=4096):
    import tensorflow as tf

    parts = [preprocessor.target_ids(tf.constant(texts[i:i + chunk]))
             for i in range(0, len(texts), chunk)]
    return tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]


def _teacher_forcing(source, target):
    return {"source": source, "target": target[:, :-1]}, target[:, 1:]


def datasets_for(cfg, preprocessor, space, train, validation, global_batch):
    from keras_nlp_app.data.pipelines import make_dataset

    common = dict(preprocessor=preprocessor, batch_size=global_batch, seed=cfg.train.seed,
                  sort_window=cfg.train.sort_window, assemble=_teacher_forcing)
    train_data = make_dataset(train.texts, _target_ids(preprocessor, train.labels),
                              training=True, **common)
    validation_data = None
    if validation is not None:
        validation_data = make_dataset(validation.texts, _target_ids(preprocessor, validation.labels),
                                       training=False, **common)
    return train_data, validation_data, -(-len(train.texts) // global_batch)


def smoothed_loss(label_smoothing):
    """Token cross-entropy with label smoothing, averaged over the non-padding targets."""
    from keras import ops

    def loss(targets, logits):
        log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        targets = ops.cast(targets, "int32")
        nll = -ops.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
        smooth = -ops.mean(log_probs, axis=-1)
        per_token = (1.0 - label_smoothing) * nll + label_smoothing * smooth
        mask = ops.cast(ops.not_equal(targets, 0), "float32")
        return ops.sum(per_token * mask) / ops.maximum(ops.sum(mask), 1.0)

    loss.__name__ = "smoothed_cross_entropy"
    return loss


def token_accuracy(targets, logits):
    from keras import ops

    targets = ops.cast(targets, "int32")
    mask = ops.cast(ops.not_equal(targets, 0), "float32")
    hits = ops.cast(ops.equal(ops.argmax(logits, axis=-1), targets), "float32") * mask
    return ops.sum(hits) / ops.maximum(ops.sum(mask), 1.0)


def compile_arguments(cfg, space):
    """Loss and metrics; XLA only when `train.jit_compile: on`: batches are padded to their own
    longest pair, and XLA would compile again for every new (source, target) length."""
    return {"loss": smoothed_loss(cfg.train.label_smoothing), "metrics": [token_accuracy],
            "jit_compile": cfg.train.jit_compile == "on"}


def monitorable(data_cfg, with_validation):
    names = ["loss", "token_accuracy"]
    if with_validation:
        names += ["val_loss", "val_token_accuracy", "val_bleu"]
    return names


def callbacks(*, cfg, run_dir, preprocessor, model, validation_data, validation_examples, space):
    from keras_nlp_app.training.callbacks import AverageLastEpochs, DecodingReport

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


def final_metrics(cfg, preprocessor, model, space, validation, run_dir):
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


def target_perplexity(model, preprocessor, sources, targets, batch_size=64):
    """Teacher-forced `loss` (nats per target token, EOS included, no label smoothing) and its
    `perplexity` = exp(loss) over whole pairs: the dialogue papers' validation perplexity."""
    import math

    import tensorflow as tf

    memo = model.__dict__.setdefault("_knlp_nll", {})
    if "fn" not in memo:
        def total(source_text, target_text):
            source = preprocessor.source_ids(source_text).to_tensor(0)
            target = preprocessor.target_ids(target_text).to_tensor(0)
            logits = model({"source": source, "target": target[:, :-1]}, training=False)
            labels = target[:, 1:]
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels, logits=tf.cast(logits, tf.float32))
            mask = tf.cast(labels > 0, tf.float32)
            return tf.reduce_sum(nll * mask), tf.reduce_sum(mask)

        memo["fn"] = tf.function(total, input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    nll = tokens = 0.0
    for start in range(0, len(sources), batch_size):
        part_nll, part_tokens = memo["fn"](tf.constant(sources[start:start + batch_size]),
                                           tf.constant(targets[start:start + batch_size]))
        nll, tokens = nll + float(part_nll), tokens + float(part_tokens)
    loss = nll / max(tokens, 1.0)
    return {"loss": round(loss, 4), "perplexity": round(math.exp(loss), 3),
            "target_tokens": int(tokens)}


def score(outputs, references):
    report = {"examples": len(references), **metrics_lib.bleu_report(outputs, references),
              **metrics_lib.rouge_report(outputs, references)}
    report["distinct_1"] = metrics_lib.distinct_n(outputs, 1)
    report["distinct_2"] = metrics_lib.distinct_n(outputs, 2)
    return report


# -- decoding ---------------------------------------------------------------------------------


def _decode_graph(model, preprocessor, text, beam_size, length_penalty, n_best=False,
                  sampling=None):
    """`[B]` strings → `[B]` outputs (graph code: the export's signatures).

    Beam search when `beam_size` > 1, else greedy; `sampling` (temperature, top_k, top_p, seed
    as scalar tensors) samples instead (temperature 0 is greedy). With `n_best`, beam search
    returns `[B, beam_size]` outputs best first and their length-normalized log-probs."""
    import tensorflow as tf

    from keras_nlp_app import decoding

    source_ids = preprocessor.source_ids(text).to_tensor(0)
    # sources padded to a multiple of 16 tokens: the compiled loop sees few distinct shapes
    length = tf.shape(source_ids)[1]
    source_ids = tf.pad(source_ids, [[0, 0], [0, (length + 15) // 16 * 16 - length]])
    batch = tf.shape(source_ids)[0]
    prompts = tf.RaggedTensor.from_tensor(tf.fill([batch, 1], preprocessor.BOS))
    max_new = preprocessor.target_length - 1
    buffer, prompt_lengths, _ = decoding.bucketed_buffer(prompts, max_new)
    rows = tf.shape(buffer)[0]
    source = decoding.pad_rows(model.encode(source_ids), rows)
    if sampling is not None:
        strategy = "sample"
    else:
        strategy = "beam" if beam_size > 1 else "greedy"
        sampling = (tf.constant(0.0), tf.constant(0), tf.constant(1.0), tf.constant(0))
    temperature, top_k, top_p, seed = sampling
    decode = decoding.compiled_decoder(
        model, strategy=strategy, beam_size=beam_size, stop_ids=(preprocessor.EOS,),
        n_best=n_best, source_spec=tf.nest.map_structure(
            lambda t: tf.TensorSpec([None] * t.shape.rank, t.dtype), source))
    decoded = decode(buffer, prompt_lengths, tf.constant(max_new), temperature, top_k, top_p,
                     tf.constant(1.0), seed, tf.constant(float(length_penalty)), source)
    if n_best:
        tokens, scores = decoded
        flat = tf.reshape(tokens[:batch, :, 1:], [batch * beam_size, -1])
        return tf.reshape(preprocessor.detokenize(flat), [batch, beam_size]), scores[:batch]
    return preprocessor.detokenize(decoded[:batch, 1:])


def translate(model, preprocessor, texts, *, beam_size=4, length_penalty=0.6, batch_size=64,
              n_best=False, strategy=None, temperature=1.0, top_k=0, top_p=1.0, seed=0):
    """Outputs for a list of source texts (in-process decoding, sorted by length for speed).

    `strategy`: beam (`beam_size`; the default when beam_size > 1), greedy, or sample / top_k /
    top_p (temperature, top_k and top_p all apply; row i of a batch draws from `seed`). With
    `n_best`, each output is a list of (text, score) for every beam, best first."""
    import tensorflow as tf

    from keras_nlp_app import decoding

    strategy = strategy or ("beam" if beam_size > 1 else "greedy")
    if strategy not in decoding.STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of "
                         f"{', '.join(decoding.STRATEGIES)}")
    sampled = strategy not in ("beam", "greedy")
    if strategy == "greedy":
        beam_size = 1
    memo = model.__dict__.setdefault("_knlp_translate", {})
    key = (beam_size, length_penalty, n_best, sampled)
    if key not in memo:
        scalars = [tf.TensorSpec([], dtype) for dtype in (tf.float32, tf.int32, tf.float32, tf.int32)]
        memo[key] = tf.function(
            lambda text, *sampling: _decode_graph(model, preprocessor, text, beam_size,
                                                  length_penalty, n_best,
                                                  sampling if sampled else None),
            input_signature=[tf.TensorSpec([None], tf.string), *scalars])
    function = memo[key]
    settings = (tf.constant(float(temperature)), tf.constant(int(top_k)),
                tf.constant(float(top_p)), tf.constant(int(seed)))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs = [""] * len(texts)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        decoded = function(tf.constant([texts[i] for i in chunk]), *settings)
        if n_best:
            texts_k, scores = decoded[0].numpy(), decoded[1].numpy()
            for row, i in enumerate(chunk):
                outputs[i] = [(t.decode("utf-8", errors="replace"), round(float(s), 4))
                              for t, s in zip(texts_k[row], scores[row])]
            continue
        for i, value in zip(chunk, decoded.numpy()):
            outputs[i] = value.decode("utf-8", errors="replace")
    return outputs


def serve(run, text):
    """serving_default: `output [B]`, decoded with the run's beam size inside the graph."""
    return {"output": _decode_graph(run.model, run.preprocessor, text, run.cfg.model.beam_size,
                                    run.cfg.model.length_penalty)}


def export_signatures(run):
    """serving_default (beam search with the run's beam size) and generate (sampling with
    temperature, top_k, top_p and seed; temperature 0 is greedy)."""
    import tensorflow as tf

    def generate(text, temperature, top_k, top_p, seed):
        return {"output": _decode_graph(run.model, run.preprocessor, text, 1,
                                        run.cfg.model.length_penalty,
                                        sampling=(temperature, top_k, top_p, seed))}

    scalar = lambda dtype, name: tf.TensorSpec([], dtype, name=name)  # noqa: E731
    text = tf.TensorSpec([None], tf.string, name="text")
    return {"serving_default": (run.serve, [text]),
            "generate": (generate, [text, scalar(tf.float32, "temperature"),
                                    scalar(tf.int32, "top_k"), scalar(tf.float32, "top_p"),
                                    scalar(tf.int32, "seed")])}


def export_metadata(run):
    preprocessor = run.preprocessor
    return {"labels": None, "beam_size": run.cfg.model.beam_size,
            "length_penalty": run.cfg.model.length_penalty,
            "tokenizer": {"kind": "sentencepiece", "shared": preprocessor.shared,
                          "source_vocabulary_size": preprocessor.source_tokenizer.vocabulary_size,
                          "target_vocabulary_size": preprocessor.target_tokenizer.vocabulary_size,
                          "source_length": preprocessor.source_length,
                          "target_length": preprocessor.target_length}}


def check_export(run, reloaded, texts=None):
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


def label_space_from_metadata(metadata):
    return None


def evaluate_target(info, *, data=None, split=None):
    """`knlp evaluate` for a seq2seq run or SavedModel: bleu, chrf, rouge1/2/L, distinct-1/2,
    examples; a run folder adds the teacher-forced loss and perplexity."""
    data_cfg = info.run_config.data
    if data is not None:
        pairs = read_pairs(data, data_cfg, fmt="parallel" if "," in data and not os.path.exists(data)
                           else None)
    else:
        train, validation = load_splits(data_cfg, info.run_config.train.seed)
        pairs = train if split == "train" else validation
        if pairs is None:
            raise UserError(f"{info.path}: its config names no {split or 'validation'} data; use --data")
    perplexity = {}
    if info.is_run:  # one restore: beam search in process, and token-by-token scores
        from keras_nlp_app.training.train import restore_run

        run = restore_run(info.path)
        outputs = translate(run.model, run.preprocessor, pairs.texts,
                            beam_size=run.cfg.model.beam_size,
                            length_penalty=run.cfg.model.length_penalty)
        perplexity = target_perplexity(run.model, run.preprocessor, pairs.texts, pairs.labels)
    else:
        outputs = _saved_model_outputs(info, pairs.texts)
    report = {"task": NAME, **score(outputs, pairs.labels), **perplexity}
    if pairs.report.skipped:
        report["skipped_lines"] = pairs.report.skipped
    return report


def _saved_model_outputs(info, texts):
    """A SavedModel's serving_default outputs (its beam search) as strings."""
    from keras_nlp_app.inference import load_predictor

    return [o.decode("utf-8", errors="replace") if isinstance(o, bytes) else o
            for o in load_predictor(info).predict(list(texts), batch_size=64)["output"]]