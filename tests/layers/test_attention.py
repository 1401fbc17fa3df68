"""Self-attention against softmax(QKᵀ/√d + mask)·V written in numpy."""
import numpy as np
import pytest

from tfcompact.errors import ConfigError
from tfcompact.layers.attention import SelfAttention

RNG = np.random.default_rng(0)


def _weights(layer):
    return {v.path.split("/", 1)[1]: np.asarray(v.numpy()) for v in layer.weights
            if not v.path.endswith("seed_generator_state")}


def _numpy_attention(qk_in, v_in, w, mask, heads, mask_style):
    B, S, _ = qk_in.shape
    q = qk_in @ w["query/kernel"] + w["query/bias"]
    k = qk_in @ w["key/kernel"] + w["key/bias"]
    v = v_in @ w["value/kernel"] + w["value/bias"]
    d = q.shape[-1] // heads
    split = lambda t: t.reshape(B, S, heads, d).transpose(0, 2, 1, 3)  # [B, N, S, d]
    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    m = mask[:, None, None, :].astype("float64")
    if mask_style == "additive":
        logits = scores + (1.0 - m) * -10000.0
    else:
        logits = scores * m + (1.0 - m) * -6.0
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(B, S, heads * d)
    return context, logits


@pytest.mark.parametrize("mask_style", ["additive", "mobilebert"])
def test_logits_and_context_match_numpy(mask_style):
    B, S, H, N = 2, 6, 16, 4
    x = RNG.normal(size=(B, S, H)).astype("float32")
    mask = np.array([[1] * S, [1, 1, 1, 1, 0, 0]], "int32")
    layer = SelfAttention(N, H // N, attention_dropout=0.1, mask_style=mask_style)
    context, logits = layer(x, input_mask=mask)
    exp_context, exp_logits = _numpy_attention(x, x, _weights(layer), mask, N, mask_style)
    np.testing.assert_allclose(np.asarray(logits), exp_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(context), exp_context, rtol=1e-4, atol=1e-4)
    assert logits.shape == (B, N, S, S)


def test_mobilebert_masked_logits_are_exactly_minus_six():
    x = RNG.normal(size=(1, 5, 8)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0]], "int32")
    _, logits = SelfAttention(2, 4, mask_style="mobilebert")(x, input_mask=mask)
    np.testing.assert_array_equal(np.asarray(logits)[..., 3:], -6.0)


def test_additive_mask_value_is_minus_10000():
    x = RNG.normal(size=(1, 5, 8)).astype("float32") * 0.01
    mask = np.array([[1, 1, 1, 0, 0]], "int32")
    _, logits = SelfAttention(2, 4)(x, input_mask=mask)
    np.testing.assert_allclose(np.asarray(logits)[..., 3:], -10000.0, atol=0.1)


def test_query_key_and_value_from_different_inputs():
    B, S, Bw, Hw, N = 2, 5, 8, 12, 2
    qk = RNG.normal(size=(B, S, Bw)).astype("float32")
    v_in = RNG.normal(size=(B, S, Hw)).astype("float32")
    mask = np.ones((B, S), "int32")
    layer = SelfAttention(N, Bw // N, mask_style="mobilebert")
    context, logits = layer(qk, v_in, input_mask=mask)
    w = _weights(layer)
    assert w["query/kernel"].shape == (Bw, Bw) and w["value/kernel"].shape == (Hw, Bw)
    exp_context, exp_logits = _numpy_attention(qk, v_in, w, mask, N, "mobilebert")
    np.testing.assert_allclose(np.asarray(context), exp_context, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(logits), exp_logits, rtol=1e-4, atol=1e-4)


def test_attention_dropout_only_in_training():
    x = RNG.normal(size=(2, 6, 8)).astype("float32")
    layer = SelfAttention(2, 4, attention_dropout=0.5)
    a, _ = layer(x)
    b, _ = layer(x)
    c, _ = layer(x, training=True)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(c))


def test_variable_names_and_config():
    layer = SelfAttention(2, 4, mask_style="mobilebert", name="self")
    layer(np.zeros((1, 3, 8), "float32"))
    assert [v.path for v in layer.trainable_variables] == [
        "self/query/kernel", "self/query/bias", "self/key/kernel", "self/key/bias",
        "self/value/kernel", "self/value/bias"]
    cfg = layer.get_config()
    assert cfg["mask_value"] == -6.0 and SelfAttention.from_config(cfg).mask_style == "mobilebert"
    with pytest.raises(ConfigError, match="mask_style"):
        SelfAttention(2, 4, mask_style="causal")
