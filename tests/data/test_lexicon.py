"""Word classes (`model.word_classes`): WordNet supersenses with WordNet's morphology, user
lexicons, their errors, and the model table they fill."""

import numpy as np
import pytest

from keras_nlp_app.data.lexicon import LEXNAMES, NO_CLASS, WordNetClasses, vocabulary_classes
from keras_nlp_app.errors import ConfigError, DataError, UserError

LICENCE = "  1 This software and database is being provided to you, the LICENSEE\n"


def _write_wordnet(folder, senses):
    """A WordNet database folder in the real files' layout: `senses` maps (pos, lemma) to the
    lexicographer files of its synsets, most frequent first."""
    folder.mkdir()
    for pos, letter in (("noun", "n"), ("verb", "v")):
        data, index = LICENCE.encode(), []
        for (sense_pos, lemma), lexnames in sorted(senses.items()):
            if sense_pos != pos:
                continue
            offsets = []
            for lexname in lexnames:
                offsets.append(len(data))
                data += (f"{len(data):08d} {LEXNAMES.index(lexname):02d} {letter} 01 {lemma} 0 "
                         f"000 | a gloss\n").encode()
            index.append(f"{lemma} {letter} {len(offsets)} 1 @ {len(offsets)} 0 "
                         + " ".join(f"{o:08d}" for o in offsets) + "  \n")
        (folder / f"data.{pos}").write_bytes(data)
        (folder / f"index.{pos}").write_text(LICENCE + "".join(index))
    (folder / "noun.exc").write_text("mice mouse\n")
    (folder / "verb.exc").write_text("made make\n")
    return str(folder)


SENSES = {("noun", "car"): ["noun.artifact"], ("noun", "mouse"): ["noun.animal", "noun.artifact"],
          ("noun", "box"): ["noun.artifact"], ("noun", "fire"): ["noun.event", "noun.act"],
          ("verb", "fire"): ["verb.contact"], ("verb", "make"): ["verb.creation"],
          ("verb", "cause"): ["verb.creation"], ("noun", "company"): ["noun.group"]}


def test_wordnet_gives_the_first_noun_sense_else_the_first_verb_sense_after_morphology(tmp_path):
    wordnet = WordNetClasses(_write_wordnet(tmp_path / "wn", SENSES))
    assert wordnet.classify("car") == "noun.artifact"
    assert wordnet.classify("Cars") == "noun.artifact"  # case folded, then the -s rule
    assert wordnet.classify("boxes") == "noun.artifact"  # -xes → -x
    assert wordnet.classify("companies") == "noun.group"  # -ies → -y
    assert wordnet.classify("mice") == "noun.animal"  # the exception list, then the first sense
    assert wordnet.classify("fire") == "noun.event"  # a noun sense comes before a verb sense
    assert wordnet.classify("made") == "verb.creation"
    assert wordnet.classify("caused") == "verb.creation"  # -ed → -e
    assert wordnet.classify("the") is None


def test_vocabulary_classes_number_wordnets_noun_and_verb_files(tmp_path):
    names, ids = vocabulary_classes(_write_wordnet(tmp_path / "wn", SENSES),
                                    ["", "[UNK]", "car", "mice", "the", "made"])
    assert names[0] == "noun.Tops" and names[-1] == "verb.weather" and len(names) == 41
    assert ids.dtype == np.int32 and ids[0] == ids[1] == ids[4] == NO_CLASS
    assert [names[i - 1] for i in ids[[2, 3, 5]]] == ["noun.artifact", "noun.animal",
                                                     "verb.creation"]


def test_a_class_file_gives_each_word_its_class_case_folded_when_the_case_differs(tmp_path):
    path = tmp_path / "places.tsv"
    path.write_text("# a gazetteer\nParis\tcity\nperu\tcountry\n\nlima\tcity\n", encoding="utf-8")
    names, ids = vocabulary_classes(str(path), ["[UNK]", "paris", "peru", "lima", "ada"])
    assert names == ["city", "country"]
    assert ids.tolist() == [NO_CLASS, 1, 2, 1, NO_CLASS]


@pytest.mark.parametrize("content, line, message", [
    ("paris\tcity\nlima city\n", 2, "expected a word, a tab and its class"),
    ("paris\tcity\nparis\tcountry\n", 2, "second class"),
    ("paris\t\n", 1, "expected a word, a tab and its class"),
])
def test_a_malformed_class_file_names_the_file_and_line(tmp_path, content, line, message):
    path = tmp_path / "lexicon.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as raised:
        vocabulary_classes(str(path), ["paris"])
    assert raised.value.path == str(path) and raised.value.line == line


