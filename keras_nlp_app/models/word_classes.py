"""A learned vector for each token's word class (WordNet supersense, or a user lexicon's label:
`data/lexicon.py`), concatenated with the word embedding.

The vocabulary → class table is a fixed weight of the model, filled once from the lexicon when
training starts (`initialize_word_classes`, `model.word_classes`), so checkpoints and the
exported SavedModel carry it and no lexicon is needed after training."""

import os

import keras
import numpy as np

from keras_nlp_app.data.lexicon import MAX_WORD_CLASSES, NO_CLASS, vocabulary_classes
from keras_nlp_app.errors import ConfigError


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class WordClassEmbedding(keras.layers.Layer):
    """`[B, T]` token ids → `[B, T, dim]` vectors of their word classes (class 0: none)."""

    def __init__(self, vocab_size, dim, **kwargs):
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"word_class_dim must be a whole number of at least 1 (0: no word "
                             f"classes), got {dim!r}")
        super().__init__(**kwargs)
        self.vocab_size, self.dim = vocab_size, dim

    def build(self, input_shape):
        self.table = self.add_weight(name="word_class_table", shape=(self.vocab_size,),
                                     dtype="int32", initializer="zeros", trainable=False)
        self.class_vectors = self.add_weight(name="class_vectors",
                                             shape=(MAX_WORD_CLASSES + 1, self.dim),
                                             initializer=keras.initializers.RandomUniform(-0.05, 0.05))

    def call(self, token_ids):
        classes = keras.ops.take(self.table, keras.ops.cast(token_ids, "int32"))
        return keras.ops.take(self.class_vectors, classes, axis=0)

    def compute_mask(self, token_ids, mask=None):
        """Padding (id 0) masked, as the word embedding masks it: Keras' `Concatenate` keeps a
        position that any input leaves unmasked, so without this the padding would reach the
        recurrent layers."""
        return keras.ops.not_equal(token_ids, 0)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "dim": self.dim}


def word_class_layers(model):
    return [layer for layer in model._flatten_layers() if isinstance(layer, WordClassEmbedding)]


def initialize_word_classes(model, vocabulary, path):
    """Fills every `WordClassEmbedding` table of `model` with the classes `path` gives the
    vocabulary's words.

    Returns:
        {"path", "classes": the class names (id i + 1 is name i), "coverage": the fraction of
        the vocabulary with a class}.
    Raises:
        ConfigError when the model has no word-class embedding or its table has another size.
    """
    layers = word_class_layers(model)
    if not layers:
        raise ConfigError(f"model.word_classes: model {model.name} embeds no word classes; "
                          f"relation_bilstm and bilstm_classifier do, with "
                          f"model.params.word_class_dim (e.g. 16)", key="model.word_classes")
    names, ids = vocabulary_classes(path, vocabulary)
    for layer in layers:
        if layer.vocab_size < len(ids):
            raise ConfigError(f"model.word_classes: the model's class table has "
                              f"{layer.vocab_size} rows for a vocabulary of {len(ids)}")
        table = np.full(layer.vocab_size, NO_CLASS, np.int32)
        table[:len(ids)] = ids
        layer.table.assign(table)
    return {"path": os.path.abspath(path), "classes": names,
            "coverage": round(float(np.mean(ids != NO_CLASS)), 4) if len(ids) else 0.0}
