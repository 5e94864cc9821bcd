"""The task contract: every hook the trainer, exporter, evaluator, predictor and server call.

A task is a `Task` subclass registered by name with `@register`; `TASKS` (re-exported by
`keras_nlp_app.tasks`) is the only list of valid `task:` values. The shared layers know a task
only through these hooks, so adding one touches `tasks/`, `models/` and `configs/` and nothing
else. Arguments that recur:

- `cfg`: the run's `config.Config`; `data_cfg`: its `data` section.
- `examples`: what `read_file` returns (a `data.readers.Examples`, an LM corpus, ...).
- `space`: the task's label space (labels, tags), or None for tasks without labels.
- `run`: a `runs.RestoredRun` (cfg, preprocessor, model, space, task).
- `target`: an `inference.Target`, a run folder or a SavedModel, described without TensorFlow;
  `target.restore()` rebuilds a run folder's model, `target.predictor()` loads the serving
  signature, `target.saved_model()` the export itself.
"""

import json
import os

from keras_nlp_app.config import Config
from keras_nlp_app.data import datasets, splits
from keras_nlp_app.errors import ConfigError, UserError

TASKS = {}
MAX_NEW_TOKENS = 4096  # generation refuses more (so does the LM export's generate signature)


def register(cls):
    """Class decorator: makes a `Task` subclass available as `task: <cls.name>`."""
    if not cls.name or cls.name in TASKS:
        raise ValueError(f"task {cls.name!r} has no name or is registered twice")
    TASKS[cls.name] = cls()
    return cls


def get_task(name):
    """The registered task called `name`; an unknown name is a config error naming the valid ones."""
    if name not in TASKS:
        raise ConfigError(f"task: unknown task {name!r}; choose one of {', '.join(sorted(TASKS))}",
                          key="task")
    return TASKS[name]


def refuse_other_tasks_settings(cfg, task):
    """Settings that only other tasks read (their `Task.settings`), set away from their default,
    are a config error: under this task they would be ignored without a word."""
    defaults = Config()
    for dotted in sorted({key for other in TASKS.values() for key in other.settings}):
        section, key = dotted.split(".")
        default = getattr(getattr(defaults, section), key)
        if dotted in task.settings or getattr(getattr(cfg, section), key) == default:
            continue
        readers = " and ".join(sorted(t.name for t in TASKS.values() if dotted in t.settings))
        raise ConfigError(f"{dotted} is read by task {readers} only, not by task {task.name}; "
                          f"remove it (default {default!r})", key=dotted)


def text_of(value):
    """A signature output element as str (numpy gives bytes)."""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def with_vector_words(cfg, vocabulary, lowercase=None):
    """The word list `vocabulary` followed by up to `tokenizer.vector_words` words that it lacks
    of `model.word_vectors`' file, or of the vocabulary of the run `model.init_from` starts from
    (most frequent first), so that words unseen in training keep what pretraining learned of them
    instead of becoming [UNK]; `vocabulary` itself when the setting is 0. `lowercase` (default
    `tokenizer.lowercase`): whether the words are case-folded."""
    tok = cfg.tokenizer
    if not tok.vector_words:
        return vocabulary
    from keras_nlp_app.data.word_vectors import missing_words, words_to_add

    lowercase = tok.lowercase if lowercase is None else lowercase
    if cfg.model.word_vectors:
        return list(vocabulary) + words_to_add(cfg.model.word_vectors, vocabulary,
                                               tok.vector_words, lowercase)
    if cfg.model.init_from:
        source = source_run_words(cfg.model.init_from)[1:]  # index 0 pads
        return list(vocabulary) + missing_words(source, vocabulary, tok.vector_words, lowercase)
    raise ConfigError("tokenizer.vector_words adds the words of model.word_vectors' file or of "
                      "model.init_from's run; set model.word_vectors or model.init_from, or "
                      "tokenizer.vector_words: 0")


def word_vocabulary(owner):
    """The word list of a preprocessor, or of what a task's `load_tokenizer` returns: its own
    `word_vocabulary` (the word-and-character inputs of tagging and QA), else its tokenizer's or
    its own `vocabulary`; None for tokenizers without one (bytes, characters, presets)."""
    for found in (getattr(owner, "word_vocabulary", None),
                  getattr(getattr(owner, "tokenizer", None), "vocabulary", None),
                  getattr(owner, "vocabulary", None)):
        if isinstance(found, list):
            return found
    return None


