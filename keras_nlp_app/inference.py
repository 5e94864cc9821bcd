"""Predict and evaluate with a run folder or an exported SavedModel, through one interface.

`load_predictor(target)` accepts a run folder (config.yaml + checkpoints), a SavedModel version
folder, or its parent (the highest version is used). Both kinds answer `predict(texts)` with the
serving signature's outputs, so `knlp evaluate` scores exactly what would be served.
"""

import dataclasses
import os

import numpy as np

from keras_nlp_app.errors import UserError


@dataclasses.dataclass
class Predictor:
    task: str
    space: object  # the task's label space (labels, multi_label, thresholds)
    source: str
    _predict_batch: object  # callable: list[str] -> dict of numpy arrays
    run_config: object = None  # the run's Config (from the run folder or the export's metadata)

    @property
    def labels(self):
        return self.space.labels

    def predict(self, texts, batch_size=256):
        """The serving signature's outputs for raw texts, in order (numpy arrays)."""
        chunks = [self._predict_batch(texts[i:i + batch_size])
                  for i in range(0, len(texts) or 1, batch_size)]
        return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


def _is_run_dir(path):
    return os.path.isfile(os.path.join(path, "config.yaml"))


@dataclasses.dataclass
class Target:
    """What a run folder or SavedModel is, read from its files without importing TensorFlow, so
    that bad input can be refused before the slow (and noisy) TensorFlow start-up."""

    path: str  # the run folder, or the resolved SavedModel version folder
    is_run: bool
    task: str
    space: object
    run_config: object


def describe(target):
    """A `Target` for a run folder or a SavedModel (version folder or its parent)."""
    from keras_nlp_app.config import config_from_dict
    from keras_nlp_app.export.saved_model import read_metadata, resolve_model_dir
    from keras_nlp_app.tasks import TASKS
    from keras_nlp_app.training.train import read_run

    if not os.path.exists(target):
        raise UserError(f"{target}: no such run or model folder")
    if _is_run_dir(target):
        cfg, space = read_run(target)
        return Target(target, True, cfg.task, space, cfg)
    model_dir = resolve_model_dir(target)
    metadata = read_metadata(model_dir)
    space = TASKS[metadata["task"]].label_space_from_metadata(metadata)
    return Target(model_dir, False, metadata["task"], space,
                  config_from_dict(metadata.get("config", {})))


def load_predictor(target):
    """A `Predictor` for a run folder or a SavedModel (version folder or its parent)."""
    info = target if isinstance(target, Target) else describe(target)
    if info.is_run:
        return _run_predictor(info.path)
    return _saved_model_predictor(info)


def _run_predictor(run_dir):
    import tensorflow as tf

    from keras_nlp_app.training.train import restore_run

    run = restore_run(run_dir)
    serve = tf.function(run.serve, input_signature=[tf.TensorSpec([None], tf.string)])

    def predict_batch(texts):
        outputs = serve(tf.constant(texts, dtype=tf.string))
        return {key: value.numpy() for key, value in outputs.items()}

    return Predictor(run.cfg.task, run.space, run_dir, predict_batch, run_config=run.cfg)


def _saved_model_predictor(info):
    import tensorflow as tf

    from keras_nlp_app.export.saved_model import load_saved_model

    signature = load_saved_model(info.path).signatures["serving_default"]

    def predict_batch(texts):
        outputs = signature(text=tf.constant(texts, dtype=tf.string))
        return {key: value.numpy() for key, value in outputs.items()}

    return Predictor(info.task, info.space, info.path, predict_batch, run_config=info.run_config)


def evaluate(target, data=None, split=None):
    """Scores a run or SavedModel on a data file (`data`) or a split of the run's config.

    Args:
        target: run folder or SavedModel folder.
        data: a data file in the format the task reads (labelled for classification).
        split: `validation` (default when `data` is None) or `train`.

    Returns:
        A JSON-ready dict, e.g. task, examples, accuracy, macro_f1 (classification) or task,
        tokens, loss, perplexity (language models).
    """
    from keras_nlp_app.tasks import TASKS

    info = describe(target)
    return TASKS[info.task].evaluate_target(info, data=data, split=split)


def _check_generation_settings(max_new_tokens, temperature, top_k, top_p, beam_size,
                               repetition_penalty):
    from keras_nlp_app.tasks import language_model

    if not 0 <= max_new_tokens <= language_model.MAX_NEW_TOKENS:
        raise UserError(f"--max-new-tokens must be between 0 and {language_model.MAX_NEW_TOKENS}")
    for ok, message in ((temperature >= 0, "--temperature must be >= 0"),
                        (0 < top_p <= 1, "--top-p must be in (0, 1]"),
                        (top_k >= 0, "--top-k must be >= 0 (0: no limit)"),
                        (beam_size >= 1, "--beam-size must be >= 1"),
                        (repetition_penalty > 0, "--repetition-penalty must be > 0")):
        if not ok:
            raise UserError(message)


