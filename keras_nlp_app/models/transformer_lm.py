"""GPT-style decoder-only Transformer language model with a key/value cache for decoding.

Pre-norm blocks (LayerNorm → causal self-attention → residual, LayerNorm → GELU MLP →
residual), learned positions, and an output layer tied to the token embedding, initialized as
GPT-2 / nanoGPT do (normal 0.02, residual projections scaled by 1/sqrt(2 × layers)). Query, key
and value come from one fused projection: on CPUs the step time is dominated by the number of
small matrix products, and this layout trains about twice as fast as stacking keras-hub
`TransformerDecoder` blocks (scripts/bench_lm.py).
"""

import math

import keras
from keras import ops


def _normal(stddev):
    return keras.initializers.RandomNormal(stddev=stddev)


def query_key_scores(q, k):
    """Scaled dot products `[B, H, T, K]` of queries `q [B, T, H, D]` and keys `k [B, K, H, D]`.

    One query (a decoding step) is multiplied and summed in place: the batched matrix product
    would first copy the whole key cache into a heads-major layout, at every step."""
    if q.shape[1] == 1:
        scores = ops.transpose(ops.sum(q * k, axis=-1), (0, 2, 1))[:, :, None, :]
    else:
        scores = ops.einsum("bqhd,bkhd->bhqk", q, k)
    return scores / math.sqrt(q.shape[-1])


