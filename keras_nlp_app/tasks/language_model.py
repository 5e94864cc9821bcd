"""Language modelling: plain text in; next-token models, perplexity and generated text out.

The training text becomes one token stream (data/pipelines.py cuts it into windows). LSTM LMs
train with truncated back-propagation through time: the stream is split into `batch_size`
parallel rows and consecutive batches continue each row, with the LSTM state carried over.
Transformer LMs train on shuffled contiguous windows of `tokenizer.sequence_length` tokens.

Perplexity is always exp(total NLL / total tokens) over the whole evaluation stream: windows
for Transformers (the context restarts at each), one state carried from start to end for LSTMs.
The graph code (scoring, generation) is in language_model_graphs.py.
"""

import json
import math
import os

import numpy as np

from keras_nlp_app.data import datasets, readers, splits
from keras_nlp_app.data.corpus import Corpus, line_chunks, read_corpus, stdlib_split
from keras_nlp_app.errors import ConfigError, DataError, UserError
from keras_nlp_app.tasks.base import Task, register
from keras_nlp_app.tasks.language_model_data import (
    CONDITIONS,
    control_token,
    corpus_conditions,
    is_records_file,
    records_corpus,
    token_stream,
)
from keras_nlp_app.tasks.language_model_graphs import (
    MAX_NEW_TOKENS,
    evaluate_stream,
    generate_endpoint,
    generate_texts,
    score_texts,
)
from keras_nlp_app.tasks.language_model_presets import (
    BACKBONE_MODEL,
    backbone_lm,
    fresh_decoder_config,
    fresh_decoder_tokenizer,
    save_causal_lm_preset,
)

NAME = "lm"
WORD_KINDS = ("word", "whitespace", "wordpiece")
# TensorBoard samples start from these each epoch: the line-start token alone, then a few words
SAMPLE_PROMPTS = {"char": ("", "ROMEO:", "def "), "word": ("", "the company said", "in the")}


def _one_side(paths, data_cfg):
    """The file of a parallel dataset's split whose suffix is `data.text_field` (a language
    model over one side of a translation corpus, e.g. the target side for n-best rescoring)."""
    sides = {os.path.splitext(p)[1].lstrip("."): p for p in paths}
    if data_cfg.text_field not in sides:
        raise ConfigError(f"data.text_field: dataset {data_cfg.dataset} is parallel; name the side "
                          f"to model ({', '.join(sides)}), got {data_cfg.text_field!r}")
    return sides[data_cfg.text_field]


def per_character(report, corpus):
    """`report` with `bits_per_character`: the total loss over the corpus's characters, which
    compares models whatever their tokens (characters, words, SentencePiece pieces)."""
    characters = sum(len(document) for document in corpus.documents)
    bits = report["loss"] * report["tokens"] / max(characters, 1) / math.log(2)
    return {**report, "characters": characters, "bits_per_character": round(bits, 4)}


def is_recurrent(cfg):
    return cfg.model.name == "lstm_lm"


def _saved_model_scores(model, corpus):
    """(loss, tokens) of a corpus through an export's serving_default, in chunks of lines."""
    import tensorflow as tf

    signature = model.signatures["serving_default"]
    total, tokens = 0.0, 0
    chunks = list(line_chunks(corpus))
    for start in range(0, len(chunks), 16):
        outputs = signature(text=tf.constant(chunks[start:start + 16]))
        total -= float(np.sum(outputs["log_prob"].numpy()))
        tokens += int(np.sum(outputs["num_tokens"].numpy()))
    return total / max(tokens, 1), tokens


