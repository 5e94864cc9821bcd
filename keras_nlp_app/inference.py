"""Predict, evaluate and generate with a run folder or an exported SavedModel, one interface.

`describe(path)` reads what a run folder (config.yaml + checkpoints), a SavedModel version
folder or its parent (the highest version) is, without TensorFlow, so bad input is refused
before the slow start-up. Its `Target` then loads a `Predictor` whose `predict(inputs)` returns
the serving signature's outputs either way, so `knlp evaluate` scores exactly what would be
served. Inputs are named by the signature (`{"text": [...]}`, or `{"question": ..., "context":
...}`); what they mean, how reports and predictions print, and how a model generates are the
task's hooks (tasks/base.py): nothing here knows a particular task.
"""

import dataclasses
import os

import numpy as np

from keras_nlp_app import runs
from keras_nlp_app.config import config_from_dict
from keras_nlp_app.errors import ConfigError, UserError
from keras_nlp_app.tasks import get_task
from keras_nlp_app.tasks.base import MAX_NEW_TOKENS
from keras_nlp_app.utils.saved_models import load_saved_model, read_metadata, resolve_model_dir


@dataclasses.dataclass
class Predictor:
    task: str
    space: object  # the task's label space (labels, multi_label, thresholds), or None
    source: str
    input_names: tuple
    _predict_batch: object  # callable: {name: list[str]} -> dict of numpy arrays
    run_config: object = None  # the run's Config (from the run folder or the export's metadata)

    def predict(self, inputs, batch_size=256):
        """The serving signature's outputs (numpy arrays) for `{input name: [str, ...]}`, in
        order; a plain list is the one input of a single-input signature."""
        if not isinstance(inputs, dict):
            if len(self.input_names) != 1:
                raise UserError(f"{self.source} takes {', '.join(self.input_names)}; pass a dict")
            inputs = {self.input_names[0]: list(inputs)}
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise UserError(f"{self.source} needs the input(s) {', '.join(missing)}")
        rows = {len(column) for column in inputs.values()}
        if len(rows) != 1:
            raise UserError(f"inputs {', '.join(inputs)} have different lengths")
        count = rows.pop()
        chunks = [self._predict_batch({name: list(inputs[name][i:i + batch_size])
                                       for name in self.input_names})
                  for i in range(0, count or 1, batch_size)]
        return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


@dataclasses.dataclass
class Target:
    """What a run folder or SavedModel is, read from its files without importing TensorFlow."""

    path: str  # the run folder, or the resolved SavedModel version folder
    is_run: bool
    task: str
    space: object
    run_config: object
    metadata: dict = None  # a SavedModel's assets/metadata.json

    @property
    def task_hooks(self):
        return get_task(self.task)

    def restore(self):
        """A run folder's `runs.RestoredRun` (preprocessor and model with the best weights)."""
        if not self.is_run:
            raise UserError(f"{self.path} is a SavedModel; this needs a run folder")
        return runs.restore_run(self.path)

    def saved_model(self):
        """The loaded SavedModel (TensorFlow Text ops registered first)."""
        if self.is_run:
            raise UserError(f"{self.path} is a run folder; this needs a SavedModel")
        return load_saved_model(self.path)

    def predictor(self):
        """A `Predictor` over the serving signature (traced from the run, or the export's)."""
        return _run_predictor(self) if self.is_run else _saved_model_predictor(self)


def describe(target):
    """A `Target` for a run folder or a SavedModel (version folder or its parent)."""
    if not os.path.exists(target):
        raise UserError(f"{target}: no such run or model folder")
    if runs.is_run_dir(target):
        cfg, space = runs.read_run(target)
        return Target(target, True, cfg.task, space, cfg)
    model_dir = resolve_model_dir(target)
    metadata = read_metadata(model_dir)
    try:
        task = get_task(metadata["task"])
        run_config = config_from_dict(metadata.get("config", {}))
    except ConfigError as exc:
        raise UserError(f"{model_dir}/assets/metadata.json: {exc}") from None
    return Target(model_dir, False, metadata["task"], task.label_space_from_metadata(metadata),
                  run_config, metadata)


def _as_target(target):
    return target if isinstance(target, Target) else describe(target)


def load_predictor(target):
    """A `Predictor` for a run folder or a SavedModel (a path or a `Target`)."""
    return _as_target(target).predictor()


def _run_predictor(info):
    import tensorflow as tf

    run = info.restore()
    names = run.task.signature_inputs
    specs = run.task.serving_specs()
    serve = tf.function(run.serve, input_signature=[specs])

    def predict_batch(columns):
        outputs = serve({name: tf.constant(columns[name], dtype=specs[name].dtype) for name in names})
        return {key: value.numpy() for key, value in outputs.items()}

    return Predictor(run.cfg.task, run.space, info.path, tuple(names), predict_batch,
                     run_config=run.cfg)


def _saved_model_predictor(info):
    import tensorflow as tf

    signature = info.saved_model().signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    names = tuple(sorted(specs))
    declared = info.task_hooks.signature_inputs
    if set(names) == set(declared):
        names = tuple(declared)

    def predict_batch(columns):
        outputs = signature(**{name: tf.constant(columns[name], dtype=specs[name].dtype)
                               for name in names})
        return {key: value.numpy() for key, value in outputs.items()}

    return Predictor(info.task, info.space, info.path, names, predict_batch,
                     run_config=info.run_config)


