"""Tag schemes and entity spans: conversions round trip, and the export's in-graph span rules
agree with the Python ones and with seqeval's."""

import random

import pytest

from keras_nlp_app.text import entities


def random_spans(rng, length):
    spans, position = [], 0
    while position < length:
        position += rng.randint(0, 2)
        width = rng.randint(1, 3)
        if position + width > length:
            break
        spans.append((rng.choice(["PER", "LOC", "ORG"]), position, position + width))
        position += width
    return spans


def test_every_scheme_round_trips_through_spans_and_conversions():
    rng = random.Random(0)
    for _ in range(300):
        length = rng.randint(1, 10)
        spans = random_spans(rng, length)
        by_scheme = {s: entities.tags_from_spans(spans, length, s) for s in entities.SCHEMES}
        for scheme, tags in by_scheme.items():
            assert entities.spans_from_tags(tags) == spans, (scheme, tags)
            for other in entities.SCHEMES:
                assert entities.convert_tags(tags, other) == by_scheme[other]


def test_iob1_uses_b_only_between_adjacent_entities_of_one_type():
    spans = [("PER", 0, 2), ("PER", 2, 3), ("LOC", 3, 4)]
    assert entities.tags_from_spans(spans, 5, "iob1") == ["I-PER", "I-PER", "B-PER", "I-LOC", "O"]
    assert entities.tags_from_spans(spans, 5, "bioes") == ["B-PER", "E-PER", "S-PER", "S-LOC", "O"]


def test_malformed_tags_are_refused():
    for bad in ("B", "X-PER", "B-", "per"):
        with pytest.raises(ValueError):
            entities.split_tag(bad)


def test_graph_entity_bounds_agree_with_python_and_seqeval_on_messy_sequences():
    import tensorflow as tf
    from seqeval.metrics.sequence_labeling import get_entities

    rng = random.Random(1)
    pool = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    rows = [[rng.choice(pool) for _ in range(rng.randint(1, 8))] for _ in range(200)]
    width = max(map(len, rows))
    dense = tf.constant([r + ["O"] * (width - len(r)) for r in rows])
    mask = tf.sequence_mask([len(r) for r in rows], width)
    starts, ends = (t.numpy() for t in entities.graph_entity_bounds(dense, mask))
    for row, tags in enumerate(rows):
        begin = [i for i in range(width) if starts[row, i]]
        finish = [i + 1 for i in range(width) if ends[row, i]]
        python = [(s, e) for _, s, e in entities.spans_from_tags(tags)]
        assert list(zip(begin, finish)) == python, tags
        assert [(s, e + 1) for _, s, e in get_entities(tags)] == python, tags


def test_graph_entity_bounds_of_a_batch_without_entities():
    import tensorflow as tf

    for tags in (tf.constant([["O", "O"]]), tf.zeros([1, 0], tf.string)):
        mask = tf.ones(tf.shape(tags), tf.bool)
        starts, ends = entities.graph_entity_bounds(tags, mask)
        assert not starts.numpy().any() and not ends.numpy().any()
