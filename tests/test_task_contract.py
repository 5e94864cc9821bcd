"""The task contract, run over every registered task (keras-hub's `run_task_test` is the model):
a tiny train → `knlp evaluate` readable and --json (run folder and SavedModel) → `knlp export` →
reload in a fresh process that imports only TensorFlow and TensorFlow Text → `knlp predict`
readable and --json → one request through the `knlp serve` app.

A task registered without a recipe in `RECIPES` fails `test_every_registered_task_has_a_recipe`,
so a new task is covered the moment it is registered. The default suite runs the classification
case; `pytest -m "slow or not slow" tests/test_task_contract.py` runs every task (about 4
minutes on 2 cores).
"""

import json
import os
import random

import numpy as np
import pytest

from keras_nlp_app.cli import main
from keras_nlp_app.tasks import TASKS
from tests.conftest import easy_sentiment, fresh_process_outputs, write_tsv

METRIC_KEYS = {"accuracy", "macro_f1", "loss", "perplexity", "bleu", "chrf", "rouge1", "rouge2",
               "rougeL", "precision", "recall", "f1", "exact_match"}
WORDS = ["red", "blue", "cat", "dog", "sun", "tree", "big", "small"]


def _classification(folder):
    train = write_tsv(folder / "train.tsv", easy_sentiment(200, 1))
    dev = write_tsv(folder / "dev.tsv", easy_sentiment(40, 2))
    overrides = ["data.dataset=null", f"data.train_file={train}", f"data.validation_file={dev}",
                 "tokenizer.vocab_size=60", "tokenizer.sequence_length=12",
                 "model.params={embedding_dim: 8, lstm_units: 8, dropout: 0.0}",
                 "train.epochs=1", "train.batch_size=32"]
    return "configs/sst2_lstm.yaml", overrides, {"text": ["a great film", "an awful plot"]}, dev


def _language_model(folder):
    text = "the quick brown fox jumps over the lazy dog.\n"
    (folder / "train.txt").write_text(text * 100)
    (folder / "valid.txt").write_text(text * 5)
    overrides = ["data.dataset=null", f"data.train_file={folder / 'train.txt'}",
                 f"data.validation_file={folder / 'valid.txt'}", "data.holdout_fraction=0.0",
                 "tokenizer.sequence_length=16", "model.params={num_layers: 1, num_heads: 2, hidden_dim: 16}",
                 "train.epochs=1", "train.steps_per_epoch=5", "train.batch_size=8",
                 "train.warmup_steps=2", "train.jit_compile=off"]
    return ("configs/shakespeare_char.yaml", overrides, {"text": ["the quick ", "a lazy dog"]},
            str(folder / "valid.txt"))


def _seq2seq(folder):
    rng = random.Random(0)
    paths = []
    for split, count in (("train", 200), ("valid", 6)):
        sources = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))) for _ in range(count)]
        for side, lines in (("src", sources), ("tgt", [" ".join(s.split()[::-1]) for s in sources])):
            path = folder / f"{split}.{side}"
            path.write_text("\n".join(lines) + "\n")
            paths.append(str(path))
    train, valid = ",".join(paths[:2]), ",".join(paths[2:])
    overrides = ["task=seq2seq", "data.dataset=null", f"data.train_file={train}",
                 f"data.validation_file={valid}", "tokenizer.kind=sentencepiece",
                 "tokenizer.vocab_size=30", "tokenizer.sequence_length=8",
                 "tokenizer.target_length=8", "model.name=transformer_seq2seq",
                 "model.params={num_layers: 1, num_heads: 2, hidden_dim: 16, dropout: 0.0}",
                 "model.beam_size=2", "train.epochs=1", "train.batch_size=32",
                 "train.monitor=val_bleu", "train.eval_examples=4"]
    return None, overrides, {"text": ["red cat", "big dog sun"]}, valid