def source_run_words(run_dir):
    """The word vocabulary (most frequent first) of the trained run folder `run_dir`, read from
    its assets.

    Raises:
        UserError for a folder that is not a run; ConfigError for a run without a word vocabulary.
    """
    from keras_nlp_app import config as config_lib
    from keras_nlp_app.tasks import get_task

    saved = os.path.join(run_dir, config_lib.RUN_CONFIG)
    if not os.path.isfile(saved):
        raise UserError(f"{run_dir}: not a run folder (no {config_lib.RUN_CONFIG})")
    source_task = config_lib.load_config([saved]).task
    tokenizer = get_task(source_task).load_tokenizer(os.path.join(run_dir, config_lib.RUN_ASSETS))
    words = word_vocabulary(tokenizer)
    if words is None:
        raise ConfigError(f"tokenizer.vector_words: {run_dir} ({source_task}) has no word "
                          f"vocabulary to add words from")
    return words


class Task:
    """Base class of every task; the defaults fit a task whose serving signature takes one
    `text [B]` string input and whose tokenizer is one `text.tokenizers` tokenizer."""

    name = None
    # serving_default's inputs, each a `[B]` string tensor; `knlp predict` and the server pass
    # columns under these names
    signature_inputs = ("text",)
    generates = False  # `knlp generate` decodes with it (decode / decode_saved_model)

    @property
    def option_inputs(self):
        """Signature inputs `knlp predict` takes as `--NAME VALUE` options (text is positional)."""
        return tuple(name for name in self.signature_inputs if name != "text")
    converses = False  # `knlp chat` talks with it
    ensembles = False  # `knlp ensemble` averages its runs' probabilities (ensemble_classifier)
    # dotted settings that only some tasks read and this one does: any other task refuses them
    settings = ()

    # -- data --------------------------------------------------------------------------------

    def check_config(self, cfg):
        """Refuses settings the task cannot train with, before TensorFlow starts."""

    def read_file(self, path, data_cfg, fmt=None):
        """Examples from one data file (or file argument, e.g. `SRC,TGT`), with file:line errors.

        `fmt` is the format when the caller knows it (a registry dataset's), else None.
        """
        raise NotImplementedError

    def read_registry(self, data_cfg, split_name):
        """Examples of a registry dataset's split (`data.dataset`), by default its one file."""
        dataset = datasets.get_dataset(data_cfg.dataset)
        return self.read_file(datasets.split_path(data_cfg.dataset, split_name), data_cfg,
                              fmt=dataset.format)

    def load_splits(self, data_cfg, seed):
        """(train, validation or None) as training sees them: a seeded holdout of train when the
        config names no validation data, then train capped at `data.max_train_examples`."""
        return splits.load_splits(self, data_cfg, seed)

    def evaluation_examples(self, target, data=None, split=None):
        """The examples `knlp evaluate` scores: a `--data` file, or a split of the run's config."""
        if data is not None:
            return self.read_file(data, target.run_config.data)
        train, validation = self.load_splits(target.run_config.data, target.run_config.train.seed)
        examples = train if split == "train" else validation
        if examples is None:
            raise UserError(f"{target.path}: its config names no {split or 'validation'} data; "
                            f"use --data")
        return examples

    def monitorable(self, data_cfg, with_validation):
        """Names `train.monitor` may take: what the loop logs plus what `callbacks` add."""
        return ["loss"] + (["val_loss"] if with_validation else [])

    # -- assets ------------------------------------------------------------------------------

    def prepare_assets(self, cfg, train, assets_dir):
        """(tokenizer, space) learned from the training split and saved in `assets_dir`, or
        loaded from it when a run resumes."""
        raise NotImplementedError

    def learned_tokenizer(self, cfg, texts, **options):
        """The run's tokenizer: the folder `tokenizer.vocabulary` names (written by `knlp vocab`),
        or one of `tokenizer.kind` learned from `texts` (the training split)."""
        from keras_nlp_app.text import tokenizers

        tok = cfg.tokenizer
        if tok.vector_words and (tok.vocabulary or tok.kind not in ("word", "whitespace")):
            raise ConfigError("tokenizer.vector_words extends a learned word vocabulary (kind word "
                              "or whitespace, no tokenizer.vocabulary folder)")
        if tok.vocabulary:
            if not os.path.isfile(os.path.join(tok.vocabulary, "tokenizer.json")):
                raise ConfigError(f"tokenizer.vocabulary: {tok.vocabulary} holds no tokenizer "
                                  f"(tokenizer.json); write one with knlp vocab")
            tokenizer = tokenizers.load_tokenizer(tok.vocabulary)
            if tokenizer.kind != tok.kind:
                raise ConfigError(f"tokenizer.vocabulary: {tok.vocabulary} holds a {tokenizer.kind} "
                                  f"tokenizer but tokenizer.kind is {tok.kind}; set one to match")
            return tokenizer
        reserved = tuple(options.get("reserved", ()))
        if tok.start_token and tok.start_token not in reserved:  # a special token of its own
            options["reserved"] = (*reserved, tok.start_token)
        tokenizer = tokenizers.learn_tokenizer(
            texts, kind=tok.kind, vocab_size=tok.vocab_size, min_count=tok.min_count,
            lowercase=tok.lowercase, model_type=tok.model_type, **options)
        if tok.vector_words:
            tokenizer = type(tokenizer)(vocabulary=with_vector_words(cfg, tokenizer.vocabulary),
                                        lowercase=tok.lowercase)
        return tokenizer

    def load_tokenizer(self, assets_dir):
        """The tokenizer (whatever `build_preprocessor` takes) saved in a run's assets: a
        backbone preset's (`presets.PresetTokenizer`) or the package's own."""
        from keras_nlp_app.text import presets, tokenizers

        folder = os.path.join(assets_dir, presets.PRESET_FOLDER)
        if os.path.isdir(folder):
            return presets.PresetTokenizer.load(folder)
        return tokenizers.load_tokenizer(assets_dir)

    @staticmethod
    def read_json_assets(assets_dir, filename):
        """A run's `assets/<filename>` as JSON; a run not trained yet is a one-line UserError."""
        path = os.path.join(assets_dir, filename)
        if not os.path.exists(path):
            raise UserError(f"{os.path.dirname(assets_dir)}: the run has no assets yet; train it first")
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def read_assets(self, assets_dir):
        """The label space a run folder's assets hold (None by default), without TensorFlow."""
        if not any(os.path.exists(os.path.join(assets_dir, *where, "tokenizer.json"))
                   for where in ((), ("preset",))):
            raise UserError(f"{os.path.dirname(assets_dir)}: the run has no assets yet; train it first")
        return None

    def label_space_from_metadata(self, metadata):
        """The label space an export's metadata.json holds (None by default)."""
        return None

    # -- model and training ------------------------------------------------------------------

    def build_preprocessor(self, cfg, tokenizer):
        """The Keras layer that turns raw strings into model inputs (traced into the export)."""
        raise NotImplementedError

    def build_model(self, cfg, preprocessor, space, *, training=False, batch_size=None):
        """The model; `training=True` may give a training variant (e.g. a stateful LSTM)."""
        raise NotImplementedError

    def layer_groups(self, model):
        """The model's trainable variables in groups from the bottom up (embeddings, each layer,
        the head) for layer-wise learning rates and gradual unfreezing: a keras-hub backbone's
        transformer layers, else the recurrent layers; None if it has neither."""
        from keras_nlp_app.models.backbone_classifier import layer_groups
        from keras_nlp_app.models.recurrent import recurrent_layer_groups

        return layer_groups(model) or recurrent_layer_groups(model)

    def datasets_for(self, cfg, preprocessor, space, train, validation, global_batch):
        """(train tf.data, validation tf.data or None, batches in one pass over train)."""
        raise NotImplementedError

    def compile_arguments(self, cfg, space):
        """Keyword arguments for `model.compile` besides the optimizer (loss, metrics, XLA)."""
        raise NotImplementedError

    def callbacks(self, *, cfg, run_dir, preprocessor, model, validation_data,
                  validation_examples, space):
        """Task callbacks (validation scores into the epoch logs, TensorBoard samples)."""
        return []

    def final_metrics(self, cfg, preprocessor, model, space, validation, run_dir):
        """Validation metrics of the best weights, for metrics.json."""
        return {}

    explains = False  # knlp explain takes this task's runs (explanation_setup)

    def explanation_setup(self, run, text):
        """What `knlp explain` attributes for one text: a dict with the model's `inputs` (a
        batch of one), `score_fn` (model output → `[B, C]` scores), `classes` (the C names) and,
        where token ids do not say it, `tokens` (the display string of each position)."""
        raise NotImplementedError

    # -- export and serving ------------------------------------------------------------------

    def serve(self, run, inputs):
        """serving_default's outputs (a dict of tensors) for `inputs`, a dict of `[B]` string
        tensors named as `signature_inputs`: what export writes out and what predicting with a
        run folder computes."""
        raise NotImplementedError

    def serving_specs(self):
        """`{name: TensorSpec([None], string)}` for serving_default's inputs."""
        import tensorflow as tf

        return {name: tf.TensorSpec([None], tf.string, name=name) for name in self.signature_inputs}

    def export_signatures(self, run):
        """`{signature name: (function, [input TensorSpec, ...])}`; by default serving_default."""
        names = self.signature_inputs
        if len(names) == 1:
            def serving_default(text):
                return self.serve(run, {names[0]: text})
        else:
            def serving_default(*columns):
                return self.serve(run, dict(zip(names, columns)))

        return {"serving_default": (serving_default, list(self.serving_specs().values()))}

    def export_metadata(self, run):
        """What the task adds to the export's assets/metadata.json (labels, tokenizer, ...)."""
        return {}

    def check_export(self, run, reloaded, texts=None):
        """Raises if the reloaded export's outputs differ from the trained model's."""
        raise NotImplementedError

    # -- evaluate ----------------------------------------------------------------------------

    def evaluate(self, target, *, data=None, split=None):
        """`knlp evaluate`: a JSON-ready report, with "task" and the metric keys of DESIGN.md."""
        raise NotImplementedError

    def format_report(self, report):
        """`knlp evaluate` without --json: the report as readable lines."""
        skipped = f"   (skipped lines: {report['skipped_lines']})" if "skipped_lines" in report else ""
        scalars = "   ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}"
                             for k, v in report.items()
                             if isinstance(v, (int, float, str)) and k not in ("task", "skipped_lines"))
        return f"task: {report['task']}   {scalars}{skipped}"

    # -- predict -----------------------------------------------------------------------------

    def inputs_from_texts(self, source, texts):
        """`knlp predict MODEL TEXT...`: the signature's columns from plain arguments (one-input
        signatures only, unless the task knows how to read its inputs from a text)."""
        names = self.signature_inputs
        if len(names) != 1:
            raise UserError(f"{source} takes {', '.join(names)}; give them as "
                            f"{' '.join('--' + n + ' ...' for n in names)} or with --input FILE.jsonl")
        return {names[0]: texts}

    def read_inputs(self, path, run_config):
        """`knlp predict --input FILE`: `{input name: [str, ...]}`. Plain text is one input per
        line; tsv/csv/jsonl give the `data.text_field` column. Tasks with several signature
        inputs override this."""
        from keras_nlp_app.data import readers

        if len(self.signature_inputs) != 1:
            raise UserError(f"{path}: this model takes {', '.join(self.signature_inputs)}")
        data_cfg = run_config.data
        if os.path.splitext(path)[1].lower() in (".tsv", ".csv", ".jsonl"):
            texts = readers.read_examples(path, text_field=data_cfg.text_field, label_field=None,
                                          header=data_cfg.header,
                                          columns=data_cfg.columns or None).texts
        else:
            texts = readers.read_examples(path, fmt="txt", label_field=None).texts
        return {self.signature_inputs[0]: texts}

    def prediction_records(self, inputs, outputs, target):
        """JSON-ready dicts, one per input row, from the signature's numpy outputs."""
        rows = len(next(iter(inputs.values())))
        records = []
        for i in range(rows):
            record = {name: column[i] for name, column in inputs.items()}
            for key, value in outputs.items():
                item = value[i]
                record[key] = item.tolist() if hasattr(item, "tolist") else item
                if isinstance(record[key], bytes):
                    record[key] = text_of(record[key])
            records.append(record)
        return records

    def format_prediction(self, record):
        """`knlp predict` without --json: one record as readable text."""
        return json.dumps(record, ensure_ascii=False)

    def n_best(self, target, texts):
        """`knlp predict --n-best`: every hypothesis of a beam search, best first."""
        raise UserError(f"--n-best is for seq2seq run folders; {target.path} is a {self.name} model")

    # -- generate ----------------------------------------------------------------------------

    def condition_prompts(self, target, prompts, condition):
        """`prompts` conditioned on `condition` (a conditioned LM's control token); other tasks
        take no condition."""
        raise UserError(f"{target.path} is a {self.name} model; --condition is for language "
                        f"models trained with data.condition_field")

    def decode(self, run, prompts, **settings):
        """Generated texts for prompts with a restored run (`knlp generate`, `knlp chat`)."""
        raise UserError(f"a {self.name} model does not generate text")

    def decode_saved_model(self, model, metadata, prompts, **settings):
        """Generated texts for prompts through an export's signatures."""
        raise UserError(f"a {self.name} model does not generate text")

    def format_generation(self, prompt, text, run_config):
        """`knlp generate` without --json: one generation as printed."""
        return text
