"""Sequence tagging: CoNLL and entity-JSONL readers with clear errors, a tiny BiLSTM-CRF learned,
the export's entities slicing the input exactly, the CLI."""

import json
import os
import random
import subprocess
import sys

import pytest

from keras_nlp_app.config import load_config
from keras_nlp_app.data import readers
from keras_nlp_app.errors import DataError

PEOPLE = [["Ada", "Lovelace"], ["Alan", "Turing"], ["Grace"], ["Zoë", "Müller"], ["Linus"]]
PLACES = [["Paris"], ["New", "York"], ["Köln"], ["London"], ["São", "Paulo"]]
ORGS = [["Siemens"], ["Acme", "Corp"], ["IBM"], ["Red", "Cross"]]
VERBS = ["visited", "left", "joined", "met", "praised"]


def write_conll(path, count, seed):
    """Sentences `PERSON verb ORG in PLACE .` in IOB1, as CoNLL-2003 writes them."""
    rng = random.Random(seed)
    lines = ["-DOCSTART- -X- O O", ""]
    for _ in range(count):
        tokens = ([(w, "I-PER") for w in rng.choice(PEOPLE)] + [(rng.choice(VERBS), "O")]
                  + [(w, "I-ORG") for w in rng.choice(ORGS)] + [("in", "O")]
                  + [(w, "I-LOC") for w in rng.choice(PLACES)] + [(".", "O")])
        lines += [f"{w} NNP I-NP {t}" for w, t in tokens] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_conll_files_read_sentences_and_skip_docstart(tmp_path):
    found = readers.read_conll(write_conll(tmp_path / "a.txt", 3, 0))
    assert len(found.texts) == 3 and found.lines[0] == 3
    assert all(len(t) == len(l) for t, l in zip(found.texts, found.labels))
    assert found.labels[0][0] == "I-PER"


