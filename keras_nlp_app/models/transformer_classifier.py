"""Transformer encoder classifier built from keras-hub blocks (functional API)."""

import keras

from keras_nlp_app.models.lstm_classifier import classifier_head
from keras_nlp_app.models.pooling import masked_mean


def transformer_encoder(token_ids, vocab_size, sequence_length, hidden_dim, num_layers, num_heads,
                        intermediate_dim, dropout):
    """Token + position embedding → pre-norm keras-hub encoder blocks (padding masked) → final
    LayerNorm: `[B, T, hidden_dim]` states of the functional input `token_ids`."""
    import keras_hub

    padding_mask = keras.ops.not_equal(token_ids, 0)
    x = keras_hub.layers.TokenAndPositionEmbedding(
        vocabulary_size=vocab_size, sequence_length=sequence_length, embedding_dim=hidden_dim,
        name="embedding")(token_ids)
    for i in range(num_layers):
        x = keras_hub.layers.TransformerEncoder(
            intermediate_dim=intermediate_dim, num_heads=num_heads, dropout=dropout,
            normalize_first=True, name=f"encoder_{i}")(x, padding_mask=padding_mask)
    return keras.layers.LayerNormalization(name="final_norm")(x)


def build_transformer_classifier(*, vocab_size, num_classes=2, multi_label=False,
                                 sequence_length=128, hidden_dim=128,
                                 num_layers=2, num_heads=4, intermediate_dim=256, dropout=0.1):
    """Token + position embedding → Transformer encoder blocks → masked mean pool → Dense.

    Args:
        vocab_size: token ids are in [0, vocab_size); 0 is padding (masked in attention).
        num_classes: 2 gives one sigmoid unit, more a softmax.
        multi_label: a sigmoid per label instead.
        sequence_length: longest input; sizes the learned position table.
        hidden_dim, num_layers, num_heads, intermediate_dim: encoder shape.
        dropout: inside every block.
    """
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = transformer_encoder(token_ids, vocab_size, sequence_length, hidden_dim, num_layers,
                            num_heads, intermediate_dim, dropout)
    pooled = masked_mean(x, token_ids)
    pooled = keras.layers.Dropout(dropout)(pooled)
    return keras.Model(token_ids, classifier_head(num_classes, multi_label)(pooled), name="transformer_classifier")