def evaluate(target, data=None, split=None):
    """Scores a run or SavedModel on a data file (`data`) or a split of the run's config.

    Args:
        target: run folder or SavedModel folder.
        data: a data file in the format the task reads (labelled for classification).
        split: `validation` (default when `data` is None) or `train`.

    Returns:
        A JSON-ready dict with "task" and the task's metrics (DESIGN.md's keys).
    """
    info = _as_target(target)
    return info.task_hooks.evaluate(info, data=data, split=split)


def predict(target, inputs):
    """Predictions for `{input name: [str, ...]}` as JSON-ready dicts (the task's records)."""
    info = _as_target(target)
    outputs = info.predictor().predict(inputs)
    return info.task_hooks.prediction_records(inputs, outputs, info)


def _check_generation_settings(max_new_tokens, temperature, top_k, top_p, beam_size,
                               repetition_penalty):
    if not 0 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise UserError(f"--max-new-tokens must be between 0 and {MAX_NEW_TOKENS}")
    for ok, message in ((temperature >= 0, "--temperature must be >= 0"),
                        (0 < top_p <= 1, "--top-p must be in (0, 1]"),
                        (top_k >= 0, "--top-k must be >= 0 (0: no limit)"),
                        (beam_size >= 1, "--beam-size must be >= 1"),
                        (repetition_penalty > 0, "--repetition-penalty must be > 0")):
        if not ok:
            raise UserError(message)


def load_generator(target):
    """A function `(prompts, **settings) → list of str` for a model whose task generates (run
    folder or SavedModel), loaded once: `knlp chat` calls it every turn.

    Settings: max_new_tokens (language models; seq2seq outputs end at the trained target
    length), strategy (greedy | sample | top_k | top_p | beam), temperature, top_k, top_p,
    repetition_penalty, beam_size, seed, stop. A run folder decodes in this process with every
    option; a SavedModel runs its signatures (its beam search has the beam size it was exported
    with), so the repetition penalty needs a run folder and stop strings are applied to the
    signature's output.
    """
    info = _as_target(target)
    task = info.task_hooks
    if not task.generates:
        raise UserError(f"{info.path} is a {info.task} model; generation needs a model whose "
                        f"task generates text (language models, seq2seq)")
    if info.is_run:
        run = info.restore()

        def decode_in_process(prompts, **settings):
            return task.decode(run, prompts, **settings)
    else:
        model = info.saved_model()
        exported_beam = info.metadata.get("beam_size")

        def decode_in_process(prompts, **settings):
            if settings["repetition_penalty"] != 1.0:
                raise UserError("--repetition-penalty needs a run folder; the SavedModel's "
                                "signatures have no such input")
            if settings["strategy"] == "beam" and settings["beam_size"] != exported_beam:
                raise UserError(f"this SavedModel's beam search uses beam size {exported_beam}; "
                                f"use a run folder for beam size {settings['beam_size']}")
            return task.decode_saved_model(model, info.metadata, prompts, **settings)

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


def generate(target, prompts, condition=None, **settings):
    """Generated texts for `prompts` (run folder or SavedModel); settings as in `load_generator`.
    `condition`: a conditioned LM's condition (e.g. a sentiment) that every text starts under."""
    target = _as_target(target)
    if condition is not None:  # one text per line in training: it ends at the line break
        prompts = target.task_hooks.condition_prompts(target, prompts, condition)
        settings["stop"] = (*settings.get("stop", ()), "\n")
    return load_generator(target)(prompts, **settings)


def chat(target, lines, *, context_turns=None, write=print, rules=None, **settings):
    """Talks with a dialogue model: every input line is a turn, answered with the model's reply,
    with the last `context_turns` turns (as in training) in the source each time. `settings`
    choose the decoding (as `load_generator`; default: the model's beam search). `/reset` or
    `/new` starts a new conversation.

    With `rules` (a `rulebot.RuleBot`) the rules answer first and the model only when no rule
    matches (a hybrid bot); with rules and no `target`, the rules' fallback answers instead.
    """
    from keras_nlp_app.data.readers import dialogue_source

    reply_to, turns = None, context_turns or 2
    if target is not None:
        info = _as_target(target)
        if not info.task_hooks.converses:
            raise UserError(f"{info.path} is a {info.task} model; chat needs a dialogue model")
        settings = {"strategy": "beam", **settings}
        if settings.get("beam_size") is None:
            settings["beam_size"] = info.run_config.model.beam_size
        reply_to = load_generator(info)
        turns = context_turns or info.run_config.data.context_turns
    history = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line in ("/reset", "/new"):
            history = []
            if rules is not None:
                rules.reset()
            write("(new conversation)")
            continue
        history.append(line)
        ruled = rules.answer(line) if rules is not None else None
        if ruled is not None and (ruled.intent is not None or reply_to is None):
            reply = ruled.text
        else:
            reply = reply_to([dialogue_source(history[-turns:])], **settings)[0]
        history.append(reply)
        write(reply)
        settings["seed"] = settings.get("seed", 0) + 1  # a new draw every turn when sampling
