"""Activation functions by their config names, with the GELU form each original model used.

google-research BERT, ALBERT and MobileBERT compute ``hidden_act: "gelu"`` with the tanh
approximation; google-research ELECTRA computes it with the exact erf form. The config name
alone is therefore not enough: callers say which form ``"gelu"`` means for their architecture.
"""
from __future__ import annotations

import math
from typing import Callable

import keras
from keras import ops

from tfcompact.errors import ConfigError

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu_tanh(x):
    """GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (BERT, ALBERT)."""
    return 0.5 * x * (1.0 + ops.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))


def gelu_exact(x):
    """GELU, exact form: x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (ELECTRA)."""
    return 0.5 * x * (1.0 + ops.erf(x / math.sqrt(2.0)))


def relu(x):
    """max(x, 0) (MobileBERT students)."""
    return ops.relu(x)


def relu6(x):
    """min(max(x, 0), 6): the quantisation-friendly ReLU used for MobileBERT QAT."""
    return ops.relu6(x)


def tanh(x):
    """Hyperbolic tangent (pooler)."""
    return ops.tanh(x)


def swish(x):
    """x·sigmoid(x)."""
    return x * ops.sigmoid(x)


def linear(x):
    """Identity."""
    return x


# Names accepted in a config's hidden_act. "gelu" is resolved per architecture (see module doc).
_FIXED: dict[str, Callable] = {
    "gelu_new": gelu_tanh,
    "gelu_tanh": gelu_tanh,
    "gelu_approx": gelu_tanh,
    "gelu_exact": gelu_exact,
    "relu": relu,
    "relu6": relu6,
    "tanh": tanh,
    "swish": swish,
    "silu": swish,
    "linear": linear,
}
ACTIVATION_NAMES = ("gelu",) + tuple(_FIXED)


def get_activation(name: str | None, exact_gelu: bool = False) -> Callable:
    """Return the activation for a config name; ``"gelu"`` is erf-exact iff ``exact_gelu``."""
    if name is None:
        return linear
    key = name.lower()
    if key == "gelu":
        return gelu_exact if exact_gelu else gelu_tanh
    if key not in _FIXED:
        raise ConfigError(
            f"hidden_act: unknown activation {name!r}; expected one of {', '.join(ACTIVATION_NAMES)}"
        )
    return _FIXED[key]


@keras.saving.register_keras_serializable(package="tfcompact")
class Activation(keras.layers.Layer):
    """A named activation layer that remembers which GELU form it uses (for get_config)."""

    def __init__(self, activation: str = "gelu", exact_gelu: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.activation = activation
        self.exact_gelu = exact_gelu
        self._fn = get_activation(activation, exact_gelu)

    def call(self, x):
        return self._fn(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation, "exact_gelu": self.exact_gelu}
