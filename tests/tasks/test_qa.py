"""Extractive QA: the SQuAD reader's checks, the official metric, windows and offsets in graph,
and (slow) a reader that learns an easy task and exports."""

import json

import numpy as np
import pytest

from keras_nlp_app import metrics
from keras_nlp_app.data import splits, squad
from keras_nlp_app.errors import DataError
from tests.conftest import squad_like


def _write(path, document):
    path.write_text(json.dumps(document, ensure_ascii=False))
    return str(path)


def test_squad_json_reads_questions_answers_and_articles(tmp_path):
    path = _write(tmp_path / "train.json", squad_like(3, 0, paragraphs=2))
    examples = squad.read_squad(path)
    assert len(examples.texts) == 12 and examples.groups[0] == "Article_0"
    question, context = examples.texts[0]
    (text, start), = examples.labels[0]
    assert question.startswith("Where was") and context[start:start + len(text)] == text
    assert examples.lines[0] == "0-0-0"


def test_squad_jsonl_and_v2_unanswerable_questions(tmp_path):
    rows = [{"question": "Who?", "context": "Ada came.", "answers": [{"text": "Ada", "answer_start": 0}]},
            {"question": "Why?", "context": "Ada came.", "answers": [], "id": "q2"},
            {"question": "How?", "context": "Ada came.", "is_impossible": True, "answers": []}]
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    examples = squad.read_squad(str(path))
    assert examples.labels == [[("Ada", 0)], [], []]


def test_hugging_face_columnar_answers_are_read_and_checked(tmp_path):
    rows = [{"question": "Who?", "context": "Ada met Ada.",
             "answers": {"text": ["Ada", "Ada"], "answer_start": [0, 8]}},
            {"question": "Why?", "context": "Ada came.", "answers": {"text": [], "answer_start": []}}]
    path = tmp_path / "hf.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert squad.read_squad(str(path)).labels == [[("Ada", 0), ("Ada", 8)], []]
    for answers, message in [({"text": ["Ada"], "answer_start": []}, "equally long"),
                             ({"text": ["met"], "answer_start": [0]}, "not the context's text")]:
        path.write_text(json.dumps({"question": "Q?", "context": "Ada met Ada.",
                                    "answers": answers}) + "\n")
        with pytest.raises(DataError, match=rf"hf\.jsonl:1: .*{message}"):
            squad.read_squad(str(path))