def mix_values(weights, v):
    """Attention output `[B, T, H, D]`: `weights [B, H, T, K]` over values `v [B, K, H, D]`
    (one query summed in place, as in `query_key_scores`)."""
    if weights.shape[2] == 1:
        return ops.sum(ops.transpose(weights[:, :, 0], (0, 2, 1))[..., None] * v, axis=1)[:, None]
    return ops.einsum("bhqk,bkhd->bqhd", weights, v)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class CausalSelfAttention(keras.layers.Layer):
    """Multi-head causal self-attention over a sequence, or one step against a key/value cache."""

    def __init__(self, hidden_dim, num_heads, dropout=0.0, residual_stddev=0.02, **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim {hidden_dim} is not divisible by num_heads {num_heads}")
        self.hidden_dim, self.num_heads, self.dropout = hidden_dim, num_heads, dropout
        self.head_dim = hidden_dim // num_heads
        self.qkv = keras.layers.Dense(3 * hidden_dim, kernel_initializer=_normal(0.02), name="qkv")
        self.output_projection = keras.layers.Dense(
            hidden_dim, kernel_initializer=_normal(residual_stddev), name="output")
        self.attention_dropout = keras.layers.Dropout(dropout)

    def _split(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        qkv = ops.reshape(self.qkv(x), (batch, length, 3, self.num_heads, self.head_dim))
        return qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # each [B, T, H, D]

    def _attend(self, q, k, v, mask, training):
        scores = ops.where(mask, query_key_scores(q, k), ops.cast(-1e9, q.dtype))
        weights = self.attention_dropout(ops.softmax(scores, axis=-1), training=training)
        out = mix_values(weights, v)
        batch, length = ops.shape(out)[0], ops.shape(out)[1]
        return self.output_projection(ops.reshape(out, (batch, length, self.hidden_dim)))

    def call(self, x, training=False, return_kv=False):
        """`[B, T, hidden]` → `[B, T, hidden]` (and the keys and values, `[B, T, H, D]` each)."""
        q, k, v = self._split(x)
        length = ops.shape(x)[1]
        mask = ops.tril(ops.ones((length, length), "bool"))[None, None]
        out = self._attend(q, k, v, mask, training)
        return (out, k, v) if return_kv else out

    def step(self, x, keys, values, index):
        """One position: `x [B, 1, hidden]` at `index`, cache `[B, T_max, H, D]` (positions
        before `index` filled). Returns the output and the updated cache."""
        q, k, v = self._split(x)
        keys = ops.slice_update(keys, (0, index, 0, 0), k)
        values = ops.slice_update(values, (0, index, 0, 0), v)
        visible = ops.arange(ops.shape(keys)[1]) <= index
        return self._attend(q, keys, values, visible[None, None, None, :], False), keys, values

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class DecoderBlock(keras.layers.Layer):
    """Pre-norm Transformer decoder block (GPT-2 layout)."""

    def __init__(self, hidden_dim, num_heads, intermediate_dim, dropout=0.0, residual_stddev=0.02,
                 **kwargs):
        super().__init__(**kwargs)
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="attention_norm")
        self.attention = CausalSelfAttention(hidden_dim, num_heads, dropout, residual_stddev,
                                             name="attention")
        self.mlp_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="mlp_norm")
        self.mlp_in = keras.layers.Dense(intermediate_dim, activation="gelu",
                                         kernel_initializer=_normal(0.02), name="mlp_in")
        self.mlp_out = keras.layers.Dense(hidden_dim, kernel_initializer=_normal(residual_stddev),
                                          name="mlp_out")
        self.residual_dropout = keras.layers.Dropout(dropout)

    def _mlp(self, x, training):
        return self.residual_dropout(self.mlp_out(self.mlp_in(self.mlp_norm(x))), training=training)

    def call(self, x, training=False, return_kv=False):
        attended = self.attention(self.attention_norm(x), training=training, return_kv=return_kv)
        if return_kv:
            attended, k, v = attended
        x = x + self.residual_dropout(attended, training=training)
        x = x + self._mlp(x, training)
        return (x, k, v) if return_kv else x

    def step(self, x, keys, values, index):
        attended, keys, values = self.attention.step(self.attention_norm(x), keys, values, index)
        x = x + attended
        return x + self._mlp(x, False), keys, values


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class TransformerLM(keras.Model):
    """Decoder-only LM: `tokens [B, T]` → next-token logits `[B, T, vocab]`.

    For decoding it also offers `init_cache`, `prefill` and `decode_step` (see decoding/).
    """

    def __init__(self, *, vocab_size, context_length=256, num_layers=4, num_heads=4,
                 hidden_dim=128, intermediate_dim=None, dropout=0.0, tie_embeddings=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.context_length = vocab_size, context_length
        self.num_layers, self.num_heads, self.hidden_dim = num_layers, num_heads, hidden_dim
        self.intermediate_dim = intermediate_dim or 4 * hidden_dim
        self.dropout, self.tie_embeddings = dropout, tie_embeddings
        self.token_embedding = keras.layers.Embedding(
            vocab_size, hidden_dim, embeddings_initializer=_normal(0.02), name="token_embedding")
        self.position_embedding = keras.layers.Embedding(
            context_length, hidden_dim, embeddings_initializer=_normal(0.02),
            name="position_embedding")
        self.embedding_dropout = keras.layers.Dropout(dropout)
        residual_stddev = 0.02 / math.sqrt(2 * num_layers)
        self.blocks = [DecoderBlock(hidden_dim, num_heads, self.intermediate_dim, dropout,
                                    residual_stddev, name=f"block_{i}") for i in range(num_layers)]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")
        self.output_layer = None if tie_embeddings else keras.layers.Dense(
            vocab_size, use_bias=False, kernel_initializer=_normal(0.02), name="output")

    def _embed(self, tokens, start=0):
        positions = start + ops.arange(ops.shape(tokens)[1], dtype="int32")
        return self.token_embedding(tokens) + self.position_embedding(positions)[None]

    def _logits(self, x):
        x = self.final_norm(x)
        if self.output_layer is None:
            return ops.matmul(x, ops.transpose(self.token_embedding.embeddings))
        return self.output_layer(x)

    def call(self, tokens, training=False):
        x = self.embedding_dropout(self._embed(tokens), training=training)
        for block in self.blocks:
            x = block(x, training=training)
        return self._logits(x)

    cache_batch_axis = 0  # one tensor per layer, batch first: a step updates each in place

    def init_cache(self, batch_size):
        """Zeroed keys and values: per layer, `[B, context, heads, head_dim]` each.

        One tensor per layer, not one stacked tensor: a decoding step then updates each layer's
        cache in place, where stacking would copy the whole cache at every step."""
        shape = (batch_size, self.context_length, self.num_heads, self.hidden_dim // self.num_heads)
        # the compute dtype: under mixed precision the blocks write float16/bfloat16 keys
        return {"keys": [ops.zeros(shape, self.compute_dtype) for _ in self.blocks],
                "values": [ops.zeros(shape, self.compute_dtype) for _ in self.blocks]}

    def prefill(self, tokens):
        """A cache holding `tokens [B, W]` at positions 0..W-1 (one parallel pass)."""
        x = self._embed(tokens)
        cache = self.init_cache(ops.shape(tokens)[0])
        for i, block in enumerate(self.blocks):
            x, k, v = block(x, return_kv=True)
            cache["keys"][i] = ops.slice_update(cache["keys"][i], (0, 0, 0, 0), k)
            cache["values"][i] = ops.slice_update(cache["values"][i], (0, 0, 0, 0), v)
        return cache

    def decode_step(self, token, cache, index):
        """Logits `[B, vocab]` for the position after `token [B]`, which sits at `index`."""
        x = self._embed(token[:, None], start=index)
        keys, values = [], []
        for i, block in enumerate(self.blocks):
            x, k, v = block.step(x, cache["keys"][i], cache["values"][i], index)
            keys.append(k)
            values.append(v)
        return self._logits(x)[:, 0], {"keys": keys, "values": values}

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "context_length": self.context_length, "num_layers": self.num_layers,
                "num_heads": self.num_heads, "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim, "dropout": self.dropout,
                "tie_embeddings": self.tie_embeddings}


def build_transformer_lm(*, vocab_size, context_length=256, num_layers=4, num_heads=4,
                         hidden_dim=128, intermediate_dim=None, dropout=0.0, tie_embeddings=True):
    """GPT-style decoder LM (see `TransformerLM`); `context_length` is the longest window."""
    return TransformerLM(vocab_size=vocab_size, context_length=context_length,
                         num_layers=num_layers, num_heads=num_heads, hidden_dim=hidden_dim,
                         intermediate_dim=intermediate_dim, dropout=dropout,
                         tie_embeddings=tie_embeddings)