def load_generator(target):
    """A function `(prompts, **settings) → list of str` for a language model or a seq2seq model
    (run folder or SavedModel), loaded once: `knlp chat` calls it every turn.

    Settings: max_new_tokens (language models; seq2seq outputs end at the trained target
    length), strategy (greedy | sample | top_k | top_p | beam), temperature, top_k, top_p,
    repetition_penalty, beam_size, seed, stop. A run folder decodes in this process with every
    option; a SavedModel runs its `generate` signature (or its beam search, with the beam size it
    was exported with), so the repetition penalty needs a run folder and stop strings are applied
    to the signature's output.
    """
    info = target if isinstance(target, Target) else describe(target)
    if info.task not in ("lm", "seq2seq"):
        raise UserError(f"{info.path} is a {info.task} model; generation needs a language model "
                        "or a seq2seq model")
    if info.is_run:
        from keras_nlp_app.training.train import restore_run

        run = restore_run(info.path)
        decode_in_process = _run_generator(run)
    else:
        from keras_nlp_app.export.saved_model import load_saved_model, read_metadata

        exported_beam = read_metadata(info.path).get("beam_size")
        decode_in_process = _saved_model_generator(info.task, load_saved_model(info.path),
                                                   exported_beam)

    def generate(prompts, *, max_new_tokens=64, strategy="sample", temperature=1.0, top_k=0,
                 top_p=1.0, repetition_penalty=1.0, beam_size=4, seed=0, stop=()):
        _check_generation_settings(max_new_tokens, temperature, top_k, top_p, beam_size,
                                   repetition_penalty)
        if strategy == "greedy":
            temperature = 0.0
        texts = decode_in_process(
            list(prompts), max_new_tokens=max_new_tokens, strategy=strategy,
            temperature=temperature, top_k=top_k, top_p=top_p,
            repetition_penalty=repetition_penalty, beam_size=beam_size, seed=seed)
        for stop_string in stop:
            texts = [t.split(stop_string, 1)[0] for t in texts]
        return texts

    return generate


def _run_generator(run):
    from keras_nlp_app.tasks import language_model, seq2seq

    def decode(prompts, *, max_new_tokens, strategy, temperature, top_k, top_p,
               repetition_penalty, beam_size, seed):
        if run.cfg.task == "lm":
            return language_model.generate_texts(
                run.model, run.preprocessor, prompts, max_new_tokens=max_new_tokens,
                strategy=strategy, temperature=temperature, top_k=top_k, top_p=top_p,
                repetition_penalty=repetition_penalty, beam_size=beam_size, seed=seed)
        if repetition_penalty != 1.0:
            raise UserError("--repetition-penalty applies to language models only")
        return seq2seq.translate(run.model, run.preprocessor, prompts, strategy=strategy,
                                 beam_size=beam_size, length_penalty=run.cfg.model.length_penalty,
                                 temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)

    return decode


def _saved_model_generator(task, model, exported_beam):
    import tensorflow as tf

    def decode(prompts, *, max_new_tokens, strategy, temperature, top_k, top_p,
               repetition_penalty, beam_size, seed):
        if repetition_penalty != 1.0:
            raise UserError("--repetition-penalty needs a run folder; the SavedModel's generate "
                            "signature has no such input")
        if strategy == "beam" and beam_size != exported_beam:
            raise UserError(f"this SavedModel's beam search uses beam size {exported_beam}; "
                            f"use a run folder for beam size {beam_size}")
        sampling = dict(temperature=tf.constant(float(temperature)), top_k=tf.constant(top_k),
                        top_p=tf.constant(float(top_p)), seed=tf.constant(seed))
        if task == "seq2seq":
            texts = tf.constant(prompts)
            outputs = (model.signatures["serving_default"](text=texts) if strategy == "beam"
                       else model.signatures["generate"](text=texts, **sampling))["output"]
        else:
            length = dict(prompt=tf.constant(prompts), max_new_tokens=tf.constant(max_new_tokens))
            outputs = (model.signatures["beam_search"](**length) if strategy == "beam" else
                       model.signatures["generate"](**length, **sampling))["continuation"]
        return [t.decode("utf-8", errors="replace") for t in outputs.numpy()]

    return decode


def generate(target, prompts, **settings):
    """Continuations of `prompts` from a language model, or outputs for source texts from a
    seq2seq model (run folder or SavedModel); settings as in `load_generator`."""
    return load_generator(target)(prompts, **settings)
