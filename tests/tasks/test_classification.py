import numpy as np
import pytest

from keras_nlp_app.config import load_config
from keras_nlp_app.errors import DataError, UserError
from keras_nlp_app.tasks import classification
from tests.conftest import easy_sentiment, write_tsv


def test_holdout_is_seeded_disjoint_and_used_the_same_way_everywhere(tmp_path):
    path = write_tsv(tmp_path / "train.tsv", easy_sentiment(50, 3))
    cfg = load_config([], ["data.dataset=null", f"data.train_file={path}",
                           "data.holdout_fraction=0.2", "data.max_train_examples=40"])
    train, validation = classification.load_splits(cfg.data, seed=7)
    again_train, again_validation = classification.load_splits(cfg.data, seed=7)
    assert (len(train.texts), len(validation.texts)) == (32, 8)
    assert validation.lines == again_validation.lines and train.lines == again_train.lines
    assert not set(train.lines) & set(validation.lines)
    assert max(train.lines + validation.lines) <= 41  # only the first 40 rows (lines 2..41)


def test_labels_sort_numerically_and_need_two_classes():
    assert classification.label_vocabulary(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert classification.label_vocabulary(["pos", "neg"]) == ["neg", "pos"]
    with pytest.raises(UserError, match="1 distinct label"):
        classification.label_vocabulary(["1", "1"])


def test_targets_and_probabilities_for_sigmoid_and_softmax_heads():
    ids = np.array([0, 1, 1])
    assert classification.targets(ids, 2).shape == (3, 1)
    assert classification.targets(ids, 3).shape == (3,)
    probs = classification.probabilities(np.array([[0.25], [0.9]], dtype="float32")).numpy()
    np.testing.assert_allclose(probs, [[0.75, 0.25], [0.1, 0.9]], rtol=1e-6)


def test_macro_f1_and_confusion_matrix_over_the_whole_set():
    report = classification.evaluate(np.array([0, 0, 1, 1]),
                                     np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.4, 0.6]]),
                                     ["neg", "pos"])
    assert report["accuracy"] == 0.75
    assert report["confusion_matrix"] == [[1, 1], [0, 2]]
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert report["per_class"]["pos"]["precision"] == pytest.approx(2 / 3)


def test_unknown_label_names_file_and_line(tmp_path):
    path = write_tsv(tmp_path / "dev.tsv", [("fine", 1), ("odd", 7)])
    examples = classification.read_split(
        load_config([], ["data.dataset=null", f"data.validation_file={path}",
                         "data.train_file=x"]).data, "validation")
    with pytest.raises(DataError, match=r"dev.tsv:3: unknown label '7'"):
        classification.class_ids(examples, ["0", "1"])
