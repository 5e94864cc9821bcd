"""A classifier over any keras-hub backbone (BERT, RoBERTa, ALBERT, DeBERTa, GPT-2, Gemma, ...),
fine-tuned in full, frozen (features only) or with LoRA."""

import keras

from keras_nlp_app.config import LORA_MODES
from keras_nlp_app.models.lstm_classifier import classifier_head
from keras_nlp_app.models.pooling import MarkerStates, masked_mean

FINETUNE_MODES = ("full", "frozen", *LORA_MODES)
# lora_all: every projection of attention and feed-forward blocks (keras-hub's layer names in the
# BERT, RoBERTa, GPT-2 and Gemma families), beside the query and value that `lora` adapts
ALL_PROJECTIONS = ("key", "key_dense", "attention_output", "feedforward_intermediate_dense",
                   "feedforward_output_dense", "ffw_gating", "ffw_gating_2", "ffw_linear")
POOLINGS = ("first", "mean", "last", "markers")


def unshifted_ids(shifted_ids, pad_token_id):
    """The tokenizer's ids of shifted ids (0 = padding, token id + 1 otherwise:
    `text.presets`), the padding id where they are 0."""
    return keras.ops.where(keras.ops.greater(shifted_ids, 0), shifted_ids - 1, pad_token_id)


def backbone_inputs(backbone, shifted_ids, pad_token_id):
    """The backbone's input dict from shifted ids `[B, T]` (0 = padding, token id + 1 otherwise:
    `text.presets.PresetPreprocessor`), so one padding id works for every tokenizer family."""
    padding_mask = keras.ops.greater(shifted_ids, 0)
    token_ids = unshifted_ids(shifted_ids, pad_token_id)
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask,
              "segment_ids": keras.ops.zeros_like(token_ids)}
    return {name: inputs[name] for name in backbone.input}


def sequence_output(outputs):
    """`[B, T, D]` from a backbone's output (a tensor, or a dict with "sequence_output")."""
    return outputs["sequence_output"] if isinstance(outputs, dict) else outputs


def pool(sequence, shifted_ids, pooling):
    """`[B, D]`: the first token's vector ([CLS], <s>), the mean over real tokens, or the last
    real token's vector (decoders such as GPT-2 and Gemma)."""
    if pooling == "first":
        return sequence[:, 0, :]
    if pooling == "mean":
        return masked_mean(sequence, shifted_ids)
    last = keras.ops.maximum(keras.ops.sum(keras.ops.cast(shifted_ids > 0, "int32"), axis=1) - 1, 0)
    return keras.ops.take_along_axis(sequence, last[:, None, None], axis=1)[:, 0, :]


def apply_finetune(backbone, finetune, lora_rank):
    """Sets what trains: everything (full), nothing of the backbone (frozen), or only LoRA
    factors of rank `lora_rank` (keras-hub's `enable_lora`): in the attention query/value
    projections (lora) or in every attention and feed-forward projection (lora_all)."""
    if finetune not in FINETUNE_MODES:
        raise ValueError(f"model.finetune must be one of {', '.join(FINETUNE_MODES)}, got {finetune!r}")
    if finetune == "frozen":
        backbone.trainable = False
    elif finetune in LORA_MODES:
        if lora_rank < 1:
            raise ValueError(f"model.lora_rank must be at least 1, got {lora_rank}")
        targets = None if finetune == "lora" else [*backbone.default_lora_layer_names(),
                                                    *ALL_PROJECTIONS]
        backbone.enable_lora(lora_rank, target_layer_names=targets)


def build_backbone_classifier(*, backbone, pad_token_id, num_classes=2, multi_label=False,
                              finetune="full", lora_rank=8, pooling="mean", dropout=0.1,
                              marker_pieces=None):
    """Backbone → pooled vector → dropout → Dense head, over shifted ids `[B, T]`.

    Args:
        backbone: a `keras_hub.models.Backbone` (pretrained weights loaded, or not when a run is
            restored from its checkpoint).
        pad_token_id: the tokenizer's padding id, fed where the shifted ids are 0.
        num_classes, multi_label: the label space (a sigmoid for 2 classes, softmax otherwise).
        finetune: full | frozen | lora.
        lora_rank: LoRA's rank with finetune lora.
        pooling: first | mean | last, or markers: the states where the two entity-start
            markers begin, side by side (relations; Baldini Soares et al. 2019).
        dropout: before the head.
        marker_pieces: with pooling markers, the shifted ids of the head-start and the
            tail-start marker's pieces (set by the relation task).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    if pooling == "markers" and not marker_pieces:
        raise ValueError("pooling markers pools at entity markers: relation tasks only")
    apply_finetune(backbone, finetune, lora_rank)
    for layer in backbone.layers:
        if layer.name == "pooled_dense":  # BERT's pooler (next-sentence prediction) goes unused
            layer.trainable = False
    shifted_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    sequence = sequence_output(backbone(backbone_inputs(backbone, shifted_ids, pad_token_id)))
    if pooling == "markers":
        pooled = MarkerStates(*marker_pieces, name="marker_states")(sequence, shifted_ids)
    else:
        pooled = pool(sequence, shifted_ids, pooling)
    pooled = keras.layers.Dropout(dropout)(pooled)
    return keras.Model(shifted_ids, classifier_head(num_classes, multi_label)(pooled),
                       name="backbone_classifier")


def layer_groups(model):
    """The model's trainable variables in groups from the bottom up: the backbone's embeddings
    (and whatever is outside its transformer layers), each transformer layer, then the head.
    Layer-wise learning-rate decay and gradual unfreezing act on these groups."""
    import keras_hub

    backbones = [layer for layer in model.layers if isinstance(layer, keras_hub.models.Backbone)]
    if not backbones:
        return None
    backbone = backbones[0]
    blocks = [[v for v in layer.trainable_variables]
              for layer in getattr(backbone, "transformer_layers", [])]
    in_blocks = {id(v) for block in blocks for v in block}
    in_backbone = {id(v) for v in backbone.trainable_variables}
    embeddings = [v for v in backbone.trainable_variables if id(v) not in in_blocks]
    head = [v for v in model.trainable_variables if id(v) not in in_backbone]
    return [group for group in [embeddings, *blocks, head] if group]
