"""Transformer encoder tagger from keras-hub blocks, with a CRF or a softmax head."""

import keras

from keras_nlp_app.models.tagger_model import TaggerModel, tag_head, token_features, token_inputs


def build_transformer_tagger(*, vocab_size, char_vocab_size, num_tags, num_cases=16,
                             max_word_length=20, max_length=256, word_dim=100, char_dim=30,
                             char_filters=50, char_kernel=3, case_dim=8, hidden_dim=256,
                             num_layers=4, num_heads=4, intermediate_dim=512, dropout=0.1,
                             feature_dropout=0.3, word_dropout=0.05, crf=True,
                             subword_vocab_size=0):
    """Token features (as the BiLSTM-CRF) → projection + learned positions → pre-norm keras-hub
    `TransformerEncoder` blocks → Dense → CRF (or softmax).

    With `subword_vocab_size`, the encoder runs over WordPiece pieces instead (embedding +
    positions, `2 * max_length` of them), and each word is represented by its first piece's
    output (first-subtoken labelling) joined with its word, character and casing features.

    Args:
        max_length: longest sentence in tokens (sizes the position table).
        hidden_dim, num_layers, num_heads, intermediate_dim, dropout: encoder shape.
        feature_dropout: on the token features.
        subword_vocab_size: WordPiece vocabulary size; 0 encodes word features directly.
        Other arguments as `build_bilstm_crf_tagger`.
    """
    import keras_hub

    inputs = token_inputs(max_word_length)
    features = token_features(inputs, vocab_size=vocab_size, char_vocab_size=char_vocab_size,
                              num_cases=num_cases, word_dim=word_dim, char_dim=char_dim,
                              char_filters=char_filters, char_kernel=char_kernel,
                              case_dim=case_dim, word_dropout=word_dropout,
                              dropout=feature_dropout)
    if subword_vocab_size:
        inputs["pieces"] = keras.Input(shape=(None,), dtype="int32", name="pieces")
        inputs["first"] = keras.Input(shape=(None,), dtype="int32", name="first")
        x = keras_hub.layers.TokenAndPositionEmbedding(
            subword_vocab_size, 2 * max_length, hidden_dim, name="piece_embedding")(inputs["pieces"])
        mask = keras.ops.not_equal(inputs["pieces"], 0)
    else:
        x = keras.layers.Dense(hidden_dim, name="projection")(features)
        x = x + keras_hub.layers.PositionEmbedding(max_length, name="positions")(x)
        mask = keras.ops.not_equal(inputs["words"], 0)
    for i in range(num_layers):
        x = keras_hub.layers.TransformerEncoder(
            intermediate_dim=intermediate_dim, num_heads=num_heads, dropout=dropout,
            normalize_first=True, name=f"encoder_{i}")(x, padding_mask=mask)
    x = keras.layers.LayerNormalization(name="final_norm")(x)
    if subword_vocab_size:
        first_pieces = keras.ops.take_along_axis(x, inputs["first"][..., None], axis=1)
        x = keras.layers.Concatenate(name="word_and_first_piece")([first_pieces, features])
    return TaggerModel(inputs, tag_head(x, num_tags, crf),
                       name="transformer_crf_tagger" if crf else "transformer_tagger")
