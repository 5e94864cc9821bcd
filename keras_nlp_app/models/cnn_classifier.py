"""Kim (2014)-style convolutional text classifier (functional API)."""

import keras

from keras_nlp_app.models.lstm_classifier import classifier_head
from keras_nlp_app.models.pooling import masked_max


def build_cnn_classifier(*, vocab_size, num_classes=2, multi_label=False, sequence_length=None,
                         embedding_dim=128, filter_sizes=(3, 4, 5), num_filters=100, dropout=0.5,
                         embedding_dropout=0.0):
    """Embedding → parallel Conv1D of several widths → max-over-time pooling → dropout → Dense.

    Args:
        vocab_size: token ids are in [0, vocab_size); 0 is padding.
        num_classes: 2 gives one sigmoid unit, more a softmax.
        multi_label: a sigmoid per label instead.
        sequence_length: unused (accepted so every classifier factory takes it).
        embedding_dim: width of the (randomly initialized) word vectors.
        filter_sizes: convolution widths in tokens (Kim: 3, 4, 5).
        num_filters: feature maps per width (Kim: 100).
        dropout: on the pooled features (Kim: 0.5); embedding_dropout: on the embeddings.
    """
    del sequence_length
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")(token_ids)
    x = keras.layers.Dropout(embedding_dropout)(x)
    # "same" padding keeps texts shorter than the widest filter valid; the max ignores padding.
    features = [
        masked_max(keras.layers.Conv1D(num_filters, width, padding="same", activation="relu",
                                       name=f"conv_{width}")(x), token_ids)
        for width in filter_sizes
    ]
    pooled = keras.layers.Concatenate()(features) if len(features) > 1 else features[0]
    pooled = keras.layers.Dropout(dropout)(pooled)
    return keras.Model(token_ids, classifier_head(num_classes, multi_label)(pooled),
                       name="cnn_classifier")
