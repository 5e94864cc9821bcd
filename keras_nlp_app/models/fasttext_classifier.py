"""fastText-style classifier: the average of word and hashed n-gram embeddings (Joulin et al. 2017)."""

import keras

from keras_nlp_app.models.lstm_classifier import classifier_head
from keras_nlp_app.models.pooling import masked_mean


def build_fasttext_classifier(*, vocab_size, num_classes=2, multi_label=False,
                              sequence_length=None, embedding_dim=64, dropout=0.0):
    """Embedding bag: mean of the embeddings of every id (words, then hashed n-grams) → Dense.

    Pair it with `tokenizer.ngrams: 2` and `tokenizer.ngram_buckets` so the preprocessor appends
    hashed bigram ids; `vocab_size` then covers words + buckets. The strongest cheap baseline.

    Args:
        vocab_size: ids are in [0, vocab_size); 0 is padding.
        num_classes: 2 gives one sigmoid unit, more a softmax.
        multi_label: a sigmoid per label instead.
        sequence_length: unused (accepted so every classifier factory takes it).
        embedding_dim: width of the bag's vectors (fastText: 10 to 100).
        dropout: on the averaged vector.
    """
    del sequence_length
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")(token_ids)
    pooled = keras.layers.Dropout(dropout)(masked_mean(x, token_ids))
    return keras.Model(token_ids, classifier_head(num_classes, multi_label)(pooled),
                       name="fasttext_classifier")
