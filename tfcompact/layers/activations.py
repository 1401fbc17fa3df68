"""Activation functions by their config names, with the GELU form each original model used.

google-research BERT, ALBERT and MobileBERT compute ``hidden_act: "gelu"`` with the tanh
approximation; google-research ELECTRA computes it with the exact erf form. The config name
alone is therefore not enough: callers say which form ``"gelu"`` means for their architecture.
"""
from __future__ import annotations

import math
from typing import Callable

import keras
import tensorflow as tf
from keras import ops

from tfcompact.errors import ConfigError

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


_GELU_A = 0.044715
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@tf.custom_gradient
def _gelu_tanh(x):
    x2 = x * x
    t = tf.tanh(x * (_SQRT_2_OVER_PI + (_SQRT_2_OVER_PI * _GELU_A) * x2))
    h = 0.5 * x
    y = h + h * t

    def grad(dy):
        # d/dx 0.5·x·(1 + t) = 0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²)
        inner = _SQRT_2_OVER_PI + (3.0 * _SQRT_2_OVER_PI * _GELU_A) * x2
        return dy * ((0.5 + 0.5 * t) + h * (1.0 - t * t) * inner)

    return y, grad


@tf.custom_gradient
def _gelu_exact(x):
    cdf = 0.5 + 0.5 * tf.math.erf(x * _INV_SQRT_2)
    y = x * cdf

    def grad(dy):
        # d/dx x·Φ(x) = Φ(x) + x·φ(x)
        return dy * (cdf + x * (_INV_SQRT_2PI * tf.exp(-0.5 * x * x)))

    return y, grad


def gelu_tanh(x):
    """GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (BERT, ALBERT).

    The derivative is written out by hand: automatic differentiation of the formula builds
    about twice as many [tokens, intermediate]-sized element-wise ops in the backward pass.
    """
    return _gelu_tanh(tf.convert_to_tensor(x))


def gelu_exact(x):
    """GELU, exact form: x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (ELECTRA); derivative Φ(x) + x·φ(x) by hand."""
    return _gelu_exact(tf.convert_to_tensor(x))


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
