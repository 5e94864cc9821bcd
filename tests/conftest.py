"""Shared fixtures: a tiny, easy sentiment task written into tmp folders."""

import os
import random

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
    }
    overrides.update(extra)
    return [f"{k}={v}" for k, v in overrides.items()]


@pytest.fixture(scope="session")
def trained_run(easy_files, tmp_path_factory):
    """One tiny trained run shared by the evaluate/export/predict tests (one fit for all)."""
    from keras_nlp_app.config import load_config
    from keras_nlp_app.training.train import train

    cfg = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(*easy_files))
    return train(cfg, run_dir=str(tmp_path_factory.mktemp("runs") / "easy"))