def _tagging(folder):
    rng = random.Random(0)
    people, places = (["Ada"], ["Alan", "Turing"]), (["Paris"], ["New", "York"])
    lines = ["-DOCSTART- -X- O O", ""]
    for _ in range(60):
        tokens = ([(w, "I-PER") for w in rng.choice(people)] + [("visited", "O")]
                  + [(w, "I-LOC") for w in rng.choice(places)] + [(".", "O")])
        lines += [f"{w} NNP I-NP {t}" for w, t in tokens] + [""]
    (folder / "train.txt").write_text("\n".join(lines) + "\n")
    (folder / "valid.txt").write_text("\n".join(lines[:40]) + "\n")
    overrides = ["task=tagging", "data.dataset=null", f"data.train_file={folder / 'train.txt'}",
                 f"data.validation_file={folder / 'valid.txt'}", "model.name=bilstm_crf_tagger",
                 "model.params={word_dim: 8, lstm_units: 8, char_filters: 8}",
                 "tokenizer.sequence_length=16", "train.epochs=1", "train.batch_size=16",
                 "train.monitor=val_f1"]
    return None, overrides, {"text": ["Ada visited Paris .", ""]}, str(folder / "valid.txt")


def _pretrain(folder):
    rng = random.Random(0)
    for split, count in (("train", 200), ("valid", 20)):
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) for _ in range(count)]
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
    overrides = ["data.dataset=null", f"data.train_file={folder / 'train.txt'}",
                 f"data.validation_file={folder / 'valid.txt'}", "tokenizer.vocab_size=40",
                 "tokenizer.sequence_length=12", "train.epochs=1", "train.batch_size=16",
                 "model.params={num_layers: 1, num_heads: 2, hidden_dim: 16, intermediate_dim: 32}",
                 "train.warmup_steps=0", "train.jit_compile=off"]
    return ("configs/pretrain_imdb.yaml", overrides,
            {"text": ["red [MASK] sun", "big dog"]}, str(folder / "valid.txt"))


def _qa(folder):
    from tests.conftest import squad_like

    (folder / "train.json").write_text(json.dumps(squad_like(8, 0)))
    (folder / "valid.json").write_text(json.dumps(squad_like(2, 1)))
    overrides = ["task=qa", "data.dataset=null", f"data.train_file={folder / 'train.json'}",
                 f"data.validation_file={folder / 'valid.json'}", "model.name=bidaf_reader",
                 "model.params={hidden_dim: 8, word_dim: 8, char_filters: 8}",
                 "tokenizer.sequence_length=16", "tokenizer.doc_stride=8",
                 "tokenizer.question_length=8", "train.epochs=1", "train.batch_size=16",
                 "train.monitor=val_f1"]
    inputs = {"question": ["Where was Ada born?", "Who?"],
              "context": ["it was a day . Ada was born in Lima in 1950 .", ""]}
    return None, overrides, inputs, str(folder / "valid.json")


def _relation(folder):
    from tests.conftest import relation_examples, write_jsonl

    train = write_jsonl(folder / "train.jsonl", relation_examples(200, 1))
    dev = write_jsonl(folder / "dev.jsonl", relation_examples(30, 2))
    lexicon = folder / "lexicon.tsv"  # word classes: the exported model carries their table
    lexicon.write_text("fire\tevent\nstorm\tevent\ncup\tartifact\nbox\tartifact\n")
    overrides = ["data.dataset=null", f"data.train_file={train}", f"data.validation_file={dev}",
                 "tokenizer.vocab_size=60", "tokenizer.sequence_length=20",
                 "model.params={embedding_dim: 8, lstm_units: 8, attention_dim: 8, entity_ends: true,"
                 " word_class_dim: 4}", f"model.word_classes={lexicon}",
                 "train.epochs=1", "train.batch_size=32"]
    inputs = {"text": ["the fire caused the smoke", "a cup was in the box"],
              "head_start": [4, 2], "head_end": [8, 5], "tail_start": [20, 17], "tail_end": [25, 20]}
    return "configs/semeval2010.yaml", overrides, inputs, dev


RECIPES = {"classification": _classification, "lm": _language_model, "seq2seq": _seq2seq,
           "tagging": _tagging, "pretrain": _pretrain, "qa": _qa, "relation": _relation}


def _predict_arguments(inputs):
    """`knlp predict` arguments: texts, or `--NAME VALUE` for models with several inputs."""
    if list(inputs) == ["text"]:
        return list(inputs["text"])
    if "head_start" in inputs:  # relations: the spans marked in the text, as SemEval writes them
        marked = []
        for text, *spans in zip(*inputs.values()):
            tags = sorted(zip(spans, ["<e1>", "</e1>", "<e2>", "</e2>"]), reverse=True)
            for position, tag in tags:
                text = text[:position] + tag + text[position:]
            marked.append(text)
        return marked
    return [item for name, column in inputs.items() for value in column
            for item in (f"--{name}", value)]



