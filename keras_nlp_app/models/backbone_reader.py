"""An extractive QA reader over any keras-hub encoder: [start] window [end] question [end]
through the backbone, each window token scored at its first piece (the null token at the start
token)."""

import keras

from keras_nlp_app.models.backbone_classifier import (
    apply_finetune,
    backbone_inputs,
    sequence_output,
)
from keras_nlp_app.models.reader_model import ReaderModel, reader_inputs, span_logits


def build_backbone_reader(*, backbone, pad_token_id, vocab_size, char_vocab_size,
                          max_word_length=16, finetune="full", lora_rank=8, dropout=0.1):
    """Backbone over the joined pieces (segment ids 0 for the window, 1 for the question) → each
    window token's first piece → Dense → start and end scores.

    Args:
        backbone: a `keras_hub.models.Backbone`; pad_token_id: its tokenizer's padding id.
        vocab_size, char_vocab_size, max_word_length: the word features' sizes (the inputs a
            reader takes; this one reads only the pieces and the context words' padding).
        finetune, lora_rank: what trains (`backbone_classifier.apply_finetune`).
        dropout: on each token's vector before the head.
    """
    del vocab_size, char_vocab_size  # word ids only mark padding here
    apply_finetune(backbone, finetune, lora_rank)
    for layer in backbone.layers:
        if layer.name == "pooled_dense":  # BERT's sentence pooler goes unused
            layer.trainable = False
    inputs = reader_inputs(max_word_length)
    for name in ("pieces", "segments", "first"):
        inputs[name] = keras.Input(shape=(None,), dtype="int32", name=name)
    feed = backbone_inputs(backbone, inputs["pieces"], pad_token_id)
    if "segment_ids" in feed:
        feed["segment_ids"] = inputs["segments"]
    sequence = sequence_output(backbone(feed))
    x = keras.ops.take_along_axis(sequence, inputs["first"][..., None], axis=1)
    x = keras.layers.Dropout(dropout)(x)
    return ReaderModel(inputs, span_logits(x, inputs["context_words"]), name="backbone_reader")
