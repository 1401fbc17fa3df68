"""Small building blocks shared by every layer: initializer and named Dense/Dropout factories."""
from __future__ import annotations

import keras


def truncated_normal(initializer_range: float = 0.02) -> keras.initializers.Initializer:
    """BERT's weight initializer: normal(0, range) truncated at two standard deviations."""
    return keras.initializers.TruncatedNormal(stddev=initializer_range)


def dense(
    units: int,
    name: str,
    initializer_range: float = 0.02,
    activation=None,
    use_bias: bool = True,
) -> keras.layers.Dense:
    """A Dense layer with kernel [in, out] named ``<name>/kernel`` and ``<name>/bias`` (TF1 layout)."""
    return keras.layers.Dense(
        units,
        activation=activation,
        use_bias=use_bias,
        kernel_initializer=truncated_normal(initializer_range),
        bias_initializer="zeros",
        name=name,
    )


def dropout(rate: float, name: str = "dropout") -> keras.layers.Dropout:
    """A Dropout layer; active only when called with training=True."""
    return keras.layers.Dropout(rate, name=name)
