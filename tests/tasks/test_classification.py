import numpy as np
import pytest

from keras_nlp_app.config import load_config
from keras_nlp_app.data.readers import read_examples
from keras_nlp_app.errors import DataError, UserError
from keras_nlp_app.tasks import classification, get_task, labels
from keras_nlp_app.tasks.labels import LabelSpace
from tests.conftest import easy_sentiment, write_tsv


def test_holdout_is_seeded_disjoint_and_used_the_same_way_everywhere(tmp_path):
    path = write_tsv(tmp_path / "train.tsv", easy_sentiment(50, 3))
    cfg = load_config([], ["data.dataset=null", f"data.train_file={path}",
                           "data.holdout_fraction=0.2", "data.max_train_examples=40"])
    task = get_task("classification")
    train, validation = task.load_splits(cfg.data, seed=7)
    again_train, again_validation = task.load_splits(cfg.data, seed=7)
    # the holdout comes first (10 of 50 rows), then train is capped: the validation set does not
    # depend on the cap
    assert (len(train.texts), len(validation.texts)) == (40, 10)
    assert validation.lines == again_validation.lines and train.lines == again_train.lines
    assert not set(train.lines) & set(validation.lines)
    uncapped = load_config([], ["data.dataset=null", f"data.train_file={path}",
                                "data.holdout_fraction=0.2"])
    _, same_validation = task.load_splits(uncapped.data, seed=7)
    assert same_validation.lines == validation.lines
    for other in ("tagging", "seq2seq"):  # one split reader for every task
        assert type(get_task(other)).load_splits is type(task).load_splits


def _examples(tmp_path, rows):
    return read_examples(write_tsv(tmp_path / "data.tsv", rows))


def test_labels_sort_numerically_and_need_two_classes(tmp_path):
    assert labels.label_space(_examples(tmp_path, [("a", 10), ("b", 2), ("c", 1)])).labels == ["1", "2", "10"]
    assert labels.label_space(_examples(tmp_path, [("a", "pos"), ("b", "neg")])).labels == ["neg", "pos"]
    with pytest.raises(UserError, match="1 distinct label"):
        labels.label_space(_examples(tmp_path, [("a", 1), ("b", 1)]))


def test_targets_for_binary_multiclass_and_multilabel_heads():
    ids = np.array([0, 1, 2])
    assert labels.targets(ids[:2], LabelSpace(["0", "1"])).shape == (2, 1)
    np.testing.assert_array_equal(labels.targets(ids, LabelSpace(["a", "b", "c"])), np.eye(3))
    hot = np.array([[1, 0, 1]])
    assert labels.targets(hot, LabelSpace(["a", "b", "c"], multi_label=True)).shape == (1, 3)
    probs = classification.probabilities(np.array([[0.25], [0.9]], dtype="float32")).numpy()
    np.testing.assert_allclose(probs, [[0.75, 0.25], [0.1, 0.9]], rtol=1e-6)


def test_macro_f1_and_confusion_matrix_over_the_whole_set():
    report = classification.evaluate(np.array([0, 0, 1, 1]),
                                     np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.4, 0.6]]),
                                     LabelSpace(["neg", "pos"]))
    assert report["accuracy"] == 0.75
    assert report["confusion_matrix"] == [[1, 1], [0, 2]]
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert report["per_class"]["pos"]["precision"] == pytest.approx(2 / 3)
    assert report["balanced_accuracy"] == pytest.approx((1 / 2 + 2 / 2) / 2)  # mean recall


def test_k_fold_holdouts_cover_every_example_once():
    from keras_nlp_app.data.readers import Examples, ReadReport
    from keras_nlp_app.data.splits import holdout

    examples = Examples(texts=[f"t{i}" for i in range(23)], labels=[i % 2 for i in range(23)],
                        lines=list(range(1, 24)), report=ReadReport("x.tsv", 23))
    held = []
    for fold in range(5):
        train, validation = holdout(examples, 0.2, seed=7, fold=(fold, 5))
        assert not set(train.texts) & set(validation.texts)
        assert len(train.texts) + len(validation.texts) == 23
        held += validation.texts
    assert sorted(held) == sorted(examples.texts)


