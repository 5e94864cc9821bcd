"""A BERT encoder with its masked-LM head: keras-hub's own `BertBackbone` and `BertMaskedLM`, so
what pretraining writes is a keras-hub preset, not a look-alike."""

HIDDEN_DIM = 256  # the encoder's default width (BERT-mini)


def build_bert_masked_lm(*, vocabulary_size, sequence_length=128, num_layers=4, num_heads=4,
                         hidden_dim=HIDDEN_DIM, intermediate_dim=1024, dropout=0.1):
    """`keras_hub.models.BertMaskedLM` over a fresh `BertBackbone` (no preprocessor: the
    pipeline packs and masks).

    Args:
        vocabulary_size: the WordPiece vocabulary's size.
        sequence_length: longest window; sizes the position table.
        num_layers, num_heads, hidden_dim, intermediate_dim: encoder shape (BERT-mini by default).
        dropout: inside every block and after the embeddings.
    """
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size, num_layers=num_layers, num_heads=num_heads,
        hidden_dim=hidden_dim, intermediate_dim=intermediate_dim, dropout=dropout,
        max_sequence_length=sequence_length)
    return keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None)