@pytest.mark.parametrize("line, message", [
    ("Paris", "expected 'TOKEN ... TAG' columns"),
    ("Paris NNP I-NP LOC", "is not O or B-/I-/E-/S- followed by a type"),
    ("Paris NNP", "2 columns where the sentence's lines have 4"),
])
def test_malformed_conll_lines_name_the_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.txt"
    path.write_text(f"EU NNP I-NP I-ORG\nrejects VBZ I-VP O\n{line}\n\nok X X O\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        readers.read_conll(str(path))
    assert f"{path}:3:" in str(error.value) and message in str(error.value)
    skipped = readers.read_conll(str(path), on_bad_line="skip")
    assert skipped.texts == [["ok"]] and skipped.report.skipped == 1


def test_entity_jsonl_aligns_spans_to_tokens_and_refuses_misaligned_ones(tmp_path):
    from keras_nlp_app.config import DataConfig
    from keras_nlp_app.tasks import get_task

    read_sentences = get_task("tagging").read_file

    path = tmp_path / "ents.jsonl"
    rows = [{"text": "Zoë lives in São Paulo!", "entities": [
        {"start": 0, "end": 3, "type": "PER"}, [13, 22, "LOC"]]}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    found = read_sentences(str(path), DataConfig(dataset=None))
    assert found.texts == [["Zoë", "lives", "in", "São", "Paulo", "!"]]
    assert found.labels == [["B-PER", "O", "O", "B-LOC", "I-LOC", "O"]]
    path.write_text(json.dumps({"text": "Zoë lives", "entities": [[0, 2, "PER"]]}) + "\n",
                    encoding="utf-8")
    with pytest.raises(DataError, match=r"ents.jsonl:1: .*token boundaries"):
        read_sentences(str(path), DataConfig(dataset=None))
    path.write_text(json.dumps({"text": "Zoë", "entities": [[0, 9, "PER"]]}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"ents.jsonl:1: .*outside the text"):
        read_sentences(str(path), DataConfig(dataset=None))


@pytest.fixture(scope="module")
def tagger_run(tmp_path_factory):
    """A tiny BiLSTM-CRF trained on the synthetic entity task (one fit)."""
    from keras_nlp_app.training.train import train

    folder = tmp_path_factory.mktemp("tagging")
    train_file = write_conll(folder / "train.txt", 500, 1)
    valid_file = write_conll(folder / "valid.txt", 60, 2)
    cfg = load_config([], [
        "task=tagging", "data.dataset=null", f"data.train_file={train_file}",
        f"data.validation_file={valid_file}", "model.name=bilstm_crf_tagger",
        "model.params={word_dim: 32, lstm_units: 32, char_filters: 16}",
        "tokenizer.sequence_length=32", "train.epochs=3", "train.batch_size=16",
        "train.learning_rate=0.003", "train.monitor=val_f1", "train.verbose=0"])
    return train(cfg, str(folder / "run")), valid_file


def test_a_bilstm_crf_learns_the_entities(tagger_run):
    run, _ = tagger_run
    with open(os.path.join(run, "metrics.json")) as f:
        result = json.load(f)
    assert result["f1"] > 0.95 and set(result["per_type"]) == {"PER", "LOC", "ORG"}
    with open(os.path.join(run, "assets", "tagger.json")) as f:
        assert json.load(f)["tags"][:5] == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]  # BIOES by default


@pytest.mark.slow  # over 20 s on 2 cores
def test_the_export_returns_entities_whose_offsets_slice_the_input(tagger_run, tmp_path):
    from keras_nlp_app.export.saved_model import export_run

    run, _ = tagger_run
    exported = export_run(run, str(tmp_path / "ner"))
    texts = ["Zoë Müller joined Acme Corp in São Paulo.", "", "🙂 Alan Turing met IBM in Köln ."]
    script = f"""
import json, sys
import tensorflow as tf, tensorflow_text
m = tf.saved_model.load({exported!r})
out = m.signatures["serving_default"](text=tf.constant({texts!r}))
assert not any(name.startswith(("keras_nlp_app", "keras_hub")) for name in sys.modules)
print(json.dumps({{"entities": [json.loads(e) for e in out["entities"].numpy()],
                  "tokens": out["tokens"].numpy().tolist(), "starts": out["start_offsets"].numpy().tolist(),
                  "ends": out["end_offsets"].numpy().tolist()}}, default=lambda b: b.decode()))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for text, found in zip(texts, out["entities"]):
        for entity in found:
            assert text[entity["start"]:entity["end"]] == entity["text"]
    assert [(e["type"], e["text"]) for e in out["entities"][0]] == [
        ("PER", "Zoë Müller"), ("ORG", "Acme Corp"), ("LOC", "São Paulo")]
    assert out["entities"][1] == []
    assert {"Alan Turing", "IBM", "Köln"} <= {e["text"] for e in out["entities"][2]}
    for text, tokens, starts, ends in zip(texts, out["tokens"], out["starts"], out["ends"]):
        for token, start, end in zip(tokens, starts, ends):
            if token:
                assert text[start:end] == token


def test_knlp_predict_and_evaluate(tagger_run, capsys):
    from keras_nlp_app.cli import main

    run, valid_file = tagger_run
    assert main(["predict", run, "Grace visited Siemens in London.", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["predictions"][0]["entities"]
    assert [(e["type"], e["text"], e["start"]) for e in found] == [
        ("PER", "Grace", 0), ("ORG", "Siemens", 14), ("LOC", "London", 25)]
    assert main(["evaluate", run, "--data", valid_file, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"precision", "recall", "f1", "per_type"} <= set(report) and report["examples"] == 60


def test_an_entity_type_unseen_in_training_names_its_line(tagger_run, tmp_path):
    run, _ = tagger_run
    path = tmp_path / "new.txt"
    path.write_text("Paris NNP I-NP I-LOC\n\nEuro NNP I-NP I-MONEY\n", encoding="utf-8")
    cfg_path = os.path.join(run, "config.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "keras_nlp_app", "train", cfg_path, "--set",
         f"data.validation_file={path}", "--run-dir", str(tmp_path / "again")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 2, done.stderr[-1500:]
    assert f"{path}:3: entity type 'MONEY' (tag 'I-MONEY') is not one the model knows" in done.stderr


@pytest.mark.slow  # over 20 s on 2 cores
def test_a_transformer_tagger_over_subword_pieces_learns_the_entities(tmp_path):
    """WordPiece pieces with first-piece labelling, and a softmax head instead of the CRF."""
    from keras_nlp_app.runs import restore_run
    from keras_nlp_app.tasks.tagging_graphs import predict_tags
    from keras_nlp_app.training.train import train

    train_file = write_conll(tmp_path / "train.txt", 400, 3)
    valid_file = write_conll(tmp_path / "valid.txt", 40, 4)
    cfg = load_config([], [
        "task=tagging", "data.dataset=null", f"data.train_file={train_file}",
        f"data.validation_file={valid_file}", "model.name=transformer_tagger",
        "tokenizer.kind=wordpiece", "tokenizer.subword_vocab_size=120",
        "model.params={hidden_dim: 32, num_layers: 1, num_heads: 2, intermediate_dim: 64, "
        "word_dim: 16, char_filters: 16, crf: false, dropout: 0.0}",
        "tokenizer.sequence_length=32", "train.epochs=3", "train.batch_size=16",
        "train.learning_rate=0.003", "train.monitor=val_f1", "train.verbose=0"])
    run = train(cfg, str(tmp_path / "run"))
    with open(os.path.join(run, "metrics.json")) as f:
        assert json.load(f)["f1"] > 0.9
    restored = restore_run(run)
    assert restored.model.crf is None and restored.preprocessor.subword_vocabulary
    sentence = ["Alan", "Turing", "left", "IBM", "in", "Paris", "."]
    assert predict_tags(restored.model, restored.preprocessor, [sentence]) == [
        ["B-PER", "E-PER", "O", "S-ORG", "O", "S-LOC", "O"]]


def test_knlp_explain_attributes_each_entity_tag_to_its_words(tagger_run, capsys):
    """Each entity token's tag is explained; its own word carries the most of its score, and
    the attributions add up (integrated gradients over the word embeddings)."""
    from keras_nlp_app.cli import main

    run, _ = tagger_run
    assert main(["explain", run, "Alan Turing visited IBM in London .", "--json",
                 "--output", os.path.join(run, "why.html")]) == 0
    [explanation] = json.loads(capsys.readouterr().out)["explanations"]
    assert explanation["tokens"] == ["Alan", "Turing", "visited", "IBM", "in", "London", "."]
    rows = dict(zip(explanation["classes"], explanation["attributions"]))
    assert set(rows) == {"Alan → B-PER", "Turing → E-PER", "IBM → S-ORG", "London → S-LOC"}
    for name, row in rows.items():
        word = name.split(" → ")[0]
        assert explanation["tokens"][row.index(max(row))] in (word, "Alan", "Turing"), (name, row)
    for row, score, baseline in zip(explanation["attributions"], explanation["scores"],
                                    explanation["baseline_scores"]):
        assert abs(sum(row) - (score - baseline)) < 0.02 * max(1.0, abs(score - baseline))


def test_the_epoch_end_explanations_read_token_list_examples(tagger_run, tmp_path):
    """A tagger's validation examples are token lists; the TensorBoard explanations explain the
    text they spell (a list was once read as a [1, n] string tensor and failed on CoNLL)."""
    from types import SimpleNamespace

    from keras_nlp_app.inspection.explain import explanation_callbacks
    from keras_nlp_app.runs import restore_run

    run = restore_run(tagger_run[0])
    examples = SimpleNamespace(texts=[["CRICKET", "-", "LEICESTERSHIRE", "TAKE", "OVER", "."],
                                      ["Alan", "Turing", "visited", "IBM", "."]])
    [callback] = explanation_callbacks(run.cfg, run.preprocessor, run.model, run.space, examples,
                                       str(tmp_path))
    assert callback.texts == ["CRICKET - LEICESTERSHIRE TAKE OVER .", "Alan Turing visited IBM ."]
    callback.on_epoch_end(0)
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path))


def test_length_buckets_give_the_same_loss_as_padding_to_the_longest(tagger_run):
    """Sentences padded to a bucket's length (ids 0, tags -1) score as padded to the longest."""
    import numpy as np

    from keras_nlp_app import runs
    from keras_nlp_app.tasks.tagging_graphs import sentence_dataset

    run_dir, valid_file = tagger_run
    run = runs.restore_run(run_dir)
    examples = readers.read_conll(valid_file)
    sentences = examples.texts[:24]
    targets = [[0] * len(s) for s in sentences]
    common = dict(batch_size=24, training=False, seed=0, window=0)
    [(features, tags)] = list(sentence_dataset(run.preprocessor, sentences, targets, **common))
    [(wide, wide_tags)] = list(sentence_dataset(run.preprocessor, sentences, targets,
                                                length_buckets=1, **common))
    assert wide["words"].shape[1] % 8 == 0 and wide["words"].shape[1] >= features["words"].shape[1]
    assert wide["chars"].shape[1] == wide_tags.shape[1] == wide["words"].shape[1]
    loss = run.model.compute_loss(features, tags, run.model(features, training=False))
    wide_loss = run.model.compute_loss(wide, wide_tags, run.model(wide, training=False))
    np.testing.assert_allclose(float(wide_loss), float(loss), rtol=1e-5)
