"""tf.data pipelines: tokenize in graph once, then per epoch shuffle, group by length, pad.

No Python runs per example. All texts are tokenized up front, in batches, by the same
preprocessor layer that the SavedModel carries, into one ragged tensor held in memory. Each epoch
shuffles example *indices*; each window of `sort_window` batches is gathered, sorted by length
(an example's longest column) and cut into batches padded to their own longest row (the "pool"
batching of OpenNMT and fairseq), so padding stays small. Per-example tf.data elements and `bucket_by_sequence_length`
were measured 7x slower than this and slower than the models they fed.
"""

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def tokenize_all(texts, preprocessor, chunk=4096):
    """Ragged `[N, None]` token ids of every text (batched graph calls, no per-text Python)."""
    parts = [preprocessor.ragged_ids(tf.constant(texts[i:i + chunk], dtype=tf.string))
             for i in range(0, len(texts), chunk)]
    return tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]


def _dense(column, boundaries=None, value=0):
    """A batch column as a dense tensor: ragged rows padded with `value` to their longest (at
    least one step, so recurrent layers always have a time axis), or, with length `boundaries`,
    to the smallest boundary that holds the longest (one shape per bucket)."""
    if not isinstance(column, tf.RaggedTensor):
        return tf.identity(column)
    dense = column.to_tensor(value)
    width = tf.shape(dense)[1]
    target = tf.maximum(width, 1) if boundaries is None else bucket_length(tf.maximum(width, 1),
                                                                            boundaries)
    inner = [[0, 0]] * (dense.shape.rank - 2)
    return tf.pad(dense, [[0, 0], [0, target - width], *inner], constant_values=value)


def bucket_length(width, boundaries):
    """The smallest of the sorted `boundaries` that holds `width` (a scalar tensor)."""
    return tf.gather(boundaries, tf.searchsorted(boundaries, tf.reshape(width, [1]))[0])


