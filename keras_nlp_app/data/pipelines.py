"""tf.data pipelines: tokenize in graph, cache, shuffle, bucket by length, pad, prefetch.

No Python runs per example: texts are tokenized in batches by the same preprocessor layer that
the SavedModel carries, then bucketed so that padding stays small.
"""

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def _at_least_one_token(ids, *rest):
    # Empty texts keep one padding step, so every batch has a time axis.
    return (tf.pad(ids, [[0, tf.maximum(1 - tf.shape(ids)[0], 0)]]), *rest)


def make_dataset(texts, targets, preprocessor, *, batch_size, training, weights=None, seed=0,
                 shuffle_buffer=100000, bucket_boundaries=(), input_context=None):
    """Builds the (token_ids `[B, T]`, target `[B, ...]`[, weight `[B]`]) dataset for `fit`.

    Args:
        texts: list of N strings.
        targets: array with N rows (class ids, or float rows for a sigmoid head).
        preprocessor: a layer with `ragged_ids` and `sequence_length` (text/preprocessors.py).
        batch_size: the global batch size (per-replica batch × replicas).
        training: shuffle each epoch; otherwise keep file order.
        weights: optional `[N]` per-example loss weights (class weights).
        seed: shuffle seed.
        shuffle_buffer: examples in the shuffle buffer.
        bucket_boundaries: token-length edges for bucketing; empty for plain padded batches.
        input_context: `tf.distribute.InputContext` when a strategy shards the input per worker.
    """
    columns = (tf.constant(texts, dtype=tf.string), targets)
    if weights is not None:
        columns += (weights,)
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if input_context is not None and input_context.num_input_pipelines > 1:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    length = preprocessor.sequence_length
    dataset = (
        dataset.batch(1024)
        .map(lambda text, *rest: (preprocessor.ragged_ids(text), *rest), num_parallel_calls=AUTOTUNE)
        .unbatch()
        .map(_at_least_one_token, num_parallel_calls=AUTOTUNE)
        .cache()
    )
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    shapes = ([None], list(targets.shape[1:])) + (([],) if weights is not None else ())
    longest = length * max(getattr(preprocessor, "ngrams", 1), 1)
    boundaries = [b for b in bucket_boundaries if b < longest]
    if boundaries:
        dataset = dataset.bucket_by_sequence_length(
            lambda ids, *_: tf.shape(ids)[0], boundaries, [batch_size] * (len(boundaries) + 1),
            padded_shapes=shapes, drop_remainder=False)
    else:
        dataset = dataset.padded_batch(batch_size, padded_shapes=shapes)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True  # seeded runs repeat exactly
    return dataset.with_options(options).prefetch(AUTOTUNE)
