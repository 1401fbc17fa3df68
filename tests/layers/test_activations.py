"""Activations against the formulas written out in numpy."""
import math

import numpy as np
import pytest

from tfcompact.errors import ConfigError
from tfcompact.layers import activations
from tfcompact.layers.activations import Activation, get_activation

X = np.linspace(-6.0, 6.0, 97).astype("float32")


def _erf(v):
    return np.vectorize(math.erf)(v)


def test_gelu_tanh_matches_bert_formula():
    expected = 0.5 * X * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (X + 0.044715 * X**3)))
    np.testing.assert_allclose(np.asarray(activations.gelu_tanh(X)), expected, atol=1e-6)


def test_gelu_exact_matches_erf_formula():
    expected = X * 0.5 * (1.0 + _erf(X / math.sqrt(2.0)))
    np.testing.assert_allclose(np.asarray(activations.gelu_exact(X)), expected, atol=1e-6)


def _numeric_derivative(f, x, eps=1e-4):
    xd = x.astype("float64")
    return (f(xd + eps) - f(xd - eps)) / (2 * eps)


def test_gelu_tanh_gradient_matches_numeric_derivative_of_formula():
    import tensorflow as tf

    formula = lambda v: 0.5 * v * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v**3)))
    x = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = activations.gelu_tanh(x) * 3.0
    grad = tape.gradient(y, x).numpy()
    np.testing.assert_allclose(grad, 3.0 * _numeric_derivative(formula, X), atol=2e-5)


def test_gelu_exact_gradient_matches_numeric_derivative_of_formula():
    import tensorflow as tf

    formula = lambda v: v * 0.5 * (1.0 + _erf(v / math.sqrt(2.0)))
    x = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = activations.gelu_exact(x) * 3.0
    grad = tape.gradient(y, x).numpy()
    np.testing.assert_allclose(grad, 3.0 * _numeric_derivative(formula, X), atol=2e-5)


def test_two_gelu_forms_differ():
    # The tanh approximation differs from the erf form by up to ~1e-3 around |x| ~ 2..3.
    diff = np.abs(np.asarray(activations.gelu_tanh(X)) - np.asarray(activations.gelu_exact(X)))
    assert 1e-5 < diff.max() < 1e-2


def test_gelu_name_resolves_per_architecture():
    assert get_activation("gelu") is activations.gelu_tanh
    assert get_activation("gelu", exact_gelu=True) is activations.gelu_exact
    assert get_activation("gelu_new", exact_gelu=True) is activations.gelu_tanh
    assert get_activation("gelu_approx") is activations.gelu_tanh


def test_relu_and_relu6():
    np.testing.assert_allclose(np.asarray(get_activation("relu")(X)), np.maximum(X, 0))
    np.testing.assert_allclose(np.asarray(get_activation("relu6")(X)), np.clip(X, 0, 6))


def test_every_config_activation_name_is_known():
    from tfcompact.configs import HIDDEN_ACTS

    for name in HIDDEN_ACTS:
        get_activation(name)


def test_unknown_activation_names_field():
    with pytest.raises(ConfigError, match="hidden_act"):
        get_activation("mish")


def test_activation_layer_config_round_trip():
    layer = Activation("gelu", exact_gelu=True, name="act")
    clone = Activation.from_config(layer.get_config())
    assert clone.name == "act" and clone.exact_gelu
    np.testing.assert_allclose(np.asarray(clone(X)), X * 0.5 * (1.0 + _erf(X / math.sqrt(2.0))), atol=1e-6)
