"""Bidirectional LSTM classifier (functional API) with attention or max+mean pooling."""

import keras

from keras_nlp_app.models.lstm_classifier import classifier_head
from keras_nlp_app.models.pooling import AttentionPooling, masked_max, masked_mean
from keras_nlp_app.models.recurrent import recurrent_layer
from keras_nlp_app.models.word_classes import WordClassEmbedding

POOLINGS = ("attention", "max_mean")


def bilstm_encoder(token_ids, vocab_size, embedding_dim, embedding_dropout, num_layers, cell,
                   units, word_class_dim=0):
    """Masked embedding (beside a `word_class_dim` vector of each word's class, if set) →
    dropout → stacked bidirectional recurrent layers: `[B, T, 2 units]` states of the
    functional input `token_ids`."""
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(token_ids)
    if word_class_dim:
        classes = WordClassEmbedding(vocab_size, word_class_dim, name="word_classes")(token_ids)
        x = keras.layers.Concatenate(name="words_and_classes")([x, classes])
    x = keras.layers.Dropout(embedding_dropout)(x)
    for i in range(num_layers):
        x = keras.layers.Bidirectional(
            recurrent_layer(cell, units, return_sequences=True), name=f"bilstm_{i}")(x)
    return x


def build_bilstm_classifier(*, vocab_size, num_classes=2, multi_label=False, sequence_length=None,
                            embedding_dim=128, lstm_units=64, num_layers=1, pooling="attention",
                            attention_dim=64, dropout=0.3, embedding_dropout=0.2, cell="lstm",
                            word_class_dim=0):
    """Embedding → stacked BiLSTM → pooling over time → Dense.

    Args:
        vocab_size: token ids are in [0, vocab_size); 0 is padding.
        num_classes: 2 gives one sigmoid unit, more a softmax.
        multi_label: a sigmoid per label instead.
        sequence_length: unused (accepted so every classifier factory takes it).
        embedding_dim, lstm_units: widths; each direction has `lstm_units`.
        num_layers: stacked bidirectional layers.
        pooling: attention (learned weights over time, Yang et al. 2016) or max_mean
            (masked max- and mean-pooling concatenated).
        attention_dim: hidden width of the attention scorer.
        dropout: on the pooled features; embedding_dropout: on the embeddings.
        cell: lstm, or gru (bidirectional GRUs).
        word_class_dim: width of a learned vector of each word's class, beside its embedding
            (the classes come from `model.word_classes`); 0: none.
    """
    del sequence_length
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = bilstm_encoder(token_ids, vocab_size, embedding_dim, embedding_dropout, num_layers, cell,
                       lstm_units, word_class_dim)
    if pooling == "attention":
        pooled = AttentionPooling(attention_dim, name="attention_pooling")(x, token_ids)
    else:
        pooled = keras.layers.Concatenate()([masked_max(x, token_ids), masked_mean(x, token_ids)])
    pooled = keras.layers.Dropout(dropout)(pooled)
    return keras.Model(token_ids, classifier_head(num_classes, multi_label)(pooled),
                       name="bilstm_classifier")
