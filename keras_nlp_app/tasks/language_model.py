"""Language modelling: plain text in; next-token models, perplexity and generated text out.

The training text becomes one token stream (data/pipelines.py cuts it into windows). LSTM LMs
train with truncated back-propagation through time: the stream is split into `batch_size`
parallel rows and consecutive batches continue each row, with the LSTM state carried over.
Transformer LMs train on shuffled contiguous windows of `tokenizer.sequence_length` tokens.

Perplexity is always exp(total NLL / total tokens) over the whole evaluation stream: windows
for Transformers (the context restarts at each), one state carried from start to end for LSTMs.
The trainer and exporter call this module through `TASKS["lm"]`.
"""

import dataclasses
import math
import os
import sysconfig
import zlib

import numpy as np

from keras_nlp_app.data import datasets, readers
from keras_nlp_app.errors import ConfigError, DataError, UserError

NAME = "lm"
WORD_KINDS = ("word", "whitespace", "wordpiece")
# TensorBoard samples start from these each epoch: the line-start token alone, then a few words
SAMPLE_PROMPTS = {"char": ("", "ROMEO:", "def "), "word": ("", "the company said", "in the")}
MAX_NEW_TOKENS = 4096  # the export's generate signature refuses more


@dataclasses.dataclass
class Corpus:
    """The text of one split: `documents` (a file each, or the part of one file a holdout keeps)."""

    path: str
    documents: list

    @property
    def characters(self):
        return sum(len(d) for d in self.documents)


# -- data -------------------------------------------------------------------------------------


def _python_stdlib_files():
    root = sysconfig.get_paths()["stdlib"]
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "__pycache__", "test",
                                                      "tests", "idlelib", "lib2to3"))
        found += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".py")]
    return root, found


def _stdlib_split(split):
    """The Python standard library's own .py files: every file whose path hashes to 0 mod 20 is
    validation (a stable 5%), the rest train. Present on every machine that runs Python."""
    root, files = _python_stdlib_files()
    if split not in ("train", "validation"):
        raise UserError(f"dataset python_stdlib has no split {split!r}; its splits: train, validation")
    chosen = [f for f in files
              if (zlib.crc32(os.path.relpath(f, root).encode()) % 20 == 0) == (split == "validation")]
    return root, chosen


def read_corpus(path):
    """A text file, or every file of a folder (sorted), as a `Corpus`; strict UTF-8."""
    if os.path.isdir(path):
        files = sorted(os.path.join(folder, f) for folder, _, names in os.walk(path) for f in names)
        if not files:
            raise DataError("the folder holds no files", path=path)
        return Corpus(path, [readers.read_text(f) for f in files])
    text = readers.read_text(path)
    if not text.strip():
        raise DataError("holds no text", path=path)
    return Corpus(path, [text])


def _read_split(data_cfg, split):
    source = datasets.split_source(data_cfg, split)
    if source is None:
        return None
    kind, value = source
    if kind == "file":
        return read_corpus(value)
    if data_cfg.dataset == "python_stdlib":
        root, files = _stdlib_split(value)
        return Corpus(root, [readers.read_text(f) for f in files])
    return read_corpus(datasets.split_path(data_cfg.dataset, value))


def load_splits(data_cfg, seed):
    """(train, validation) corpora. With `data.holdout_fraction`, validation is the last
    fraction of the training text's characters (nanoGPT's split), not a random sample: a
    language model must not see the text around its validation windows."""
    del seed  # the holdout is contiguous, not sampled
    train = _read_split(data_cfg, "train")
    validation = _read_split(data_cfg, "validation")
    if validation is None and data_cfg.holdout_fraction:
        if not 0 < data_cfg.holdout_fraction < 1:
            raise UserError(f"data.holdout_fraction must be in (0, 1), got {data_cfg.holdout_fraction}")
        text = "".join(train.documents)
        cut = int(len(text) * (1 - data_cfg.holdout_fraction))
        train, validation = Corpus(train.path, [text[:cut]]), Corpus(train.path, [text[cut:]])
    if data_cfg.max_train_examples:
        text = "".join(train.documents)[:data_cfg.max_train_examples]
        train = Corpus(train.path, [text])
    return train, validation


