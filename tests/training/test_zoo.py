"""Every model family trains, exports and serves; multi-label works end to end."""

import glob
import json
import os
import random

import numpy as np
import pytest
import tensorflow as tf

from keras_nlp_app.config import Config, load_config
from keras_nlp_app.export.saved_model import export_run
from keras_nlp_app.inference import evaluate, load_predictor
from keras_nlp_app.models import MODELS
from keras_nlp_app.tasks import get_task, labels
from keras_nlp_app.training.train import train
from tests.conftest import tiny_overrides

SMALL_PARAMS = {
    "lstm_classifier": "{embedding_dim: 8, lstm_units: 8}",
    "bilstm_classifier": "{embedding_dim: 8, lstm_units: 8, attention_dim: 8}",
    "cnn_classifier": "{embedding_dim: 8, num_filters: 8}",
    "fasttext_classifier": "{embedding_dim: 8}",
    "nb_classifier": "{alpha: 0.5}",
    "transformer_classifier": "{hidden_dim: 16, num_layers: 1, num_heads: 2, intermediate_dim: 16}",
    "ensemble_classifier": "{members: [{name: lstm_classifier, params: {embedding_dim: 8, lstm_units: 8}}, "
                           "{name: cnn_classifier, params: {embedding_dim: 8, num_filters: 8}}]}",
}


# from-scratch classifiers (backbone_classifier fine-tunes a preset: tests/tasks/test_finetune.py)
# > 15 s, or (lstm_classifier) trained and exported by the shared trained_run tests already
SLOW_FACTORIES = ("ensemble_classifier", "transformer_classifier", "bilstm_classifier",
                  "lstm_classifier", "cnn_classifier", "fasttext_classifier")
# fitted in phases of their own (a counting epoch; class LMs before training), each trained,
# exported and reloaded in its own test under tests/models/
OWN_TESTS = ("nbsvm_classifier", "ngram_classifier")


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n in SLOW_FACTORIES else n
    for n in sorted(n for n in MODELS if n.endswith("_classifier")
                    and not n.startswith("backbone") and n not in OWN_TESTS)])
def test_each_factory_trains_a_few_steps_and_exports(name, easy_files, tmp_path):
    extra = {"model.name": name, "model.params": SMALL_PARAMS[name], "train.epochs": 1,
             "train.steps_per_epoch": 3}
    if name == "fasttext_classifier":
        extra.update({"tokenizer.ngrams": 2, "tokenizer.ngram_buckets": 64})
    cfg = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(*easy_files, **extra))
    run_dir = train(cfg, run_dir=str(tmp_path / "run"))
    version_dir = export_run(run_dir, str(tmp_path / "export"))
    served = load_predictor(version_dir).predict(["a great film", ""])
    assert served["probabilities"].shape == (2, 2)
    np.testing.assert_allclose(served["probabilities"],
                               load_predictor(run_dir).predict(["a great film", ""])["probabilities"],
                               atol=1e-5)


def test_confusion_matrix_image_and_macro_f1_land_in_tensorboard(trained_run):
    tags = {}
    for path in glob.glob(os.path.join(trained_run, "logs", "validation", "*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags.setdefault(value.tag, value)
    assert "confusion_matrix" in tags and "epoch_macro_f1" in tags
    image = tf.io.decode_image(tf.make_tensor_proto(tags["confusion_matrix"].tensor).string_val[2]
                               if tags["confusion_matrix"].HasField("tensor")
                               else tags["confusion_matrix"].image.encoded_image_string)
    assert image.shape[0] == image.shape[1] and image.shape[-1] == 3  # a square 2x2 grid


def test_class_weights_scale_each_example_loss(easy_files, tmp_path):
    import keras

    from keras_nlp_app.data.pipelines import make_dataset
    from keras_nlp_app.models import build_model
    from keras_nlp_app.text import tokenizers
    from keras_nlp_app.text.preprocessors import ClassifierPreprocessor

    texts = ["good film", "bad film", "great plot", "awful plot", "good"]
    ids = np.array([1, 0, 1, 0, 1])
    space = labels.LabelSpace(["0", "1"])
    weights = labels.example_weights(ids, space, "balanced")
    preprocessor = ClassifierPreprocessor(tokenizers.learn_tokenizer(texts), 8)
    model = build_model("fasttext_classifier", vocab_size=preprocessor.input_vocabulary_size)
    model.compile(**get_task("classification").compile_arguments(Config(), space))
    targets = labels.targets(ids, space)
    weighted = make_dataset(texts, targets, preprocessor, batch_size=8, training=False, weights=weights)
    plain = make_dataset(texts, targets, preprocessor, batch_size=8, training=False)
    per_example = keras.ops.convert_to_numpy(keras.losses.binary_crossentropy(
        targets, model.predict(preprocessor(tf.constant(texts)), verbose=0)))
    assert model.evaluate(plain, verbose=0)[0] == pytest.approx(per_example.mean(), rel=1e-4)
    assert model.evaluate(weighted, verbose=0)[0] == pytest.approx((weights * per_example).mean(), rel=1e-4)


def _multilabel_rows(n, seed):
    rng = random.Random(seed)
    cues = {"sport": ["match", "goal", "team"], "finance": ["money", "bank", "stocks"],
            "weather": ["rain", "storm", "sunny"]}
    rows = []
    for _ in range(n):
        labels = [l for l in cues if rng.random() < 0.4]
        words = [rng.choice(cues[l]) for l in labels] + rng.sample(["the", "a", "today", "news", "of"], 3)
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "topics": labels})
    return rows


def test_multilabel_end_to_end(tmp_path):
    for split, n, seed in (("train", 400, 1), ("dev", 100, 2)):
        with open(tmp_path / f"{split}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in _multilabel_rows(n, seed))
    cfg = load_config(["configs/sst2_lstm.yaml"], tiny_overrides(
        str(tmp_path / "train.jsonl"), str(tmp_path / "dev.jsonl"), **{
            "data.multi_label": "true", "data.text_field": "text", "data.label_field": "topics",
            "model.name": "fasttext_classifier", "model.params": "{embedding_dim: 16}",
            "train.epochs": 15, "train.monitor": "val_macro_f1", "train.learning_rate": 0.05}))
    run_dir = train(cfg, run_dir=str(tmp_path / "run"))
    report = evaluate(run_dir)
    assert report["multi_label"] and report["macro_f1"] > 0.9 and report["accuracy"] > 0.8
    version_dir = export_run(run_dir, str(tmp_path / "export"))
    served = load_predictor(version_dir).predict(["the match in the rain", "news of today"])
    chosen = [[l.decode() for l in row if l] for row in served["labels"]]
    assert sorted(chosen[0]) == ["sport", "weather"] and chosen[1] == []
    assert evaluate(version_dir, data=str(tmp_path / "dev.jsonl")) == report
