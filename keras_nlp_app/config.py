"""Dataclass configs that map one to one onto YAML sections.

A recipe YAML names only what differs from the defaults; `load_config` merges one or more
recipes and `--set a.b=c` overrides on top of the defaults, rejects unknown keys with the list
of valid ones, and checks types. The resolved config is written into every run folder, so a run
can be rebuilt from it alone.
"""

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field

import yaml

from keras_nlp_app.errors import ConfigError
from keras_nlp_app.utils import atomic

LORA_MODES = ("lora", "lora_all")  # model.finetune values that train LoRA factors only


@dataclass
class DataConfig:
    dataset: str | None = "sst2"  # registry name (knlp datasets list); null to use files
    train_split: str = "train"  # registry split used for training
    validation_split: str | None = "validation"  # registry split for validation; null for none
    train_file: str | None = None  # path used instead of the registry's train split
    validation_file: str | None = None  # path used instead of the registry's validation split
    format: str = "auto"  # auto (from the file suffix) | tsv | csv | jsonl | txt | parallel (SRC_FILE,TGT_FILE) | dialog (turns split by __eou__) | conll (tagging columns)
    header: bool = True  # tsv/csv: first line names the columns
    columns: list[str] = field(default_factory=list)  # tsv/csv without header: column names in order
    text_field: str | list[str] = "sentence"  # column or JSON field of the text (seq2seq: the source; parallel files: its suffix); a list joins several fields with newlines
    label_field: str = "label"  # column or JSON field holding the label (seq2seq: the target)
    multi_label: bool = False  # each example has a set of labels (a JSON list, or joined by label_separator)
    label_separator: str = ","  # multi-label tsv/csv: separator between the labels of one example
    on_bad_line: str = "error"  # error: stop at the first malformed line | skip: drop it and report the count
    holdout_fraction: float = 0.0  # with no validation data, hold out this fraction of train (seeded; LMs: the last fraction of the text)
    cv_folds: int = 0  # with no validation data, k-fold cross-validation: hold out fold data.cv_fold of k (scripts/cross_validate.py runs them all); 0: off
    cv_fold: int = 0  # the fold held out, 0 .. cv_folds - 1 (the partition is seeded by train.seed, as the holdout is)
    holdout_seed: int | None = None  # seeds the holdout and the cross-validation partition instead of train.seed, so runs that differ in train.seed hold out the same examples (members of one knlp ensemble); null: train.seed
    context_turns: int = 2  # dialogue: earlier turns (with speaker markers) in each source
    max_train_examples: int | None = None  # keep only the first N training examples (LMs: characters); null for all
    train_subset: int | None = None  # keep a seeded random subset of N training examples (label-efficiency curves); null for all
    subset_seed: int = 0  # seed that picks data.train_subset's examples
    tag_scheme: str = "bioes"  # tagging: the scheme the model learns and outputs (iob1 | bio | bioes); files in any scheme are read
    tag_column: int = -1  # tagging, CoNLL files: the column holding the tag (-1: the last)
    condition_field: str | None = None  # lm: a column or JSON field (e.g. label) whose value conditions each text: a control token __VALUE__ starts it (controlled generation: knlp generate --condition VALUE)
    condition_names: dict[str, typing.Any] = field(default_factory=dict)  # lm with condition_field: names for the field's values, e.g. {"0": negative, "1": positive}
    mirror_pairs: bool = False  # relation training: also train on every pair with head and tail exchanged, a directed label's direction flipped (R(e1,e2) <-> R(e2,e1)) and any other label kept as undirected (SemEval's Other); validation is not mirrored
    answer_occurrences: str = "given"  # qa training: given (the answer at its answer_start) | all (every occurrence of the answer text in the context is a valid span)


