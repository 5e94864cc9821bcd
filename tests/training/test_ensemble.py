"""`knlp ensemble`: trained runs averaged into one run folder that evaluates, predicts and
exports as any run, and the members it refuses."""

import json
import os
import shutil

import numpy as np
import pytest

from keras_nlp_app.errors import UserError


@pytest.fixture(scope="module")
def second_run(easy_files, tmp_path_factory):
    """A second member beside `trained_run`: another family and another train.seed, the same
    data and tokenizer."""
    from keras_nlp_app.config import load_config
    from keras_nlp_app.training.train import train
    from tests.conftest import tiny_overrides

    cfg = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(*easy_files, **{
        "model.name": "cnn_classifier", "model.params": "{embedding_dim: 16, num_filters: 8}",
        "train.seed": 7}))
    return train(cfg, run_dir=str(tmp_path_factory.mktemp("runs") / "cnn"))


def test_an_ensemble_run_averages_its_members_and_exports(trained_run, second_run, tmp_path):
    from keras_nlp_app.cli import main
    from keras_nlp_app.export.saved_model import export_run
    from keras_nlp_app.runs import restore_run
    from keras_nlp_app.tasks.classification import predict

    output = str(tmp_path / "ensemble")
    assert main(["ensemble", trained_run, second_run, "--output", output]) == 0
    metrics = json.load(open(os.path.join(output, "metrics.json")))
    assert metrics["ensemble_of"] == [os.path.abspath(trained_run), os.path.abspath(second_run)]
    assert metrics["accuracy"] > 0.9 and metrics["examples"] == 120
    texts = ["a great film", "a dull , lifeless film", "", "ünïcödé ✓"]
    members = [restore_run(run) for run in (trained_run, second_run)]
    expected = np.mean([predict(m.preprocessor, m.model, texts) for m in members], axis=0)
    ensemble = restore_run(output)
    assert np.allclose(predict(ensemble.preprocessor, ensemble.model, texts), expected, atol=1e-6)
    assert os.path.isdir(export_run(output, str(tmp_path / "saved")))  # checks the export too


def _copy_with(run, folder, edit_config=None, edit_vocab=False):
    shutil.copytree(run, folder)
    if edit_config:
        path = os.path.join(folder, "config.yaml")
        text = open(path).read()
        assert edit_config[0] in text
        open(path, "w").write(text.replace(*edit_config))
    if edit_vocab:
        with open(os.path.join(folder, "assets", "vocab.txt"), "a") as f:
            f.write("zzz\n")
    return str(folder)


def test_members_must_share_data_holdout_tokenizer_and_assets(trained_run, second_run, tmp_path):
    from keras_nlp_app.runs import write_ensemble

    output = str(tmp_path / "out")
    cases = [
        ([trained_run], "two or more different run folders"),
        ([trained_run, trained_run], "two or more different run folders"),
        ([trained_run, _copy_with(trained_run, tmp_path / "data", ("train.tsv", "dev.tsv"))],
         "data.train_file is .*dev.tsv"),
        ([trained_run, _copy_with(trained_run, tmp_path / "vocab", ("vocab_size: 100",
                                                                    "vocab_size: 90"))],
         "tokenizer.vocab_size is 90"),
        ([trained_run, _copy_with(trained_run, tmp_path / "assets", edit_vocab=True)],
         "assets/ .* differ"),
        ([trained_run, str(tmp_path)], "not a run folder"),
    ]
    for runs, message in cases:
        with pytest.raises(UserError, match=message):
            write_ensemble(runs, output)
        assert not os.path.exists(output)
    os.makedirs(output)
    with pytest.raises(UserError, match="exists"):
        write_ensemble([trained_run, second_run], output)


def test_a_holdout_is_the_same_when_its_seed_is_whichever_seed_drew_it():
    from keras_nlp_app.config import load_config
    from keras_nlp_app.runs import _effective_data

    def holdout_seed(*overrides):
        return _effective_data(load_config(["configs/semeval2010.yaml"], overrides))["holdout_seed"]

    assert holdout_seed("train.seed=2") == 2
    assert holdout_seed("train.seed=2", "data.holdout_seed=1337") == holdout_seed() == 1337
    assert holdout_seed("data.holdout_fraction=0", "train.seed=2") is None  # nothing held out
