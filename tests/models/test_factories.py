import numpy as np
import pytest

from keras_nlp_app.errors import ConfigError
from keras_nlp_app.models import MODELS, build_model


# from-scratch classifiers (backbone_classifier fine-tunes a preset: tests/tasks/test_finetune.py)
@pytest.mark.parametrize("name", sorted(n for n in MODELS
                                        if n.endswith("_classifier") and not n.startswith("backbone")))
@pytest.mark.parametrize("num_classes,width", [(2, 1), (4, 4)])
def test_factories_give_probabilities_of_the_right_shape(name, num_classes, width):
    fitted = {}
    if name == "ngram_classifier":  # its class LMs are fitted from data, not configured
        from keras_nlp_app.models.ngram_classifier import fit_class_models

        rows = [[2 + (i * 7 + j) % 48 for j in range(6)] for i in range(4 * num_classes)]
        fitted["class_models"] = fit_class_models(rows, [i % num_classes for i in range(len(rows))],
                                                  num_classes=num_classes, vocab_size=50, order=2)
    model = build_model(name, vocab_size=50, num_classes=num_classes, sequence_length=12, **fitted)
    ids = np.array([[5, 9, 2, 0, 0], [3, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype="int32")
    out = np.asarray(model(ids))
    assert out.shape == (3, width)
    assert np.all((out >= 0) & (out <= 1))
    if width > 1:
        np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)


def test_lstm_classifier_is_the_classic_sequential_model():
    model = build_model("lstm_classifier", vocab_size=50)
    assert type(model).__name__ == "Sequential"
    assert [type(l).__name__ for l in model.layers] == ["Embedding", "LSTM", "Dropout", "Dense"]
    assert model.get_layer("embedding").output_dim == 64 and model.get_layer("lstm").units == 64


def test_unknown_model_or_parameter_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="valid models: .*lstm_classifier"):
        build_model("gru", vocab_size=5)
    with pytest.raises(ConfigError, match="no parameter 'units'.*lstm_units"):
        build_model("lstm_classifier", vocab_size=5, units=3)


def test_a_switch_takes_only_true_or_false():
    """A string would read as true: `entity_ends: "no"` must not switch the end markers on."""
    with pytest.raises(ConfigError, match="entity_ends must be true or false, not 'no'") as error:
        build_model("relation_bilstm", vocab_size=10, head_marker_id=2, tail_marker_id=4,
                    entity_ends="no")
    assert error.value.key == "model.params.entity_ends"


@pytest.mark.parametrize("name, arguments", [
    ("lstm_classifier", {"vocab_size": 50}),
    ("bilstm_classifier", {"vocab_size": 50}),
    ("bilstm_crf_tagger", {"vocab_size": 50, "char_vocab_size": 20, "num_tags": 5}),
    ("lstm_lm", {"vocab_size": 50}),
    ("lstm_seq2seq", {"source_vocab_size": 50, "target_vocab_size": 50}),
])
def test_every_recurrent_family_takes_a_gru_cell(name, arguments):
    def layer_types(model):
        found = set()
        for layer in model._flatten_layers(include_self=False):
            found.add(type(layer).__name__)
            inner = getattr(layer, "forward_layer", None)
            if inner is not None:
                found.add(type(inner).__name__)
        return found

    gru = build_model(name, cell="gru", **arguments)
    lstm = build_model(name, **arguments)
    if name == "bilstm_crf_tagger":
        inputs = {"words": np.ones((2, 4), "int32"), "chars": np.ones((2, 4, 20), "int32"),
                  "case": np.ones((2, 4), "int32")}
    elif name == "lstm_seq2seq":
        inputs = {"source": np.ones((2, 4), "int32"), "target": np.ones((2, 3), "int32")}
    else:
        inputs = np.ones((2, 4), "int32")
    assert np.asarray(gru(inputs)).shape == np.asarray(lstm(inputs)).shape
    assert "GRU" in layer_types(gru) and "GRU" not in layer_types(lstm)
    assert gru.count_params() < lstm.count_params()  # three gates' weights instead of four
    with pytest.raises(ConfigError, match="cell must be one of lstm, gru"):
        build_model(name, cell="rnn", **arguments)