def test_missing_or_broken_lexicons_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        vocabulary_classes(str(tmp_path / "nowhere"), ["a"])
    folder = tmp_path / "half"
    folder.mkdir()
    with pytest.raises(UserError, match="is not a WordNet database folder: it lacks index.noun"):
        vocabulary_classes(str(folder), ["a"])
    (folder / "index.noun").write_text(LICENCE)
    with pytest.raises(UserError, match="lacks data.noun"):
        vocabulary_classes(str(folder), ["a"])
    (tmp_path / "latin1.tsv").write_bytes("caf\xe9\tplace\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8") as raised:
        vocabulary_classes(str(tmp_path / "latin1.tsv"), ["a"])
    assert raised.value.line == 1
    many = tmp_path / "many.tsv"
    many.write_text("".join(f"w{i}\tc{i}\n" for i in range(64)))
    with pytest.raises(UserError, match="64 classes; a model holds at most 63"):
        vocabulary_classes(str(many), ["w1"])


def test_the_model_embeds_the_class_its_table_gives_each_token(tmp_path):
    from keras_nlp_app.models import build_model
    from keras_nlp_app.models.word_classes import initialize_word_classes, word_class_layers

    path = tmp_path / "lexicon.tsv"
    path.write_text("fire\tevent\nsmoke\tevent\nbox\tartifact\n")
    vocabulary = ["", "[UNK]", "__e1s__", "__e1e__", "__e2s__", "__e2e__", "fire", "box", "smoke"]
    model = build_model("relation_bilstm", vocab_size=len(vocabulary), head_marker_id=2,
                        tail_marker_id=4, head_end_marker_id=3, tail_end_marker_id=5,
                        num_classes=3, embedding_dim=4, lstm_units=3, attention_dim=2,
                        word_class_dim=5)
    report = initialize_word_classes(model, vocabulary, str(path))
    assert report["classes"] == ["artifact", "event"] and report["coverage"] == pytest.approx(3 / 9, abs=1e-4)
    layer, = word_class_layers(model)
    assert layer.table.numpy().tolist() == [0, 0, 0, 0, 0, 0, 2, 1, 2]
    assert not any(w is layer.table for w in model.trainable_weights)
    vectors = layer.class_vectors.numpy()
    out = layer(np.array([[6, 7, 8, 1, 0]])).numpy()[0]
    assert np.allclose(out, vectors[[2, 1, 2, 0, 0]])
    sentence = np.array([[2, 6, 3, 4, 7, 5]])
    assert model(sentence).shape == (1, 3)
    # padding stays masked beside the class vectors: the backward LSTM never reads it
    padded = np.pad(sentence, ((0, 0), (0, 7)))
    assert np.allclose(model(sentence).numpy(), model(padded).numpy(), atol=1e-6)

    for width in (-1, 2.5, "16x"):
        with pytest.raises(ConfigError, match="word_class_dim must be a whole number"):
            build_model("relation_bilstm", vocab_size=len(vocabulary), head_marker_id=2,
                        tail_marker_id=4, word_class_dim=width)

    plain = build_model("relation_bilstm", vocab_size=len(vocabulary), head_marker_id=2,
                        tail_marker_id=4, num_classes=3, embedding_dim=4, lstm_units=3)
    with pytest.raises(ConfigError, match="relation_bilstm and bilstm_classifier do"):
        initialize_word_classes(plain, vocabulary, str(path))


def test_the_bilstm_classifier_embeds_word_classes_too(tmp_path):
    from keras_nlp_app.models import build_model
    from keras_nlp_app.models.word_classes import initialize_word_classes

    path = tmp_path / "lexicon.tsv"
    path.write_text("good\tpraise\nbad\tblame\n")
    model = build_model("bilstm_classifier", vocab_size=5, embedding_dim=4, lstm_units=3,
                        attention_dim=2, word_class_dim=3)
    assert initialize_word_classes(model, ["", "[UNK]", "good", "bad", "film"],
                                   str(path))["classes"] == ["blame", "praise"]
    sentence = np.array([[4, 2, 3]])
    assert np.allclose(model(sentence).numpy(), model(np.pad(sentence, ((0, 0), (0, 4)))).numpy(),
                       atol=1e-6)
