"""Token attributions of a Keras model for one input: integrated gradients over the token
embeddings (Sundararajan et al., 2017) and the attention maps of its attention layers.

Both work on any model whose token ids go through a `keras.layers.Embedding` (our classifiers
and taggers, keras-hub backbones): the embedding layer's `call` is swapped for the duration of
one computation, so no model needs a second entry point. The caller says what to attribute with
`score_fn`, the task's map from model output to `[B, C]` class scores.
"""

import contextlib
import dataclasses

import numpy as np

from keras_nlp_app.errors import UserError

METHODS = ("integrated_gradients", "attention")


@dataclasses.dataclass
class Explanation:
    """What one text's prediction owes to each of its tokens.

    `attributions[c, t]` is token t's share of class c's score (integrated gradients: the terms
    sum to `scores[c] - baseline_scores[c]`), or, for attention, one row: the attention each
    token receives in the last attention layer (heads and query positions averaged).
    """

    text: str
    tokens: list
    classes: list
    scores: list
    attributions: np.ndarray
    method: str
    predicted: int
    baseline_scores: list = None
    attention: np.ndarray = None  # attention method: last layer's [T, T] map, heads averaged

    def to_json(self):
        record = {"text": self.text, "method": self.method, "tokens": self.tokens,
                  "classes": self.classes, "scores": [float(s) for s in self.scores],
                  "predicted": self.classes[self.predicted],
                  "attributions": np.round(self.attributions, 6).tolist()}
        if self.baseline_scores is not None:
            record["baseline_scores"] = [float(s) for s in self.baseline_scores]
        return record


def token_embedding(model):
    """The layer that turns token ids into vectors: one named `token_embedding` (keras-hub
    backbones, whose other embeddings hold positions or segments) or `word_embedding` (taggers,
    whose others embed casing), else the first Embedding."""
    import keras

    embeddings = [layer for layer in model._flatten_layers(include_self=False)
                  if isinstance(layer, keras.layers.Embedding)]
    if not embeddings:
        raise UserError(f"model {model.name} has no token embedding to attribute its output to")
    named = [layer for layer in embeddings if layer.name in ("token_embedding", "word_embedding")]
    return (named or embeddings)[0]


@contextlib.contextmanager
def _call_replaced(layer, replacement):
    """`layer.call` is `replacement(original_call, *args, **kwargs)` inside the block."""
    original = layer.call
    layer.call = lambda *args, **kwargs: replacement(original, *args, **kwargs)
    try:
        yield
    finally:
        del layer.call


def _repeated(inputs, count):
    import tensorflow as tf

    return tf.nest.map_structure(lambda x: tf.repeat(x, count, axis=0), inputs)


ROW_WORK_BUDGET = 2e10  # rows × tokens × non-embedding weights one pass may take (a few GB)