@dataclass
class TokenizerConfig:
    vocabulary: str | None = None  # a tokenizer folder written by `knlp vocab`, used as is instead of learning one from the training split
    kind: str = "word"  # word (Unicode-aware words and punctuation) | whitespace (pre-tokenized text) | wordpiece (learned subwords) | char | byte
    lowercase: bool = True  # Unicode case folding before splitting
    vocab_size: int = 20000  # largest vocabulary, special tokens included
    min_count: int = 1  # word tokenizer: drop words seen fewer times in training data
    vector_words: int = 0  # with model.word_vectors (or model.init_from): also add up to N words of the vectors file (or of the source run's vocabulary), most frequent first, that the learned word vocabulary lacks (word tokenizers, taggers, QA readers), so words unseen in training keep their pretrained vectors (on top of vocab_size)
    sequence_length: int = 128  # tokens kept per text (per n-gram order when ngrams > 1); LMs: window / BPTT length
    start_token: str | None = None  # classifiers: a token every text starts with, reserved in the vocabulary, e.g. <eos> for a classifier started from a word LM (model.init_from), which read every line after one; null for none
    truncation: str = "head"  # head | tail | head+tail: which tokens of a longer text are kept
    ngrams: int = 1  # 2 or more adds word n-grams up to this order (fastText-style features)
    ngram_buckets: int = 0  # hash buckets shared by all n-grams; 0 with ngrams > 1: exact n-grams, the training data's in the vocabulary (as scikit-learn's CountVectorizer)
    ngram_vocab_size: int = 0  # exact n-grams: most kept, most frequent first (min_count applies); 0: all
    target_length: int = 64  # seq2seq: target tokens kept, BOS and EOS included (longest output)
    model_type: str = "unigram"  # sentencepiece: unigram | bpe
    shared_vocabulary: bool = True  # seq2seq: one SentencePiece model for source and target
    max_word_length: int = 20  # tagging: characters per token seen by the character features
    subword_vocab_size: int = 8000  # tagging with kind wordpiece: size of the WordPiece vocabulary (vocab_size sizes the word vocabulary)
    question_length: int = 48  # qa: question tokens kept (sequence_length is the context window)
    doc_stride: int = 128  # qa: tokens between the starts of consecutive context windows (at most sequence_length)
    mask_selection_rate: float = 0.15  # pretrain (masked LM): share of tokens predicted (of those 80% [MASK], 10% random, 10% kept)


@dataclass
class ModelConfig:
    name: str = "lstm_classifier"  # factory in keras_nlp_app.models.MODELS
    backbone: str | None = None  # keras-hub preset to start from: a local preset folder (knlp pretrain's, or downloaded), a preset name, kaggle://..., hf://...; the preset's tokenizer is used
    finetune: str = "full"  # with a backbone: full (every weight trains) | frozen (features only) | lora (only LoRA factors in the attention query/value projections train) | lora_all (LoRA factors in every attention and feed-forward projection)
    lora_rank: int = 8  # finetune lora / lora_all: rank of the LoRA factors
    backbone_weights: str = "pretrained"  # pretrained (fine-tune the preset) | random (the preset's architecture and tokenizer, fresh weights: pretraining from scratch, e.g. a causal LM written as a keras-hub preset)
    params: dict[str, typing.Any] = field(default_factory=dict)  # keyword arguments for the factory
    top_k: int = 5  # the serving signature also returns this many best labels (capped at the label count); qa: answers in the n-best list
    beam_size: int = 4  # seq2seq: beam width inside the exported model and for evaluation (1: greedy)
    max_answer_length: int = 30  # qa: longest answer span in tokens
    length_penalty: float = 0.6  # seq2seq: GNMT length-penalty exponent (0: none)
    word_vectors: str | None = None  # word2vec text file (knlp vectors, or GloVe/fastText .vec with a header) whose vectors start the word embedding of a word-level model; its width must equal the embedding's
    freeze_word_vectors: bool = False  # with model.word_vectors: train the model with the word embedding fixed as the file gave it (Kim 2014's "static"): words training never shows (tokenizer.vector_words) stay in the same space as those it does, and the embedding gets no gradient
    trainable_words: int = 0  # with freeze_word_vectors: the vocabulary's first N entries (its most frequent words) and every row the vectors file lacks (reserved entries, words without a vector) keep training, the other rows stay fixed (DrQA tunes its 1,000 most frequent question words); 0: the whole table is fixed
    word_classes: str | None = None  # a lexicon giving each vocabulary word a class that models with model.params.word_class_dim embed beside the word: a WordNet database folder (e.g. /usr/share/wordnet: supersenses such as noun.artifact) or a word<TAB>class file; read once when training starts, the model keeps the table
    init_from: str | None = None  # a trained run folder (e.g. a word-level lstm_lm pretrained on unlabeled text) whose word embedding rows (matched by word) and recurrent layers (in order, same cell and widths) start this model: Dai & Le / ULMFiT transfer; not with model.word_vectors
    skipgram_epochs: int = 0  # pretrain from scratch: skip-gram (word2vec) epochs over the training tokens that initialize the token embedding before the masked LM trains (cheap lexical knowledge: docs/transfer.md); 0: random start


