"""Masked-LM pretraining: the loss falls on a tiny corpus, the run writes a keras-hub preset that
loads without this package, a resumed run equals an uninterrupted one, and the export fills
masks and scores the same tokens as the run folder."""

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from keras_nlp_app.config import load_config
from keras_nlp_app.training.train import train

SUBJECTS = ["the cat", "the dog", "a bird", "my friend", "the teacher"]
VERBS = ["sees", "likes", "follows", "finds"]
OBJECTS = ["the ball", "a tree", "the house", "some food", "the river"]


def corpus(path, count, seed):
    """Sentences with a fixed grammar, so masked words are predictable from the others."""
    rng = random.Random(seed)
    lines = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} ."
             for _ in range(count)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def tiny_pretrain(tmp_path, **extra):
    overrides = {
        "data.dataset": "null", "data.train_file": corpus(tmp_path / "train.txt", 400, 1),
        "data.validation_file": corpus(tmp_path / "valid.txt", 60, 2),
        "tokenizer.vocab_size": 120, "tokenizer.sequence_length": 12,
        "model.params": "{num_layers: 1, num_heads: 2, hidden_dim: 32, intermediate_dim: 64, dropout: 0.0}",
        "train.epochs": 4, "train.batch_size": 32, "train.learning_rate": 0.003,
        "train.warmup_steps": 0, "train.decay": "none", "train.weight_decay": 0.0,
        "train.verbose": 0, "train.backup_every_steps": 0}
    overrides.update(extra)
    return load_config(["configs/pretrain_imdb.yaml"], [f"{k}={v}" for k, v in overrides.items()])


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pretrain")
    cfg = tiny_pretrain(folder)
    return train(cfg, run_dir=str(folder / "run")), folder


def test_pretraining_lowers_the_masked_token_loss(pretrained):
    run_dir, _ = pretrained
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    history = metrics["history"]
    assert history[-1]["val_loss"] < history[0]["val_loss"] - 0.3
    # guessing uniformly over the vocabulary would cost ln(120) = 4.8 nats
    assert metrics["loss"] < 2.5 and metrics["accuracy"] > 0.4
    assert metrics["perplexity"] == pytest.approx(np.exp(metrics["loss"]), rel=1e-3)
    assert metrics["trainable_parameters"] <= metrics["parameters"]


def test_skipgram_vectors_start_the_token_embedding(pretrained):
    """The recipe's warm start: skip-gram vectors of every vocabulary token, saved with the run,
    become (rescaled) the fresh encoder's token embedding."""
    from keras_nlp_app.tasks import get_task
    from keras_nlp_app.tasks.pretrain import SKIPGRAM_VECTORS

    run_dir, folder = pretrained
    vectors = np.load(os.path.join(run_dir, "assets", SKIPGRAM_VECTORS))
    cfg = tiny_pretrain(folder)
    task = get_task("pretrain")
    preprocessor = task.build_preprocessor(cfg, task.load_tokenizer(os.path.join(run_dir, "assets")))
    assert vectors.shape == (preprocessor.vocabulary_size, 32)
    start = task.build_model(cfg, preprocessor, vectors, training=True)
    embedding = start.backbone.token_embedding.embeddings.numpy()
    cosine = np.sum(embedding * vectors, 1) / np.linalg.norm(embedding, axis=1) / np.linalg.norm(vectors, axis=1)
    np.testing.assert_allclose(cosine, 1.0, atol=1e-5)
    fresh = task.build_model(cfg, preprocessor, None, training=True)
    assert np.std(fresh.backbone.token_embedding.embeddings.numpy()) == pytest.approx(np.std(embedding), rel=0.1)


