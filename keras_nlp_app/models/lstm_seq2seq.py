"""Attentional LSTM encoder-decoder (Luong et al. 2015), the recurrent baseline for seq2seq.

The training graph is built with the Keras functional API: a bidirectional LSTM encoder, an
LSTM decoder initialized from the encoder's final states, and Luong ("general") or Bahdanau
(additive) attention over the encoder outputs, whose context is concatenated with the decoder
output before the softmax. For decoding, the same layers run one step at a time with the
decoder state as the cache (keras_nlp_app/decoding.py's interface with a `source`).
"""

import keras
from keras import ops


class _Attention(keras.layers.Layer):
    """Luong "general" (`dot`) or Bahdanau additive attention: context `[B, T, units]` of
    decoder outputs `[B, T, units]` over memory `[B, S, units]` with a `[B, S]` mask."""

    def __init__(self, units, kind="luong", **kwargs):
        super().__init__(**kwargs)
        if kind not in ("luong", "bahdanau"):
            raise ValueError(f"attention must be luong or bahdanau, got {kind!r}")
        self.units, self.kind = units, kind
        self.query = keras.layers.Dense(units, use_bias=False, name="query")
        if kind == "bahdanau":
            self.key = keras.layers.Dense(units, use_bias=False, name="key")
            self.score = keras.layers.Dense(1, use_bias=False, name="score")

    def build(self, *shapes, **kwargs):
        self.built = True

    def call(self, queries, memory, mask):
        if self.kind == "luong":
            scores = ops.einsum("btu,bsu->bts", self.query(queries), memory)
        else:
            scores = ops.squeeze(self.score(ops.tanh(
                self.query(queries)[:, :, None, :] + self.key(memory)[:, None, :, :])), -1)
        scores = ops.where(mask[:, None, :], scores, ops.cast(-1e9, scores.dtype))
        return ops.einsum("bts,bsu->btu", ops.softmax(scores, axis=-1), memory)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class LSTMSeq2Seq(keras.Model):
    """`{"source": [B, S], "target": [B, T]}` → logits `[B, T, target_vocab]` (functional graph)."""

    def __init__(self, *, source_vocab_size, target_vocab_size, embedding_dim=256, units=256,
                 dropout=0.2, attention="luong", max_length=256, **kwargs):
        # mask_zero: the encoder skips padding, so a source encodes the same in any batch
        source_embedding = keras.layers.Embedding(source_vocab_size, embedding_dim, mask_zero=True,
                                                  name="source_embedding")
        target_embedding = keras.layers.Embedding(target_vocab_size, embedding_dim, name="target_embedding")
        encoder = keras.layers.Bidirectional(
            keras.layers.LSTM(units // 2, return_sequences=True, return_state=True), name="encoder")
        decoder = keras.layers.LSTM(units, return_sequences=True, return_state=True, name="decoder")
        attend = _Attention(units, attention, name="attention")
        combine = keras.layers.Dense(units, activation="tanh", name="combine")
        output = keras.layers.Dense(target_vocab_size, name="output")
        drop = keras.layers.Dropout(dropout)

        source = keras.Input((None,), dtype="int32", name="source")
        target = keras.Input((None,), dtype="int32", name="target")
        memory, h_fw, c_fw, h_bw, c_bw = encoder(drop(source_embedding(source)))
        state = [ops.concatenate([h_fw, h_bw], -1), ops.concatenate([c_fw, c_bw], -1)]
        outputs, _, _ = decoder(drop(target_embedding(target)), initial_state=state)
        mask = ops.not_equal(source, 0)
        context = attend(outputs, memory, mask)
        logits = output(drop(combine(ops.concatenate([outputs, context], -1))))
        super().__init__(inputs={"source": source, "target": target}, outputs=logits, **kwargs)

        self.vocab_size, self.max_length = target_vocab_size, max_length
        self._parts = dict(source_embedding=source_embedding, target_embedding=target_embedding,
                           encoder=encoder, decoder=decoder, attend=attend, combine=combine,
                           output=output)
        self._settings = dict(source_vocab_size=source_vocab_size,
                              target_vocab_size=target_vocab_size, embedding_dim=embedding_dim,
                              units=units, dropout=dropout, attention=attention,
                              max_length=max_length)

    @property
    def context_length(self):
        return None

    def encode(self, source, training=False):
        """{"encoded", "mask", "h", "c"}: encoder outputs and the decoder's initial state."""
        memory, h_fw, c_fw, h_bw, c_bw = self._parts["encoder"](
            self._parts["source_embedding"](source))
        return {"encoded": memory, "mask": ops.not_equal(source, 0),
                "h": ops.concatenate([h_fw, h_bw], -1), "c": ops.concatenate([c_fw, c_bw], -1)}

    def _finish(self, outputs, memory, mask):
        context = self._parts["attend"](outputs, memory, mask)
        return self._parts["output"](self._parts["combine"](ops.concatenate([outputs, context], -1)))

    def decode(self, target, source, training=False):
        """Logits `[B, T, vocab]` for target ids given `encode`'s output (no cache)."""
        outputs, _, _ = self._parts["decoder"](self._parts["target_embedding"](target),
                                               initial_state=[source["h"], source["c"]])
        return self._finish(outputs, source["encoded"], source["mask"])

    def init_cache(self, batch_size, source):
        return {"h": source["h"][None], "c": source["c"][None], "memory": source["encoded"][None],
                "mask": ops.cast(source["mask"], "float32")[None]}

    def decode_step(self, token, cache, index):
        x = self._parts["target_embedding"](token)
        out, (h, c) = self._parts["decoder"].cell(x, [cache["h"][0], cache["c"][0]])
        logits = self._finish(out[:, None, :], cache["memory"][0], cache["mask"][0] > 0)[:, 0]
        return logits, {**cache, "h": h[None], "c": c[None]}

    def get_config(self):
        return dict(self._settings)


def build_lstm_seq2seq(*, source_vocab_size, target_vocab_size, embedding_dim=256, units=256,
                       dropout=0.2, attention="luong", max_length=256):
    """Bidirectional-LSTM encoder, attentional LSTM decoder (see `LSTMSeq2Seq`)."""
    return LSTMSeq2Seq(source_vocab_size=source_vocab_size, target_vocab_size=target_vocab_size,
                       embedding_dim=embedding_dim, units=units, dropout=dropout,
                       attention=attention, max_length=max_length)
