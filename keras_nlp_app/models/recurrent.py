"""The recurrent cell every recurrent factory takes (`cell: lstm | gru`), and running it with an
explicit state: an LSTM's state is (h, c), a GRU's (Cho et al. 2014) is h alone."""

import keras

CELLS = ("lstm", "gru")


def recurrent_layer(cell, units, **kwargs):
    """`keras.layers.LSTM` or `keras.layers.GRU` with `units` and the given options."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
    layer = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    return layer(units, **kwargs)


def state_list(cell, h, c):
    """The initial-state list a layer of `cell` takes from (h, c)."""
    return [h, c] if cell == "lstm" else [h]


def split_state(cell, states, c):
    """(h, c) from what a layer or cell of `cell` returned as its state; a GRU keeps `c`."""
    return (states[0], states[1]) if cell == "lstm" else (states[0], c)


def bidirectional_layer(cell, units, name, fused=True):
    """A bidirectional `cell` layer returning sequences: for an LSTM with `fused` the
    `FusedBidirectionalLSTM` (the same function as Keras' `Bidirectional(LSTM)` on right-padded
    rows, in one op per direction; faster on some CPUs, slower on others), else Keras' own."""
    if cell == "lstm" and fused:
        return FusedBidirectionalLSTM(units, name=name)
    return keras.layers.Bidirectional(recurrent_layer(cell, units, return_sequences=True), name=name)


def _forget_bias_one(shape, dtype=None):
    """Keras' `unit_forget_bias`: zeros, with the forget gate's quarter (i, f, c, o) at one."""
    units = shape[0] // 4
    return keras.ops.concatenate([keras.ops.zeros((units,), dtype), keras.ops.ones((units,), dtype),
                                  keras.ops.zeros((2 * units,), dtype)])


def _icfo(gates):
    """Keras' gate order (i, f, c, o) on the last axis, reordered to BlockLSTM's (i, c, f, o)."""
    import tensorflow as tf

    i, f, c, o = tf.split(gates, 4, axis=-1)
    return tf.concat([i, c, f, o], axis=-1)


@keras.saving.register_keras_serializable(package="keras_nlp_app")
class FusedBidirectionalLSTM(keras.layers.Layer):
    """A bidirectional LSTM over `[B, T, D]` → `[B, T, 2 * units]`, each direction one
    TensorFlow `BlockLSTM` op: its loop over time and its gradient run in C++, not as a graph loop
    of small ops (about 1.4x faster than `Bidirectional(LSTM)` forward and backward on CPU at
    the CoNLL recipe's shapes).

    Same initializers, weights (in Keras' gate order) and outputs as Keras'
    `Bidirectional(LSTM(units, return_sequences=True))` for masks that are a prefix of each row
    (right padding); padded positions give zeros, as Keras'. Computes in float32 (BlockLSTM's
    CPU kernel has no bfloat16) and has no XLA kernel (`supports_jit` is off, so Keras compiles
    without XLA). The op's V2 is not used: its outputs equal Keras' LSTM but its weight
    gradients do not.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.supports_masking = True
        self.supports_jit = False

    def build(self, input_shape):
        features, gates = input_shape[-1], 4 * self.units
        self.directions = {}
        for direction in ("forward", "backward"):
            self.directions[direction] = (
                self.add_weight(name=f"{direction}_kernel", shape=(features, gates),
                                initializer="glorot_uniform"),
                self.add_weight(name=f"{direction}_recurrent_kernel", shape=(self.units, gates),
                                initializer="orthogonal"),
                self.add_weight(name=f"{direction}_bias", shape=(gates,),
                                initializer=_forget_bias_one))

    def _run(self, time_major, direction, longest):
        """One direction over `[T, B, D]` from zero states: the hidden states `[T, B, units]`."""
        import tensorflow as tf

        kernel, recurrent_kernel, bias = self.directions[direction]
        zeros = tf.zeros([tf.shape(time_major)[1], self.units])
        no_peephole = tf.zeros([self.units])
        outputs = tf.raw_ops.BlockLSTM(
            seq_len_max=longest, x=time_major, cs_prev=zeros, h_prev=zeros,
            w=_icfo(tf.concat([tf.cast(kernel, "float32"), tf.cast(recurrent_kernel, "float32")], 0)),
            wci=no_peephole, wcf=no_peephole, wco=no_peephole, b=_icfo(tf.cast(bias, "float32")),
            forget_bias=0.0, cell_clip=0.0, use_peephole=False)  # cell_clip 0: no clipping
        return outputs[-1]

    def call(self, inputs, mask=None):
        import tensorflow as tf

        time_major = tf.transpose(tf.cast(inputs, "float32"), [1, 0, 2])
        steps, batch = tf.shape(time_major)[0], tf.shape(time_major)[1]
        lengths = (tf.reduce_sum(tf.cast(mask, tf.int32), axis=1) if mask is not None
                   else tf.fill([batch], steps))
        longest = tf.cast(tf.reduce_max(tf.concat([lengths, [0]], 0)), tf.int64)
        forward = self._run(time_major, "forward", longest)
        reversed_rows = tf.reverse_sequence(time_major, lengths, seq_axis=0, batch_axis=1)
        backward = tf.reverse_sequence(self._run(reversed_rows, "backward", longest), lengths,
                                       seq_axis=0, batch_axis=1)
        outputs = tf.transpose(tf.concat([forward, backward], axis=-1), [1, 0, 2])
        if mask is not None:
            outputs *= tf.cast(mask, outputs.dtype)[..., None]
        return tf.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * self.units)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def outer_recurrent_layers(model):
    """`model`'s recurrent layers in the order they were built, each bidirectional pair as its
    wrapper (the LSTM or GRU layers inside a `Bidirectional` are not listed apart)."""
    recurrent_types = (keras.layers.LSTM, keras.layers.GRU, keras.layers.Bidirectional,
                       FusedBidirectionalLSTM)
    layers = list(model._flatten_layers(include_self=False))
    inside = {id(inner) for outer in layers if isinstance(outer, recurrent_types)
              for inner in outer._flatten_layers(include_self=False)}
    return [layer for layer in layers
            if isinstance(layer, recurrent_types) and id(layer) not in inside]


def recurrent_layer_groups(model):
    """A recurrent model's trainable variables in groups from the bottom up, as ULMFiT's
    discriminative rates and gradual unfreezing need them: the embeddings, each recurrent layer
    (a bidirectional pair is one), then everything else (the head); None without a recurrent
    layer."""
    recurrent = outer_recurrent_layers(model)
    if not recurrent:
        return None
    blocks = [list(layer.trainable_variables) for layer in recurrent]
    embeddings = [v for layer in model._flatten_layers(include_self=False)
                  if isinstance(layer, keras.layers.Embedding) for v in layer.trainable_variables]
    grouped = {id(v) for v in embeddings} | {id(v) for block in blocks for v in block}
    head = [v for v in model.trainable_variables if id(v) not in grouped]
    return [group for group in [embeddings, *blocks, head] if group]
