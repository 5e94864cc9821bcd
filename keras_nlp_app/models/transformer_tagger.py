"""Transformer encoder tagger from keras-hub blocks, with a CRF or a softmax head."""

import keras

from keras_nlp_app.models.tagger_model import TaggerModel, tag_head, token_features, token_inputs


def build_transformer_tagger(*, vocab_size, char_vocab_size, num_tags, num_cases=8,
                             max_word_length=20, max_length=256, word_dim=100, char_dim=30,
                             char_filters=50, char_kernel=3, case_dim=8, hidden_dim=256,
                             num_layers=4, num_heads=4, intermediate_dim=512, dropout=0.1,
                             feature_dropout=0.3, word_dropout=0.05, crf=True):
    """Token features (as the BiLSTM-CRF) → projection + learned positions → pre-norm keras-hub
    `TransformerEncoder` blocks → Dense → CRF (or softmax).

    Args:
        max_length: longest sentence in tokens (sizes the position table).
        hidden_dim, num_layers, num_heads, intermediate_dim, dropout: encoder shape.
        feature_dropout: on the token features. Other arguments as `build_bilstm_crf_tagger`.
    """
    import keras_hub

    inputs = token_inputs(max_word_length)
    x = token_features(inputs, vocab_size=vocab_size, char_vocab_size=char_vocab_size,
                       num_cases=num_cases, word_dim=word_dim, char_dim=char_dim,
                       char_filters=char_filters, char_kernel=char_kernel, case_dim=case_dim,
                       word_dropout=word_dropout, dropout=feature_dropout)
    x = keras.layers.Dense(hidden_dim, name="projection")(x)
    x = x + keras_hub.layers.PositionEmbedding(max_length, name="positions")(x)
    mask = keras.ops.not_equal(inputs["words"], 0)
    for i in range(num_layers):
        x = keras_hub.layers.TransformerEncoder(
            intermediate_dim=intermediate_dim, num_heads=num_heads, dropout=dropout,
            normalize_first=True, name=f"encoder_{i}")(x, padding_mask=mask)
    x = keras.layers.LayerNormalization(name="final_norm")(x)
    return TaggerModel(inputs, tag_head(x, num_tags, crf),
                       name="transformer_crf_tagger" if crf else "transformer_tagger")