def test_an_answer_not_at_its_offset_names_the_file_and_question(tmp_path):
    document = squad_like(1, 0, paragraphs=1)
    document["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 1
    path = _write(tmp_path / "bad.json", document)
    with pytest.raises(DataError, match=r"bad\.json.*question '0-0-0'.*not the context's text"):
        squad.read_squad(path)
    skipped = squad.read_squad(path, on_bad_line="skip")
    assert skipped.report.skipped == 1 and len(skipped.texts) == 1


@pytest.mark.parametrize("content, message", [
    ('{"data": [', r"not valid JSON.*line 1"),
    ('{"version": "1.1"}', "expected an object with a \"data\" list"),
    ('{"data": [{"title": "A", "paragraphs": []}]}', "has no paragraphs"),
    ('{"data": [{"title": "A", "paragraphs": [{"context": " ", "qas": [{"id": "x", '
     '"question": "Q?", "answers": [{"text": "a", "answer_start": 0}]}]}]}]}', "empty context"),
])
def test_malformed_squad_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        squad.read_squad(str(path))


def test_holdout_splits_by_article_never_by_question(tmp_path):
    examples = squad.read_squad(_write(tmp_path / "t.json", squad_like(20, 1)))
    train, held = splits.holdout(examples, 0.2, seed=3)
    assert set(train.groups).isdisjoint(held.groups) and len(set(held.groups)) == 4
    assert len(train.texts) + len(held.texts) == len(examples.texts)


def test_the_metric_follows_the_official_normalization():
    assert metrics.normalize_answer("The  Cat, sat!\n") == "cat sat"
    assert metrics.squad_scores("the Eiffel tower.", ["Eiffel Tower"]) == (1.0, 1.0)
    exact, f1 = metrics.squad_scores("cat sat", ["a cat sat down", "dog"])
    assert exact == 0.0 and f1 == pytest.approx(0.8)
    assert metrics.squad_scores("an", ["the"]) == (1.0, 1.0)  # both normalize to nothing
    report = metrics.squad_report(["Paris", "", "x"], [["Paris"], [], ["y"]])
    assert report["exact_match"] == pytest.approx(200 / 3) and report["NoAns_total"] == 1


def _preprocessor(**options):
    from keras_nlp_app.text.qa import QAPreprocessor

    return QAPreprocessor(["[PAD]", "[UNK]", "<null>", "the"], ["[PAD]", "[UNK]", "e"], **options)


def test_an_answer_crossing_a_window_edge_is_found_whole_in_the_next_window():
    import tensorflow as tf

    preprocessor = _preprocessor(context_length=4, doc_stride=2, question_length=4)
    context = "one two three four five six"  # windows: 0-3, 2-5
    start = context.index("four")
    end = context.index("five") + 4
    features, windows = preprocessor.windows(tf.constant(["q?"]), tf.constant([context]))
    targets = preprocessor.targets(windows, tf.ragged.constant([[start]], tf.int64),
                                   tf.ragged.constant([[end]], tf.int64)).numpy()
    assert windows["start"].numpy().tolist() == [0, 2]
    assert targets[0, :, 0].tolist() == [1, 0, 0, 0, 0]  # cut by the edge: the null position
    assert targets[1, :, 0].tolist() == [0, 0, 1, 0, 0]  # "four": token 1 of window 2, +1
    assert targets[1, :, 1].tolist() == [0, 0, 0, 1, 0]


@pytest.mark.parametrize("context, answer", [
    ("Zoë  moved to  Köln in\t1999 ,  as 🎉 planned.", "Köln in\t1999"),
    ("  São Paulo's mayor, Ólafur, spoke.", "Ólafur"),
])
def test_decoded_spans_round_trip_to_the_characters_of_the_context(context, answer):
    import tensorflow as tf

    from keras_nlp_app.text.preprocessors import split_with_offsets

    preprocessor = _preprocessor(context_length=3, doc_stride=1)
    start = context.index(answer)
    tokens = split_with_offsets(tf.constant([context]))[1].numpy()[0].tolist()
    first = tokens.index(start)
    last = first + len(split_with_offsets(tf.constant([answer]))[0][0]) - 1
    features, windows = preprocessor.windows(tf.constant(["q"]), tf.constant([context]))
    begin = windows["start"].numpy()
    logits = []
    for b in begin:  # high scores at the answer's tokens in every window that holds them
        row = [[0.0, 0.0] for _ in range(features["context_words"].shape[1])]
        if b <= first and last < b + 3:
            row[first - b + 1][0] = row[last - b + 1][1] = 10.0
        logits.append(row)
    decoded = preprocessor.decode(tf.constant(logits), windows, tf.constant([context]),
                                  max_answer_length=5, n_best=3)
    got = decoded["answers"].numpy()[0, 0].decode("utf-8")
    s, e = int(decoded["starts"][0, 0]), int(decoded["ends"][0, 0])
    assert got == answer and context[s:e] == answer
    spans = list(zip(decoded["starts"].numpy()[0], decoded["ends"].numpy()[0]))
    assert len(set(spans)) == len(spans)  # a span found in two windows is listed once


def test_an_empty_context_has_no_answer():
    import tensorflow as tf

    preprocessor = _preprocessor(context_length=4, doc_stride=2)
    features, windows = preprocessor.windows(tf.constant(["Who?"]), tf.constant([""]))
    logits = tf.zeros([1, features["context_words"].shape[1], 2])
    decoded = preprocessor.decode(logits, windows, tf.constant([""]), max_answer_length=3, n_best=2)
    assert decoded["answers"].numpy()[0].tolist() == [b"", b""]
    assert decoded["starts"].numpy()[0].tolist() == [-1, -1]


def test_every_occurrence_of_the_answer_can_be_a_valid_span(tmp_path):
    from keras_nlp_app.tasks.qa_graphs import answer_spans

    rows = [{"question": "Which?", "context": "red, blue, red", "answers": [{"text": "red", "answer_start": 0}]}]
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps(rows[0]) + "\n")
    examples = squad.read_squad(str(path))
    assert answer_spans(examples, "given") == ([[0]], [[3]])
    assert answer_spans(examples, "all") == ([[0, 11]], [[3, 14]])


