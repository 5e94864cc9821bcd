"""Relation extraction: readers and markers, the graph's markers equal Python's, the official
SemEval macro-F1 against a hand count, and a tiny model that learns an easy relation task."""

import json

import numpy as np
import pytest

from keras_nlp_app.data.relations import mark, parse_marked, read_relations
from keras_nlp_app.errors import DataError
from keras_nlp_app.metrics import semeval_report

SEMEVAL = ('1\t"The <e1>fire</e1> was caused by <e2>smoke</e2>."\r\nCause-Effect(e2,e1)\r\n'
           'Comment:\r\n\r\n2\t"A <e1>cup</e1> in a <e2>box</e2>."\r\nContent-Container(e1,e2)\r\n'
           'Comment: fine\r\n\r\n')


def test_semeval_file_gives_texts_spans_and_marked_texts(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(SEMEVAL.encode())
    examples = read_relations(str(path))
    assert examples.labels == ["Cause-Effect(e2,e1)", "Content-Container(e1,e2)"]
    text, hs, he, ts, te = examples.sources[0]
    assert (text[hs:he], text[ts:te]) == ("fire", "smoke") and examples.lines == [1, 5]
    assert examples.texts[0].split() == ["The", "__e1s__", "fire", "__e1e__", "was", "caused",
                                         "by", "__e2s__", "smoke", "__e2e__", "."]


def test_mirrored_pairs_exchange_head_and_tail_and_flip_only_directed_labels(tmp_path):
    from keras_nlp_app.data.relations import with_mirrored_pairs

    path = tmp_path / "train.txt"
    path.write_bytes((SEMEVAL + '3\t"The <e1>cat</e1> saw a <e2>dog</e2>."\nOther\nComment:\n\n')
                     .encode())
    examples = read_relations(str(path))
    both = with_mirrored_pairs(examples)
    assert both.labels == examples.labels + ["Cause-Effect(e1,e2)", "Content-Container(e2,e1)",
                                             "Other"]
    assert both.texts[:3] == examples.texts and both.lines == examples.lines * 2
    assert both.report.examples == 6
    text, hs, he, ts, te = both.sources[3]
    assert (text[hs:he], text[ts:te]) == ("smoke", "fire")
    assert both.texts[3] == mark(text, (hs, he), (ts, te))
    assert both.texts[3].split()[1:4] == ["__e2s__", "fire", "__e2e__"]  # the tail comes first


def test_mirroring_applies_to_training_after_the_holdout(tmp_path):
    from keras_nlp_app.config import load_config
    from keras_nlp_app.tasks import get_task
    from tests.conftest import relation_examples, write_jsonl

    train_file = write_jsonl(tmp_path / "train.jsonl", relation_examples(100, 1))
    overrides = ["data.dataset=null", f"data.train_file={train_file}"]
    task = get_task("relation")
    plain = load_config(["configs/semeval2010.yaml"], overrides)
    mirrored = load_config(["configs/semeval2010.yaml"], overrides + ["data.mirror_pairs=true"])
    train, validation = task.load_splits(plain.data, plain.train.seed)
    train_m, validation_m = task.load_splits(mirrored.data, mirrored.train.seed)
    assert validation_m.texts == validation.texts and len(validation.texts) == 10
    assert train_m.texts[:90] == train.texts and len(train_m.texts) == 180
    assert train_m.sources[90:] == [(text, ts, te, hs, he)
                                    for text, hs, he, ts, te in train.sources]


def test_mirrored_copies_do_not_count_towards_the_vocabulary(tmp_path):
    """Every word of the file occurs once: with `tokenizer.min_count: 2` none may enter the
    vocabulary, mirrored or not."""
    from keras_nlp_app.config import load_config
    from keras_nlp_app.tasks import get_task

    path = tmp_path / "train.txt"
    path.write_bytes(SEMEVAL.encode())
    task = get_task("relation")
    cfg = load_config(["configs/semeval2010.yaml"], [
        "data.dataset=null", f"data.train_file={path}", "data.holdout_fraction=0",
        "data.mirror_pairs=true", "tokenizer.min_count=2"])
    train, _ = task.load_splits(cfg.data, cfg.train.seed)
    assert len(train.texts) == 4 and train.read == 2
    words = task.prepare_assets(cfg, train, str(tmp_path / "assets"))[0].vocabulary
    assert not {"fire", "smoke", "cup", "box"} & set(words)


@pytest.mark.parametrize("sentence, message", [
    ("The fire was caused by <e2>smoke</e2>.", "exactly one <e1>"),
    ("<e1>A <e2>b</e2> c</e1>", "nested"),
    ("</e1>A<e1> <e2>b</e2>", "closes before"),
    ("<e1></e1> and <e2>b</e2>", "non-empty span"),
])
def test_malformed_markers_name_the_file_and_line(tmp_path, sentence, message):
    path = tmp_path / "bad.txt"
    path.write_text(f'7\t"{sentence}"\nOther\nComment:\n\n')
    with pytest.raises(DataError, match=rf"bad.txt:1: .*{message}"):
        read_relations(str(path))


def test_jsonl_spans_are_checked(tmp_path):
    path = tmp_path / "rel.jsonl"
    good = {"text": "smoke from fire", "head": [0, 5], "tail": {"start": 11, "end": 15},
            "label": "Cause-Effect(e2,e1)"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "tail": [3, 8]}) + "\n")
    with pytest.raises(DataError, match=r"rel.jsonl:2: .*overlap"):
        read_relations(str(path))
    path.write_text(json.dumps({**good, "tail": [11, 99]}) + "\n")
    with pytest.raises(DataError, match=r"rel.jsonl:1: .*tail span"):
        read_relations(str(path))
    path.write_text(json.dumps(good) + "\n")
    assert read_relations(str(path)).sources == [("smoke from fire", 0, 5, 11, 15)]