def length_boundaries(lengths, buckets, multiple=8):
    """At most `buckets` padded lengths for rows of these lengths: the length quantiles at
    1/buckets, 2/buckets, ..., 1, rounded up to a multiple of `multiple`; the last holds the
    longest row. Batches padded to them take few shapes, so XLA compiles once per shape."""
    lengths = np.maximum(np.asarray(lengths, dtype=np.int64), 1)
    cuts = np.quantile(lengths, np.arange(1, buckets + 1) / buckets, method="higher")
    rounded = np.unique(-(-cuts // multiple) * multiple)
    rounded[-1] = max(rounded[-1], lengths.max())
    return tf.constant(rounded, tf.int32)


def make_dataset(texts, targets, preprocessor, *, batch_size, training, weights=None, seed=0,
                 sort_window=4, input_context=None, assemble=None, length_buckets=0):
    """Builds the (token_ids `[B, T]`, target `[B, ...]`[, weight `[B]`]) dataset for `fit`.

    Args:
        texts: list of N strings.
        targets: array with N rows (class ids, or float rows for a sigmoid head), or a ragged
            `[N, None]` tensor of target ids (sequence to sequence), padded per batch.
        preprocessor: a layer with `ragged_ids` (text/preprocessors.py).
        batch_size: the global batch size (per-replica batch × replicas).
        training: reshuffle every epoch; otherwise keep file order (within a sort window).
        weights: optional `[N]` per-example loss weights (class weights).
        seed: shuffle seed.
        sort_window: batches per window sorted by length before batching (when training, the
            window's batches are shuffled again); 0 or 1 for no length grouping.
        input_context: `tf.distribute.InputContext` when a strategy shards the input per worker.
        assemble: optional function from the padded batch tuple to the element `fit` takes.
        length_buckets: with N > 0, token columns (texts, and ragged targets) are padded to one
            of N lengths chosen from the examples' length distribution (`length_boundaries`)
            instead of each batch's longest row: a few shapes for XLA to compile, a little more
            padding.
    """
    ids = tokenize_all(texts, preprocessor)
    targets = targets if isinstance(targets, tf.RaggedTensor) else tf.constant(targets)
    columns = [ids, targets] + ([tf.constant(weights)] if weights is not None else [])
    # one set of lengths for every token column (source and target), from each example's
    # longest: N shapes in all, not N per column (XLA compiles each shape it meets, ~20 s each)
    ragged = [column for column in columns if isinstance(column, tf.RaggedTensor)]
    shared = (length_boundaries(np.max([c.row_lengths().numpy() for c in ragged], axis=0),
                                length_buckets) if length_buckets else None)
    return batched_dataset(
        columns, batch_size=batch_size, training=training, seed=seed, sort_window=sort_window,
        input_context=input_context, assemble=assemble,
        boundaries=[shared if isinstance(column, tf.RaggedTensor) else None for column in columns])


def batched_dataset(columns, *, batch_size, training, seed=0, sort_window=4, input_context=None,
                    assemble=None, boundaries=None, padding=None):
    """Batches of columns held in memory (tensors with N rows; ragged ones are padded per
    batch), grouped by each example's longest ragged column (a seq2seq pair's longer side, so
    source and target both pad little). The first column must be ragged. See `make_dataset`.

    Args:
        boundaries: per column, None (pad to the batch's longest) or length boundaries.
        padding: per column, the value that pads a ragged one (default 0).
    """
    boundaries = boundaries or [None] * len(columns)
    padding = padding or [0] * len(columns)
    window = batch_size * max(sort_window, 1)
    lengths = (tf.reduce_max(tf.stack([c.row_lengths() for c in columns
                                       if isinstance(c, tf.RaggedTensor)]), axis=0)
               if sort_window > 1 else None)

    def sorted_batches(index):
        """A window of example indices as batches of indices, shortest examples first."""
        order = tf.argsort(tf.gather(lengths, index), stable=True)
        return tf.data.Dataset.from_tensor_slices(tf.gather(index, order)).batch(batch_size)

    def gather_batch(index):
        return tuple(_dense(tf.gather(column, index), bounds, value)
                     for column, bounds, value in zip(columns, boundaries, padding))

    count = int(columns[0].nrows())
    dataset = tf.data.Dataset.range(count)
    if input_context is not None and input_context.num_input_pipelines > 1:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if training:
        dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    # plain tf ops, no tensor-dependent Python control flow: AutoGraph would only add start-up
    plain = tf.autograph.experimental.do_not_convert
    dataset = dataset.batch(window)
    if sort_window > 1:
        # only indices are sorted and batched: the rows are gathered once per batch (sorting
        # whole windows of ragged rows and unbatching them took 2-4x as long to the first batch)
        dataset = dataset.flat_map(plain(sorted_batches))
    dataset = dataset.map(plain(gather_batch), num_parallel_calls=AUTOTUNE)
    if sort_window > 1 and training:
        dataset = dataset.shuffle(sort_window, seed=seed, reshuffle_each_iteration=True)
    if assemble is not None:
        dataset = dataset.map(assemble, num_parallel_calls=AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True  # seeded runs repeat exactly
    return dataset.with_options(options).prefetch(AUTOTUNE)


def lm_windows(stream, batch_size, length, *, training, seed=0, starts=None):
    """(inputs `[B, length]`, targets `[B, length]`) batches of contiguous windows of an id stream.

    Training: every epoch starts the windows at a new random offset below `length` and shuffles
    them (seeded), so each pass sees every token once but at different window positions; the
    dataset repeats forever. Evaluation: windows from position 0 in order, the last partial
    batch dropped (exact whole-stream perplexity comes from `evaluate_stream`).

    `starts`: fixed window starts instead (a conditioned LM's text starts, so every window
    begins with its control token), shuffled each training epoch.

    Returns (dataset, batches in one pass).
    """
    data = tf.constant(stream, tf.int32)
    count = len(stream) - 1
    per_pass = (count - length) // length // batch_size if training else count // length // batch_size
    offsets = tf.range(length + 1)[None, :]

    def cut(starts):
        window = tf.gather(data, starts[:, None] + offsets)
        return window[:, :-1], window[:, 1:]

    if starts is not None:
        starts = np.asarray(starts, np.int64)
        fixed = tf.constant(starts[starts + length <= count], tf.int32)
        per_pass = int(fixed.shape[0]) // batch_size
        if not training:
            found = tf.data.Dataset.from_tensor_slices(fixed)
        else:
            found = tf.data.Dataset.range(1 << 30).flat_map(
                lambda epoch: tf.data.Dataset.from_tensor_slices(
                    tf.random.experimental.stateless_shuffle(
                        fixed, tf.stack([tf.constant(seed, tf.int64), epoch]))))
        return found.batch(batch_size, drop_remainder=True).map(cut).prefetch(AUTOTUNE), per_pass

    if not training:
        starts = tf.data.Dataset.range(count // length).map(lambda i: tf.cast(i, tf.int32) * length)
        return starts.batch(batch_size, drop_remainder=True).map(cut).prefetch(AUTOTUNE), per_pass

    def one_pass(epoch):
        seeds = tf.stack([tf.constant(seed, tf.int64), epoch])
        offset = tf.random.stateless_uniform([], seeds, maxval=length, dtype=tf.int32)
        starts = offset + tf.range((count - offset) // length) * length
        starts = tf.random.experimental.stateless_shuffle(starts, seeds)
        return tf.data.Dataset.from_tensor_slices(starts)

    dataset = tf.data.Dataset.range(1 << 30).flat_map(one_pass)
    return dataset.batch(batch_size, drop_remainder=True).map(cut).prefetch(AUTOTUNE), per_pass


def lm_stream_batches(stream, batch_size, length):
    """Truncated back-propagation batches: the stream is cut into `batch_size` rows, and batch i
    holds columns `[i × length, (i + 1) × length)` of every row, so consecutive batches continue
    each row (a stateful LSTM carries its state across them). Same order every pass.

    Returns (dataset, batches in one pass).
    """
    columns = (len(stream) - 1) // batch_size
    steps = columns // length
    if steps == 0:
        return None, 0
    rows = tf.constant(stream[:batch_size * columns].reshape(batch_size, columns))
    shifted = tf.constant(stream[1:batch_size * columns + 1].reshape(batch_size, columns))

    def cut(i):
        i = tf.cast(i, tf.int32)
        return rows[:, i * length:(i + 1) * length], shifted[:, i * length:(i + 1) * length]

    return tf.data.Dataset.range(steps).map(cut).prefetch(AUTOTUNE), steps
