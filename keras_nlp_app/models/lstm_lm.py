"""Stacked LSTM language model (Zaremba et al. 2014; the TensorFlow PTB tutorial).

Trained with truncated back-propagation through time: built with `stateful_batch_size`, its
LSTM layers carry their state from one batch to the next (the batches are consecutive slices of
`stateful_batch_size` parallel streams), and `reset_states()` starts every stream afresh. Built
without it, the same weights score whole sequences and decode one token at a time with the
state as the cache.
"""

import keras
from keras import ops

from keras_nlp_app.models.recurrent import recurrent_layer, split_state, state_list


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class LSTMLM(keras.Model):
    """`tokens [B, T]` → next-token logits `[B, T, vocab]`; `cell: gru` stacks GRUs instead
    (the cache keeps a `c` entry that a GRU leaves untouched)."""

    def __init__(self, *, vocab_size, num_layers=2, units=200, dropout=0.0, tie_embeddings=False,
                 init_scale=0.1, stateful_batch_size=None, cell="lstm", **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.vocab_size, self.num_layers, self.units = vocab_size, num_layers, units
        self.dropout, self.tie_embeddings, self.init_scale = dropout, tie_embeddings, init_scale
        self.stateful_batch_size = stateful_batch_size
        init = keras.initializers.RandomUniform(-init_scale, init_scale)
        self.embedding = keras.layers.Embedding(vocab_size, units, embeddings_initializer=init,
                                                name="embedding")
        self.lstms = [recurrent_layer(
            cell, units, return_sequences=True, return_state=True,
            stateful=stateful_batch_size is not None,
            kernel_initializer=init, recurrent_initializer=init, name=f"lstm_{i}")
            for i in range(num_layers)]
        self.dropouts = [keras.layers.Dropout(dropout) for _ in range(num_layers + 1)]
        self.output_layer = None if tie_embeddings else keras.layers.Dense(
            vocab_size, kernel_initializer=init, name="output")
        if tie_embeddings:
            self.output_bias = self.add_weight(shape=(vocab_size,), initializer="zeros",
                                               name="output_bias")

    def _logits(self, x):
        if self.tie_embeddings:
            return ops.matmul(x, ops.transpose(self.embedding.embeddings)) + self.output_bias
        return self.output_layer(x)

    def call(self, tokens, training=False):
        x = self.dropouts[0](self.embedding(tokens), training=training)
        for lstm, dropout in zip(self.lstms, self.dropouts[1:]):
            x = dropout(lstm(x, training=training)[0], training=training)
        return self._logits(x)

    def call_with_state(self, tokens, state):
        """Logits `[B, T, vocab]` continuing from `state` (as `init_cache` makes), and the
        state after the last token: for scoring a long stream chunk by chunk."""
        x = self.embedding(tokens)
        hs, cs = [], []
        for i, lstm in enumerate(self.lstms):
            x, *states = lstm(x, initial_state=state_list(self.cell, state["h"][i], state["c"][i]))
            h, c = split_state(self.cell, states, state["c"][i])
            hs.append(h)
            cs.append(c)
        return self._logits(x), {"h": ops.stack(hs), "c": ops.stack(cs)}

    def reset_states(self):
        """Zeroes the carried state of a stateful model (at every epoch and evaluation start)."""
        for lstm in self.lstms:
            if lstm.stateful and lstm.states is not None:
                lstm.reset_state()

    def init_cache(self, batch_size):
        zeros = ops.zeros((self.num_layers, batch_size, self.units), self.compute_dtype)
        return {"h": zeros, "c": zeros}

    def prefill(self, tokens):
        raise NotImplementedError("an LSTM has no context window to refill")

    def decode_step(self, token, cache, index):
        """Logits `[B, vocab]` after `token [B]`; the cache is the (h, c) state of every layer."""
        x = self.embedding(token)
        hs, cs = [], []
        for i, lstm in enumerate(self.lstms):
            x, states = lstm.cell(x, state_list(self.cell, cache["h"][i], cache["c"][i]))
            h, c = split_state(self.cell, states, cache["c"][i])
            hs.append(h)
            cs.append(c)
        return self._logits(x), {"h": ops.stack(hs), "c": ops.stack(cs)}

    @property
    def context_length(self):
        return None

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "num_layers": self.num_layers, "units": self.units, "dropout": self.dropout,
                "tie_embeddings": self.tie_embeddings, "init_scale": self.init_scale,
                "stateful_batch_size": self.stateful_batch_size, "cell": self.cell}


def build_lstm_lm(*, vocab_size, num_layers=2, units=200, dropout=0.0, tie_embeddings=False,
                  init_scale=0.1, stateful_batch_size=None, cell="lstm"):
    """Stacked LSTM (or, with `cell: gru`, GRU) LM (see `LSTMLM`); `stateful_batch_size` for
    training with carried state."""
    return LSTMLM(vocab_size=vocab_size, num_layers=num_layers, units=units, dropout=dropout,
                  tie_embeddings=tie_embeddings, init_scale=init_scale,
                  stateful_batch_size=stateful_batch_size, cell=cell)
