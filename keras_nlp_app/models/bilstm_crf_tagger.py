"""BiLSTM-CRF sequence tagger (Lample et al. 2016; Ma & Hovy 2016) in the functional API."""

import keras

from keras_nlp_app.models.recurrent import bidirectional_layer
from keras_nlp_app.models.tagger_model import TaggerModel, tag_head, token_features, token_inputs


def build_bilstm_crf_tagger(*, vocab_size, char_vocab_size, num_tags, num_cases=16,
                            max_word_length=20, word_dim=100, char_dim=30, char_filters=50,
                            char_kernel=3, case_dim=8, lstm_units=200, lstm_layers=1,
                            dropout=0.5, word_dropout=0.05, crf=True, cell="lstm",
                            fused_lstm=True):
    """Word embedding + character CNN + casing → BiLSTM layers → Dense → CRF (or softmax).

    Args:
        vocab_size, char_vocab_size: word and character ids (0 padding, 1 unknown).
        num_tags: size of the tag set.
        num_cases: rows of the casing table (the preprocessor's classes use ids below 8).
        max_word_length: from the preprocessor.
        word_dim, char_dim, char_filters, char_kernel, case_dim: feature sizes.
        lstm_units: per direction; lstm_layers stacked BiLSTMs.
        dropout: on the features and between layers; word_dropout: rate of unknown-word
            replacement while training.
        crf: a CRF output layer (else independent softmax per token).
        cell: lstm, or gru (bidirectional GRUs).
        fused_lstm: LSTMs as `recurrent.FusedBidirectionalLSTM` (one C++ op per direction);
            false: Keras' `Bidirectional(LSTM)`, the same function (which is faster depends
            on the CPU and the shapes; docs/RESULTS.md).
    """
    inputs = token_inputs(max_word_length)
    x = token_features(inputs, vocab_size=vocab_size, char_vocab_size=char_vocab_size,
                       num_cases=num_cases, word_dim=word_dim, char_dim=char_dim,
                       char_filters=char_filters, char_kernel=char_kernel, case_dim=case_dim,
                       word_dropout=word_dropout, dropout=dropout)
    mask = keras.ops.not_equal(inputs["words"], 0)
    for i in range(lstm_layers):
        x = bidirectional_layer(cell, lstm_units, name=f"bilstm_{i}", fused=fused_lstm)(x, mask=mask)
        x = keras.layers.Dropout(dropout)(x)
    return TaggerModel(inputs, tag_head(x, num_tags, crf),
                       name="bilstm_crf_tagger" if crf else "bilstm_tagger")
