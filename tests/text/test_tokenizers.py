import numpy as np
import tensorflow as tf

from keras_nlp_app.text import tokenizers
from keras_nlp_app.text.preprocessors import ClassifierPreprocessor

TEXTS = ["A good film!", "un café très agréable 😀", "Don't DO it", "这部电影"] * 5


def test_word_split_is_unicode_aware():
    words = tokenizers.split_words(tf.constant(["Un CAFÉ, très bien!", "映画 😀ok"])).to_list()
    assert words == [[b"un", "café".encode(), b",", "très".encode(), b"bien", b"!"],
                     ["映".encode(), "画".encode(), "😀".encode(), b"ok"]]


def test_word_vocabulary_lookup_and_unknown_words():
    tokenizer = tokenizers.learn_tokenizer(TEXTS, kind="word", vocab_size=100)
    assert tokenizer.vocabulary[:2] == ["[PAD]", "[UNK]"]
    ids = tokenizer(tf.constant(["a GOOD zebra"])).to_list()[0]
    vocab = tokenizer.vocabulary
    assert [vocab[i] for i in ids] == ["a", "good", "[UNK]"]


def test_vocab_size_and_min_count_limit_the_vocabulary():
    tokenizer = tokenizers.learn_tokenizer(["a a a b b c"], kind="word", vocab_size=4)
    assert tokenizer.vocabulary == ["[PAD]", "[UNK]", "a", "b"]
    tokenizer = tokenizers.learn_tokenizer(["a a a b b c"], kind="word", min_count=2)
    assert tokenizer.vocabulary == ["[PAD]", "[UNK]", "a", "b"]


def test_whitespace_tokenizer_keeps_pretokenized_tokens_whole():
    tokenizer = tokenizers.learn_tokenizer(["it does n't work , really"], kind="whitespace")
    assert b"n't" in tokenizer.tokenize(tf.constant(["It does n't"])).to_list()[0]
    assert "n't" in tokenizer.vocabulary and "," in tokenizer.vocabulary


def test_save_and_load_round_trip_gives_the_same_ids(tmp_path):
    for kind in ("word", "whitespace", "wordpiece"):
        tokenizer = tokenizers.learn_tokenizer(TEXTS, kind=kind, vocab_size=120)
        tokenizers.save_tokenizer(tokenizer, str(tmp_path / kind))
        restored = tokenizers.load_tokenizer(str(tmp_path / kind))
        assert restored.kind == kind and restored.vocabulary == tokenizer.vocabulary
        probe = tf.constant(["a good café", "unseen words here"])
        assert tokenizer(probe).to_list() == restored(probe).to_list()


def test_wordpiece_splits_unknown_words_into_known_pieces():
    tokenizer = tokenizers.learn_tokenizer(TEXTS, kind="wordpiece", vocab_size=120)
    pieces = tokenizer.tokenize(tf.constant(["goodfilm"])).to_list()[0]
    assert b"".join(p.replace(b"##", b"") for p in pieces) == b"goodfilm"


def test_preprocessor_truncates_and_pads_with_zero():
    tokenizer = tokenizers.learn_tokenizer(["a b c d e f"], kind="word")
    preprocessor = ClassifierPreprocessor(tokenizer, sequence_length=4)
    ids = preprocessor(tf.constant(["a b c d e f", "a", ""])).numpy()
    assert ids.shape == (3, 4)
    assert (ids[1, 1:] == 0).all() and (ids[2] == 0).all() and (ids[0] > 1).all()
    assert preprocessor(tf.constant([""])).numpy().shape == (1, 1)


def test_tokenizer_runs_inside_tf_data():
    tokenizer = tokenizers.learn_tokenizer(TEXTS, kind="word")
    dataset = tf.data.Dataset.from_tensor_slices(TEXTS[:4]).map(tokenizer)
    lengths = [len(ids) for ids in dataset.as_numpy_iterator()]
    assert lengths == [4, 5, 5, 4]
    assert np.all(np.concatenate(list(dataset.as_numpy_iterator())) > 1)
