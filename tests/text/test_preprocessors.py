import tensorflow as tf

from keras_nlp_app.text import tokenizers
from keras_nlp_app.text.preprocessors import ClassifierPreprocessor, truncate


def test_truncation_policies_keep_head_tail_or_both():
    ids = tf.ragged.constant([[1, 2, 3, 4, 5, 6, 7], [1, 2]])
    assert truncate(ids, 4, "head").to_list() == [[1, 2, 3, 4], [1, 2]]
    assert truncate(ids, 4, "tail").to_list() == [[4, 5, 6, 7], [1, 2]]
    assert truncate(ids, 5, "head+tail").to_list() == [[1, 2, 3, 6, 7], [1, 2]]


def test_hashed_bigrams_follow_words_in_their_own_id_range():
    tokenizer = tokenizers.learn_tokenizer(["a b c"], kind="word")
    preprocessor = ClassifierPreprocessor(tokenizer, sequence_length=8, ngrams=2, ngram_buckets=50)
    assert preprocessor.input_vocabulary_size == tokenizer.vocabulary_size + 50
    row = preprocessor.ragged_ids(tf.constant(["a b c"])).to_list()[0]
    bigrams = row[3:]
    assert len(bigrams) == 2 and all(tokenizer.vocabulary_size <= b < tokenizer.vocabulary_size + 50 for b in bigrams)
    again = preprocessor.ragged_ids(tf.constant(["x a b"])).to_list()[0]
    assert again[-1] == bigrams[0]  # "a b" hashes to the same bucket wherever it appears


def test_exact_bigrams_are_vocabulary_entries_and_unseen_ones_are_unknown():
    import pytest

    tokenizer = tokenizers.learn_tokenizer(["a b c", "a b d", "c a"], kind="word", ngrams=2,
                                           min_count=2)
    assert tokenizer.vocabulary[-1] == "a b"  # the only bigram seen twice; words come first
    preprocessor = ClassifierPreprocessor(tokenizer, sequence_length=8, ngrams=2)
    assert preprocessor.input_vocabulary_size == tokenizer.vocabulary_size
    row = preprocessor.ragged_ids(tf.constant(["a b d c"])).to_list()[0]
    words, bigrams = row[:4], row[4:]
    assert bigrams == [tokenizer.vocabulary.index("a b"), 1, 1]  # "b d", "d c": unknown
    assert words[0] == tokenizer.vocabulary.index("a")
    saved = tokenizers.load_tokenizer(_saved(tokenizer))
    assert saved.vocabulary == tokenizer.vocabulary and saved.ngram_order == 2
    with pytest.raises(ValueError, match="ngram_buckets"):
        ClassifierPreprocessor(tokenizers.learn_tokenizer(["a b"], kind="word"), ngrams=2)


def _saved(tokenizer):
    import tempfile

    folder = tempfile.mkdtemp()
    tokenizers.save_tokenizer(tokenizer, folder)
    return folder


def test_a_start_id_begins_every_row_inside_the_length():
    tokenizer = tokenizers.learn_tokenizer(["a b c d"], kind="word", reserved=("<eos>",))
    start = tokenizer.vocabulary.index("<eos>")
    preprocessor = ClassifierPreprocessor(tokenizer, sequence_length=3, start_id=start)
    rows = preprocessor.ragged_ids(tf.constant(["a b c d", ""])).to_list()
    assert rows == [[start, *tokenizer(tf.constant(["a b"])).to_list()[0]], [start]]
    assert preprocessor.get_config()["start_id"] == start
