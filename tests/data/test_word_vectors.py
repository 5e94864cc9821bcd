"""Word vectors: `knlp vectors` learns skip-gram vectors in word2vec's text format, and
`model.word_vectors` starts a model's word embedding from them (words without one keep their
random start; a width that does not fit, or a malformed file, is refused before training)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_nlp_app.data.word_vectors import initialize_embeddings, read_word_vectors, words_to_add
from keras_nlp_app.errors import ConfigError, DataError


def _lstm_classifier(vocab_size, embedding_dim):
    from keras_nlp_app.models import build_model

    return build_model("lstm_classifier", vocab_size=vocab_size, num_classes=2,
                       embedding_dim=embedding_dim, lstm_units=4)


def test_knlp_vectors_learns_a_word2vec_file(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["The cat sat on the mat .", "A dog sat on the rug ."] * 50) + "\n")
    out = tmp_path / "vectors.txt"
    done = subprocess.run([sys.executable, "-m", "keras_nlp_app", "vectors", str(corpus), "--output",
                           str(out), "--dim", "8", "--min-count", "2", "--epochs", "2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    lines = out.read_text().splitlines()
    assert lines[0] == f"{summary['words']} 8"
    assert {line.split(" ")[0] for line in lines[1:]} == {"the", "cat", "sat", "on", "mat", ".", "a",
                                                           "dog", "rug"}  # lower-cased words
    assert summary["tokens"] == 100 * 7
    refused = subprocess.run([sys.executable, "-m", "keras_nlp_app", "vectors", "missing.txt",
                              "--output", str(tmp_path / "no.txt"), "--dim", "0"],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--dim must be at least 1" in refused.stderr  # before reading
    assert "Traceback" not in refused.stderr and not (tmp_path / "no.txt").exists()


def test_the_embedding_starts_from_the_vectors_it_has(tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("3 4\ngood 1 2 3 4\nbad -1 -2 -3 -4\nunseen 9 9 9 9\n")
    vocabulary = ["[PAD]", "[UNK]", "good", "bad", "film"]
    model = _lstm_classifier(len(vocabulary), 4)
    before = model.get_layer("embedding").embeddings.numpy().copy()
    info = initialize_embeddings(model, vocabulary, str(vectors))
    after = model.get_layer("embedding").embeddings.numpy()
    assert info["coverage"] == pytest.approx(2 / 5) and info["embeddings"] == 1
    np.testing.assert_array_equal(after[2], [1, 2, 3, 4])
    np.testing.assert_array_equal(after[3], [-1, -2, -3, -4])
    np.testing.assert_array_equal(after[[0, 1, 4]], before[[0, 1, 4]])


def test_trainable_words_train_the_frequent_rows_and_those_without_a_vector(tmp_path):
    """`model.trainable_words` with a frozen table: after AdamW steps with weight decay, the rows
    that got a vector beyond the first N are still the file's, while the first N and the rows
    without a vector have moved; the fixed rows are not counted as trainable."""
    import keras

    vectors = tmp_path / "vectors.txt"
    vectors.write_text("4 4\nthe 1 2 3 4\ngood 1 1 1 1\nbad -1 -2 -3 -4\nplot 5 5 5 5\n")
    vocabulary = ["[PAD]", "[UNK]", "the", "good", "bad", "film", "plot"]
    model = _lstm_classifier(len(vocabulary), 4)
    info = initialize_embeddings(model, vocabulary, str(vectors), freeze=True, trainable_words=3)
    assert info["trainable_words"] == 3 and info["fixed_parameters"] == 3 * 4  # good, bad, plot
    table = model.get_layer("embedding").embeddings
    before = table.numpy().copy()
    model.compile(optimizer=keras.optimizers.AdamW(0.1, weight_decay=0.5),
                  loss="binary_crossentropy")
    ids = np.array([[1, 2, 3, 4, 5, 6]] * 8)
    model.fit(ids, np.array([0, 1] * 4), epochs=3, verbose=0)
    after = table.numpy()
    np.testing.assert_array_equal(after[[3, 4, 6]], before[[3, 4, 6]])  # vectors past the first 3
    for row in (1, 2, 5):  # [UNK] and film (no vector), the (among the first 3)
        assert np.abs(after[row] - before[row]).max() > 1e-3
    whole = initialize_embeddings(_lstm_classifier(len(vocabulary), 4), vocabulary, str(vectors),
                                  freeze=True)
    assert whole["trainable_words"] == 0 and whole["fixed_parameters"] == 7 * 4


def test_a_width_that_does_not_fit_and_malformed_files_are_refused(tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("good 1 2 3\nbad 1 2 3\n")  # no header: the width comes from the first row
    with pytest.raises(ConfigError, match="3 numbers but the word embedding has 4"):
        initialize_embeddings(_lstm_classifier(4, 4), ["[PAD]", "[UNK]", "good", "bad"], str(vectors))
    vectors.write_text("2 3\ngood 1 2 3\nbad 1 2\n")
    with pytest.raises(DataError, match=r"vectors.txt:3: has 2 numbers"):
        read_word_vectors(str(vectors), ["good", "bad"])
    vectors.write_text("good 1 x 3\n")
    with pytest.raises(DataError, match=r"vectors.txt:1: holds a value that is not a number"):
        read_word_vectors(str(vectors), ["good"])
    vectors.write_bytes(b"good 1 2\nb\xe9d 1 2\n")
    with pytest.raises(DataError, match=r"vectors.txt:2: is not UTF-8 text"):
        read_word_vectors(str(vectors), ["good"])


def test_the_vectors_first_words_that_the_vocabulary_lacks_are_added(tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("6 2\nthe 1 1\nParis 1 1\nmarvellous 1 1\n42 1 1\nfilm 1 1\ndull 1 1\n")
    vocabulary = ["[PAD]", "[UNK]", "the", "film"]
    assert words_to_add(str(vectors), vocabulary, 10) == ["marvellous", "42", "dull"]
    assert words_to_add(str(vectors), vocabulary, 2) == ["marvellous", "42"]  # file order: most frequent
    assert words_to_add(str(vectors), vocabulary, 10, lowercase=False) == [
        "Paris", "marvellous", "42", "dull"]  # a cased tokenizer can produce "Paris"
    vectors.write_bytes(b"good 1 2\nb\xe9d 1 2\n")
    with pytest.raises(DataError, match=r"vectors.txt:2: is not UTF-8 text"):
        words_to_add(str(vectors), vocabulary, 10)


def test_a_run_with_word_vectors_records_their_coverage(easy_files, tmp_path):
    from keras_nlp_app.config import load_config
    from keras_nlp_app.training.train import train
    from tests.conftest import tiny_overrides

    vectors = tmp_path / "vectors.txt"
    rng = np.random.default_rng(0)
    words = ["good", "great", "bad", "awful", "the", "film", "was", "marvellous", "zyzzyva"]
    vectors.write_text(f"{len(words)} 16\n" + "".join(
        w + " " + " ".join(f"{x:.4f}" for x in rng.normal(size=16)) + "\n" for w in words))
    cfg = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(
        *easy_files, **{"model.word_vectors": str(vectors), "train.epochs": 1}))
    run = train(cfg, run_dir=str(tmp_path / "run"))
    with open(os.path.join(run, "metrics.json")) as f:
        recorded = json.load(f)["word_vectors"]
    assert recorded["embeddings"] == 1 and 0 < recorded["coverage"] < 1
    widened = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(
        *easy_files, **{"model.word_vectors": str(vectors), "train.epochs": 1,
                        "tokenizer.vector_words": 3}))
    run = train(widened, run_dir=str(tmp_path / "widened"))
    with open(os.path.join(run, "assets", "vocab.txt")) as f:
        vocabulary = f.read().split()
    with open(os.path.join(run, "metrics.json")) as f:
        widened_coverage = json.load(f)["word_vectors"]["coverage"]
    assert vocabulary[-2:] == ["marvellous", "zyzzyva"]  # unseen in training, kept with their vectors
    assert vocabulary.count("good") == 1 and widened_coverage > recorded["coverage"]
    no_vectors = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(
        *easy_files, **{"tokenizer.vector_words": 3}))
    with pytest.raises(ConfigError, match="set model.word_vectors"):
        train(no_vectors, run_dir=str(tmp_path / "no_vectors"))
    assert not os.path.exists(tmp_path / "no_vectors")
    not_frozen = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(
        *easy_files, **{"model.word_vectors": str(vectors), "model.trainable_words": "5"}))
    with pytest.raises(ConfigError, match="set model.freeze_word_vectors: true"):
        train(not_frozen, run_dir=str(tmp_path / "not_frozen"))
    assert not os.path.exists(tmp_path / "not_frozen")
    bad = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(
        *easy_files, **{"model.word_vectors": str(vectors), "model.params": "{embedding_dim: 8}"}))
    with pytest.raises(ConfigError, match="set the model's embedding width to 16"):
        train(bad, run_dir=str(tmp_path / "refused"))
    assert not os.path.exists(tmp_path / "refused")


def test_frozen_word_vectors_come_out_of_training_as_they_went_in(easy_files, tmp_path):
    """`model.freeze_word_vectors`: the embedding rows are the file's vectors after training
    while the rest of the model learns; without vectors the setting is refused."""
    from keras_nlp_app.config import load_config
    from keras_nlp_app.runs import restore_run
    from keras_nlp_app.training.train import train
    from tests.conftest import tiny_overrides

    vectors = tmp_path / "vectors.txt"
    rng = np.random.default_rng(0)
    words = ["good", "great", "bad", "awful", "the", "film", "was"]
    table = {w: rng.normal(size=16).round(4) for w in words}
    vectors.write_text(f"{len(words)} 16\n" + "".join(
        w + " " + " ".join(f"{x:.4f}" for x in v) + "\n" for w, v in table.items()))
    cfg = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(
        *easy_files, **{"model.word_vectors": str(vectors), "model.freeze_word_vectors": "true",
                        "train.epochs": 1}))
    run = train(cfg, run_dir=str(tmp_path / "run"))
    with open(os.path.join(run, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["word_vectors"]["frozen"] is True
    restored = restore_run(run)
    vocabulary = restored.preprocessor.tokenizer.vocabulary
    embedding = restored.model.get_layer("embedding").embeddings.numpy()
    seen = [w for w in words if w in vocabulary]
    assert seen
    for word in seen:
        np.testing.assert_allclose(embedding[vocabulary.index(word)], table[word], atol=1e-6)
    assert metrics["trainable_parameters"] == metrics["parameters"] - embedding.size
    no_vectors = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(
        *easy_files, **{"model.freeze_word_vectors": "true"}))
    with pytest.raises(ConfigError, match="set model.word_vectors"):
        train(no_vectors, run_dir=str(tmp_path / "no_vectors"))
    assert not os.path.exists(tmp_path / "no_vectors")
    not_frozen = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(
        *easy_files, **{"model.word_vectors": str(vectors), "model.trainable_words": "5"}))
    with pytest.raises(ConfigError, match="set model.freeze_word_vectors: true"):
        train(not_frozen, run_dir=str(tmp_path / "not_frozen"))
    assert not os.path.exists(tmp_path / "not_frozen")


def test_taggers_and_readers_take_the_vectors_words_too(tmp_path):
    """The word vocabularies that tagging and QA learn themselves grow by the vectors' words as
    the tokenizers' do; without `model.word_vectors` the setting is refused."""
    from types import SimpleNamespace

    from keras_nlp_app.config import load_config
    from keras_nlp_app.tasks import qa, tagging

    vectors = tmp_path / "vectors.txt"
    vectors.write_text("3 2\nparis 1 1\nberlin 1 1\nthe 1 1\n")
    overrides = ["tokenizer.vector_words=5", f"model.word_vectors={vectors}", "tokenizer.min_count=1"]
    cfg = load_config(["configs/conll2003.yaml"], overrides)
    sentences = SimpleNamespace(texts=[["The", "man", "from", "Rome"]], labels=[["O", "O", "O", "B-LOC"]])
    words = tagging._learn_vocabularies(cfg, sentences)["words"]
    assert words[-2:] == ["paris", "berlin"] and words.count("the") == 1
    cfg = load_config(["configs/squad.yaml"], overrides)
    questions = SimpleNamespace(texts=[("Who went?", "The man went.")], labels=[[("The man", 0)]])
    words = qa._learn_vocabularies(cfg, questions).words
    assert words[-2:] == ["paris", "berlin"] and words.count("the") == 1
    cfg = load_config(["configs/conll2003.yaml"], ["tokenizer.vector_words=5"])
    with pytest.raises(ConfigError, match="set model.word_vectors"):
        tagging._learn_vocabularies(cfg, sentences)


def test_a_backbone_refuses_vector_words():
    """A backbone tokenizes with its preset, so the setting would be silently ignored."""
    from keras_nlp_app.config import load_config
    from keras_nlp_app.tasks import get_task

    cfg = load_config(["configs/sst2_finetune.yaml"], ["tokenizer.vector_words=5"])
    with pytest.raises(ConfigError, match="with model.backbone the preset's tokenizer is used"):
        get_task("classification").check_config(cfg)
