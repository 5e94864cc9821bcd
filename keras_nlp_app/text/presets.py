"""keras-hub presets: what `model.backbone` names, and the in-graph preprocessor that runs a
preset's own tokenizer (WordPiece, byte-pair or SentencePiece) and packer.

A preset is a local folder written by `save_to_preset` (ours from `knlp pretrain`, or one
downloaded from Kaggle / Hugging Face), a keras-hub preset name (`bert_tiny_en_uncased`), or a
`kaggle://` / `hf://` handle that keras-hub fetches and caches. The preprocessor's ids are
shifted by one so that 0 is padding for every tokenizer family (RoBERTa pads with 1, GPT-2 with
its end token): the shared tf.data pipelines pad with 0, and the model shifts back and masks.
"""

import dataclasses
import os

import keras
import tensorflow as tf

from keras_nlp_app.config import LORA_MODES
from keras_nlp_app.errors import ConfigError
from keras_nlp_app.text.preprocessors import truncate

HANDLES = ("kaggle://", "hf://", "modelscope://")
PRESET_FOLDER = "preset"  # the tokenizer's preset files inside a run's or an export's assets


def _first_line(exc):
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def check_preset(spec, key="model.backbone"):
    """Refuses, in one line and before anything loads, a preset that cannot exist: a folder
    without `config.json`, a path that is not there, or a name keras-hub does not know."""
    import keras_hub

    if spec.startswith(HANDLES):
        return spec
    if os.path.isdir(spec):
        if not os.path.isfile(os.path.join(spec, "config.json")):
            raise ConfigError(f"{key}: {spec} is not a keras-hub preset folder nor a Hugging Face "
                              f"checkpoint (no config.json); write one with knlp pretrain or "
                              f"save_to_preset")
        return spec
    if os.sep in spec or spec.startswith(".") or os.path.exists(spec):
        raise ConfigError(f"{key}: no preset folder at {spec}")
    names = keras_hub.models.Backbone.presets
    if spec not in names:
        raise ConfigError(f"{key}: unknown preset {spec!r}: not a folder, not a keras-hub preset name "
                          f"(e.g. {', '.join(sorted(names)[:3])}), not a kaggle:// or hf:// handle")
    return spec


def check_loadable(spec, key="model.backbone"):
    """`check_preset`, and for a name or handle also fetching its tokenizer (keras-hub caches
    it), so an offline machine is told in one line before a run folder is written."""
    check_preset(spec, key)
    if spec.startswith(HANDLES) or not os.path.isdir(spec):
        load_tokenizer(spec)
    return spec


def check_backbone_config(cfg, backbone_model):
    """For a task whose pretrained-backbone factory is `backbone_model`: True when the config
    fine-tunes a backbone (then checked: the factory and the preset named together, a LoRA rank,
    a loadable preset, no setting that only a learned word vocabulary takes), False when it
    trains from scratch."""
    model_cfg = cfg.model
    if not (model_cfg.backbone or model_cfg.name == backbone_model):
        return False
    if model_cfg.name != backbone_model:
        raise ConfigError(f"model.backbone is set but model {model_cfg.name} trains from "
                          f"scratch; set model.name: {backbone_model}")
    if not model_cfg.backbone:
        raise ConfigError(f"model {model_cfg.name} fine-tunes a pretrained backbone; set "
                          f"model.backbone to a keras-hub preset")
    if model_cfg.finetune in LORA_MODES and model_cfg.lora_rank < 1:
        raise ConfigError(f"model.lora_rank must be at least 1, got {model_cfg.lora_rank}")
    if cfg.tokenizer.vector_words:
        raise ConfigError("tokenizer.vector_words widens a word vocabulary learned from the "
                          "training data; with model.backbone the preset's tokenizer is used, so "
                          "set tokenizer.vector_words: 0")
    if cfg.tokenizer.start_token:
        raise ConfigError("tokenizer.start_token starts a learned word vocabulary's texts; with "
                          "model.backbone the preset's preprocessor adds its own start token, so "
                          "set tokenizer.start_token: null")
    check_loadable(model_cfg.backbone)
    return True