def test_the_preset_loads_with_keras_hub_alone(pretrained):
    run_dir, _ = pretrained
    preset = os.path.join(run_dir, "preset")
    script = (
        "import sys, keras_hub\n"
        f"backbone = keras_hub.models.Backbone.from_preset({preset!r})\n"
        f"tokenizer = keras_hub.models.Tokenizer.from_preset({preset!r})\n"
        f"task = keras_hub.models.MaskedLM.from_preset({preset!r})\n"
        "ids = tokenizer(['the cat sees the ball .'])\n"
        "assert 'keras_nlp_app' not in sys.modules\n"
        "print(type(backbone).__name__, type(tokenizer).__name__, type(task).__name__, len(ids[0]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd="/",
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    names, tokens = done.stdout.split()[:3], int(done.stdout.split()[3])
    assert names == ["BertBackbone", "BertTokenizer", "BertMaskedLM"] and tokens >= 6


@pytest.mark.slow  # over 20 s on 2 cores
def test_the_export_fills_masks_and_scores_like_the_run(pretrained, tmp_path):
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.inference import evaluate, predict

    run_dir, folder = pretrained
    exported = export_run(run_dir, str(tmp_path / "mlm"))
    valid = str(folder / "valid.txt")
    from_run, from_export = evaluate(run_dir, data=valid), evaluate(exported, data=valid)
    assert from_run["masked_tokens"] == from_export["masked_tokens"] > 0
    assert from_run["loss"] == pytest.approx(from_export["loss"], abs=1e-4)
    records = predict(exported, {"text": ["the cat [MASK] the ball .", "no mask"]})
    assert len(records[0]["masks"]) == 1 and records[1]["masks"] == []
    assert {guess["token"] for guess in records[0]["masks"][0][:3]} & set(VERBS)


@pytest.mark.slow
def test_a_resumed_pretraining_run_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    from keras_nlp_app import callbacks

    cfg = tiny_pretrain(tmp_path, **{"train.epochs": 2, "train.backup_every_steps": 5,
                                     "model.params": "{num_layers: 1, num_heads: 2, hidden_dim: 16, "
                                                     "intermediate_dim: 32, dropout: 0.2}"})
    straight = train(cfg, run_dir=str(tmp_path / "straight"))

    def power_cut(self, batch, logs=None):
        if self.model.optimizer.iterations.numpy() == 13 + 7:  # epoch 2 (13 batches each), batch 7
            raise RuntimeError("power cut")

    monkeypatch.setattr(callbacks.LearningRateLogger, "on_train_batch_end", power_cut, raising=False)
    cut = str(tmp_path / "cut")
    with pytest.raises(RuntimeError, match="power cut"):
        train(cfg, run_dir=cut)
    monkeypatch.delattr(callbacks.LearningRateLogger, "on_train_batch_end")
    train(cfg, run_dir=cut)
    with open(os.path.join(cut, "metrics.json")) as f:
        assert json.load(f)["resumed_at_batches"] == [18]
    import h5py

    def weights(run):
        with h5py.File(os.path.join(run, "checkpoints", "last.weights.h5")) as f:
            arrays = []
            f.visititems(lambda _, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
            return arrays

    expected, resumed = weights(straight), weights(cut)
    assert len(expected) == len(resumed) > 0
    for a, b in zip(expected, resumed):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # over 20 s on 2 cores
def test_pretraining_continues_from_a_preset(pretrained, tmp_path):
    """Domain-adaptive pretraining: `model.backbone` starts from the preset (its tokenizer, its
    encoder and its masked-LM head), so the first epoch already scores like the last one did."""
    run_dir, folder = pretrained
    with open(os.path.join(run_dir, "metrics.json")) as f:
        before = json.load(f)
    cfg = tiny_pretrain(folder, **{"model.backbone": os.path.join(run_dir, "preset"),
                                   "train.epochs": 1, "train.learning_rate": 0.0005})
    with open(os.path.join(train(cfg, run_dir=str(tmp_path / "more")), "metrics.json")) as f:
        after = json.load(f)
    assert after["history"][0]["val_loss"] < before["history"][0]["val_loss"] - 0.3
    assert after["loss"] < before["loss"] + 0.2


def test_pretraining_reads_the_text_of_dialogue_and_squad_files(tmp_path):
    """DailyDialog lines become dialogues with one turn per line; a SQuAD file gives each
    distinct paragraph once, however many questions it has."""
    from keras_nlp_app.tasks import get_task

    dialogues = tmp_path / "dialogues_train.txt"
    dialogues.write_text("Hi there . __eou__ Hello ! __eou__\nHow are you ? __eou__ Fine . __eou__\n")
    squad = tmp_path / "train.json"
    context = "The cat sat on the mat."
    qas = [{"id": f"q{i}", "question": "Where?", "answers": [{"text": "the mat", "answer_start": 15}]}
           for i in range(3)]
    squad.write_text(json.dumps({"data": [{"title": "Cats", "paragraphs": [
        {"context": context, "qas": qas}, {"context": "Dogs bark.", "qas": []}]}]}))
    task = get_task("pretrain")
    cfg = tiny_pretrain(tmp_path)
    found = task.read_file(str(dialogues), cfg.data, fmt="dialog")
    assert found.texts == ["Hi there .\nHello !", "How are you ?\nFine ."]
    found = task.read_file(str(squad), cfg.data, fmt="json")
    assert found.texts == [context] and found.labels == [None] and found.report.examples == 1