def _train_qa(tmp_path, articles, overrides):
    """A qa run folder trained with `overrides` on `articles` easy articles, a quarter held out."""
    from keras_nlp_app.cli import main

    train = _write(tmp_path / "train.json", squad_like(articles, 0))
    config = tmp_path / "qa.yaml"
    config.write_text("task: qa\nname: qa_test\n")
    run = str(tmp_path / "run")
    overrides = ["data.dataset=null", f"data.train_file={train}", "data.holdout_fraction=0.25",
                 "train.batch_size=16", "train.monitor=val_f1", "train.verbose=0", *overrides]
    assert main(["train", str(config), "--run-dir", run, *sum([["--set", o] for o in overrides], [])]) == 0
    return run


def test_a_reader_starts_from_word_vectors_in_its_word_embedding_only(tmp_path):
    """`model.word_vectors` fills the word embedding, not the (here larger) character one."""
    from types import SimpleNamespace

    from keras_nlp_app.models import build_model
    from keras_nlp_app.training.train import _start_from_word_vectors

    preprocessor = _preprocessor(context_length=6, doc_stride=3, question_length=4)
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("the -1 -1 -1 -1\ncat 0.5 0.5 0.5 0.5\n")
    model = build_model("bidaf_reader", vocab_size=len(preprocessor.word_vocabulary),
                        char_vocab_size=40, max_word_length=16, hidden_dim=4, word_dim=4,
                        char_filters=4)
    cfg = SimpleNamespace(task="qa", model=SimpleNamespace(word_vectors=str(vectors),
                                                       freeze_word_vectors=False,
                                                       trainable_words=0))
    recorded = _start_from_word_vectors(cfg, preprocessor, model)
    assert recorded["embeddings"] == 1 and 0 < recorded["coverage"] < 1
    table = model.get_layer("word_embedding").embeddings.numpy()
    assert table[preprocessor.word_vocabulary.index("the")].tolist() == [-1.0] * 4