def token_stream(preprocessor, corpus, chunk_lines=20000):
    """The corpus as one int32 array of ids (in-graph tokenization, a chunk of lines at a time)."""
    import tensorflow as tf

    parts = []
    for document in corpus.documents:
        lines = document.splitlines(keepends=True)
        for start in range(0, len(lines), chunk_lines):
            chunk = lines[start:start + chunk_lines]
            if preprocessor.word_level:
                ids = preprocessor.ragged_ids(tf.constant(["".join(chunk)]))
            else:
                ids = preprocessor.ragged_ids(tf.constant(chunk))
            parts.append(ids.flat_values.numpy())
    stream = np.concatenate(parts).astype(np.int32) if parts else np.zeros([0], np.int32)
    if len(stream) < 2:
        raise DataError("has fewer than two tokens; a language model needs more text",
                        path=corpus.path)
    return stream


# -- assets, model, training ------------------------------------------------------------------


def prepare_assets(cfg, train_corpus, assets_dir):
    """Learns the tokenizer from the training text (or loads it when the run is resumed)."""
    from keras_nlp_app.text import tokenizers

    if os.path.exists(os.path.join(assets_dir, "tokenizer.json")):
        return tokenizers.load_tokenizer(assets_dir), None
    tok = cfg.tokenizer
    if tok.kind in WORD_KINDS:
        texts = [line for d in train_corpus.documents for line in d.splitlines()]
    else:
        texts = train_corpus.documents
    tokenizer = tokenizers.learn_tokenizer(
        texts, kind=tok.kind, vocab_size=tok.vocab_size, min_count=tok.min_count,
        lowercase=tok.lowercase, reserved=(tokenizers.EOS,) if tok.kind in WORD_KINDS else ())
    tokenizers.save_tokenizer(tokenizer, assets_dir)
    return tokenizer, None


def read_assets(assets_dir):
    """An LM has no label space; the tokenizer alone must be there."""
    if not os.path.exists(os.path.join(assets_dir, "tokenizer.json")):
        raise UserError(f"{os.path.dirname(assets_dir)}: the run has no assets yet; train it first")
    return None


def check_config(cfg):
    """Settings an LM cannot train with, refused before TensorFlow starts."""
    if cfg.model.name not in ("lstm_lm", "transformer_lm"):
        raise ConfigError(f"model {cfg.model.name!r} is not a language model; use lstm_lm or "
                          f"transformer_lm")
    context = cfg.model.params.get("context_length")
    if context is not None and context < cfg.tokenizer.sequence_length:
        raise ConfigError(f"model.params.context_length {context} is shorter than "
                          f"tokenizer.sequence_length {cfg.tokenizer.sequence_length}")


def build_preprocessor(cfg, tokenizer):
    from keras_nlp_app.text.preprocessors import LMPreprocessor

    return LMPreprocessor(tokenizer, cfg.tokenizer.sequence_length)


def is_recurrent(cfg):
    return cfg.model.name == "lstm_lm"


def build_model(cfg, preprocessor, space, *, training=False, batch_size=None):
    """The run's LM. A recurrent LM built for training is stateful with `batch_size` rows."""
    from keras_nlp_app.models import build_model as build

    check_config(cfg)
    params = dict(cfg.model.params)
    if is_recurrent(cfg):
        if training:
            params["stateful_batch_size"] = batch_size
    else:
        params.setdefault("context_length", cfg.tokenizer.sequence_length)
    model = build(cfg.model.name, vocab_size=preprocessor.vocabulary_size, **params)
    length = min(cfg.tokenizer.sequence_length, 8)
    model(np.zeros((batch_size if training and is_recurrent(cfg) else 1, length), np.int32))
    return model