def test_every_registered_task_has_a_recipe():
    assert set(RECIPES) == set(TASKS)


# classification runs in the default suite; the other tasks take 40-80 s each (marked slow)
CONTRACT_PARAMS = [pytest.param(name, marks=() if name == "classification" else pytest.mark.slow)
                   for name in sorted(RECIPES)]


@pytest.fixture(scope="module", params=CONTRACT_PARAMS)
def exported(request, tmp_path_factory):
    """(task name, run folder, SavedModel version folder, inputs, evaluation file) per task."""
    name = request.param
    folder = tmp_path_factory.mktemp(f"contract_{name}")
    config, overrides, inputs, evaluation_file = RECIPES[name](folder)
    if config is None:
        config = folder / "empty.yaml"
        config.write_text("{}\n")
    overrides += ["train.verbose=0", f"name=contract_{name}"]
    run_dir = str(folder / "run")
    arguments = ["train", str(config), "--run-dir", run_dir]
    for override in overrides:
        arguments += ["--set", override]
    assert main(arguments) == 0
    assert main(["export", run_dir, "--output", str(folder / "export")]) == 0
    version = os.path.join(folder / "export", "1")
    return name, run_dir, version, inputs, evaluation_file


def _output(capsys):
    captured = capsys.readouterr()
    return captured.out


def test_evaluate_prints_a_report_and_json_for_a_run_and_a_saved_model(exported, capsys):
    name, run_dir, version, _, evaluation_file = exported
    for target, data in ((run_dir, []), (version, ["--data", evaluation_file])):
        assert main(["evaluate", target, *data]) == 0
        readable = _output(capsys)
        assert readable.strip() and not readable.lstrip().startswith("{")
        assert name in readable.splitlines()[0]
        assert main(["evaluate", target, *data, "--json"]) == 0
        report = json.loads(_output(capsys))
        assert report["task"] == name and METRIC_KEYS & set(report)


def test_predict_prints_lines_and_json_for_a_run_and_a_saved_model(exported, capsys):
    name, run_dir, version, inputs, _ = exported
    first, texts = next(iter(inputs.items()))
    arguments = _predict_arguments(inputs)
    for target in (run_dir, version):
        assert main(["predict", target, *arguments, "--json"]) == 0
        records = json.loads(_output(capsys))["predictions"]
        assert len(records) == len(texts) and [r[first] for r in records] == texts
        assert main(["predict", target, *arguments]) == 0
        assert _output(capsys).strip()


def test_the_export_runs_in_a_fresh_process_without_the_package_and_equals_the_run(exported):
    from keras_nlp_app.inference import load_predictor

    _, run_dir, version, inputs, _ = exported
    fresh = fresh_process_outputs(version, inputs)
    expected = load_predictor(run_dir).predict(inputs)
    assert set(fresh) == set(expected)
    for key, value in expected.items():
        if value.dtype.kind in "fc":
            np.testing.assert_allclose(np.asarray(fresh[key], dtype=np.float64), value,
                                       atol=1e-4, err_msg=key)
        elif value.dtype.kind in "iub":
            np.testing.assert_array_equal(np.asarray(fresh[key]), value, err_msg=key)
        else:
            texts = np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(value)
            assert fresh[key] == texts.tolist(), key


def test_one_request_through_knlp_serve(exported):
    from fastapi.testclient import TestClient

    from keras_nlp_app.inference import load_predictor
    from keras_nlp_app.serving.app import create_app

    name, _, version, inputs, _ = exported
    instances = [dict(zip(inputs, row)) for row in zip(*inputs.values())]
    with TestClient(create_app({name: os.path.dirname(version)})) as client:
        answer = client.post(f"/v1/models/{name}:predict", json={"inputs": inputs})
        rows = client.post(f"/v1/models/{name}:predict", json={"instances": instances})
    assert answer.status_code == 200, answer.text
    assert rows.status_code == 200 and len(rows.json()["predictions"]) == len(instances), rows.text
    outputs = answer.json()["outputs"]
    expected = load_predictor(version).predict(inputs)
    if len(expected) == 1:  # as TF Serving answers: a lone output is not wrapped in its name
        outputs = {next(iter(expected)): outputs}
    assert set(outputs) == set(expected)
    rows = len(next(iter(inputs.values())))
    assert all(len(column) == rows for column in outputs.values())
