"""Bidirectional LSTM classifier (functional API) with max- and mean-pooling over time."""

import keras

from keras_nlp_app.models.lstm_classifier import classifier_head
from keras_nlp_app.models.pooling import masked_max, masked_mean


def build_bilstm_classifier(*, vocab_size, num_classes=2, sequence_length=None, embedding_dim=128,
                            lstm_units=64, num_layers=1, dropout=0.2):
    """Embedding → stacked BiLSTM → [masked max-pool ; masked mean-pool] → Dense.

    Args:
        vocab_size: token ids are in [0, vocab_size); 0 is padding.
        num_classes: 2 gives one sigmoid unit, more a softmax.
        sequence_length: unused (accepted so every classifier factory takes it).
        embedding_dim, lstm_units: widths; each direction has `lstm_units`.
        num_layers: stacked bidirectional layers.
        dropout: on the embeddings and the pooled features.
    """
    del sequence_length
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(token_ids)
    x = keras.layers.Dropout(dropout)(x)
    for i in range(num_layers):
        x = keras.layers.Bidirectional(
            keras.layers.LSTM(lstm_units, return_sequences=True), name=f"bilstm_{i}")(x)
    pooled = keras.layers.Concatenate()([masked_max(x, token_ids), masked_mean(x, token_ids)])
    pooled = keras.layers.Dropout(dropout)(pooled)
    return keras.Model(token_ids, classifier_head(num_classes)(pooled), name="bilstm_classifier")