def datasets_for(cfg, preprocessor, space, train_corpus, validation_corpus, global_batch):
    """(train dataset, validation dataset or None, steps in one pass over the training text)."""
    from keras_nlp_app.data.pipelines import lm_stream_batches, lm_windows

    length = cfg.tokenizer.sequence_length
    train_stream = token_stream(preprocessor, train_corpus)
    validation_stream = (token_stream(preprocessor, validation_corpus)
                         if validation_corpus is not None else None)
    if is_recurrent(cfg):
        def batches(stream, training):
            return lm_stream_batches(stream, global_batch, length)
    else:
        def batches(stream, training):
            return lm_windows(stream, global_batch, length, training=training, seed=cfg.train.seed)
    found = []
    for corpus, stream, training in ((train_corpus, train_stream, True),
                                     (validation_corpus, validation_stream, False)):
        if stream is None:
            found.append((None, 0))
            continue
        data, steps = batches(stream, training)
        if steps == 0:
            raise DataError(f"is too short: {len(stream)} tokens make no batch of {global_batch} "
                            f"rows x {length} tokens (lower train.batch_size or "
                            f"tokenizer.sequence_length)", path=corpus.path)
        found.append((data, steps))
    (train_data, steps), (validation_data, _) = found
    return train_data, validation_data, steps


def compile_arguments(cfg, space):
    import keras

    return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "jit_compile": not is_recurrent(cfg) if cfg.train.jit_compile == "auto"
            else cfg.train.jit_compile == "on"}


def monitorable(data_cfg, with_validation):
    names = ["loss", "perplexity"]
    if with_validation:
        names += ["val_loss", "val_perplexity"]
    return names


def callbacks(*, cfg, run_dir, preprocessor, model, validation_data, validation_examples, space):
    from keras_nlp_app.training.callbacks import LMSamples, PerplexityLogger, ResetStates

    found = [PerplexityLogger()]
    if is_recurrent(cfg):
        found.insert(0, ResetStates())
    prompts = list(SAMPLE_PROMPTS["word" if preprocessor.word_level else "char"])
    found.append(LMSamples(
        os.path.join(run_dir, "logs", "samples"),
        lambda m: generate_texts(_decoding_twin(cfg, preprocessor, m), preprocessor, prompts,
                                 max_new_tokens=64, temperature=0.8, top_k=40, seed=0),
        prompts))
    return found


def _decoding_twin(cfg, preprocessor, model):
    """A stateless copy of a stateful (training) LSTM LM, sharing nothing but weight values."""
    if not is_recurrent(cfg) or not model.stateful_batch_size:
        return model
    twin = model.__dict__.get("_knlp_twin")
    if twin is None:
        twin = model.__dict__["_knlp_twin"] = build_model(cfg, preprocessor, None)
    twin.set_weights(model.get_weights())
    return twin


def final_metrics(cfg, preprocessor, model, space, validation_corpus, run_dir):
    """Exact validation loss and perplexity of the best weights, over the whole stream."""
    if validation_corpus is None:
        return {}
    twin = _decoding_twin(cfg, preprocessor, model)
    return evaluate_stream(twin, token_stream(preprocessor, validation_corpus))


# -- scoring ----------------------------------------------------------------------------------


def _nll_function(model):
    import tensorflow as tf

    memo = model.__dict__.setdefault("_knlp_nll", {})
    if "nll" not in memo:
        @tf.function(jit_compile=True, reduce_retracing=True)
        def nll(inputs, targets, mask):
            logits = tf.cast(model(inputs, training=False), tf.float32)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
            return tf.reduce_sum(losses * mask)
        memo["nll"] = nll
    return memo["nll"]