def backbone_factory_params(model_cfg, piece_tokenizer, *, pieces, allows, remedy, training):
    """What a backbone factory takes (the backbone, its padding id, finetune, lora_rank).

    Refuses a config whose inputs can reach `pieces` pieces when the backbone has fewer
    positions: the message says what `allows` them and `remedy(positions)` what to lower.
    """
    backbone = load_backbone(model_cfg.backbone, load_weights=loads_weights(model_cfg, training))
    positions = getattr(backbone, "max_sequence_length", None)
    if positions is not None and positions < pieces:
        raise ConfigError(f"{allows} {pieces} pieces but the backbone has {positions} positions; "
                          f"{remedy(positions)}")
    return {"backbone": backbone, "pad_token_id": special_ids(piece_tokenizer.tokenizer)[2],
            "finetune": model_cfg.finetune, "lora_rank": model_cfg.lora_rank}


def _loading(spec, what, load):
    try:
        return load()
    except ConfigError:
        raise
    except Exception as exc:  # network, missing files and bad configs come in many types
        where = ("keras-hub's cache (KAGGLEHUB_CACHE / HF_HOME) and the network"
                 if not os.path.isdir(spec) else spec)
        raise ConfigError(f"model.backbone: cannot load the {what} of preset {spec!r} from {where} "
                          f"({_first_line(exc)})") from None


def load_backbone(spec, load_weights=True):
    """The preset's `keras_hub.models.Backbone`, with its pretrained weights unless told not."""
    import keras_hub

    check_preset(spec)
    return _loading(spec, "backbone",
                    lambda: keras_hub.models.Backbone.from_preset(spec, load_weights=load_weights))


def loads_weights(model_cfg, training):
    """Whether a backbone is built with the preset's weights: when training starts, unless
    `model.backbone_weights: random` (a restored run's weights come from its checkpoint)."""
    return training and model_cfg.backbone_weights == "pretrained"


def is_transformers_folder(folder):
    """Whether a local folder holds a Hugging Face Transformers checkpoint (`config.json` with a
    `model_type`: what `save_pretrained` or a hub download writes) rather than a keras-hub
    preset; keras-hub converts such a folder's weights and tokenizer as it loads them."""
    import json

    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "model_type" in config and "registered_name" not in config


def load_tokenizer(spec):
    """The preset's `keras_hub.models.Tokenizer` (its vocabulary or SentencePiece model inside).

    A local keras-hub folder needs only `tokenizer.json` and its assets (a run's or an export's
    copy); names, handles and Hugging Face checkpoint folders go through keras-hub's loader
    (and its download cache)."""
    import json

    import keras_hub

    if not spec.startswith(HANDLES) and os.path.isdir(spec) and not is_transformers_folder(spec):
        path = os.path.join(spec, "tokenizer.json")
        if not os.path.isfile(path):
            raise ConfigError(f"{spec}: the preset holds no tokenizer (tokenizer.json)")

        def from_files():
            with open(path, encoding="utf-8") as f:
                tokenizer = keras.saving.deserialize_keras_object(json.load(f))
            tokenizer.load_preset_assets(spec)
            return tokenizer

        return _loading(spec, "tokenizer", from_files)
    check_preset(spec)
    return _loading(spec, "tokenizer", lambda: keras_hub.models.Tokenizer.from_preset(spec))


@dataclasses.dataclass
class PresetTokenizer:
    """A preset's tokenizer with its backbone's config.json (what a run's assets keep)."""

    tokenizer: object
    config: dict

    @classmethod
    def load(cls, folder):
        """From a preset folder holding config.json and the tokenizer files."""
        import json

        tokenizer = load_tokenizer(folder)
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            return cls(tokenizer, json.load(f))

    @classmethod
    def from_preset(cls, spec):
        return cls(load_tokenizer(spec), backbone_config(load_backbone(spec, load_weights=False)))

    def save(self, folder):
        """Into `folder/preset`, written whole or not at all."""
        save_tokenizer(self.tokenizer, folder, self.config)

    # -- word pieces for taggers (labels at each word's first piece) -------------------------

    @property
    def fallback_id(self):
        """The shifted id of a word that yields no piece: the unknown token's, else padding."""
        unknown = getattr(self.tokenizer, "unk_token_id", None)
        return 0 if unknown is None else unknown + 1

    def word_pieces(self, words):
        """Shifted piece ids (0 pads) of each word `[N]` → ragged `[N, None]`; byte-pair
        tokenizers see each word after a space, as in running text."""
        import keras_hub

        if isinstance(self.tokenizer, keras_hub.tokenizers.BytePairTokenizer):
            words = tf.strings.join([" ", words])
        return tokenize(self.tokenizer, words) + 1

    def add_special_pieces(self, pieces):
        """(the texts' shifted pieces `[B, None]` between the start and end tokens, how far the
        start token moved every piece)."""
        start, end, _ = special_ids(self.tokenizer)
        shifted = add_special_tokens(pieces - 1, start, end) + 1
        return shifted, int(start is not None)