@dataclass
class TrainConfig:
    epochs: int = 3  # passes over the training data
    batch_size: int = 64  # per replica; global batch = batch_size x replicas
    optimizer: str = "adam"  # adam | adamw | sgd
    learning_rate: float = 0.001  # peak learning rate
    weight_decay: float = 0.0  # adamw only: decoupled weight decay
    warmup_steps: int = 0  # linear warmup from 0 to learning_rate
    decay: str = "none"  # none | cosine | linear (after warmup, to min_learning_rate at the last step) | step (per epoch, see decay_rate) | noam (inverse square root after warmup)
    min_learning_rate: float = 0.0  # cosine/linear: the rate the decay ends at
    decay_rate: float = 0.5  # step decay: the rate is multiplied by this every epoch from decay_start_epoch
    decay_start_epoch: int = 5  # step decay: first epoch (counting from 1) with a decayed rate
    beta_2: float = 0.999  # adam/adamw: second-moment decay (nanoGPT uses 0.99)
    momentum: float = 0.9  # sgd: momentum (0 for plain SGD, as in the PTB LSTM recipe)
    clipnorm: float | None = None  # clip gradients to this global norm; null for none
    label_smoothing: float = 0.0  # mix targets with the uniform distribution by this much
    class_weight: typing.Any = "none"  # none | balanced (inverse class frequency) | {label: weight}
    tune_thresholds: bool = True  # multi-label: each label's threshold maximizes its validation F1
    strategy: str = "auto"  # auto | one_device | mirrored | multi_worker
    scale_learning_rate: str = "none"  # none | linear | sqrt: multiply learning_rate by replicas (or its root) for the larger global batch
    seed: int = 1337  # seeds Python, NumPy, TensorFlow and the shuffle order
    sort_window: int = 4  # batches per window sorted by length before batching (less padding, faster); 0: off
    length_buckets: int = 0  # seq2seq and tagging: pad token columns to one of N lengths from the training data's length distribution (few shapes: XLA compiles once per bucket; jit_compile auto turns XLA on); 0: each batch to its longest
    monitor: str = "val_accuracy"  # metric for the best checkpoint and early stopping
    early_stopping_patience: int = 0  # epochs without improvement before stopping; 0 turns it off
    backup_every_steps: int = 0  # back up the training state every N batches too (resume there after a crash); 0: only at the end of every epoch
    mixed_precision: str = "none"  # none | mixed_float16 (loss-scaled) | bfloat16 (mixed_bfloat16): compute in 16 bits, variables in float32 | auto: bfloat16 where the hardware multiplies in it (AMX CPUs without XLA, GPUs from Ampere), else none
    steps_per_epoch: int | None = None  # cap on steps per epoch; null for a full pass
    steps_per_execution: int = 1  # training steps per compiled call (fewer Python round trips)
    layerwise_lr_decay: float = 1.0  # with a backbone: each layer below the top learns at this factor times the one above (ULMFiT/ELECTRA; 1: off)
    gradual_unfreezing: int = 0  # with a backbone: the head trains alone at first and one more layer (top down) joins every N epochs (ULMFiT); 0: off
    gradient_accumulation_steps: int = 1  # apply the summed gradients of N batches at once (a larger effective batch)
    average_checkpoints: int = 0  # seq2seq: at the end, average the weights of the last N epochs (kept if better)
    ema_decay: float = 0.0  # keep an exponential moving average of the trainable weights with this decay (Polyak averaging; BiDAF: 0.999); validation, checkpoints and the final model use the average; 0: off
    eval_examples: int = 1000  # seq2seq: validation examples decoded (greedy) for val_bleu each epoch; 0: all
    jit_compile: str = "auto"  # auto (the task decides: XLA for Transformer LMs, whose windows have one shape) | on | off
    verbose: str = "auto"  # auto (progress bar on a terminal) | 0 | 1 | 2
    tracking: str | list[str] = "none"  # none | wandb | mlflow, or a list of both: config, epoch logs, final metrics and the run folder to each (offline by default)
    tracking_project: str = "keras_nlp_app"  # the W&B project / MLflow experiment runs are filed under
    tracking_uri: str | None = None  # MLflow tracking URI; null: $MLFLOW_TRACKING_URI, else a SQLite store beside the run folders (runs/mlflow.db)
    projector_tokens: int = 10000  # TensorBoard embedding projector: vectors of this many most frequent tokens; 0: off
    explain_samples: int = 3  # classifiers: integrated-gradient attributions of this many validation texts as TensorBoard images each epoch; 0: off