def test_unknown_label_names_file_and_line(tmp_path):
    examples = _examples(tmp_path, [("fine", 1), ("odd", 7)])
    with pytest.raises(DataError, match=r"data.tsv:3: unknown label '7'"):
        labels.encode(examples, LabelSpace(["0", "1"]))


def test_multilabel_lists_and_separated_labels_become_multi_hot(tmp_path):
    path = tmp_path / "ml.jsonl"
    path.write_text('{"sentence": "a", "label": ["sport", "news"]}\n{"sentence": "b", "label": []}\n')
    examples = read_examples(str(path))
    space = labels.label_space(examples, multi_label=True)
    assert space.labels == ["news", "sport"]
    np.testing.assert_array_equal(labels.encode(examples, space), [[1, 1], [0, 0]])
    tsv = classification.split_multi_labels(_examples(tmp_path, [("x", "news, sport"), ("y", "news")]), ",")
    assert tsv.labels == [["news", "sport"], ["news"]]
    with pytest.raises(DataError, match="set data.multi_label"):
        labels.label_space(examples, multi_label=False)


def test_multilabel_report_and_tuned_thresholds():
    truth = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    probs = np.array([[0.9, 0.2], [0.6, 0.35], [0.2, 0.4], [0.1, 0.1]])
    thresholds = classification.tune_thresholds(truth, probs)
    assert thresholds[0] <= 0.6 and 0.2 < thresholds[1] <= 0.35
    space = LabelSpace(["a", "b"], multi_label=True, thresholds=thresholds)
    report = classification.evaluate(truth, probs, space)
    assert report["accuracy"] == 1.0 and report["macro_f1"] == 1.0 and report["micro_f1"] == 1.0
    untuned = classification.evaluate(truth, probs, LabelSpace(["a", "b"], multi_label=True))
    assert untuned["accuracy"] == 0.5  # threshold 0.5 misses label b twice


def test_class_weights_balanced_and_explicit():
    ids = np.array([0, 0, 0, 1])
    space = LabelSpace(["0", "1"])
    np.testing.assert_allclose(labels.example_weights(ids, space, "balanced"),
                               [4 / 6, 4 / 6, 4 / 6, 2.0])
    np.testing.assert_allclose(labels.example_weights(ids, space, {1: 3.0}), [1, 1, 1, 3])
    assert labels.example_weights(ids, space, "none") is None
    with pytest.raises(UserError, match="unknown label '7'"):
        labels.example_weights(ids, space, {"7": 2.0})


def test_serving_outputs_top_k_and_multilabel_labels():
    probs = np.array([[0.7, 0.2, 0.6], [0.1, 0.3, 0.2]], dtype="float32")
    single = classification.serving_outputs(probs, LabelSpace(["a", "b", "c"]), top_k=2)
    assert single["top_k_labels"].numpy().tolist() == [[b"a", b"c"], [b"b", b"c"]]
    multi = classification.serving_outputs(probs, LabelSpace(["a", "b", "c"], multi_label=True), top_k=5)
    assert multi["labels"].numpy().tolist() == [[b"a", b"c", b""], [b"", b"", b""]]
    assert multi["top_k_labels"].shape == (2, 3)


def test_train_subset_is_a_seeded_random_subset_after_the_holdout(tmp_path):
    path = write_tsv(tmp_path / "train.tsv", easy_sentiment(100, 4))
    base = ["data.dataset=null", f"data.train_file={path}", "data.holdout_fraction=0.2"]
    task = get_task("classification")

    def picked(*extra):
        train, validation = task.load_splits(load_config([], base + list(extra)).data, seed=7)
        return train.lines, validation.lines

    full_train, validation = picked()
    first, same_validation = picked("data.train_subset=30", "data.subset_seed=1")
    again, _ = picked("data.train_subset=30", "data.subset_seed=1")
    other, _ = picked("data.train_subset=30", "data.subset_seed=2")
    assert len(first) == 30 and first == again and first != other
    assert set(first) <= set(full_train) and first == sorted(first)  # file order kept
    assert same_validation == validation  # every point of a curve is scored on the same rows
    with pytest.raises(UserError, match="has only 80 training examples"):
        picked("data.train_subset=81")