def _recurrent_nll_function(model):
    import tensorflow as tf

    memo = model.__dict__.setdefault("_knlp_nll", {})
    if "recurrent" not in memo:
        @tf.function(reduce_retracing=True)
        def chunk_nll(inputs, targets, state):
            logits, state = model.call_with_state(inputs, state)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
                targets, tf.cast(logits, tf.float32))
            return tf.reduce_sum(losses), state
        memo["recurrent"] = chunk_nll
    return memo["recurrent"]


def evaluate_stream(model, stream, batch_windows=32):
    """{"tokens", "loss" (nats/token), "perplexity"} of a model over a whole id stream.

    Every token after the first is predicted once. Transformer LMs see non-overlapping windows
    of their context length; LSTM LMs carry one state from the start of the stream to its end.
    """

    inputs, targets = stream[:-1], stream[1:]
    count = len(targets)
    total = 0.0
    if model.context_length:
        window = model.context_length
        rows = -(-count // window)
        pad = rows * window - count
        x = np.pad(inputs, (0, pad)).reshape(rows, window)
        y = np.pad(targets, (0, pad)).reshape(rows, window)
        mask = (np.arange(rows * window) < count).astype(np.float32).reshape(rows, window)
        nll = _nll_function(model)
        for start in range(0, rows, batch_windows):
            part = slice(start, start + batch_windows)
            total += float(nll(x[part], y[part], mask[part]))
    else:
        state = model.init_cache(1)
        chunk_nll = _recurrent_nll_function(model)
        chunk = 1024
        for start in range(0, count, chunk):
            nll, state = chunk_nll(inputs[None, start:start + chunk],
                                   targets[None, start:start + chunk], state)
            total += float(nll)
    loss = total / count
    return {"tokens": int(count), "loss": round(loss, 5), "perplexity": round(math.exp(loss), 3)}


def score_texts(model, preprocessor, strings):
    """`log_prob [B]` (natural log, summed over tokens) and `num_tokens [B]` of `[B]` strings,
    each scored from `bos_id`. Graph code: it is the export's serving_default."""
    import tensorflow as tf

    ids = preprocessor.ragged_ids(strings)
    bos = tf.fill([ids.nrows(), 1], preprocessor.bos_id)
    inputs = tf.concat([tf.RaggedTensor.from_tensor(bos), ids[:, :-1]], axis=1).to_tensor(0)
    targets = ids.to_tensor(0)
    mask = tf.sequence_mask(ids.row_lengths(), tf.shape(targets)[1], tf.float32)
    window = model.context_length
    if window:
        # the context restarts every `window` tokens, as in evaluate_stream
        batch, length = tf.shape(inputs)[0], tf.shape(inputs)[1]
        padded = (length + window - 1) // window * window
        inputs, targets, mask = (tf.pad(t, [[0, 0], [0, padded - length]])
                                 for t in (inputs, targets, mask))
        logits = model(tf.reshape(inputs, [-1, window]), training=False)
        logits = tf.reshape(logits, [batch, padded, -1])
    else:
        logits = model(inputs, training=False)
    log_probs = -tf.nn.sparse_softmax_cross_entropy_with_logits(targets, tf.cast(logits, tf.float32))
    return {"log_prob": tf.reduce_sum(log_probs * mask, axis=1),
            "num_tokens": tf.cast(ids.row_lengths(), tf.int32)}


# -- generation -------------------------------------------------------------------------------


def generated_text(preprocessor, tokens, prompt_lengths, stop=()):
    """The continuation part of decoded buffers `[B, L]` as `[B]` strings, cut before the first
    stop string. Graph code."""
    import tensorflow as tf

    positions = tf.range(tf.shape(tokens)[1])[None, :]
    keep = (positions >= prompt_lengths[:, None]) & (tokens > 0)
    text = preprocessor.detokenize(tf.ragged.boolean_mask(tokens, keep))
    for stop_string in stop:
        text = tf.strings.split(text, stop_string, maxsplit=1).to_tensor("")[:, 0]
    return text


def generate_texts(model, preprocessor, prompts, *, max_new_tokens=64, strategy="sample",
                   temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0, beam_size=4,
                   length_penalty=0.6, seed=0, stop=(), use_cache=True):
    """Continuations of `prompts` (list of str) as a list of str."""
    import tensorflow as tf

    from keras_nlp_app import decoding

    ids = preprocessor.prompt_ids(tf.constant(prompts, tf.string))
    tokens = decoding.decode_ids(
        model, ids, max_new_tokens=max_new_tokens, strategy=strategy, temperature=temperature,
        top_k=top_k, top_p=top_p, repetition_penalty=repetition_penalty, beam_size=beam_size,
        length_penalty=length_penalty, seed=seed, use_cache=use_cache)
    text = generated_text(preprocessor, tokens, tf.cast(ids.row_lengths(), tf.int32), stop)
    return [t.decode("utf-8", errors="replace") for t in text.numpy().tolist()]


def serve(run, text):
    """serving_default: `log_prob [B]` and `num_tokens [B]` of `[B]` strings."""
    return score_texts(run.model, run.preprocessor, text)


def _generate_endpoint(run, strategy, beam_size=4):
    import tensorflow as tf

    from keras_nlp_app import decoding

    preprocessor = run.preprocessor
    decode = decoding.compiled_decoder(run.model, strategy=strategy, beam_size=beam_size)

    def generate(prompt, max_new_tokens, temperature, top_k, top_p, seed):
        tf.debugging.assert_less_equal(
            max_new_tokens, MAX_NEW_TOKENS,
            message=f"max_new_tokens must be at most {MAX_NEW_TOKENS}")
        tf.debugging.assert_non_negative(max_new_tokens, message="max_new_tokens must be >= 0")
        ids = preprocessor.prompt_ids(prompt)
        buffer, lengths, batch = decoding.bucketed_buffer(ids, max_new_tokens)
        tokens = decode(buffer, lengths, max_new_tokens, temperature, top_k, top_p,
                        tf.constant(1.0), seed, tf.constant(0.6))[:batch]
        continuation = generated_text(preprocessor, tokens, lengths[:batch])
        if preprocessor.word_level:
            text = tf.strings.regex_replace(tf.strings.join([prompt, continuation], " "), "^ ", "")
        else:
            text = tf.strings.join([prompt, continuation])
        return {"text": text, "continuation": continuation,
                "num_tokens": tf.reduce_sum(tf.cast(
                    (tf.range(tf.shape(tokens)[1])[None, :] >= lengths[:batch, None])
                    & (tokens > 0), tf.int32), axis=1)}

    return generate


def export_signatures(run):
    """serving_default (scores), generate (sampling; temperature 0 is greedy) and beam_search."""
    import tensorflow as tf

    scalar = lambda dtype, name: tf.TensorSpec([], dtype, name=name)  # noqa: E731
    sampling = _generate_endpoint(run, "sample")
    beam = _generate_endpoint(run, "beam")
    generate_inputs = [tf.TensorSpec([None], tf.string, name="prompt"),
                       scalar(tf.int32, "max_new_tokens"), scalar(tf.float32, "temperature"),
                       scalar(tf.int32, "top_k"), scalar(tf.float32, "top_p"),
                       scalar(tf.int32, "seed")]

    def beam_search(prompt, max_new_tokens):
        return beam(prompt, max_new_tokens, tf.constant(0.0), tf.constant(0), tf.constant(1.0),
                    tf.constant(0))

    return {
        "serving_default": (run.serve, [tf.TensorSpec([None], tf.string, name="text")]),
        "generate": (sampling, generate_inputs),
        "beam_search": (beam_search, generate_inputs[:2]),
    }


def export_metadata(run):
    preprocessor = run.preprocessor
    return {"labels": None, "bos_id": preprocessor.bos_id, "eos_id": preprocessor.eos_id,
            "context_length": run.model.context_length, "beam_size": 4,
            "max_new_tokens_limit": MAX_NEW_TOKENS,
            "tokenizer": {"kind": preprocessor.tokenizer.kind,
                          "lowercase": preprocessor.tokenizer.lowercase,
                          "vocabulary_size": preprocessor.tokenizer.vocabulary_size,
                          "sequence_length": preprocessor.sequence_length}}


def check_export(run, reloaded, texts=None):
    """The reloaded export must score like the trained model and decode greedily the same."""
    import tensorflow as tf

    texts = texts or ["the ", "Hello, world.\n", ""]
    expected = score_texts(run.model, run.preprocessor, tf.constant(texts))["log_prob"].numpy()
    got = reloaded.signatures["serving_default"](text=tf.constant(texts))["log_prob"].numpy()
    if not np.allclose(expected, got, rtol=1e-4, atol=1e-3):
        raise RuntimeError("the exported model's scores differ from the trained model's")
    wanted = generate_texts(run.model, run.preprocessor, texts[:2], max_new_tokens=8,
                            strategy="greedy")
    outputs = reloaded.signatures["generate"](
        prompt=tf.constant(texts[:2]), max_new_tokens=tf.constant(8), temperature=tf.constant(0.0),
        top_k=tf.constant(0), top_p=tf.constant(1.0), seed=tf.constant(0))
    got_text = [t.decode("utf-8", errors="replace") for t in outputs["continuation"].numpy()]
    if got_text != wanted:
        raise RuntimeError(f"the exported generate signature decodes {got_text!r}, the trained "
                           f"model {wanted!r}")


def label_space_from_metadata(metadata):
    return None


def evaluate_target(info, *, data=None, split=None):
    """`knlp evaluate` for an LM: loss (nats per token) and perplexity of a text file or split.

    A run folder scores the whole file as one stream (as training reports it). A SavedModel
    scores it through serving_default in chunks of lines (about 2,000 characters each), so the
    context restarts at each chunk and the figure is slightly higher.
    """
    if data is not None:
        corpus = read_corpus(data)
    else:
        train, validation = load_splits(info.run_config.data, info.run_config.train.seed)
        corpus = train if split == "train" else validation
        if corpus is None:
            raise UserError(f"{info.path}: its config names no {split or 'validation'} data; use --data")
    if info.is_run:
        from keras_nlp_app.training.train import restore_run

        run = restore_run(info.path)
        report = evaluate_stream(run.model, token_stream(run.preprocessor, corpus))
        return {"task": NAME, "source": "run", "context": "stream", **report}
    import tensorflow as tf

    from keras_nlp_app.export.saved_model import load_saved_model

    signature = load_saved_model(info.path).signatures["serving_default"]
    total, tokens = 0.0, 0
    chunks = list(_line_chunks(corpus))
    for start in range(0, len(chunks), 16):
        outputs = signature(text=tf.constant(chunks[start:start + 16]))
        total -= float(np.sum(outputs["log_prob"].numpy()))
        tokens += int(np.sum(outputs["num_tokens"].numpy()))
    loss = total / max(tokens, 1)
    return {"task": NAME, "source": "saved_model", "context": "chunks of ~2000 characters",
            "tokens": tokens, "loss": round(loss, 5), "perplexity": round(math.exp(loss), 3)}


def _line_chunks(corpus, size=2000):
    for document in corpus.documents:
        chunk = []
        length = 0
        for line in document.splitlines(keepends=True):
            chunk.append(line)
            length += len(line)
            if length >= size:
                yield "".join(chunk)
                chunk, length = [], 0
        if chunk:
            yield "".join(chunk)


def load_tokenizer(assets_dir):
    """The tokenizer saved in a run's assets."""
    from keras_nlp_app.text import tokenizers

    return tokenizers.load_tokenizer(assets_dir)