@dataclass
class Config:
    name: str = "sst2_lstm"  # experiment name: default run folder runs/<name>
    task: str = "classification"  # a registered task: classification | lm | pretrain | qa | seq2seq | tagging (keras_nlp_app.tasks.TASKS)
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tune: dict[str, typing.Any] = field(default_factory=dict)  # knlp tune's search space: {dotted key: [choices] | {uniform|log_uniform|int|log_int: [low, high], step: s}}


# a run folder's resolved config and its assets folder (the layout `runs` documents)
RUN_CONFIG = "config.yaml"
RUN_ASSETS = "assets"

CHOICES = {
    "data.format": ("auto", "tsv", "csv", "jsonl", "txt", "parallel", "dialog", "conll"),
    "data.tag_scheme": ("iob1", "bio", "bioes"),
    "data.on_bad_line": ("error", "skip"),
    "data.answer_occurrences": ("given", "all"),
    "tokenizer.kind": ("word", "whitespace", "wordpiece", "char", "byte", "sentencepiece"),
    "tokenizer.model_type": ("unigram", "bpe"),
    "tokenizer.truncation": ("head", "tail", "head+tail"),
    "train.optimizer": ("adam", "adamw", "sgd"),
    "model.finetune": ("full", "frozen", *LORA_MODES),
    "model.backbone_weights": ("pretrained", "random"),
    "train.decay": ("none", "cosine", "linear", "step", "noam"),
    "train.strategy": ("auto", "one_device", "mirrored", "multi_worker"),
    "train.scale_learning_rate": ("none", "linear", "sqrt"),
    "train.mixed_precision": ("none", "mixed_float16", "bfloat16", "auto"),
    "train.verbose": ("auto", "0", "1", "2"),
    "train.jit_compile": ("auto", "on", "off"),
}


def _at_least(low):
    return (lambda v: v >= low), f"at least {low}"


def _above(low):
    return (lambda v: v > low), f"greater than {low}"


def _within(low, high):
    return (lambda v: low <= v <= high), f"in [{low}, {high}]"


def _fraction_open():
    return (lambda v: 0 < v < 1), "in (0, 1)"


def _fraction_below_one():
    return (lambda v: 0 <= v < 1), "in [0, 1)"