def test_graph_markers_equal_python_markers_for_any_order_and_unicode():
    import tensorflow as tf

    from keras_nlp_app.tasks.relation_graphs import mark_graph

    sources = [("Ünï  cödé ✓ 映画 x", 6, 10, 0, 3), ("ab cd ef", 0, 2, 6, 8), ("x y", 2, 3, 0, 1)]
    columns = [tf.constant([s[i] for s in sources]) for i in range(5)]
    got = [t.decode() for t in mark_graph(*columns).numpy()]
    assert got == [mark(t, (hs, he), (ts, te)) for t, hs, he, ts, te in sources]
    text, head, tail = parse_marked("<e2>Ünï</e2>  c<e1>ödé </e1>✓ 映画 x")
    assert (text, head, tail) == ("Ünï  cödé ✓ 映画 x", (6, 10), (0, 3))


def test_official_score_counts_wrong_directions_against_the_relation():
    labels = ["Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Other", "Message-Topic(e1,e2)"]
    gold = [0, 0, 1, 2, 3, 3]
    pred = [0, 1, 1, 0, 3, 2]
    result = semeval_report(gold, pred, labels)
    # Cause-Effect: exact 2 (examples 0, 2), predicted as the type 4, gold 3 -> P 1/2, R 2/3
    ce = 2 * (2 / 4) * (2 / 3) / (2 / 4 + 2 / 3)
    # Message-Topic: exact 1, predicted 1, gold 2 -> P 1, R 1/2
    mt = 2 * 1 * 0.5 / 1.5
    assert result["macro_f1"] == pytest.approx((ce + mt) / 2)
    assert result["per_relation"]["Cause-Effect"]["wrong_direction"] == 1
    assert "Other" not in result["per_relation"] and result["accuracy"] == pytest.approx(3 / 6)


