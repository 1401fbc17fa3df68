"""Normalisation layers: LayerNorm with BERT's epsilon and MobileBERT's NoNorm.

Variables are named ``gamma`` and ``beta`` as in ``tf.contrib.layers.layer_norm``; the layer
names (``LayerNorm``, ``FakeLayerNorm``) mirror the TF1 scopes.
"""
from __future__ import annotations

import keras
from keras import ops

from tfcompact.errors import ConfigError

NORMALIZATION_TYPES = ("layer_norm", "no_norm")
LAYER_NORM_EPSILON = 1e-12  # BERT's, in every original release (Keras' default is 1e-3)


@keras.saving.register_keras_serializable(package="tfcompact")
class LayerNorm(keras.layers.Layer):
    """(x − mean) / √(var + ε) · γ + β over the last axis; ε = 1e-12 as in BERT (Keras' is 1e-3).

    Statistics are computed in float32 even under a mixed-precision policy.
    """

    def __init__(self, epsilon: float = LAYER_NORM_EPSILON, **kwargs):
        kwargs.setdefault("name", "LayerNorm")
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        dim = input_shape[-1]
        self.beta = self.add_weight(name="beta", shape=(dim,), initializer="zeros")
        self.gamma = self.add_weight(name="gamma", shape=(dim,), initializer="ones")

    def call(self, x):
        dtype = x.dtype
        x = ops.cast(x, "float32")
        mean, variance = ops.moments(x, axes=[-1], keepdims=True)
        y = (x - mean) * ops.rsqrt(variance + self.epsilon)
        y = y * ops.cast(self.gamma, "float32") + ops.cast(self.beta, "float32")
        return ops.cast(y, dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="tfcompact")
class NoNorm(keras.layers.Layer):
    """MobileBERT's quantisation-friendly "normalisation": x·γ + β, no statistics."""

    def __init__(self, **kwargs):
        kwargs.setdefault("name", "FakeLayerNorm")
        super().__init__(**kwargs)

    def build(self, input_shape):
        dim = input_shape[-1]
        self.beta = self.add_weight(name="beta", shape=(dim,), initializer="zeros")
        self.gamma = self.add_weight(name="gamma", shape=(dim,), initializer="ones")

    def call(self, x):
        return x * self.gamma + self.beta

    def compute_output_shape(self, input_shape):
        return input_shape


def make_norm(normalization_type: str = "layer_norm", name: str | None = None) -> keras.layers.Layer:
    """LayerNorm (TF1 scope ``LayerNorm``) or NoNorm (TF1 scope ``FakeLayerNorm``) by config name."""
    if normalization_type == "layer_norm":
        return LayerNorm(name=name or "LayerNorm")
    if normalization_type == "no_norm":
        return NoNorm(name=name or "FakeLayerNorm")
    raise ConfigError(
        f"normalization_type: unknown value {normalization_type!r}; expected one of {NORMALIZATION_TYPES}"
    )