# Numeric keys and the values that make sense (null, where a key allows it, is always fine).
RANGES = {
    "data.holdout_fraction": _fraction_below_one(),
    "data.context_turns": _at_least(0),
    "data.cv_folds": (lambda v: v == 0 or v >= 2, "0 (off) or at least 2"),
    "data.cv_fold": _at_least(0),
    "data.holdout_seed": _at_least(0),
    "data.max_train_examples": _at_least(1),
    "data.train_subset": _at_least(1),
    "data.tag_column": (lambda v: v != 0, "a column other than 0 (the token): 1, 2, ... or -1"),
    "tokenizer.vocab_size": _at_least(3),
    "tokenizer.min_count": _at_least(1),
    "tokenizer.vector_words": _at_least(0),
    "tokenizer.sequence_length": _at_least(1),
    "tokenizer.ngrams": _within(1, 10),
    "tokenizer.ngram_buckets": _at_least(0),
    "tokenizer.ngram_vocab_size": _at_least(0),
    "tokenizer.target_length": _at_least(2),
    "tokenizer.max_word_length": _at_least(1),
    "tokenizer.subword_vocab_size": _at_least(3),
    "tokenizer.question_length": _at_least(1),
    "tokenizer.doc_stride": _at_least(1),
    "tokenizer.mask_selection_rate": _fraction_open(),
    "model.lora_rank": _at_least(1),
    "model.top_k": _at_least(1),
    "model.beam_size": _at_least(1),
    "model.max_answer_length": _at_least(1),
    "model.length_penalty": _at_least(0),
    "train.epochs": _at_least(1),
    "model.skipgram_epochs": _within(0, 100),
    "model.trainable_words": _at_least(0),
    "train.batch_size": _at_least(1),
    "train.learning_rate": _above(0),
    "train.weight_decay": _at_least(0),
    "train.warmup_steps": _at_least(0),
    "train.min_learning_rate": _at_least(0),
    "train.decay_rate": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "train.decay_start_epoch": _at_least(1),
    "train.beta_2": _fraction_below_one(),
    "train.momentum": _fraction_below_one(),
    "train.clipnorm": _above(0),
    "train.label_smoothing": _fraction_below_one(),
    "train.sort_window": _at_least(0),
    "train.length_buckets": _within(0, 64),
    "train.early_stopping_patience": _at_least(0),
    "train.backup_every_steps": _at_least(0),
    "train.steps_per_epoch": _at_least(1),
    "train.steps_per_execution": _at_least(1),
    "train.layerwise_lr_decay": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "train.gradual_unfreezing": _at_least(0),
    "train.gradient_accumulation_steps": _at_least(1),
    "train.average_checkpoints": _at_least(0),
    "train.ema_decay": _fraction_below_one(),
    "train.eval_examples": _at_least(0),
    "train.explain_samples": _at_least(0),
    "train.projector_tokens": _at_least(0),
    "train.seed": _at_least(0),
}