@register
class LanguageModelTask(Task):
    """Next-token language models (LSTM, Transformer) at word, character, byte or subword level."""

    name = NAME
    settings = ("data.condition_field",)
    generates = True

    # -- data --------------------------------------------------------------------------------

    def read_file(self, path, data_cfg, fmt=None):
        if data_cfg.condition_field or is_records_file(path, data_cfg, fmt):
            return records_corpus(path, data_cfg, fmt)
        return read_corpus(path)

    def read_registry(self, data_cfg, split_name):
        if data_cfg.condition_field:
            return super().read_registry(data_cfg, split_name)
        if data_cfg.dataset == "python_stdlib":
            root, files = stdlib_split(split_name)
            return Corpus(root, [readers.read_text(f) for f in files])
        paths = datasets.split_paths(data_cfg.dataset, split_name)
        fmt = datasets.get_dataset(data_cfg.dataset).format
        if len(paths) == 1 and is_records_file(paths[0], data_cfg, fmt):  # e.g. imdb_unsup's reviews
            return records_corpus(paths[0], data_cfg, fmt)
        return read_corpus(paths[0] if len(paths) == 1 else _one_side(paths, data_cfg))

    def load_splits(self, data_cfg, seed):
        """(train, validation) corpora. With `data.holdout_fraction`, validation is the last
        fraction of the training text's characters (nanoGPT's split), not a random sample: a
        language model must not see the text around its validation windows."""
        del seed  # the holdout is contiguous, not sampled
        train = splits.read_split(self, data_cfg, "train")
        validation = splits.read_split(self, data_cfg, "validation")
        if validation is None and data_cfg.holdout_fraction:
            if not 0 < data_cfg.holdout_fraction < 1:
                raise UserError(f"data.holdout_fraction must be in (0, 1), got "
                                f"{data_cfg.holdout_fraction}")
            text = "".join(train.documents)
            cut = int(len(text) * (1 - data_cfg.holdout_fraction))
            if data_cfg.condition_field:  # whole lines: each starts with its control token
                cut = text.find("\n", cut) + 1 or cut
            train, validation = Corpus(train.path, [text[:cut]]), Corpus(train.path, [text[cut:]])
        if data_cfg.max_train_examples:
            text = "".join(train.documents)[:data_cfg.max_train_examples]
            train = Corpus(train.path, [text])
        return train, validation

    def check_config(self, cfg):
        from keras_nlp_app.text.presets import check_backbone_config

        if fresh_decoder_config(cfg) or check_backbone_config(cfg, BACKBONE_MODEL):
            if cfg.data.condition_field:
                raise ConfigError("data.condition_field needs the package's own tokenizer; a "
                                  "backbone's vocabulary has no control tokens")
        elif cfg.model.name not in ("lstm_lm", "transformer_lm"):
            raise ConfigError(f"model {cfg.model.name!r} is not a language model; use lstm_lm, "
                              f"transformer_lm, or {BACKBONE_MODEL} with model.backbone")
        context = cfg.model.params.get("context_length")
        if context is not None and context < cfg.tokenizer.sequence_length:
            raise ConfigError(f"model.params.context_length {context} is shorter than "
                              f"tokenizer.sequence_length {cfg.tokenizer.sequence_length}")

    def monitorable(self, data_cfg, with_validation):
        names = ["loss", "perplexity"]
        if with_validation:
            names += ["val_loss", "val_perplexity"]
        return names

    # -- assets, model, training -------------------------------------------------------------

    def prepare_assets(self, cfg, train, assets_dir):
        """Learns the tokenizer from the training text, or copies the backbone preset's (loaded
        instead when the run is resumed)."""
        from keras_nlp_app.text import presets, tokenizers

        preset = cfg.model.name == BACKBONE_MODEL
        if os.path.exists(os.path.join(assets_dir, presets.PRESET_FOLDER if preset else "",
                                       "tokenizer.json")):
            return self.load_tokenizer(assets_dir), self.read_assets(assets_dir)
        if preset:
            tokenizer = (presets.PresetTokenizer.from_preset(cfg.model.backbone)
                         if cfg.model.backbone else fresh_decoder_tokenizer(cfg, train))
            tokenizer.save(assets_dir)
            return tokenizer, None
        conditions = None
        if cfg.data.condition_field:
            conditions = corpus_conditions(train)
            from keras_nlp_app.utils import atomic

            atomic.write_json(os.path.join(assets_dir, CONDITIONS), conditions)
        tok = cfg.tokenizer
        if tok.kind in (*WORD_KINDS, "sentencepiece"):  # learned from lines, not whole files
            texts = [line for d in train.documents for line in d.splitlines()]
        else:
            texts = train.documents
        tokenizer = self.learned_tokenizer(
            cfg, texts, reserved=(tokenizers.EOS,) if tok.kind in WORD_KINDS else ())
        tokenizers.save_tokenizer(tokenizer, assets_dir)
        return tokenizer, conditions

    def read_assets(self, assets_dir):
        """A conditioned LM's condition names (its "label space"), or None."""
        super().read_assets(assets_dir)
        path = os.path.join(assets_dir, CONDITIONS)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def label_space_from_metadata(self, metadata):
        return metadata.get("conditions")

    def condition_prompts(self, target, prompts, condition):
        """`prompts` each started by the control token of `condition`."""
        if not target.space:
            raise UserError(f"{target.path} was trained without conditions (data.condition_field)")
        if condition not in target.space:
            raise UserError(f"{target.path} knows the conditions {', '.join(target.space)}, "
                            f"not {condition!r}")
        return [f"{control_token(condition)} {prompt}".rstrip() + " " for prompt in prompts]

    def build_preprocessor(self, cfg, tokenizer):
        from keras_nlp_app.text.preprocessors import LMPreprocessor

        if cfg.model.name == BACKBONE_MODEL:
            from keras_nlp_app.text.presets import PresetLMPreprocessor

            try:
                return PresetLMPreprocessor(tokenizer, cfg.tokenizer.sequence_length)
            except ValueError as exc:
                raise ConfigError(f"model.backbone: {exc}") from None
        return LMPreprocessor(tokenizer, cfg.tokenizer.sequence_length)

    def build_model(self, cfg, preprocessor, space, *, training=False, batch_size=None):
        """The run's LM. A recurrent LM built for training is stateful with `batch_size` rows."""
        from keras_nlp_app.models import build_model as build

        self.check_config(cfg)
        params = dict(cfg.model.params)
        if cfg.model.name == BACKBONE_MODEL:
            return backbone_lm(cfg, preprocessor, params, training)
        if is_recurrent(cfg):
            if training:
                params["stateful_batch_size"] = batch_size
        else:
            params.setdefault("context_length", cfg.tokenizer.sequence_length)
        model = build(cfg.model.name, vocab_size=preprocessor.vocabulary_size, **params)
        length = min(cfg.tokenizer.sequence_length, 8)
        model(np.zeros((batch_size if training and is_recurrent(cfg) else 1, length), np.int32))
        return model

    def datasets_for(self, cfg, preprocessor, space, train, validation, global_batch):
        from keras_nlp_app.data.pipelines import lm_stream_batches, lm_windows

        length = cfg.tokenizer.sequence_length
        found = []
        for corpus, training in ((train, True), (validation, False)):
            if corpus is None:
                found.append((None, 0))
                continue
            stream = token_stream(preprocessor, corpus)
            starts = None
            if space:  # a conditioned LM: every window starts at a text, with its control token
                vocabulary = preprocessor.tokenizer.vocabulary
                controls = [vocabulary.index(control_token(c)) for c in space
                            if control_token(c) in vocabulary]
                # from the line break before it, as a prompt starts (`<eos>` __CONDITION__ ...)
                starts = (np.maximum(np.flatnonzero(np.isin(stream, controls)) - 1, 0)
                          if controls else None)
            if is_recurrent(cfg):
                data, steps = lm_stream_batches(stream, global_batch, length)
            else:
                data, steps = lm_windows(stream, global_batch, length, training=training,
                                         seed=cfg.train.seed, starts=starts)
            if steps == 0:
                raise DataError(f"is too short: {len(stream)} tokens make no batch of "
                                f"{global_batch} rows x {length} tokens (lower train.batch_size "
                                f"or tokenizer.sequence_length)", path=corpus.path)
            found.append((data, steps))
        (train_data, steps), (validation_data, _) = found
        return train_data, validation_data, steps

    def compile_arguments(self, cfg, space):
        import keras

        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "jit_compile": not is_recurrent(cfg) if cfg.train.jit_compile == "auto"
                else cfg.train.jit_compile == "on"}

    def callbacks(self, *, cfg, run_dir, preprocessor, model, validation_data,
                  validation_examples, space):
        from keras_nlp_app.callbacks import LMSamples, PerplexityLogger, ResetStates

        found = [PerplexityLogger()]
        if is_recurrent(cfg):
            found.insert(0, ResetStates())
        prompts = list(SAMPLE_PROMPTS["word" if preprocessor.word_level else "char"])
        found.append(LMSamples(
            os.path.join(run_dir, "logs", "samples"),
            lambda m: generate_texts(self.decoding_twin(cfg, preprocessor, m), preprocessor, prompts,
                                     max_new_tokens=64, temperature=0.8, top_k=40, seed=0),
            prompts))
        return found

    def final_metrics(self, cfg, preprocessor, model, space, validation, run_dir):
        """Exact validation loss and perplexity of the best weights, over the whole stream; a
        backbone LM's run also gets `preset/` (the fine-tuned or pretrained causal LM and its
        tokenizer as a keras-hub preset)."""
        found = {}
        if cfg.model.name == BACKBONE_MODEL:
            found["preset"] = save_causal_lm_preset(preprocessor, model, run_dir)
        if validation is None:
            return found
        twin = self.decoding_twin(cfg, preprocessor, model)
        return {**found, **per_character(evaluate_stream(twin, token_stream(preprocessor, validation)),
                                         validation)}

    def decoding_twin(self, cfg, preprocessor, model):
        """A stateless copy of a stateful (training) LSTM LM, sharing nothing but weight values."""
        if not is_recurrent(cfg) or not model.stateful_batch_size:
            return model
        twin = model.__dict__.get("_knlp_twin")
        if twin is None:
            twin = model.__dict__["_knlp_twin"] = self.build_model(cfg, preprocessor, None)
        twin.set_weights(model.get_weights())
        return twin

    # -- export ------------------------------------------------------------------------------

    def serve(self, run, inputs):
        """serving_default: `log_prob [B]` and `num_tokens [B]` of `[B]` strings."""
        return score_texts(run.model, run.preprocessor, inputs["text"])

    def export_signatures(self, run):
        """serving_default (scores), generate (sampling; temperature 0 is greedy), beam_search."""
        import tensorflow as tf

        def scalar(dtype, name):
            return tf.TensorSpec([], dtype, name=name)

        sampling = generate_endpoint(run, "sample")
        beam = generate_endpoint(run, "beam")
        generate_inputs = [tf.TensorSpec([None], tf.string, name="prompt"),
                           scalar(tf.int32, "max_new_tokens"), scalar(tf.float32, "temperature"),
                           scalar(tf.int32, "top_k"), scalar(tf.float32, "top_p"),
                           scalar(tf.int32, "seed")]

        def beam_search(prompt, max_new_tokens):
            return beam(prompt, max_new_tokens, tf.constant(0.0), tf.constant(0),
                        tf.constant(1.0), tf.constant(0))

        signatures = {**super().export_signatures(run),
                      "generate": (sampling, generate_inputs),
                      "beam_search": (beam_search, generate_inputs[:2])}
        if run.space:
            known = tf.constant(run.space)

            def generate_with_condition(condition, prompt, *settings):
                tf.debugging.assert_equal(
                    tf.reduce_all(tf.reduce_any(condition[:, None] == known[None, :], axis=1)),
                    True, message=f"unknown condition; the model knows {', '.join(run.space)}")
                outputs = sampling(tf.strings.join(["__", condition, "__ ", prompt]), *settings)
                # one text per line in training: the text ends at the first line break
                continuation = tf.strings.split(outputs["continuation"], "\n",
                                                maxsplit=1).to_tensor("")[:, 0]
                text = tf.strings.regex_replace(
                    tf.strings.join([prompt, continuation], " "), "^ ", "")
                return {**outputs, "text": text, "continuation": continuation}

            signatures["generate_with_condition"] = (
                generate_with_condition,
                [tf.TensorSpec([None], tf.string, name="condition"), *generate_inputs])
        return signatures

    def export_metadata(self, run):
        preprocessor = run.preprocessor
        return {"labels": None, "conditions": run.space, "bos_id": preprocessor.bos_id,
                "eos_id": preprocessor.eos_id,
                "context_length": run.model.context_length, "beam_size": 4,
                "max_new_tokens_limit": MAX_NEW_TOKENS,
                "tokenizer": preprocessor.describe()}

    def check_export(self, run, reloaded, texts=None):
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
            prompt=tf.constant(texts[:2]), max_new_tokens=tf.constant(8),
            temperature=tf.constant(0.0), top_k=tf.constant(0), top_p=tf.constant(1.0),
            seed=tf.constant(0))
        got_text = [t.decode("utf-8", errors="replace") for t in outputs["continuation"].numpy()]
        if got_text != wanted:
            raise RuntimeError(f"the exported generate signature decodes {got_text!r}, the "
                               f"trained model {wanted!r}")

    # -- evaluate, predict, generate ---------------------------------------------------------

    def evaluate(self, target, *, data=None, split=None):
        """Loss (nats per token) and perplexity of a text file or split.

        A run folder scores the whole file as one stream (as training reports it). A SavedModel
        scores it through serving_default in chunks of lines (about 2,000 characters each), so
        the context restarts at each chunk and the figure is slightly higher.
        """
        corpus = self.evaluation_examples(target, data, split)
        if target.is_run:
            run = target.restore()
            report = evaluate_stream(run.model, token_stream(run.preprocessor, corpus))
            return {"task": NAME, "source": "run", "context": "stream",
                    **per_character(report, corpus)}
        loss, tokens = _saved_model_scores(target.saved_model(), corpus)
        return {"task": NAME, "source": "saved_model", "context": "chunks of ~2000 characters",
                **per_character({"tokens": tokens, "loss": round(loss, 5),
                                 "perplexity": round(math.exp(loss), 3)}, corpus)}

    def format_report(self, report):
        return (f"task: lm   tokens: {report['tokens']}   loss: {report['loss']:.4f} nats/token   "
                f"perplexity: {report['perplexity']:.3f}   ({report['context']})")

    def prediction_records(self, inputs, outputs, target):
        return [{"text": text, "log_prob": round(float(lp), 4), "num_tokens": int(n),
                 "perplexity": round(math.exp(-float(lp) / max(int(n), 1)), 3)}
                for text, lp, n in zip(inputs["text"], outputs["log_prob"], outputs["num_tokens"])]

    def format_prediction(self, record):
        return (f"{record['log_prob']:.3f}\t{record['num_tokens']}\t{record['perplexity']:.2f}\t"
                f"{record['text']}")

    def decode(self, run, prompts, *, max_new_tokens, strategy, temperature, top_k, top_p,
               repetition_penalty, beam_size, seed):
        return generate_texts(run.model, run.preprocessor, prompts, max_new_tokens=max_new_tokens,
                              strategy=strategy, temperature=temperature, top_k=top_k,
                              top_p=top_p, repetition_penalty=repetition_penalty,
                              beam_size=beam_size, seed=seed)

    def decode_saved_model(self, model, metadata, prompts, *, max_new_tokens, strategy,
                           temperature, top_k, top_p, repetition_penalty, beam_size, seed):
        import tensorflow as tf

        length = dict(prompt=tf.constant(prompts), max_new_tokens=tf.constant(max_new_tokens))
        if strategy == "beam":
            outputs = model.signatures["beam_search"](**length)
        else:
            outputs = model.signatures["generate"](
                **length, temperature=tf.constant(float(temperature)), top_k=tf.constant(top_k),
                top_p=tf.constant(float(top_p)), seed=tf.constant(seed))
        return [t.decode("utf-8", errors="replace") for t in outputs["continuation"].numpy()]

    def format_generation(self, prompt, text, run_config):
        word_level = (run_config.tokenizer.kind in WORD_KINDS
                      and run_config.model.name != BACKBONE_MODEL)
        return f"{prompt} {text}" if word_level and prompt else prompt + text