def save_tokenizer(tokenizer, folder, config=None):
    """The tokenizer's preset files (and the backbone's `config`, when given) in
    `folder/preset`, written whole or not at all."""
    from keras_nlp_app.utils import atomic

    with atomic.atomic_folder(os.path.join(folder, PRESET_FOLDER)) as staging:
        if config is not None:
            atomic.write_json(os.path.join(staging, "config.json"), config, indent=4)
        tokenizer.save_to_preset(staging)


def backbone_config(backbone):
    """The backbone's `config.json` as keras-hub writes it (no weights): with it, a folder of
    tokenizer files is a preset that `Tokenizer.from_preset` and `Backbone.from_preset(...,
    load_weights=False)` load."""
    config = keras.saving.serialize_keras_object(backbone)
    for key in ("compile_config", "build_config"):
        config.pop(key, None)
    return config


def special_ids(tokenizer):
    """(start id or None, end id or None, pad id) of a keras-hub tokenizer (BERT: [CLS], [SEP],
    [PAD]; RoBERTa: <s>, </s>, <pad>; GPT-2: <|endoftext|> for all three)."""
    start = getattr(tokenizer, "start_token_id", None)
    end = getattr(tokenizer, "end_token_id", None)
    pad = getattr(tokenizer, "pad_token_id", None)
    return start, end, end if pad is None else pad


def tokenize(tokenizer, strings):
    """A keras-hub tokenizer's ids for `[B]` strings as a ragged int32 `[B, None]` tensor."""
    ids = tokenizer(tf.convert_to_tensor(strings, dtype=tf.string))
    if isinstance(ids, list):  # keras-hub hands eager ragged results back as Python lists
        return tf.ragged.constant(ids, dtype=tf.int32, ragged_rank=1)
    if not isinstance(ids, tf.RaggedTensor):
        ids = tf.RaggedTensor.from_tensor(ids)
    return tf.cast(ids, tf.int32)


