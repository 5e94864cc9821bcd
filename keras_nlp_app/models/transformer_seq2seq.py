"""Transformer encoder-decoder (Vaswani et al. 2017) for translation, summarization and dialogue.

Pre-norm blocks (more stable than the paper's post-norm at small batch sizes), sinusoidal or
learned positions, optional shared source/target embeddings, output layer tied to the target
embedding. For decoding it offers the interface of keras_nlp_app/decoding/ with a `source`:
the encoder runs once, every decoder layer's cross-attention keys and values are computed once
into the cache, and each step attends over a key/value cache of the target so far.

Training input: `{"source": [B, S], "target": [B, T]}` ids (target = BOS + reference, shifted
right), padding id 0; output: logits `[B, T, target_vocab]`.
"""

import math

import keras
from keras import ops

from keras_nlp_app.models.transformer_lm import mix_values, query_key_scores


def _normal(stddev=0.02):
    return keras.initializers.RandomNormal(stddev=stddev)


def sinusoidal_positions(length, dim, start=0):
    """`[length, dim]` sine/cosine position encodings (Vaswani et al.), from position `start`."""
    positions = ops.cast(ops.arange(length) + start, "float32")[:, None]
    rates = ops.exp(-math.log(10000.0) * ops.cast(ops.arange(0, dim, 2), "float32") / dim)
    angles = positions * rates[None, :]
    return ops.reshape(ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1), (length, dim))


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class Attention(keras.layers.Layer):
    """Multi-head attention with separate query and key/value projections (self or cross)."""

    def __init__(self, hidden_dim, num_heads, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim {hidden_dim} is not divisible by num_heads {num_heads}")
        self.hidden_dim, self.num_heads = hidden_dim, num_heads
        self.head_dim = hidden_dim // num_heads
        self.query = keras.layers.Dense(hidden_dim, kernel_initializer=_normal(), name="query")
        self.key_value = keras.layers.Dense(2 * hidden_dim, kernel_initializer=_normal(),
                                            name="key_value")
        self.output_projection = keras.layers.Dense(hidden_dim, kernel_initializer=_normal(),
                                                    name="output")
        self.dropout = keras.layers.Dropout(dropout)

    def _heads(self, x, parts):
        shape = ops.shape(x)
        return ops.reshape(x, (shape[0], shape[1], parts, self.num_heads, self.head_dim))

    def keys_values(self, memory):
        """Keys and values `[B, M, H, D]` of `memory [B, M, hidden]`."""
        kv = self._heads(self.key_value(memory), 2)
        return kv[:, :, 0], kv[:, :, 1]

    def attend(self, x, keys, values, mask, training=False):
        """`x [B, T, hidden]` attends over keys/values; `mask` broadcasts to `[B, H, T, M]`."""
        q = self._heads(self.query(x), 1)[:, :, 0]
        scores = ops.where(mask, query_key_scores(q, keys), ops.cast(-1e9, q.dtype))
        weights = self.dropout(ops.softmax(scores, axis=-1), training=training)
        out = mix_values(weights, values)
        shape = ops.shape(out)
        return self.output_projection(ops.reshape(out, (shape[0], shape[1], self.hidden_dim)))


def _mlp(hidden_dim, intermediate_dim, name):
    return keras.Sequential([
        keras.layers.Dense(intermediate_dim, activation="gelu", kernel_initializer=_normal()),
        keras.layers.Dense(hidden_dim, kernel_initializer=_normal()),
    ], name=name)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class EncoderBlock(keras.layers.Layer):
    def __init__(self, hidden_dim, num_heads, intermediate_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-5)
        self.attention = Attention(hidden_dim, num_heads, dropout, name="self_attention")
        self.mlp_norm = keras.layers.LayerNormalization(epsilon=1e-5)
        self.mlp = _mlp(hidden_dim, intermediate_dim, "mlp")
        self.dropout = keras.layers.Dropout(dropout)

    def build(self, *shapes, **kwargs):
        self.built = True  # sublayers build on the first call (their inputs differ in shape)

    def call(self, x, mask, training=False):
        normed = self.attention_norm(x)
        keys, values = self.attention.keys_values(normed)
        x = x + self.dropout(self.attention.attend(normed, keys, values, mask, training),
                             training=training)
        return x + self.dropout(self.mlp(self.mlp_norm(x)), training=training)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class CrossAttentionDecoderBlock(keras.layers.Layer):
    def __init__(self, hidden_dim, num_heads, intermediate_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.self_norm = keras.layers.LayerNormalization(epsilon=1e-5)
        self.self_attention = Attention(hidden_dim, num_heads, dropout, name="self_attention")
        self.cross_norm = keras.layers.LayerNormalization(epsilon=1e-5)
        self.cross_attention = Attention(hidden_dim, num_heads, dropout, name="cross_attention")
        self.mlp_norm = keras.layers.LayerNormalization(epsilon=1e-5)
        self.mlp = _mlp(hidden_dim, intermediate_dim, "mlp")
        self.dropout = keras.layers.Dropout(dropout)

    def _rest(self, x, cross_keys, cross_values, source_mask, training):
        x = x + self.dropout(self.cross_attention.attend(
            self.cross_norm(x), cross_keys, cross_values, source_mask, training), training=training)
        return x + self.dropout(self.mlp(self.mlp_norm(x)), training=training)

    def build(self, *shapes, **kwargs):
        self.built = True  # sublayers build on the first call (their inputs differ in shape)

    def call(self, x, memory, source_mask, training=False):
        length = ops.shape(x)[1]
        normed = self.self_norm(x)
        keys, values = self.self_attention.keys_values(normed)
        causal = ops.tril(ops.ones((length, length), "bool"))[None, None]
        x = x + self.dropout(self.self_attention.attend(normed, keys, values, causal, training),
                             training=training)
        cross_keys, cross_values = self.cross_attention.keys_values(memory)
        return self._rest(x, cross_keys, cross_values, source_mask, training)

    def step(self, x, keys, values, cross_keys, cross_values, source_mask, index):
        normed = self.self_norm(x)
        k, v = self.self_attention.keys_values(normed)
        keys = ops.slice_update(keys, (0, index, 0, 0), k)
        values = ops.slice_update(values, (0, index, 0, 0), v)
        visible = (ops.arange(ops.shape(keys)[1]) <= index)[None, None, None, :]
        x = x + self.self_attention.attend(normed, keys, values, visible)
        return self._rest(x, cross_keys, cross_values, source_mask, False), keys, values


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class TransformerSeq2Seq(keras.Model):
    """Encoder-decoder Transformer: `{"source", "target"}` ids → target logits."""

    def __init__(self, *, source_vocab_size, target_vocab_size, num_layers=3, num_heads=4,
                 hidden_dim=256, intermediate_dim=None, dropout=0.1, max_length=256,
                 positions="sinusoidal", share_embeddings=False, **kwargs):
        super().__init__(**kwargs)
        if positions not in ("sinusoidal", "learned"):
            raise ValueError(f"positions must be sinusoidal or learned, got {positions!r}")
        if share_embeddings and source_vocab_size != target_vocab_size:
            raise ValueError("share_embeddings needs one vocabulary for source and target")
        self.source_vocab_size, self.vocab_size = source_vocab_size, target_vocab_size
        self.num_layers, self.num_heads, self.hidden_dim = num_layers, num_heads, hidden_dim
        self.intermediate_dim = intermediate_dim or 4 * hidden_dim
        self.dropout, self.max_length, self.positions = dropout, max_length, positions
        self.share_embeddings = share_embeddings
        self.target_embedding = keras.layers.Embedding(
            target_vocab_size, hidden_dim, embeddings_initializer=_normal(hidden_dim ** -0.5),
            name="target_embedding")
        self.source_embedding = self.target_embedding if share_embeddings else keras.layers.Embedding(
            source_vocab_size, hidden_dim, embeddings_initializer=_normal(hidden_dim ** -0.5),
            name="source_embedding")
        if positions == "learned":
            self.source_positions = keras.layers.Embedding(max_length, hidden_dim,
                                                           embeddings_initializer=_normal())
            self.target_positions = keras.layers.Embedding(max_length, hidden_dim,
                                                           embeddings_initializer=_normal())
        self.embedding_dropout = keras.layers.Dropout(dropout)
        self.encoder_blocks = [EncoderBlock(hidden_dim, num_heads, self.intermediate_dim, dropout,
                                            name=f"encoder_{i}") for i in range(num_layers)]
        self.decoder_blocks = [CrossAttentionDecoderBlock(hidden_dim, num_heads, self.intermediate_dim,
                                                          dropout, name=f"decoder_{i}")
                               for i in range(num_layers)]
        self.encoder_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="encoder_norm")
        self.decoder_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="decoder_norm")

    @property
    def context_length(self):
        return None  # decoding stays within max_length; there is no window to move

    def _embed(self, embedding, position_table, ids, start=0):
        x = embedding(ids) * math.sqrt(self.hidden_dim)
        length = ops.shape(ids)[1]
        if self.positions == "learned":
            return x + position_table(start + ops.arange(length, dtype="int32"))[None]
        return x + ops.cast(sinusoidal_positions(length, self.hidden_dim, start), x.dtype)[None]

    def encode(self, source, training=False):
        """{"encoded": `[B, S, hidden]`, "mask": `[B, S]` bool} for source ids `[B, S]`."""
        mask = ops.not_equal(source, 0)
        x = self.embedding_dropout(self._embed(
            self.source_embedding, getattr(self, "source_positions", None), source),
            training=training)
        attention_mask = mask[:, None, None, :]
        for block in self.encoder_blocks:
            x = block(x, attention_mask, training=training)
        return {"encoded": self.encoder_norm(x), "mask": mask}

    def _logits(self, x):
        return ops.matmul(self.decoder_norm(x), ops.transpose(self.target_embedding.embeddings))

    def decode(self, target, source, training=False):
        x = self.embedding_dropout(self._embed(
            self.target_embedding, getattr(self, "target_positions", None), target),
            training=training)
        source_mask = source["mask"][:, None, None, :]
        for block in self.decoder_blocks:
            x = block(x, source["encoded"], source_mask, training=training)
        return self._logits(x)

    def call(self, inputs, training=False):
        return self.decode(inputs["target"], self.encode(inputs["source"], training=training),
                           training=training)

    static_cache = ("cross_keys", "cross_values", "source_mask")  # the source's: fixed while decoding
    cache_batch_axis = 0  # one tensor per layer, batch first: a step updates each in place

    def init_cache(self, batch_size, source, length=None):
        """Self-attention keys/values (empty) for `length` target positions (at most
        `max_length`), and every layer's cross-attention keys/values; a list per layer each."""
        positions = self.max_length if length is None else ops.minimum(length, self.max_length)
        shape = (batch_size, positions, self.num_heads, self.hidden_dim // self.num_heads)
        cross = [block.cross_attention.keys_values(source["encoded"])
                 for block in self.decoder_blocks]
        return {"keys": [ops.zeros(shape, self.compute_dtype) for _ in self.decoder_blocks],
                "values": [ops.zeros(shape, self.compute_dtype) for _ in self.decoder_blocks],
                "cross_keys": [k for k, _ in cross],
                "cross_values": [v for _, v in cross],
                "source_mask": ops.cast(source["mask"], "float32")}

    def grow_cache(self, cache, length):
        """`cache` with its self-attention keys/values padded with empty positions up to `length`
        (at most `max_length`): every decoding loop starts with a small cache and grows it
        once (`decoding.step.first_cache_length`)."""
        def grown(t):
            room = ops.minimum(length, self.max_length) - ops.shape(t)[1]
            return ops.pad(t, ((0, 0), (0, room), (0, 0), (0, 0)))
        return {**cache, "keys": [grown(k) for k in cache["keys"]],
                "values": [grown(v) for v in cache["values"]]}

    def decode_step(self, token, cache, index):
        x = self._embed(self.target_embedding, getattr(self, "target_positions", None),
                        token[:, None], start=index)
        source_mask = (cache["source_mask"] > 0)[:, None, None, :]
        keys, values = [], []
        for i, block in enumerate(self.decoder_blocks):
            x, k, v = block.step(x, cache["keys"][i], cache["values"][i], cache["cross_keys"][i],
                                 cache["cross_values"][i], source_mask, index)
            keys.append(k)
            values.append(v)
        return self._logits(x)[:, 0], {**cache, "keys": keys, "values": values}

    def get_config(self):
        return {**super().get_config(), "source_vocab_size": self.source_vocab_size,
                "target_vocab_size": self.vocab_size, "num_layers": self.num_layers,
                "num_heads": self.num_heads, "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim, "dropout": self.dropout,
                "max_length": self.max_length, "positions": self.positions,
                "share_embeddings": self.share_embeddings}


def build_transformer_seq2seq(*, source_vocab_size, target_vocab_size, num_layers=3, num_heads=4,
                              hidden_dim=256, intermediate_dim=None, dropout=0.1, max_length=256,
                              positions="sinusoidal", share_embeddings=False):
    """Encoder-decoder Transformer (see `TransformerSeq2Seq`); `max_length` bounds decoding."""
    return TransformerSeq2Seq(
        source_vocab_size=source_vocab_size, target_vocab_size=target_vocab_size,
        num_layers=num_layers, num_heads=num_heads, hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim, dropout=dropout, max_length=max_length,
        positions=positions, share_embeddings=share_embeddings)