@pytest.mark.slow
def test_a_bidaf_reader_learns_an_easy_task_and_exports(tmp_path, capsys):
    from keras_nlp_app.cli import main

    run = _train_qa(tmp_path, 32, [
        "tokenizer.sequence_length=16", "tokenizer.doc_stride=8", "tokenizer.question_length=8",
        "model.name=bidaf_reader", "model.params={hidden_dim: 16, word_dim: 16, char_filters: 16}",
        "train.epochs=10", "train.learning_rate=0.005"])
    capsys.readouterr()
    assert main(["evaluate", run, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["f1"] > 80
    assert main(["export", run, "--output", str(tmp_path / "export")]) == 0  # checks the export


def test_lexical_match_marks_tokens_found_in_the_other_side_as_written_and_normalized():
    """Exact: the same characters (case counts, unknown words too); normalized: the same known
    word id; padding and the null token never match."""
    import tensorflow as tf

    from keras_nlp_app.models.reader_model import LexicalMatch
    from keras_nlp_app.text.qa import QAPreprocessor

    preprocessor = QAPreprocessor(["[PAD]", "[UNK]", "<null>", "the", "cat"],
                                  ["[PAD]", "[UNK]", *"Tacehstvwyz"], context_length=8,
                                  doc_stride=8, question_length=4)
    features, _ = preprocessor.windows(tf.constant(["The zyzzyva cat?"]),
                                       tf.constant(["the cat saw a zyzzyva"]))
    match = LexicalMatch()
    context = match([features["context_words"], features["context_chars"],
                     features["question_words"], features["question_chars"]]).numpy()[0]
    question = match([features["question_words"], features["question_chars"],
                      features["context_words"], features["context_chars"]]).numpy()[0]
    # context: [null] the cat saw a zyzzyva; question: The zyzzyva cat ?
    assert context[:, 0].tolist() == [0, 0, 1, 0, 0, 1]
    assert context[:, 1].tolist() == [0, 1, 1, 0, 0, 1]
    assert question[:, 0].tolist() == [0, 1, 1, 0]
    assert question[:, 1].tolist() == [1, 1, 1, 0]


@pytest.mark.parametrize("name, params", [
    ("bidaf_reader", {"hidden_dim": 4, "word_dim": 4, "char_filters": 4}),
    ("transformer_reader", {"hidden_dim": 8, "num_layers": 1, "num_heads": 2,
                            "intermediate_dim": 8, "word_dim": 4, "char_filters": 4}),
])
def test_readers_score_every_context_position_and_mask_padding(name, params):
    import tensorflow as tf

    from keras_nlp_app.models import build_model

    preprocessor = _preprocessor(context_length=6, doc_stride=3, question_length=4)
    features, _ = preprocessor.windows(tf.constant(["who is the one?", "x"]),
                                       tf.constant(["the cat sat on the mat and ate", "a b"]))
    model = build_model(name, vocab_size=4, char_vocab_size=3, max_word_length=16, **params)
    logits = model(features).numpy()
    width = features["context_words"].shape[1]
    assert logits.shape == (features["context_words"].shape[0], width, 2)
    padding = features["context_words"].numpy() == 0
    assert (logits[padding] <= -1e8).all() and (logits[~padding] > -1e8).all()


def test_the_fused_bidaf_reader_equals_the_one_with_keras_bilstms():
    """Same weights, same scores: every BiLSTM of the reader sees right-padded rows (the null
    token first, padding last), where the fused layer is Keras' `Bidirectional(LSTM)`."""
    import tensorflow as tf

    from keras_nlp_app.models import build_model

    preprocessor = _preprocessor(context_length=6, doc_stride=3, question_length=4)
    features, _ = preprocessor.windows(tf.constant(["who is the one?", "x"]),
                                       tf.constant(["the cat sat on the mat and ate", "a b"]))
    params = dict(vocab_size=4, char_vocab_size=3, max_word_length=16, hidden_dim=3, word_dim=4,
                  char_filters=4)
    fused = build_model("bidaf_reader", fused_lstm=True, **params)
    plain = build_model("bidaf_reader", fused_lstm=False, **params)
    for layer in plain.layers:
        source = fused.get_layer(layer.name) if layer.weights else None
        if isinstance(layer, type(plain.get_layer("encoder"))):
            for cell, direction in ((layer.forward_layer.cell, "forward"),
                                    (layer.backward_layer.cell, "backward")):
                for target, weight in zip(cell.weights, source.directions[direction]):
                    target.assign(weight)
        elif source is not None:
            layer.set_weights(source.get_weights())
    np.testing.assert_allclose(fused(features).numpy(), plain(features).numpy(), atol=1e-4)


@pytest.mark.slow
def test_a_backbone_reader_fine_tunes_a_tiny_preset_and_exports(tmp_path, capsys):
    from keras_nlp_app.cli import main
    from tests.tiny_presets import save_tiny_preset

    preset = save_tiny_preset("wordpiece", tmp_path / "preset")
    run = _train_qa(tmp_path, 8, [
        "tokenizer.sequence_length=6", "tokenizer.doc_stride=3", "tokenizer.question_length=3",
        "model.name=backbone_reader", f"model.backbone={preset}", "train.epochs=1"])
    assert main(["export", run, "--output", str(tmp_path / "export")]) == 0  # checks the export
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "export"), "--question", "Where was Ada born?",
                 "--context", "Ada was born in Lima in 1950 .", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)["predictions"][0]
    assert record["answer"] == "Ada was born in Lima in 1950 ."[record["start"]:record["end"]]


