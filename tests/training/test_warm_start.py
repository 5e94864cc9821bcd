"""`model.init_from`: a classifier starts from a pretrained word-level LSTM LM's embedding rows
(matched by word) and recurrent weights; settings that cannot fit are refused before training
and leave no run folder."""

import json
import os

import numpy as np
import pytest

from keras_nlp_app.config import load_config
from keras_nlp_app.errors import ConfigError, UserError
from tests.conftest import FILLER, NEGATIVE, POSITIVE, tiny_overrides


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    """A one-layer word LSTM LM of 16 units trained briefly on unlabeled text."""
    from keras_nlp_app.training.train import train

    folder = tmp_path_factory.mktemp("lm")
    words = FILLER + POSITIVE + NEGATIVE[:3]  # "dreadful" and "boring" stay unknown to it
    rng = np.random.default_rng(0)
    text = "".join(" ".join(rng.choice(words, 8)) + "\n" for _ in range(120))
    (folder / "train.txt").write_text(text)
    (folder / "valid.txt").write_text(text[:400])
    cfg = load_config(["configs/ptb_lstm_small.yaml"], [
        "data.dataset=null", f"data.train_file={folder / 'train.txt'}",
        f"data.validation_file={folder / 'valid.txt'}", "tokenizer.kind=word",
        "tokenizer.lowercase=true", "tokenizer.vocab_size=100", "tokenizer.sequence_length=8",
        "model.params={num_layers: 1, units: 16}", "train.epochs=1", "train.batch_size=4",
        "train.verbose=0"])
    return train(cfg, str(folder / "run"))


def _classifier(easy_files, **extra):
    return load_config(["configs/sst2_lstm.yaml"], tiny_overrides(*easy_files, **extra))


