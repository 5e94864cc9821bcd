"""The language-model task over keras-hub decoders (`model.name: backbone_lm`): a preset's
decoder fine-tuned (`model.backbone`), or a fresh Gemma-architecture decoder with a SentencePiece
tokenizer learned from the training text (causal-LM pretraining from scratch); either way the run
ends with `preset/`, a keras-hub preset of the trained causal LM and its tokenizer."""

import os

import numpy as np

from keras_nlp_app.errors import ConfigError

BACKBONE_MODEL = "backbone_lm"  # the factory over a keras-hub decoder
MIN_VOCABULARY = 300  # byte fallback alone takes 256 pieces
DECODER = "decoder"  # model.params key: a fresh decoder's architecture (models.backbone_lm.fresh_decoder)


def fresh_decoder_config(cfg):
    """True when the config pretrains a fresh decoder (backbone_lm and no model.backbone)."""
    if cfg.model.name != BACKBONE_MODEL:
        return False
    if cfg.model.backbone:
        if DECODER in cfg.model.params:
            raise ConfigError(f"model.params.{DECODER} sizes a fresh decoder; with model.backbone "
                              f"the preset's architecture is used (drop one of them)")
        return False
    if cfg.tokenizer.vocab_size < MIN_VOCABULARY:
        raise ConfigError(f"tokenizer.vocab_size {cfg.tokenizer.vocab_size} is too small for a "
                          f"fresh decoder's vocabulary: at least {MIN_VOCABULARY} (256 byte "
                          f"pieces, the special tokens, the characters)")
    return True


def fresh_decoder_tokenizer(cfg, train):
    """A SentencePiece tokenizer learned from the training text in Gemma's layout, with the fresh
    decoder's config (`model.params.decoder`) beside it: the run's assets preset."""
    import keras_hub

    from keras_nlp_app.models.backbone_lm import fresh_decoder
    from keras_nlp_app.text.presets import PresetTokenizer, backbone_config
    from keras_nlp_app.text.tokenizers import learn_sentencepiece

    lines = [line for document in train.documents for line in document.splitlines(keepends=True)]
    proto = learn_sentencepiece(lines, vocab_size=cfg.tokenizer.vocab_size,
                                model_type=cfg.tokenizer.model_type, layout="gemma")
    tokenizer = keras_hub.models.GemmaTokenizer(proto=proto)
    try:
        backbone = fresh_decoder(tokenizer.vocabulary_size(), **cfg.model.params.get(DECODER, {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.params.{DECODER}: {exc}") from None
    return PresetTokenizer(tokenizer, backbone_config(backbone))


def backbone_lm(cfg, preprocessor, params, training):
    """The built `backbone_lm`: over the preset's decoder with its weights when training starts
    from them, else over the decoder the run's assets describe, freshly initialized (a restored
    run then loads its checkpoint)."""
    import keras

    from keras_nlp_app.models import build_model as build
    from keras_nlp_app.text.presets import load_backbone, loads_weights

    params.pop(DECODER, None)
    if cfg.model.backbone and loads_weights(cfg.model, training):
        backbone = load_backbone(cfg.model.backbone, load_weights=True)
    else:
        backbone = keras.saving.deserialize_keras_object(preprocessor.preset_tokenizer.config)
    params.setdefault("context_length", cfg.tokenizer.sequence_length)
    try:
        model = build(BACKBONE_MODEL, backbone=backbone, pad_token_id=preprocessor.pad_token_id,
                      never_generated=preprocessor.never_generated, finetune=cfg.model.finetune,
                      lora_rank=cfg.model.lora_rank, **params)
    except ValueError as exc:
        raise ConfigError(f"model.backbone {cfg.model.backbone or '(fresh decoder)'}: {exc}") from None
    model(np.ones((1, min(cfg.tokenizer.sequence_length, 8)), np.int32))
    return model


def save_causal_lm_preset(preprocessor, model, run_dir):
    """The run's causal LM (backbone, task, keras-hub preprocessor and tokenizer) as a keras-hub
    preset in `run_dir/preset`, written whole or not at all. A LoRA run's factors are merged into
    the kernels (Keras saves a LoRA layer's kernel so), so its preset is a plain one that loads,
    generates and fine-tunes again like any other; no optimizer state goes in."""
    import tempfile

    from keras_nlp_app.utils import atomic

    causal_lm = model.causal_lm
    backbone = type(causal_lm.backbone).from_config(causal_lm.backbone.get_config())
    with tempfile.TemporaryDirectory() as scratch:
        weights = os.path.join(scratch, "backbone.weights.h5")
        causal_lm.backbone.save_weights(weights)
        backbone.load_weights(weights)
    clean = type(causal_lm)(backbone=backbone, preprocessor=causal_lm.preprocessor_cls(
        tokenizer=preprocessor.tokenizer, sequence_length=preprocessor.sequence_length))
    folder = os.path.join(run_dir, "preset")
    with atomic.atomic_folder(folder) as staging:
        clean.save_to_preset(staging)
    return os.path.abspath(folder)