def test_the_no_answer_threshold_is_tuned_for_f1():
    from keras_nlp_app.tasks.qa_graphs import abstain, tune_threshold

    texts, scores = ["Paris", "Rome", "Lima"], [5.0, 1.0, 4.0]
    nulls = [1.0, 4.0, 3.0]  # the second question is best left unanswered
    gold = [["Paris"], [], ["Lima"]]
    threshold = tune_threshold(texts, scores, nulls, gold, metrics.squad_report)
    assert abstain(texts, scores, nulls, threshold) == ["Paris", "", "Lima"]
    assert abstain(texts, scores, nulls, None) == texts


@pytest.mark.slow
def test_a_reader_trained_with_unanswerable_questions_abstains(tmp_path, capsys):
    from keras_nlp_app.cli import main

    document = squad_like(24, 0)
    for article in document["data"]:
        for paragraph in article["paragraphs"]:
            paragraph["qas"].append({"id": paragraph["qas"][0]["id"] + "-x",
                                     "question": "Who was born on the moon?", "answers": [],
                                     "is_impossible": True})
    (tmp_path / "v2.json").write_text(json.dumps(document))
    run = _train_qa(tmp_path, 1, [
        f"data.train_file={tmp_path / 'v2.json'}", "tokenizer.sequence_length=16",
        "tokenizer.doc_stride=8", "tokenizer.question_length=8", "model.name=bidaf_reader",
        "model.params={hidden_dim: 16, word_dim: 16, char_filters: 16}", "train.epochs=10",
        "train.learning_rate=0.005"])
    capsys.readouterr()
    assert main(["evaluate", run, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["NoAns_total"] > 0 and report["NoAns_f1"] > 80 and report["HasAns_f1"] > 30
    assert main(["export", run, "--output", str(tmp_path / "export")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "export"), "--question", "Who was born on the moon?",
                 "--context", "it was a day . Ada was born in Lima in 1950 .", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"][0]["start"] == -1


def test_a_run_from_before_lexical_match_or_fused_lstms_restores_without_them(tmp_path):
    """The run's assets say whether its reader has the lexical-match features and fused
    BiLSTMs, so a run trained before they existed (no such keys) rebuilds the model its weights
    belong to."""
    from keras_nlp_app.config import load_config
    from keras_nlp_app.models.recurrent import FusedBidirectionalLSTM
    from keras_nlp_app.tasks import get_task

    task = get_task("qa")
    config = tmp_path / "qa.yaml"
    config.write_text("task: qa\nname: qa_test\n")
    cfg = load_config([str(config)], ["model.name=bidaf_reader",
                                      "model.params={hidden_dim: 4, word_dim: 4, char_filters: 4}"])
    vocabularies = {"words": ["[PAD]", "[UNK]", "<null>", "the"], "chars": ["[PAD]", "[UNK]", "e"]}
    new = {"lexical_match": True, "fused_lstm": True}
    for name, extra, expected in (("old", {}, False), ("new", new, True)):
        assets = tmp_path / name
        assets.mkdir()
        (assets / "qa.json").write_text(json.dumps({**vocabularies, **extra}))
        reader = task.load_tokenizer(str(assets))
        model = task.build_model(cfg, task.build_preprocessor(cfg, reader), None)
        assert any(layer.name == "lexical_match" for layer in model.layers) == expected
        fused = [isinstance(model.get_layer(name), FusedBidirectionalLSTM)
                 for name in ("encoder", "modelling_0", "end_encoder")]
        assert fused == [expected] * 3


def test_a_new_run_records_what_its_reader_was_built_with():
    from keras_nlp_app.tasks.qa import _build_settings

    assert _build_settings("bidaf_reader", {}) == {"lexical_match": True, "fused_lstm": True}
    assert _build_settings("bidaf_reader", {"fused_lstm": False})["fused_lstm"] is False
    assert _build_settings("transformer_reader", {}) == {"lexical_match": True}
    assert _build_settings("backbone_reader", {}) == {}
