"""Length buckets: batches take a few padded shapes, hold the same rows, and give the same loss
as batches padded to their own longest row."""

import numpy as np
import tensorflow as tf

from keras_nlp_app.data.pipelines import length_boundaries, make_dataset


class SplitIds:
    """A stand-in preprocessor: whitespace-separated integers are the ids."""

    def ragged_ids(self, strings):
        return tf.strings.to_number(tf.strings.split(strings), tf.int32)


def _pairs(count, seed=0):
    rng = np.random.default_rng(seed)
    sources = [" ".join(str(x) for x in rng.integers(3, 50, rng.integers(1, 40)))
               for _ in range(count)]
    targets = tf.ragged.constant([[1, *rng.integers(3, 50, rng.integers(1, 30)), 2]
                                  for _ in range(count)], dtype=tf.int32)
    return sources, targets


def test_boundaries_are_few_rounded_and_hold_the_longest():
    lengths = np.random.default_rng(1).integers(1, 61, 1000)
    bounds = length_boundaries(lengths, 4).numpy().tolist()
    assert len(bounds) <= 4 and bounds == sorted(bounds)
    assert all(b % 8 == 0 for b in bounds[:-1]) and bounds[-1] >= lengths.max()
    assert length_boundaries([5, 5, 5], 4).numpy().tolist() == [8]


def test_bucketed_batches_hold_the_same_rows_in_few_shapes():
    sources, targets = _pairs(300)
    common = dict(preprocessor=SplitIds(), batch_size=16, training=False, sort_window=4)
    plain = list(make_dataset(sources, targets, **common))
    bucketed = list(make_dataset(sources, targets, length_buckets=4, **common))
    longest = np.maximum(SplitIds().ragged_ids(sources).row_lengths(), targets.row_lengths())
    bounds = set(length_boundaries(longest, 4).numpy())
    assert {int(s.shape[1]) for s, _ in bucketed} <= bounds
    assert {int(t.shape[1]) for _, t in bucketed} <= bounds
    assert len({(int(s.shape[1]), int(t.shape[1])) for s, t in bucketed}) <= 10
    assert len({(int(s.shape[1]), int(t.shape[1])) for s, t in plain}) > len(
        {(int(s.shape[1]), int(t.shape[1])) for s, t in bucketed})
    for (s1, t1), (s2, t2) in zip(plain, bucketed):
        np.testing.assert_array_equal(s1, s2[:, :s1.shape[1]])
        assert not np.any(s2[:, s1.shape[1]:]) and not np.any(t2[:, t1.shape[1]:])
        np.testing.assert_array_equal(t1, t2[:, :t1.shape[1]])


def test_bucketed_padding_gives_the_same_loss_as_padding_to_the_longest():
    import keras

    from keras_nlp_app.models import build_model
    from keras_nlp_app.tasks.seq2seq import _teacher_forcing
    from keras_nlp_app.tasks.seq2seq_graphs import smoothed_loss

    keras.utils.set_random_seed(0)
    model = build_model("transformer_seq2seq", source_vocab_size=60, target_vocab_size=60,
                        num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, dropout=0.0)
    sources, targets = _pairs(32, seed=2)
    common = dict(preprocessor=SplitIds(), batch_size=32, training=False, sort_window=0,
                  assemble=_teacher_forcing)
    [(inputs, labels)] = list(make_dataset(sources, targets, **common))
    [(wide_inputs, wide_labels)] = list(make_dataset(sources, targets, length_buckets=1, **common))
    assert wide_inputs["source"].shape[1] > inputs["source"].shape[1] or \
        wide_inputs["target"].shape[1] > inputs["target"].shape[1]
    loss = smoothed_loss(0.1)
    np.testing.assert_allclose(loss(wide_labels, model(wide_inputs, training=False)),
                               loss(labels, model(inputs, training=False)), rtol=1e-5)


def test_sort_windows_shuffle_every_row_once_and_sort_each_window_by_length():
    """Training batches: each epoch holds every row once; a batch is a slice of a window sorted
    by length (so its rows are in length order); the same seed repeats the same batches."""
    from keras_nlp_app.data.pipelines import batched_dataset

    lengths = np.random.default_rng(2).integers(1, 30, 103)
    # row i holds the value i + 1 (0 pads), so each padded batch names its rows
    rows = tf.ragged.constant([[i + 1] * n for i, n in enumerate(lengths)], dtype=tf.int32)
    labels = tf.range(103)

    def epoch(seed):
        dataset = batched_dataset([rows, labels], batch_size=8, training=True, seed=seed,
                                  sort_window=4)
        return [(ids.numpy(), ids_labels.numpy()) for ids, ids_labels in dataset]

    batches = epoch(seed=5)
    seen = np.concatenate([batch_labels for _, batch_labels in batches])
    assert sorted(seen.tolist()) == list(range(103))
    for ids, batch_labels in batches:
        assert (ids[:, 0] - 1).tolist() == batch_labels.tolist()  # the columns stay aligned
        batch_lengths = lengths[batch_labels]
        assert batch_lengths.tolist() == sorted(batch_lengths.tolist())
        assert ids.shape[1] == batch_lengths.max()  # padded to the batch's longest row
    assert seen.tolist() != list(range(103))  # shuffled
    again = epoch(seed=5)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(batches, again))


def test_a_sort_window_groups_pairs_by_their_longer_side():
    # sources all one length, targets of every length: grouping by the source alone would leave
    # each batch's targets as mixed as unsorted ones; by the longer side they pad little
    rng = np.random.default_rng(3)
    sources = ["7 8 9"] * 512
    targets = tf.ragged.constant([[1, *rng.integers(3, 50, rng.integers(1, 40)), 2]
                                  for _ in range(512)], dtype=tf.int32)

    def target_padding(sort_window):
        padded = real = 0
        for _, labels in make_dataset(sources, targets, preprocessor=SplitIds(), batch_size=16,
                                      training=True, sort_window=sort_window):
            padded, real = padded + labels.numpy().size, real + np.count_nonzero(labels.numpy())
        return padded / real

    assert target_padding(0) > 1.5
    assert target_padding(8) < 1.15
