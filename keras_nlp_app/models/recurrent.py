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
