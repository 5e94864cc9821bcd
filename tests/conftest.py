"""Shared fixtures: a tiny, easy sentiment task written into tmp folders."""

import json
import os
import random
import subprocess
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

POSITIVE = ["good", "great", "superb", "wonderful", "lovely"]
NEGATIVE = ["bad", "awful", "terrible", "dreadful", "boring"]
FILLER = ["the", "film", "movie", "plot", "was", "actors", "quite", "really", "a", "story", "and"]


def easy_sentiment(n, seed):
    """Sentences whose label is decided by one sentiment word among filler words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = rng.sample(FILLER, rng.randint(2, 6))
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if label else NEGATIVE))
        rows.append((" ".join(words), label))
    return rows


def write_tsv(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        for text, label in rows:
            f.write(f"{text}\t{label}\n")
    return str(path)


@pytest.fixture(scope="session")
def easy_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("easy")
    return (write_tsv(folder / "train.tsv", easy_sentiment(600, 1)),
            write_tsv(folder / "dev.tsv", easy_sentiment(120, 2)))


def tiny_overrides(train_file, validation_file, **extra):
    """Overrides that turn the SST-2 recipe into a seconds-long run on the easy task."""
    overrides = {
        "data.dataset": "null", "data.train_file": train_file, "data.validation_file": validation_file,
        "tokenizer.vocab_size": 100, "tokenizer.sequence_length": 16,
        "model.params": "{embedding_dim: 16, lstm_units: 16, dropout: 0.0}",
        "train.epochs": 4, "train.batch_size": 32, "train.learning_rate": 0.01, "train.verbose": 0,
        # TensorBoard's attribution images and projector files: off where a test does not look
        "train.explain_samples": 0, "train.projector_tokens": 0,
    }
    overrides.update(extra)
    return [f"{k}={v}" for k, v in overrides.items()]


@pytest.fixture(scope="session")
def trained_run(easy_files, tmp_path_factory):
    """One tiny trained run shared by the evaluate/export/predict tests (one fit for all)."""
    from keras_nlp_app.config import load_config
    from keras_nlp_app.training.train import train

    cfg = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(
        *easy_files, **{"train.explain_samples": 3}))
    return train(cfg, run_dir=str(tmp_path_factory.mktemp("runs") / "easy"))


@pytest.fixture(scope="session")
def exported_versions(trained_run, tmp_path_factory):
    """`trained_run` exported twice into one model folder: (folder, version 1, version 2).
    Shared by the export, serving and model-folder tests, which read or copy it and never
    change it (an export costs seconds; one pair serves them all)."""
    from keras_nlp_app.export.saved_model import export_run

    folder = str(tmp_path_factory.mktemp("saved_models") / "sentiment")
    return folder, export_run(trained_run, folder), export_run(trained_run, folder)


def squad_like(articles, seed, paragraphs=4):
    """A tiny SQuAD v1.1 document: per paragraph a person born in a city in a year, among filler
    words, asked where and when (the answer lies at a known offset)."""
    rng = random.Random(seed)
    names = ["Ada", "Bob", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivo", "Jo"]
    cities = ["Paris", "Köln", "Lima", "Oslo", "Rome", "Kyiv", "Quito", "Accra"]
    filler = ["it", "was", "a", "long", "day", "and", "many", "people", "came"]
    data = []
    for a in range(articles):
        items = []
        for p in range(paragraphs):
            name, city, year = rng.choice(names), rng.choice(cities), str(rng.randint(1900, 2000))
            words = " ".join(rng.choice(filler) for _ in range(rng.randint(3, 30)))
            context = f"{words} . {name} was born in {city} in {year} . {words} ."
            birth = context.index(f"born in {city} in {year}")
            items.append({"context": context, "qas": [
                {"id": f"{a}-{p}-0", "question": f"Where was {name} born?",
                 "answers": [{"text": city, "answer_start": birth + 8}]},
                {"id": f"{a}-{p}-1", "question": f"When was {name} born?",
                 "answers": [{"text": year, "answer_start": birth + 12 + len(city)}]}]})
        data.append({"title": f"Article_{a}", "paragraphs": items})
    return {"version": "1.1", "data": data}


_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401
model = tf.saved_model.load(sys.argv[1])
inputs = json.loads(sys.argv[2])
outputs = model.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
assert not any(m.startswith(("keras_nlp_app", "keras_hub")) for m in sys.modules)
print(json.dumps({k: v.numpy().tolist() for k, v in outputs.items()},
                 default=lambda b: b.decode("utf-8", "replace")))
"""


def fresh_process_outputs(version, inputs):
    """`serving_default(**inputs)` of an exported version, run in a new Python process that
    imports only TensorFlow and TensorFlow Text (it fails if our package or keras-hub loads)."""
    done = subprocess.run([sys.executable, "-c", _FRESH_PROCESS, version, json.dumps(inputs)],
                          capture_output=True, text=True, timeout=300, cwd="/",
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


RELATION_TEMPLATES = {  # label: sentence templates with the head (h) and the tail (t)
    "Cause-Effect(e1,e2)": ["the {h} caused the {t}", "a {h} produced this {t}"],
    "Cause-Effect(e2,e1)": ["the {h} was caused by the {t}", "a {h} came from a {t}"],
    "Content-Container(e1,e2)": ["the {h} is inside the {t}", "a {h} was in the {t}"],
    "Other": ["the {h} and the {t} are here", "a {h} near a {t}"],
}
RELATION_NOUNS = ["fire", "smoke", "cup", "box", "storm", "damage", "key", "drawer", "virus"]


def relation_examples(n, seed):
    """JSONL-ready relation records whose label is decided by the template's verb phrase."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        label = rng.choice(sorted(RELATION_TEMPLATES))
        head, tail = rng.sample(RELATION_NOUNS, 2)
        template = rng.choice(RELATION_TEMPLATES[label])
        text = template.format(h=head, t=tail)
        start_h = template.index("{h}")
        start_t = template.format(h=head, t="{t}").index("{t}")
        records.append({"text": text, "head": [start_h, start_h + len(head)],
                        "tail": [start_t, start_t + len(tail)], "label": label})
    return records


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
    return str(path)