def add_special_tokens(ids, start_id, end_id):
    """Ragged `[B, None]` ids with `start_id` before and `end_id` after each row (either may
    be None: no such token)."""
    rows = tf.shape(ids.row_splits)[0] - 1
    parts = [ids]
    if start_id is not None:
        parts.insert(0, tf.RaggedTensor.from_tensor(tf.fill([rows, 1], start_id)))
    if end_id is not None:
        parts.append(tf.RaggedTensor.from_tensor(tf.fill([rows, 1], end_id)))
    return tf.concat(parts, axis=1)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class PresetPreprocessor(keras.layers.Layer):
    """Strings → shifted ids `[B, T]` with a preset's tokenizer: its start token, the text's
    tokens (truncated), its end token; every id + 1, 0 for padding.

    Args:
        preset_tokenizer: a `PresetTokenizer` (the keras-hub tokenizer and its backbone's config).
        sequence_length: most ids per text, special tokens included.
        truncation: head | tail | head+tail (of the text's tokens).
    """

    ngrams, ngram_buckets = 1, 0

    def __init__(self, preset_tokenizer, sequence_length=128, truncation="head", **kwargs):
        super().__init__(**kwargs)
        self.preset_tokenizer = preset_tokenizer
        self.tokenizer = preset_tokenizer.tokenizer
        self.sequence_length = int(sequence_length)
        self.truncation = truncation
        self.start_id, self.end_id, self.pad_id = special_ids(self.tokenizer)
        specials = (self.start_id is not None) + (self.end_id is not None)
        if self.sequence_length <= specials:
            raise ValueError(f"tokenizer.sequence_length must exceed {specials} (the special tokens)")
        self.body_length = self.sequence_length - specials

    @property
    def vocabulary_size(self):
        return self.tokenizer.vocabulary_size()

    def ragged_ids(self, strings):
        ids = truncate(tokenize(self.tokenizer, strings), self.body_length, self.truncation)
        return add_special_tokens(ids, self.start_id, self.end_id) + 1

    def call(self, strings):
        return self.ragged_ids(strings).to_tensor(0)

    def describe(self):
        """The tokenizer as export metadata records it."""
        return {"kind": "preset", "class": type(self.tokenizer).__name__,
                "vocabulary_size": self.vocabulary_size, "sequence_length": self.sequence_length,
                "truncation": self.truncation}

    def save_assets(self, folder):
        """The tokenizer's preset files (tokenizer.json and its vocabulary) in `folder/preset`."""
        self.preset_tokenizer.save(folder)

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length,
                "truncation": self.truncation}


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class PresetLMPreprocessor(keras.layers.Layer):
    """Strings → shifted ids for a language model over a preset's tokenizer (`task: lm` with
    `model.backbone`), and shifted ids → strings: the interface of `preprocessors.LMPreprocessor`.

    A text's ids are its tokens only; a document of the training stream ends with the end token
    (GPT-2's `<|endoftext|>`, Gemma's `<eos>`), and scoring and generation start from the start
    token (the end token where there is none: GPT-2 separates documents with it).
    """

    word_level = False

    def __init__(self, preset_tokenizer, sequence_length=128, **kwargs):
        super().__init__(**kwargs)
        self.preset_tokenizer = preset_tokenizer
        self.tokenizer = preset_tokenizer.tokenizer
        self.sequence_length = int(sequence_length)
        start, end, self.pad_token_id = special_ids(self.tokenizer)
        if start is None and end is None:
            raise ValueError(f"{type(self.tokenizer).__name__} has neither a start nor an end "
                             f"token to begin a text with")
        self.bos_id = (start if start is not None else end) + 1
        self.eos_id = None if end is None else end + 1
        self.document_end_id = self.eos_id
        unknown = getattr(self.tokenizer, "unk_token_id", None)
        self.never_generated = sorted({0, self.pad_token_id + 1, self.bos_id} - {self.eos_id}
                                      | ({unknown + 1} if unknown is not None else set()))

    @property
    def vocabulary_size(self):
        return self.tokenizer.vocabulary_size() + 1

    def ragged_ids(self, strings):
        return tokenize(self.tokenizer, strings) + 1

    def prompt_ids(self, strings):
        ids = self.ragged_ids(strings)
        return add_special_tokens(ids, self.bos_id, None)

    def detokenize(self, shifted):
        """Shifted ids `[B, None]` → `[B]` strings, padding and special tokens dropped."""
        shifted = tf.ragged.boolean_mask(shifted, ~tf.reduce_any(
            tf.equal(shifted[..., None], tf.constant(self.never_generated + [self.eos_id or 0])),
            axis=-1))
        text = self.tokenizer.detokenize(shifted - 1)
        return tf.convert_to_tensor(text, tf.string)

    def continuation(self, tokens, prompt_lengths):
        """`[B]` strings of the tokens after each row's prompt in decoded buffers `[B, L]`: the
        whole text less the prompt's, so a piece's leading space survives (SentencePiece drops
        it at the start of a text)."""
        positions = tf.range(tf.shape(tokens)[1])[None, :]
        whole = self.detokenize(tf.ragged.boolean_mask(tokens, tokens > 0))
        prompt = self.detokenize(tf.ragged.boolean_mask(tokens, positions < prompt_lengths[:, None]))
        skip = tf.strings.length(prompt)
        return tf.strings.substr(whole, skip, tf.strings.length(whole) - skip)

    def call(self, strings):
        return self.ragged_ids(strings)

    def describe(self):
        """The tokenizer as export metadata records it."""
        return {"kind": "preset", "class": type(self.tokenizer).__name__,
                "vocabulary_size": self.vocabulary_size, "sequence_length": self.sequence_length}

    def save_assets(self, folder):
        """The tokenizer's preset files in `folder/preset`."""
        self.preset_tokenizer.save(folder)

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length}
