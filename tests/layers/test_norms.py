"""LayerNorm (epsilon 1e-12) and MobileBERT's NoNorm against numpy."""
import numpy as np
import pytest

from tfcompact.errors import ConfigError
from tfcompact.layers.norms import LayerNorm, NoNorm, make_norm


def _set(layer, gamma, beta):
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)


def test_layer_norm_matches_numpy_with_eps_1e12():
    rng = np.random.default_rng(0)
    # A nearly constant row: its variance (~1e-8) is far below Keras' default epsilon 1e-3,
    # so only epsilon 1e-12 reproduces the normalised values.
    x = np.stack([rng.normal(size=16), 3.0 + 1e-4 * rng.normal(size=16)]).astype("float32")[None]
    gamma, beta = rng.normal(size=16).astype("float32"), rng.normal(size=16).astype("float32")
    layer = LayerNorm()
    layer.build(x.shape)
    _set(layer, gamma, beta)
    mean = x.astype("float64").mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-12) * gamma + beta
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=2e-3, atol=2e-3)
    wrong_eps = (x - mean) / np.sqrt(var + 1e-3) * gamma + beta
    assert np.abs(np.asarray(layer(x))[0, 1] - wrong_eps[0, 1]).max() > 0.5
    assert layer.epsilon == 1e-12


def test_layer_norm_variable_names():
    layer = LayerNorm()
    layer.build((None, 8))
    assert sorted(v.path for v in layer.weights) == ["LayerNorm/beta", "LayerNorm/gamma"]


def test_no_norm_is_scale_and_shift():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 8)).astype("float32")
    gamma, beta = rng.normal(size=8).astype("float32"), rng.normal(size=8).astype("float32")
    layer = NoNorm()
    layer.build(x.shape)
    _set(layer, gamma, beta)
    np.testing.assert_allclose(np.asarray(layer(x)), x * gamma + beta, rtol=1e-6, atol=1e-6)
    assert sorted(v.path for v in layer.weights) == ["FakeLayerNorm/beta", "FakeLayerNorm/gamma"]


def test_make_norm_by_type():
    assert isinstance(make_norm("layer_norm"), LayerNorm)
    assert isinstance(make_norm("no_norm"), NoNorm)
    with pytest.raises(ConfigError, match="normalization_type"):
        make_norm("batch_norm")