def rows_per_pass(model, embedding, tokens, max_rows=512):
    """How many path rows one integrated-gradients pass runs: at most `max_rows`, and fewer for
    a large model on a long text, whose backward pass keeps every row's activations (a 6-layer
    BERT's 19 classes × 33 points at 512 rows took 24 GB). The work of a row is taken as its
    tokens times the model's weights outside the embedding table."""
    weights = max(model.count_params() - embedding.count_params(), 1)
    return int(max(1, min(max_rows, ROW_WORK_BUDGET // (max(tokens, 1) * weights))))


def integrated_gradients(model, inputs, score_fn, steps=50, max_rows=512):
    """Integrated gradients of every class score for one example, from an all-zero embedding.

    The path from the zero baseline to the text's embeddings is sampled at `steps + 1` points
    and the gradients averaged by the trapezoid rule; a token's attribution is its embedding
    times the averaged gradient, summed over the embedding's width. The classes share passes:
    each class gets its own copy of the path in one batch, and the backward pass of the sum of
    each copy's own class score gives every class's gradients at once (rows do not interact in
    inference), at most `max_rows` rows a pass and fewer for a large model (`rows_per_pass`):
    a pass may end inside a class's path. One pass per class took most of a 19-relation model's
    epoch in its TensorBoard explanations.

    Args:
        model: a Keras model; `model(inputs)` gives the output `score_fn` reads.
        inputs: the model's inputs for a batch of one (a tensor or a dict of tensors).
        score_fn: model output → `[B, C]` float scores.
        steps: path segments; more gives sums closer to the score difference.
        max_rows: the largest batch one pass runs (classes × (steps + 1) rows in all).

    Returns:
        (token ids `[T]`, attributions `[C, T]`, scores `[C]`, baseline scores `[C]`).
    """
    import tensorflow as tf

    layer = token_embedding(model)
    seen = {}

    def recording(original, ids, *args, **kwargs):
        vectors = original(ids, *args, **kwargs)
        if not kwargs.get("reverse"):
            seen["ids"], seen["vectors"] = ids, vectors
        return vectors

    with _call_replaced(layer, recording):
        num_classes = int(score_fn(model(inputs, training=False)).shape[-1])
    if "ids" not in seen:
        raise UserError(f"model {model.name}: its embedding {layer.name} was not called")
    vectors = tf.cast(seen["vectors"], tf.float32)  # [1, T, D]
    points = steps + 1
    path = tf.linspace(0.0, 1.0, points)[:, None, None] * vectors  # [S, T, D]
    per_pass = rows_per_pass(model, layer, int(vectors.shape[1]), max_rows)

    def scores_and_gradients(paths, row_classes):
        """Scores of `paths` (one path copy per class), and the gradient of each row's own
        class score (`row_classes`) with respect to it. Eager: a compiled graph would be
        traced anew for every text, which costs more than it saves on a few classes."""
        def injecting(original, ids, *args, **kwargs):
            if kwargs.get("reverse"):
                return original(ids, *args, **kwargs)
            return tf.cast(paths, seen["vectors"].dtype)

        with tf.GradientTape() as tape, _call_replaced(layer, injecting):
            tape.watch(paths)
            scores = tf.cast(score_fn(model(_repeated(inputs, int(paths.shape[0])),
                                            training=False)), tf.float32)
            total = tf.reduce_sum(scores * tf.one_hot(row_classes, num_classes))
        return scores, tape.gradient(total, paths)

    row_classes = np.repeat(np.arange(num_classes), points)  # row r: class r // points
    row_points = np.tile(np.arange(points), num_classes)  # and path point r % points
    scores, gradients = [], []
    for first in range(0, len(row_classes), per_pass):
        rows = slice(first, first + per_pass)
        part_scores, part_gradients = scores_and_gradients(
            tf.gather(path, row_points[rows]), tf.constant(row_classes[rows]))
        scores.append(part_scores.numpy())
        gradients.append(part_gradients.numpy())
    gradients = np.concatenate(gradients).reshape(num_classes, points, -1, path.shape[-1])
    average = np.mean((gradients[:, :-1] + gradients[:, 1:]) / 2.0, axis=1)
    attributions = np.sum(vectors.numpy() * average, axis=-1)  # [classes, T]
    path_scores = np.concatenate(scores)[:points]  # class 0's path: every class's scores
    ids = np.asarray(seen["ids"])[0]
    return ids, attributions, path_scores[-1], path_scores[0]


def attention_maps(model, inputs):
    """`[layers, heads, T, T]` attention probabilities of every attention layer, in call order,
    for a batch of one."""
    import keras

    layers = [layer for layer in model._flatten_layers(include_self=False)
              if isinstance(layer, keras.layers.MultiHeadAttention)]
    if not layers:
        raise UserError(f"model {model.name} has no attention layers; use --method "
                        f"integrated_gradients")
    maps = []

    def recording(original, query, key, value, attention_mask=None, training=None,
                  return_attention_scores=False, **kwargs):
        output, scores = original(query, key, value, attention_mask, training, True, **kwargs)
        maps.append(np.asarray(scores)[0])
        return output, scores if return_attention_scores else None

    with contextlib.ExitStack() as stack:
        for layer in layers:
            original = layer._compute_attention
            layer._compute_attention = (
                lambda *a, _original=original, **k: recording(_original, *a, **k))
            stack.callback(layer.__dict__.pop, "_compute_attention")
        model(inputs, training=False)
    return np.stack(maps)


def explain(model, inputs, *, text, score_fn, classes, token_strings, method="integrated_gradients",
            steps=50, keep=None):
    """One `Explanation` of `text`, whose model inputs (batch of one) are `inputs`.

    Args:
        token_strings: token ids `[T]` → their strings, for display.
        keep: token ids → `[T]` booleans of the positions to show (padding dropped); default all.
    """
    import tensorflow as tf

    if method not in METHODS:
        raise UserError(f"unknown explanation method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "integrated_gradients":
        ids, attributions, scores, baseline = integrated_gradients(model, inputs, score_fn, steps)
        attention = None
    else:
        seen = {}

        def recording(original, ids, *args, **kwargs):
            seen.setdefault("ids", ids)
            return original(ids, *args, **kwargs)

        with _call_replaced(token_embedding(model), recording):
            maps = attention_maps(model, inputs)
        ids = np.asarray(seen["ids"])[0]
        scores = np.asarray(tf.cast(score_fn(model(inputs, training=False)), tf.float32))[0]
        baseline = None
        attention = maps[-1].mean(axis=0)
    shown = np.ones(len(ids), bool) if keep is None else np.asarray(keep(ids), bool)
    if not shown.any():
        raise UserError(f"{text!r} has no tokens to explain")
    if attention is not None:
        attention = attention[np.ix_(shown, shown)]
        attributions = attention.mean(axis=0, keepdims=True)
    else:
        attributions = attributions[:, shown]
    return Explanation(text=text, tokens=list(token_strings(ids[shown])), classes=list(classes),
                       scores=list(np.asarray(scores, np.float64)), attributions=attributions,
                       method=method, predicted=int(np.argmax(scores)),
                       baseline_scores=None if baseline is None else list(np.asarray(baseline)),
                       attention=attention)