_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _check_type(key, value, annotation):
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):  # Optional[X] and X | Y
        if value is None and type(None) in args:
            return value
        error = None
        for inner in (a for a in args if a is not type(None)):
            try:
                return _check_type(key, value, inner)
            except ConfigError as exc:
                error = exc
        raise error
    if origin in (list, list):
        if not isinstance(value, list):
            raise ConfigError(f"config key {key} must be a list, got {value!r}", key=key)
        return [_check_type(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if origin in (dict, dict):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key} must be a mapping, got {value!r}", key=key)
        return dict(value)
    if annotation is typing.Any:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 5e-5 (no dot in the mantissa) as a string
    if annotation is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
        raise ConfigError(f"config key {key} must be {annotation.__name__}, got {value!r}",
                          key=key)
    return value


def _merge(instance, updates, prefix=""):
    """Applies a nested mapping onto a dataclass instance, rejecting unknown keys."""
    if not isinstance(updates, dict):
        raise ConfigError(f"config section {prefix[:-1] or '(top)'} must be a mapping, got "
                          f"{updates!r}", key=prefix[:-1] or None)
    fields = {f.name: f for f in dataclasses.fields(instance)}
    hints = typing.get_type_hints(type(instance))
    if isinstance(instance, ModelConfig) and updates.get("name", instance.name) != instance.name:
        instance.params = {}  # another factory: the previous model's parameters do not apply
    for key, value in updates.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            valid = ", ".join(prefix + name for name in fields)
            raise ConfigError(f"unknown config key {dotted}; valid keys: {valid}", key=dotted)
        current = getattr(instance, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value, prefix=dotted + ".")
            continue
        if key == "params" and isinstance(current, dict) and isinstance(value, dict):
            value = {**current, **value}
        if isinstance(value, bool) and {"on", "off"} <= set(CHOICES.get(dotted, ())):
            value = "on" if value else "off"  # YAML 1.1 reads a bare on/off as a boolean
        value = _check_type(dotted, value, hints[key])
        if dotted in CHOICES and value is not None and value not in CHOICES[dotted]:
            raise ConfigError(
                f"config key {dotted} must be one of {', '.join(CHOICES[dotted])}, got {value!r}",
                key=dotted)
        if dotted in RANGES and value is not None:
            fits, expected = RANGES[dotted]
            if isinstance(value, float) and value != value or not fits(value):
                raise ConfigError(f"config key {dotted} must be {expected}, got {value!r}",
                                  key=dotted)
        setattr(instance, key, value)


def parse_override(text):
    """Turns `a.b=c` into the nested mapping {'a': {'b': c}}, c parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    dotted, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    nested = value
    for part in reversed(dotted.strip().split(".")):
        nested = {part: nested}
    return nested


def _read_yaml(path):
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: config file not found")
    try:
        with open(path, encoding="utf-8") as f:
            loaded = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if loaded is None:
        raise ConfigError(f"{path}: the config file is empty; a recipe names at least its "
                          f"sections (see configs/base.yaml)")
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections")
    return loaded


def key_line(path, dotted):
    """The 1-based line of a config file that sets the dotted key (or its deepest section
    present), or None."""
    try:
        with open(path, encoding="utf-8") as f:
            node = yaml.compose(f)  # the safe composer: node tree with marks, nothing built
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    line = None
    for part in dotted.split("."):
        if not isinstance(node, yaml.MappingNode):
            break
        for key_node, value_node in node.value:
            if key_node.value == part:
                line, node = key_node.start_mark.line + 1, value_node
                break
        else:
            break
    return line


def in_file(error, path):
    """`error` as raised about the config file `path`: `path:line: message` when the file sets
    the key the error is about, else `path: message`."""
    if str(error).startswith(f"{path}:"):
        return error
    line = key_line(path, error.key) if getattr(error, "key", None) else None
    where = f"{path}:{line}" if line else path
    return ConfigError(f"{where}: {error}", key=getattr(error, "key", None))


def load_config(paths=(), overrides=()):
    """Builds a `Config` from defaults, then each YAML file, then `a.b=c` overrides.

    Args:
        paths: YAML files, applied in order.
        overrides: strings like `train.epochs=5`.

    Example:
        cfg = load_config(["configs/sst2_lstm.yaml"], ["train.epochs=1"])
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    cfg = Config()
    for path in paths:
        loaded = _read_yaml(os.fspath(path))
        try:
            _merge(cfg, loaded)
        except ConfigError as exc:
            raise in_file(exc, os.fspath(path)) from None
    for text in overrides:
        try:
            _merge(cfg, parse_override(text))
        except ConfigError as exc:
            raise ConfigError(f"--set {text}: {exc}", key=exc.key) from None
    return cfg


def config_to_dict(cfg):
    return dataclasses.asdict(cfg)


def dump_config(cfg, path):
    """Writes the resolved config as YAML (atomically)."""
    atomic.write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def updated(cfg, mapping):
    """A copy of `cfg` with a nested mapping of changes applied (checked like a recipe's)."""
    changed = config_from_dict(config_to_dict(cfg))
    _merge(changed, mapping)
    return changed


def config_from_dict(mapping):
    cfg = Config()
    _merge(cfg, mapping)
    return cfg