def test_a_classifier_starts_from_the_lm_embedding_rows_and_lstm(lm_run, easy_files, tmp_path):
    from keras_nlp_app.runs import restore_run
    from keras_nlp_app.tasks import get_task
    from keras_nlp_app.training.warm_start import start_from_run

    cfg = _classifier(easy_files, **{"model.init_from": lm_run})
    task = get_task("classification")
    train_examples, _ = task.load_splits(cfg.data, cfg.train.seed)
    tokenizer, space = task.prepare_assets(cfg, train_examples, str(tmp_path))
    preprocessor = task.build_preprocessor(cfg, tokenizer)
    model = task.build_model(cfg, preprocessor, space, training=True)
    before = model.get_layer("embedding").embeddings.numpy().copy()
    report = start_from_run(cfg, preprocessor, model)

    lm = restore_run(lm_run)
    lm_rows = {w: i for i, w in enumerate(lm.preprocessor.tokenizer.vocabulary)}
    lm_table = lm.model.get_layer("embedding").embeddings.numpy()
    table = model.get_layer("embedding").embeddings.numpy()
    vocabulary = tokenizer.vocabulary
    shared = [i for i, w in enumerate(vocabulary) if i and w in lm_rows]
    unknown = [vocabulary.index(w) for w in ("dreadful", "boring")]
    assert len(shared) >= len(FILLER) + len(POSITIVE)
    for index in shared:
        np.testing.assert_array_equal(table[index], lm_table[lm_rows[vocabulary[index]]])
    np.testing.assert_array_equal(table[unknown], before[unknown])  # kept their random start
    np.testing.assert_array_equal(table[0], before[0])  # padding is not a word
    for mine, theirs in zip(model.get_layer("lstm").get_weights(),
                            lm.model.get_layer("lstm_0").get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert report["recurrent_layers"] == ["lstm"]
    assert report["coverage"] == pytest.approx(len(shared) / len(vocabulary), abs=1e-4)


def test_a_run_records_its_start_and_learns(lm_run, easy_files, tmp_path):
    from keras_nlp_app.inference import evaluate
    from keras_nlp_app.training.train import train

    run = train(_classifier(easy_files, **{"model.init_from": lm_run}), str(tmp_path / "run"))
    with open(os.path.join(run, "metrics.json")) as f:
        recorded = json.load(f)["init_from"]
    assert recorded["run"] == os.path.abspath(lm_run) and recorded["recurrent_layers"] == ["lstm"]
    assert 0.5 < recorded["coverage"] < 1
    assert evaluate(run)["accuracy"] > 0.9  # and the restored run needs no LM to load


@pytest.mark.parametrize("extra, error, match", [
    ({"model.params": "{embedding_dim: 16, lstm_units: 8}"}, ConfigError, "same widths"),
    ({"model.params": "{embedding_dim: 8, lstm_units: 16}"}, ConfigError, "embedding width to 16"),
    ({"model.params": "{embedding_dim: 16, lstm_units: 16, cell: gru}"}, ConfigError, "same cell"),
    ({"model.word_vectors": "vectors.txt"}, ConfigError, "set one of them"),
    ({"model.init_from": "configs"}, UserError, "not a run folder"),
])
def test_what_cannot_fit_is_refused_before_training(lm_run, easy_files, tmp_path, extra, error,
                                                     match):
    from keras_nlp_app.training.train import train

    cfg = _classifier(easy_files, **{"model.init_from": lm_run, **extra})
    with pytest.raises(error, match=match):
        train(cfg, str(tmp_path / "refused"))
    assert not os.path.exists(tmp_path / "refused")


def test_gradual_unfreezing_keeps_the_lm_layers_still_until_their_epoch(lm_run, easy_files,
                                                                         tmp_path):
    """ULMFiT's controls on a model started from an LM: groups embedding → LSTM → head; with one
    epoch per group, epoch 1 trains the head alone, epoch 2 the LSTM too, and the embedding
    still holds the LM's rows after both."""
    from keras_nlp_app.models.recurrent import recurrent_layer_groups
    from keras_nlp_app.runs import restore_run
    from keras_nlp_app.training.train import train

    cfg = _classifier(easy_files, **{"model.init_from": lm_run, "train.epochs": 2,
                                     "train.gradual_unfreezing": 1, "train.optimizer": "adam",
                                     "train.layerwise_lr_decay": 0.5,
                                     "model.params": "{embedding_dim: 16, lstm_units: 16, "
                                                     "pooling: concat}"})
    run = train(cfg, str(tmp_path / "run"))
    restored, lm = restore_run(run), restore_run(lm_run)
    model = restored.model
    model.load_weights(os.path.join(run, "checkpoints", "last.weights.h5"))
    assert [len(group) for group in recurrent_layer_groups(model)] == [1, 3, 2]
    assert not all(np.array_equal(mine, theirs) for mine, theirs in zip(
        model.get_layer("lstm").get_weights(), lm.model.get_layer("lstm_0").get_weights()))
    lm_rows = {w: i for i, w in enumerate(lm.preprocessor.tokenizer.vocabulary)}
    lm_table = lm.model.get_layer("embedding").embeddings.numpy()
    table = model.get_layer("embedding").embeddings.numpy()
    vocabulary = restored.preprocessor.tokenizer.vocabulary
    shared = [i for i, w in enumerate(vocabulary) if i and w in lm_rows]
    np.testing.assert_array_equal(table[shared],
                                  lm_table[[lm_rows[vocabulary[i]] for i in shared]])


def test_layer_wise_rates_need_something_pretrained(easy_files, tmp_path):
    from keras_nlp_app.training.train import train

    cfg = _classifier(easy_files, **{"train.layerwise_lr_decay": 0.5})
    with pytest.raises(ConfigError, match="model.init_from or model.word_vectors"):
        train(cfg, str(tmp_path / "refused"))
    assert not os.path.exists(tmp_path / "refused")


def test_vector_words_adds_the_source_runs_words_with_their_rows(lm_run, easy_files, tmp_path):
    """`tokenizer.vector_words` with `model.init_from`: words the labelled data leaves out of the
    learned vocabulary (here all but 6) join it from the LM's vocabulary, with the LM's rows."""
    from keras_nlp_app.runs import restore_run
    from keras_nlp_app.tasks import get_task
    from keras_nlp_app.training.warm_start import start_from_run

    cfg = _classifier(easy_files, **{"model.init_from": lm_run, "tokenizer.vocab_size": 6,
                                     "tokenizer.vector_words": 1000})
    task = get_task("classification")
    train_examples, _ = task.load_splits(cfg.data, cfg.train.seed)
    tokenizer, space = task.prepare_assets(cfg, train_examples, str(tmp_path))
    lm = restore_run(lm_run)
    lm_words = lm.preprocessor.tokenizer.vocabulary
    vocabulary = tokenizer.vocabulary
    plain = _classifier(easy_files, **{"model.init_from": lm_run, "tokenizer.vocab_size": 6})
    learned = task.prepare_assets(plain, train_examples, str(tmp_path / "plain"))[0].vocabulary
    assert len(learned) == 6 and vocabulary[:6] == learned
    assert set(lm_words[1:]) <= set(vocabulary)  # every LM word, none twice
    assert len(vocabulary) == len(set(vocabulary))
    preprocessor = task.build_preprocessor(cfg, tokenizer)
    model = task.build_model(cfg, preprocessor, space, training=True)
    report = start_from_run(cfg, preprocessor, model)
    added = vocabulary[6:]
    lm_table = lm.model.get_layer("embedding").embeddings.numpy()
    table = model.get_layer("embedding").embeddings.numpy()
    for word in added:
        np.testing.assert_array_equal(table[vocabulary.index(word)], lm_table[lm_words.index(word)])
    assert report["coverage"] > 0.9


def test_a_start_token_leads_every_text_through_training_and_export(lm_run, easy_files, tmp_path):
    """`tokenizer.start_token: <eos>`: the classifier reads every text after the LM's line
    separator, as the LM did; the token is reserved (id 2) and the export agrees."""
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.runs import restore_run
    from keras_nlp_app.training.train import train

    run = train(_classifier(easy_files, **{"model.init_from": lm_run,
                                           "tokenizer.start_token": "<eos>"}),
                str(tmp_path / "run"))
    restored = restore_run(run)
    vocabulary = restored.preprocessor.tokenizer.vocabulary
    start = vocabulary.index("<eos>")
    assert start == 2  # reserved after [PAD] and [UNK]
    ids = restored.preprocessor(np.array(["a great film"])).numpy()[0]
    assert ids[0] == start and ids[1] != start
    with open(os.path.join(run, "metrics.json")) as f:
        assert json.load(f)["init_from"]["coverage"] > 0.5
    export_run(run, str(tmp_path / "export"))  # checks the SavedModel against the run


@pytest.mark.parametrize("extra, match", [
    ({"tokenizer.start_token": "<bos>", "tokenizer.vocabulary": "VOCAB"}, "not in the vocabulary"),
    ({"tokenizer.start_token": "<eos>", "model.name": "backbone_classifier",
      "model.backbone": "VOCAB"}, "preset's preprocessor adds its own"),
])
def test_a_start_token_that_cannot_apply_is_refused(easy_files, tmp_path, extra, match):
    from keras_nlp_app.text import tokenizers
    from keras_nlp_app.training.train import train

    folder = tmp_path / "vocab"
    tokenizers.save_tokenizer(tokenizers.learn_tokenizer(["a great film"], kind="word"), str(folder))
    extra = {k: (str(folder) if v == "VOCAB" else v) for k, v in extra.items()}
    with pytest.raises(ConfigError, match=match):
        train(_classifier(easy_files, **extra), str(tmp_path / "refused"))
    assert not os.path.exists(tmp_path / "refused")
