"""The classic Embedding → LSTM → Dense text classifier as a Keras `Sequential` model, or with
ULMFiT's concat pooling (last state, max and mean over time) as a functional one."""

import keras

from keras_nlp_app.models.pooling import masked_max, masked_mean
from keras_nlp_app.models.recurrent import recurrent_layer

POOLINGS = ("last", "concat")


def classifier_head(num_classes, multi_label=False, name="probabilities"):
    """One sigmoid unit for two classes, a sigmoid per label for multi-label, softmax otherwise.

    Float32 even under mixed precision, so probabilities and the loss stay accurate.
    """
    if multi_label:
        return keras.layers.Dense(num_classes, activation="sigmoid", dtype="float32", name=name)
    if num_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name=name)
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=name)


def build_lstm_classifier(*, vocab_size, num_classes=2, multi_label=False, sequence_length=None,
                          embedding_dim=64, lstm_units=64, dropout=0.0, recurrent_dropout=0.0,
                          cell="lstm", pooling="last"):
    """Embedding → LSTM → Dense, padding id 0 masked.

    Args:
        vocab_size: token ids are in [0, vocab_size); 0 is padding.
        num_classes: 2 gives one sigmoid unit `[B, 1]`, more a softmax `[B, num_classes]`.
        multi_label: a sigmoid per label `[B, num_classes]` instead.
        sequence_length: unused by this model (accepted so every classifier factory takes it).
        embedding_dim, lstm_units: layer widths.
        dropout: dropout on the LSTM output before the classifier.
        recurrent_dropout: dropout on the LSTM's recurrent state.
        cell: lstm, or gru (a GRU layer of `lstm_units`).
        pooling: last (the LSTM's last state: the `Sequential` model) or concat (the last state,
            the max and the mean of the states over the real tokens, concatenated: ULMFiT's
            classifier, which sees the whole text and not only what a left-to-right language
            model's last state keeps for the next word).

    Example:
        model = build_lstm_classifier(vocab_size=20000)
        model(np.array([[5, 9, 2, 0]]))  # shape [1, 1]
    """
    del sequence_length
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    if pooling == "concat":
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(token_ids)
        states, last, *_ = recurrent_layer(cell, lstm_units, recurrent_dropout=recurrent_dropout,
                                           return_sequences=True, return_state=True, name=cell)(x)
        pooled = keras.layers.Concatenate(name="concat_pooling")(
            [last, masked_max(states, token_ids), masked_mean(states, token_ids)])
        pooled = keras.layers.Dropout(dropout, name="dropout")(pooled)
        return keras.Model(token_ids, classifier_head(num_classes, multi_label)(pooled),
                           name="lstm_classifier")
    return keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32", name="token_ids"),
            keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding"),
            recurrent_layer(cell, lstm_units, recurrent_dropout=recurrent_dropout, name=cell),
            keras.layers.Dropout(dropout, name="dropout"),
            classifier_head(num_classes, multi_label),
        ],
        name="lstm_classifier",
    )
