"""`model.init_from`: start a model from another trained run's weights (Dai & Le 2015, ULMFiT).

A word-level language model pretrained on unlabeled text (`task: lm`, `lstm_lm`) carries what
it learned to a classifier or tagger with the same recurrent widths: its word embedding's rows
are matched to the new run's vocabulary word by word, and its recurrent layers give their
weights, in order, to the new model's recurrent layers of the same cell and shape. Everything
else (heads, words the pretrained vocabulary lacks) starts at random.
"""

import os

import numpy as np

from keras_nlp_app import runs
from keras_nlp_app.errors import ConfigError
from keras_nlp_app.tasks.base import word_vocabulary

SETTING = "model.init_from"


def recurrent_layers(model):
    """The unidirectional Keras LSTM and GRU layers of `model`, in the order they were built
    (a bidirectional wrapper's layers excluded: a left-to-right LM has no right-to-left weights)."""
    import keras

    from keras_nlp_app.models.recurrent import outer_recurrent_layers

    return [layer for layer in outer_recurrent_layers(model)
            if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU))]


def _copy_recurrent(source_model, model, source):
    """Copies each of the source's recurrent layers into the target's at the same position; the
    names of the target layers set."""
    pairs = list(zip(recurrent_layers(source_model), recurrent_layers(model)))
    for origin, layer in pairs:
        if type(origin) is not type(layer):
            raise ConfigError(f"{SETTING}: {source}'s layer {origin.name} is a "
                              f"{type(origin).__name__}, this model's {layer.name} a "
                              f"{type(layer).__name__}; use the same cell")
        shapes = [tuple(w.shape) for w in origin.weights]
        if shapes != [tuple(w.shape) for w in layer.weights]:
            raise ConfigError(f"{SETTING}: {source}'s {origin.name} has {origin.units} units "
                              f"over inputs of {shapes[0][0]}, this model's {layer.name} "
                              f"{layer.units} over {layer.weights[0].shape[0]}; give the model "
                              f"the same widths")
        layer.set_weights(origin.get_weights())
    return [layer.name for _, layer in pairs]


def start_from_run(cfg, preprocessor, model):
    """Writes the run `cfg.model.init_from`'s word embedding rows and recurrent layers into
    `model` (None without the setting).

    Returns:
        {"run", "coverage": the fraction of this vocabulary the source knew, "recurrent_layers":
        the names of the layers set}.
    Raises:
        UserError for a folder that is not a trained run; ConfigError when nothing of it fits.
    """
    source = cfg.model.init_from
    if not source:
        return None
    if cfg.model.word_vectors:
        raise ConfigError(f"{SETTING} and model.word_vectors both start the word embedding; "
                          f"set one of them")
    from keras_nlp_app.data.word_vectors import set_word_rows, word_embeddings

    origin = runs.restore_run(source)
    vocabulary, source_vocabulary = word_vocabulary(preprocessor), word_vocabulary(origin.preprocessor)
    report = {"run": os.path.abspath(source), "coverage": 0.0}
    source_tables = word_embeddings(origin.model, len(source_vocabulary or ()))
    if vocabulary and source_vocabulary and source_tables:
        rows = {word: index for index, word in enumerate(source_vocabulary)}
        pairs = [(index, rows[word]) for index, word in enumerate(vocabulary)
                 if index and word in rows]  # index 0 is padding
        found = np.asarray([index for index, _ in pairs], np.int64)
        table = source_tables[0].embeddings.numpy()
        vectors = table[[row for _, row in pairs]].reshape(-1, table.shape[1])
        report["coverage"] = set_word_rows(model, vocabulary, found, vectors, setting=SETTING,
                                           source=source)["coverage"]
    report["recurrent_layers"] = _copy_recurrent(origin.model, model, source)
    if not report["coverage"] and not report["recurrent_layers"]:
        raise ConfigError(f"{SETTING}: nothing of {source} fits model {model.name}: no word "
                          f"embedding over a shared word vocabulary and no recurrent layer")
    return report