@pytest.mark.slow  # about 25 s alone (the task contract's relation recipe covers export and serve)
def test_a_tiny_relation_model_learns_the_easy_task_and_serves_spans(tmp_path):
    from keras_nlp_app.config import load_config
    from keras_nlp_app.inference import describe, evaluate, load_predictor
    from keras_nlp_app.tasks.relation import both_directions
    from keras_nlp_app.training.train import train
    from tests.conftest import relation_examples, write_jsonl

    train_file = write_jsonl(tmp_path / "train.jsonl", relation_examples(400, 1))
    dev_file = write_jsonl(tmp_path / "dev.jsonl", relation_examples(80, 2))
    overrides = ["data.dataset=null", f"data.train_file={train_file}",
                 f"data.validation_file={dev_file}", "tokenizer.vocab_size=100",
                 "tokenizer.sequence_length=24",
                 "model.params={embedding_dim: 16, lstm_units: 16, attention_dim: 8, dropout: 0.1,"
                 " embedding_dropout: 0.0, entity_ends: true}", "train.epochs=8", "train.batch_size=16",
                 "train.learning_rate=0.01", "train.verbose=0", "train.early_stopping_patience=0"]
    run_dir = train(load_config(["configs/semeval2010.yaml"], overrides), run_dir=str(tmp_path / "run"))
    target = describe(run_dir)
    assert "Content-Container(e2,e1)" in target.space.labels  # mirrored, never seen in training
    assert both_directions(target.space).labels == target.space.labels
    assert evaluate(run_dir, data=dev_file)["macro_f1"] > 0.9
    records = relation_examples(40, 3)
    outputs = load_predictor(run_dir).predict({
        "text": [r["text"] for r in records],
        **{name: [r[side][i] for r in records] for name, side, i in (
            ("head_start", "head", 0), ("head_end", "head", 1), ("tail_start", "tail", 0),
            ("tail_end", "tail", 1))}})
    predicted = [label.decode() for label in outputs["label"]]
    assert np.mean([p == r["label"] for p, r in zip(predicted, records)]) > 0.9
    assert np.allclose(outputs["probabilities"].sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow  # about 60 s alone: a tagger and a relation model trained, then exported together
def test_the_extraction_export_equals_the_tagger_then_the_relation_model(tmp_path):
    import tensorflow as tf

    from keras_nlp_app.config import load_config
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.inference import load_predictor
    from keras_nlp_app.training.train import train
    from tests.conftest import RELATION_NOUNS, relation_examples, write_jsonl

    def conll(records, path):
        lines = ["-DOCSTART- -X- O O", ""]
        for record in records:
            lines += [f"{w} X X {'I-THING' if w in RELATION_NOUNS else 'O'}"
                      for w in record["text"].split() + ["."]] + [""]
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    (tmp_path / "empty.yaml").write_text("{}\n")
    tagger_run = train(load_config([str(tmp_path / "empty.yaml")], [
        "task=tagging", "data.dataset=null",
        f"data.train_file={conll(relation_examples(300, 1), tmp_path / 'train.conll')}",
        f"data.validation_file={conll(relation_examples(40, 2), tmp_path / 'dev.conll')}",
        "model.name=bilstm_crf_tagger", "model.params={word_dim: 16, lstm_units: 16, char_filters: 8}",
        "tokenizer.sequence_length=16", "train.epochs=6", "train.batch_size=16",
        "train.learning_rate=0.01", "train.monitor=val_f1", "train.verbose=0"]),
        run_dir=str(tmp_path / "tagger"))
    relation_run = train(load_config(["configs/semeval2010.yaml"], [
        "data.dataset=null",
        f"data.train_file={write_jsonl(tmp_path / 'r.jsonl', relation_examples(400, 1))}",
        f"data.validation_file={write_jsonl(tmp_path / 'rd.jsonl', relation_examples(60, 2))}",
        "tokenizer.vocab_size=100", "tokenizer.sequence_length=24",
        "model.params={embedding_dim: 16, lstm_units: 16, attention_dim: 8, dropout: 0.1}",
        "train.epochs=6", "train.batch_size=16", "train.learning_rate=0.01", "train.verbose=0",
        "train.early_stopping_patience=0"]), run_dir=str(tmp_path / "relation"))
    version = export_run(relation_run, str(tmp_path / "export"), companions={"tagger": tagger_run})
    texts = ["the storm caused the damage . a key was in the drawer .", "", "the virus and smoke"]
    got = tf.saved_model.load(version).signatures["extract"](text=tf.constant(texts))
    got = [json.loads(t.decode()) for t in got["triples"].numpy()]

    # the same, one model after the other, through each run's own predictor
    entities = [json.loads(e) for e in load_predictor(tagger_run).predict({"text": texts})["entities"]]
    expected = [[] for _ in texts]
    relations = load_predictor(relation_run)
    for row, (text, found) in enumerate(zip(texts, entities)):
        ends = [i for i, ch in enumerate(text) if ch in ".!?"]
        for i, first in enumerate(found):
            for second in found[i + 1:]:
                if sum(e < first["start"] for e in ends) != sum(e < second["start"] for e in ends):
                    continue
                out = relations.predict({"text": [text], "head_start": [first["start"]],
                                         "head_end": [first["end"]], "tail_start": [second["start"]],
                                         "tail_end": [second["end"]]})
                label = out["label"][0].decode()
                if label == "Other":
                    continue
                head, tail = (second, first) if label.endswith("(e2,e1)") else (first, second)
                expected[row].append({"head": head, "relation": label.split("(")[0], "tail": tail,
                                      "score": round(float(out["probabilities"][0].max()), 4)})
    assert [[{**t, "score": round(t["score"], 4)} for t in row] for row in got] == expected
    assert any(row for row in got)  # the easy sentences do yield triples


@pytest.mark.slow  # about 30 s: a tiny byte-pair preset fine-tuned, exported and checked
def test_a_backbone_relation_model_fine_tunes_a_preset_on_marked_text(tmp_path, capsys):
    """`model.backbone`: the preset's tokenizer cuts the marked text (markers included, here
    into byte-level pieces) and the exported model, given raw text and character spans, equals
    the trained one (the export checks it)."""
    from keras_nlp_app.cli import main
    from tests.conftest import relation_examples, write_jsonl
    from tests.tiny_presets import save_tiny_preset

    train_file = write_jsonl(tmp_path / "train.jsonl", relation_examples(200, 1))
    dev_file = write_jsonl(tmp_path / "dev.jsonl", relation_examples(40, 2))
    settings = {"data.dataset": "null", "data.train_file": train_file,
                "data.validation_file": dev_file, "model.name": "backbone_classifier",
                "model.backbone": save_tiny_preset("bpe", tmp_path / "preset"),
                "model.params": "{}", "tokenizer.sequence_length": 32, "train.epochs": 1,
                "train.batch_size": 16, "train.verbose": 0, "train.early_stopping_patience": 0}
    run = str(tmp_path / "run")
    assert main(["train", "configs/semeval2010.yaml", "--run-dir", run,
                 *sum([["--set", f"{k}={v}"] for k, v in settings.items()], [])]) == 0
    capsys.readouterr()
    assert main(["evaluate", run, "--json"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["macro_f1"] <= 1
    assert main(["export", run, "--output", str(tmp_path / "export")]) == 0


def test_marker_states_find_where_each_markers_whole_piece_sequence_first_begins():
    from keras_nlp_app.models.pooling import MarkerStates

    sequence = np.arange(2 * 9 * 1, dtype="float32").reshape(2, 9, 1)
    ids = np.array([[1, 7, 5, 9, 7, 5, 8, 3, 3],   # head 7 5 8 begins at 4 (not 1: 7 5 9)
                    [1, 3, 3, 0, 0, 0, 0, 0, 0]])  # no head marker (truncated): position 0
    states = MarkerStates([7, 5, 8], [3, 3])(sequence, ids)
    np.testing.assert_array_equal(np.asarray(states), [[4, 7], [9, 10]])
    single = MarkerStates(9, 8)(sequence, ids)  # one reserved id per marker (word vocabularies)
    np.testing.assert_array_equal(np.asarray(single), [[3, 6], [9, 9]])


def test_entity_ends_add_the_bilstm_states_at_the_end_markers():
    """With `entity_ends` the features are the states at e1s, e2s, then e1e, e2e: the forward
    half at an end marker has read its entity, which at the start marker it has not."""
    import keras

    from keras_nlp_app.models import build_model

    markers = dict(head_marker_id=2, head_end_marker_id=3, tail_marker_id=4, tail_end_marker_id=5)
    model = build_model("relation_bilstm", vocab_size=30, num_classes=5, embedding_dim=4,
                        lstm_units=3, entity_ends=True, **markers)
    ids = np.array([[7, 2, 9, 3, 8, 4, 10, 11, 5, 0]], dtype="int32")
    states = keras.Model(model.inputs, model.get_layer("bilstm_0").output)(ids)
    features = keras.Model(model.inputs, model.get_layer("entity_states").output)(ids)
    expected = np.concatenate([np.asarray(states)[0, i] for i in (1, 5, 3, 8)])
    np.testing.assert_allclose(np.asarray(features)[0], expected, atol=1e-6)
    plain = build_model("relation_bilstm", vocab_size=30, num_classes=5, embedding_dim=4,
                        lstm_units=3, **markers)
    assert plain.get_layer("marker_states").output.shape[-1] == 2 * 2 * 3
    assert all(layer.name != "end_marker_states" for layer in plain.layers)
    transformer = build_model("relation_transformer", vocab_size=30, num_classes=5, hidden_dim=8,
                              num_layers=1, num_heads=2, intermediate_dim=16, sequence_length=10,
                              entity_ends=True, **markers)
    assert transformer.get_layer("entity_states").output.shape[-1] == 4 * 8
    assert transformer.predict(ids, verbose=0).shape == (1, 5)


def test_a_presets_marker_pieces_stand_in_its_tokenization_of_marked_text(tmp_path):
    """The pieces the relation task looks for are the ones the preset's tokenizer makes of the
    markers inside a marked sentence; a vocabulary that cannot tell the markers apart (the tiny
    WordPiece and SentencePiece ones lack `_` and digits) is a config error, not a model that
    pools the same position twice."""
    from keras_nlp_app.errors import ConfigError
    from keras_nlp_app.tasks.relation import marker_pieces
    from keras_nlp_app.text.presets import PresetTokenizer, tokenize
    from tests.tiny_presets import save_tiny_preset

    def preset_tokenizer(family):
        return PresetTokenizer.from_preset(save_tiny_preset(family, tmp_path / family)).tokenizer

    for family in ("wordpiece", "sentencepiece"):
        with pytest.raises(ConfigError, match="cannot be told apart; set model.params.pooling"):
            marker_pieces(preset_tokenizer(family))
    tokenizer = preset_tokenizer("bpe")  # byte-level: every character has a piece
    head, tail = marker_pieces(tokenizer)
    assert head != tail and len(head) > 1
    text = mark("a great film and the plot", (2, 7), (21, 25))
    ids = [i + 1 for i in tokenize(tokenizer, [text]).to_list()[0]]

    def first(pieces):
        return next(i for i in range(len(ids)) if ids[i:i + len(pieces)] == pieces)

    after_head = tokenize(tokenizer, [" great"]).to_list()[0][0] + 1
    assert ids[first(head) + len(head)] == after_head  # the head's marker, then the head's word
    assert first(head) < first(tail)


def test_an_ensemble_of_relation_models_gives_each_member_the_markers(tmp_path):
    import keras

    from keras_nlp_app.models import build_model
    from keras_nlp_app.models.pooling import MarkerStates

    model = build_model("ensemble_classifier", vocab_size=50, num_classes=5, sequence_length=16,
                        head_marker_id=2, tail_marker_id=4,
                        members=[{"name": "relation_bilstm", "params": {"embedding_dim": 8,
                                                                        "lstm_units": 8}},
                                 {"name": "relation_transformer",
                                  "params": {"hidden_dim": 8, "num_layers": 1, "num_heads": 2,
                                             "intermediate_dim": 16}}])
    markers = [layer for layer in model._flatten_layers() if isinstance(layer, MarkerStates)]
    assert len(markers) == 2
    assert all(m.get_config()["head_marker_id"] == m.get_config()["head_marker_id"] for m in markers)
    assert {(tuple(np.ravel(m.head_marker_id)), tuple(np.ravel(m.tail_marker_id))) for m in markers} == {((2,), (4,))}
    ids = np.array([[7, 2, 9, 3, 8, 4, 10, 5, 0, 0]], dtype="int32")
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    expected = np.mean([member.predict(ids, verbose=0) for member in members], axis=0)
    assert np.allclose(model.predict(ids, verbose=0), expected, atol=1e-6)


@pytest.mark.parametrize("members, message", [
    ("[{name: lstm_classifier}]", "ensemble member 0 names 'lstm_classifier'"),
    ("[]", "needs model.params.members")])
def test_a_relation_ensemble_takes_relation_models_only(members, message):
    from keras_nlp_app.config import load_config
    from keras_nlp_app.errors import ConfigError
    from keras_nlp_app.tasks import get_task

    cfg = load_config(["configs/semeval2010.yaml"], ["model.name=ensemble_classifier",
                                                     f"model.params={{members: {members}}}"])
    with pytest.raises(ConfigError, match=message):
        get_task("relation").check_config(cfg)
