"""Attentional LSTM encoder-decoder (Luong et al. 2015), the recurrent baseline for seq2seq.

The training graph is built with the Keras functional API: a bidirectional LSTM encoder, an
LSTM decoder initialized from the encoder's final states, and Luong ("general") or Bahdanau
(additive) attention over the encoder outputs, whose context is concatenated with the decoder
output before the softmax. For decoding, the same layers run one step at a time with the
decoder state as the cache (keras_nlp_app/decoding/'s interface with a `source`).
"""

import keras
from keras import ops

from keras_nlp_app.models.recurrent import recurrent_layer, split_state, state_list


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


def _encoder_state(cell, outputs):
    """{"encoded", "h", "c"} from the bidirectional encoder's outputs (memory, then each
    direction's state); a GRU's `c` is a copy of `h`, never read."""
    if cell == "lstm":
        memory, h_fw, c_fw, h_bw, c_bw = outputs
        return {"encoded": memory, "h": ops.concatenate([h_fw, h_bw], -1),
                "c": ops.concatenate([c_fw, c_bw], -1)}
    memory, h_fw, h_bw = outputs
    h = ops.concatenate([h_fw, h_bw], -1)
    return {"encoded": memory, "h": h, "c": h}


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class LSTMSeq2Seq(keras.Model):
    """`{"source": [B, S], "target": [B, T]}` → logits `[B, T, target_vocab]` (functional graph);
    `cell: gru` uses GRUs (whose state is h alone; the cache's `c` then stays unused)."""

    def __init__(self, *, source_vocab_size, target_vocab_size, embedding_dim=256, units=256,
                 dropout=0.2, attention="luong", max_length=256, cell="lstm", **kwargs):
        # mask_zero: the encoder skips padding, so a source encodes the same in any batch
        source_embedding = keras.layers.Embedding(source_vocab_size, embedding_dim, mask_zero=True,
                                                  name="source_embedding")
        target_embedding = keras.layers.Embedding(target_vocab_size, embedding_dim, name="target_embedding")
        encoder = keras.layers.Bidirectional(
            recurrent_layer(cell, units // 2, return_sequences=True, return_state=True),
            name="encoder")
        decoder = recurrent_layer(cell, units, return_sequences=True, return_state=True,
                                  name="decoder")
        attend = _Attention(units, attention, name="attention")
        combine = keras.layers.Dense(units, activation="tanh", name="combine")
        output = keras.layers.Dense(target_vocab_size, name="output")
        drop = keras.layers.Dropout(dropout)

        source = keras.Input((None,), dtype="int32", name="source")
        target = keras.Input((None,), dtype="int32", name="target")
        encoded = _encoder_state(cell, encoder(drop(source_embedding(source))))
        outputs = decoder(drop(target_embedding(target)),
                          initial_state=state_list(cell, encoded["h"], encoded["c"]))[0]
        mask = ops.not_equal(source, 0)
        context = attend(outputs, encoded["encoded"], mask)
        logits = output(drop(combine(ops.concatenate([outputs, context], -1))))
        super().__init__(inputs={"source": source, "target": target}, outputs=logits, **kwargs)

        self.vocab_size, self.max_length, self.cell = target_vocab_size, max_length, cell
        self._parts = dict(source_embedding=source_embedding, target_embedding=target_embedding,
                           encoder=encoder, decoder=decoder, attend=attend, combine=combine,
                           output=output)
        self._settings = dict(source_vocab_size=source_vocab_size,
                              target_vocab_size=target_vocab_size, embedding_dim=embedding_dim,
                              units=units, dropout=dropout, attention=attention,
                              max_length=max_length, cell=cell)

    @property
    def context_length(self):
        return None

    def encode(self, source, training=False):
        """{"encoded", "mask", "h", "c"}: encoder outputs and the decoder's initial state."""
        encoded = _encoder_state(self.cell,
                                 self._parts["encoder"](self._parts["source_embedding"](source)))
        return {**encoded, "mask": ops.not_equal(source, 0)}

    def _finish(self, outputs, memory, mask):
        context = self._parts["attend"](outputs, memory, mask)
        return self._parts["output"](self._parts["combine"](ops.concatenate([outputs, context], -1)))

    def decode(self, target, source, training=False):
        """Logits `[B, T, vocab]` for target ids given `encode`'s output (no cache)."""
        outputs = self._parts["decoder"](self._parts["target_embedding"](target),
                                         initial_state=state_list(self.cell, source["h"],
                                                                  source["c"]))[0]
        return self._finish(outputs, source["encoded"], source["mask"])

    static_cache = ("memory", "mask")  # the encoder's outputs: fixed while decoding

    def init_cache(self, batch_size, source, length=None):
        """The decoder state, the encoder outputs and their mask (`length`: unused; the state
        does not grow)."""
        return {"h": source["h"][None], "c": source["c"][None], "memory": source["encoded"][None],
                "mask": ops.cast(source["mask"], "float32")[None]}

    def decode_step(self, token, cache, index):
        x = self._parts["target_embedding"](token)
        out, states = self._parts["decoder"].cell(x, state_list(self.cell, cache["h"][0],
                                                                 cache["c"][0]))
        h, c = split_state(self.cell, states, cache["c"][0])
        logits = self._finish(out[:, None, :], cache["memory"][0], cache["mask"][0] > 0)[:, 0]
        return logits, {**cache, "h": h[None], "c": c[None]}

    def get_config(self):
        return dict(self._settings)


def build_lstm_seq2seq(*, source_vocab_size, target_vocab_size, embedding_dim=256, units=256,
                       dropout=0.2, attention="luong", max_length=256, cell="lstm"):
    """Bidirectional-LSTM encoder, attentional LSTM decoder (see `LSTMSeq2Seq`); `cell: gru`
    for GRUs."""
    return LSTMSeq2Seq(source_vocab_size=source_vocab_size, target_vocab_size=target_vocab_size,
                       embedding_dim=embedding_dim, units=units, dropout=dropout,
                       attention=attention, max_length=max_length, cell=cell)
