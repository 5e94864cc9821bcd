"""A tagger over any keras-hub backbone: each word is labelled at its first sub-token."""

import keras

from keras_nlp_app.models.backbone_classifier import (
    apply_finetune,
    backbone_inputs,
    sequence_output,
)
from keras_nlp_app.models.tagger_model import TaggerModel, tag_head, token_features, token_inputs


def build_backbone_tagger(*, backbone, pad_token_id, vocab_size, char_vocab_size, num_tags,
                          num_cases=16, max_word_length=20, finetune="full", lora_rank=8,
                          word_features=False, word_dim=50, char_dim=30, char_filters=50,
                          char_kernel=3, case_dim=8, word_dropout=0.05, feature_dropout=0.3,
                          dropout=0.1, crf=True):
    """Backbone over the text's pieces → each word's first piece → (word features) → Dense →
    CRF (or softmax).

    Args:
        backbone: a `keras_hub.models.Backbone`; pad_token_id: its tokenizer's padding id.
        finetune, lora_rank: what trains (`backbone_classifier.apply_finetune`).
        word_features: also join the word, character and casing features of the from-scratch
            taggers to each word's vector (useful when the backbone's vocabulary is cased
            differently from the data).
        dropout: on each word's vector before the head.
        Other arguments as `build_bilstm_crf_tagger`.
    """
    apply_finetune(backbone, finetune, lora_rank)
    for layer in backbone.layers:
        if layer.name == "pooled_dense":  # BERT's sentence pooler goes unused
            layer.trainable = False
    inputs = token_inputs(max_word_length)
    inputs["pieces"] = keras.Input(shape=(None,), dtype="int32", name="pieces")
    inputs["first"] = keras.Input(shape=(None,), dtype="int32", name="first")
    sequence = sequence_output(backbone(backbone_inputs(backbone, inputs["pieces"], pad_token_id)))
    x = keras.ops.take_along_axis(sequence, inputs["first"][..., None], axis=1)
    if word_features:
        features = token_features(inputs, vocab_size=vocab_size, char_vocab_size=char_vocab_size,
                                  num_cases=num_cases, word_dim=word_dim, char_dim=char_dim,
                                  char_filters=char_filters, char_kernel=char_kernel,
                                  case_dim=case_dim, word_dropout=word_dropout,
                                  dropout=feature_dropout)
        x = keras.layers.Concatenate(name="first_piece_and_word")([x, features])
    x = keras.layers.Dropout(dropout)(x)
    return TaggerModel(inputs, tag_head(x, num_tags, crf),
                       name="backbone_crf_tagger" if crf else "backbone_tagger")
