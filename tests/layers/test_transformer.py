"""Transformer blocks against numpy: BERT post-LN / pre-LN, ALBERT groups, MobileBERT bottleneck."""
import math

import numpy as np
import pytest

from tfcompact.layers.transformer import AlbertGroup, MobileBertBlock, TransformerBlock

RNG = np.random.default_rng(0)
B, S = 2, 6


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _relu(x):
    return np.maximum(x, 0.0)


def _ln(x, p, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * p["gamma"] + p["beta"]


def _no_norm(x, p):
    return x * p["gamma"] + p["beta"]


def _dense(x, w, scope):
    return x @ w[f"{scope}/kernel"] + w[f"{scope}/bias"]


def _norm_params(w, scope):
    return {"gamma": w[f"{scope}/gamma"], "beta": w[f"{scope}/beta"]}


def _randomize(layer):
    """Random values for every weight (norm gammas included), returned by path without the block name."""
    out = {}
    for v in layer.weights:
        if v.path.endswith("seed_generator_state"):
            continue
        value = RNG.normal(scale=0.3, size=v.shape).astype("float32")
        v.assign(value)
        out[v.path.split("/", 1)[1]] = value
    return out


def _attention(qk, v_in, w, scope, mask, heads, mask_style):
    q = _dense(qk, w, f"{scope}/query")
    k = _dense(qk, w, f"{scope}/key")
    v = _dense(v_in, w, f"{scope}/value")
    d = q.shape[-1] // heads
    split = lambda t: t.reshape(B, S, heads, d).transpose(0, 2, 1, 3)
    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    m = mask[:, None, None, :]
    logits = scores + (1 - m) * -10000.0 if mask_style == "additive" else scores * m + (1 - m) * -6.0
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return (p @ v).transpose(0, 2, 1, 3).reshape(B, S, -1), logits


MASK = np.array([[1] * S, [1, 1, 1, 1, 0, 0]], "float32")


def test_bert_post_ln_block_matches_numpy():
    H, N, I = 16, 4, 32
    x = RNG.normal(size=(B, S, H)).astype("float32")
    block = TransformerBlock(H, N, I, hidden_act="gelu", name="layer_0")
    block(x, input_mask=MASK.astype("int32"))
    w = _randomize(block)
    ctx, logits = _attention(x, x, w, "attention/self", MASK, N, "additive")
    a = _ln(_dense(ctx, w, "attention/output/dense") + x, _norm_params(w, "attention/output/LayerNorm"))
    f = _dense(_gelu_tanh(_dense(a, w, "intermediate/dense")), w, "output/dense")
    expected = _ln(f + a, _norm_params(w, "output/LayerNorm"))
    out, out_logits = block(x, input_mask=MASK.astype("int32"))
    np.testing.assert_allclose(np.asarray(out_logits), logits, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-3, atol=1e-3)


def test_pre_ln_block_matches_numpy():
    H, N, I = 16, 2, 24
    x = RNG.normal(size=(B, S, H)).astype("float32")
    block = TransformerBlock(H, N, I, norm_position="pre", naming="albert", name="inner_group_0")
    block(x, input_mask=MASK.astype("int32"))
    w = _randomize(block)
    h = _ln(x, _norm_params(w, "LayerNorm"))
    ctx, _ = _attention(h, h, w, "attention_1/self", MASK, N, "additive")
    y = x + _dense(ctx, w, "attention_1/output/dense")
    f = _dense(_gelu_tanh(_dense(_ln(y, _norm_params(w, "LayerNorm_1")), w, "ffn_1/intermediate/dense")),
               w, "ffn_1/intermediate/output/dense")
    out, _ = block(x, input_mask=MASK.astype("int32"))
    np.testing.assert_allclose(np.asarray(out), y + f, rtol=1e-3, atol=1e-3)


def test_albert_naming_and_brightmart_pre_ln_naming():
    block = TransformerBlock(8, 2, 16, naming="albert", name="inner_group_0")
    block(np.zeros((1, 3, 8), "float32"))
    paths = [v.path for v in block.trainable_variables]
    assert "inner_group_0/attention_1/self/query/kernel" in paths
    assert "inner_group_0/ffn_1/intermediate/output/dense/kernel" in paths
    assert "inner_group_0/LayerNorm/gamma" in paths and "inner_group_0/LayerNorm_1/gamma" in paths
    block = TransformerBlock(8, 2, 16, naming="bert", norm_position="pre", name="layer_shared")
    block(np.zeros((1, 3, 8), "float32"))
    paths = [v.path for v in block.trainable_variables]
    assert "layer_shared/attention/output/LayerNorm/gamma" in paths
    assert "layer_shared/output/LayerNorm/gamma" in paths


def test_albert_group_applies_inner_groups_in_order():
    H = 8
    x = RNG.normal(size=(B, S, H)).astype("float32")
    group = AlbertGroup(2, dict(hidden_size=H, num_heads=2, intermediate_size=16), name="group_0")
    out, _ = group(x)
    first, _ = group.blocks[0](x)
    second, _ = group.blocks[1](first)
    np.testing.assert_allclose(np.asarray(out), np.asarray(second), rtol=1e-5, atol=1e-5)
    assert len(group.trainable_variables) == 2 * 16


def _numpy_mobilebert(x, w, mask, *, heads, F, norm, act, use_bottleneck_attention, kq_shared, use_bottleneck=True):
    nf = _no_norm if norm == "FakeLayerNorm" else _ln
    P = lambda scope: _norm_params(w, f"{scope}/{norm}")
    if use_bottleneck:
        layer_input = nf(_dense(x, w, "bottleneck/input/dense"), P("bottleneck/input"))
    else:
        layer_input = x
    if use_bottleneck_attention:
        qk, v = layer_input, layer_input
    elif kq_shared:
        qk, v = nf(_dense(x, w, "bottleneck/attention/dense"), P("bottleneck/attention")), x
    else:
        qk, v = x, x
    ctx, logits = _attention(qk, v, w, "attention/self", mask, heads, "mobilebert")
    a = nf(_dense(ctx, w, "attention/output/dense") + layer_input, P("attention/output"))
    for j in range(F - 1):
        f = _dense(act(_dense(a, w, f"ffn_layer_{j}/intermediate/dense")), w, f"ffn_layer_{j}/output/dense")
        a = nf(f + a, P(f"ffn_layer_{j}/output"))
    f = _dense(act(_dense(a, w, "intermediate/dense")), w, "output/dense")
    f = nf(f + a, P("output"))
    if not use_bottleneck:
        return f, logits
    return nf(_dense(f, w, "output/bottleneck/dense") + x, P("output/bottleneck")), logits


@pytest.mark.parametrize(
    "kwargs",
    [
        # MobileBERT student: key/query-shared bottleneck, 4 FFNs, no_norm, relu.
        dict(use_bottleneck_attention=False, key_query_shared_bottleneck=True, num_feedforward_networks=4,
             normalization_type="no_norm", hidden_act="relu"),
        # MobileBERT tiny / zh f2: Q=K=V from the bottleneck, 2 FFNs.
        dict(use_bottleneck_attention=True, key_query_shared_bottleneck=False, num_feedforward_networks=2,
             normalization_type="no_norm", hidden_act="relu"),
        # IB-BERT teacher: B > H, Q/K/V from the H-wide input, LayerNorm, gelu, 1 FFN.
        dict(use_bottleneck_attention=False, key_query_shared_bottleneck=False, num_feedforward_networks=1,
             normalization_type="layer_norm", hidden_act="gelu", intra_bottleneck_size=24),
    ],
)
def test_mobilebert_block_matches_numpy(kwargs):
    H, N, I = 16, 4, 20
    kwargs = dict(kwargs)
    Bw = kwargs.pop("intra_bottleneck_size", 8)
    x = RNG.normal(size=(B, S, H)).astype("float32")
    block = MobileBertBlock(H, N, I, intra_bottleneck_size=Bw, name="layer_0", **kwargs)
    block(x, input_mask=MASK.astype("int32"))
    w = _randomize(block)
    norm = "FakeLayerNorm" if kwargs["normalization_type"] == "no_norm" else "LayerNorm"
    act = _relu if kwargs["hidden_act"] == "relu" else _gelu_tanh
    expected, exp_logits = _numpy_mobilebert(
        x, w, MASK, heads=N, F=kwargs["num_feedforward_networks"], norm=norm, act=act,
        use_bottleneck_attention=kwargs["use_bottleneck_attention"],
        kq_shared=kwargs["key_query_shared_bottleneck"])
    out, logits = block(x, input_mask=MASK.astype("int32"))
    np.testing.assert_allclose(np.asarray(logits), exp_logits, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-3, atol=1e-3)
    # F-1 extra FFNs exist, each with its own weights.
    paths = [v.path for v in block.trainable_variables]
    F = kwargs["num_feedforward_networks"]
    assert sum(p.endswith("intermediate/dense/kernel") for p in paths) == F
    assert w["attention/self/query/kernel"].shape[1] == Bw


def test_mobilebert_block_without_bottleneck():
    H, N, I = 16, 4, 20
    x = RNG.normal(size=(B, S, H)).astype("float32")
    block = MobileBertBlock(H, N, I, use_bottleneck=False, num_feedforward_networks=2,
                            normalization_type="no_norm", name="layer_0")
    block(x, input_mask=MASK.astype("int32"))
    w = _randomize(block)
    expected, _ = _numpy_mobilebert(x, w, MASK, heads=N, F=2, norm="FakeLayerNorm", act=_relu,
                                    use_bottleneck_attention=False, kq_shared=False, use_bottleneck=False)
    out, _ = block(x, input_mask=MASK.astype("int32"))
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-3, atol=1e-3)


def test_block_configs_round_trip():
    block = MobileBertBlock(16, 4, 20, intra_bottleneck_size=8, name="layer_3")
    clone = MobileBertBlock.from_config(block.get_config())
    assert clone.name == "layer_3" and clone.get_config() == block.get_config()
    block = TransformerBlock(16, 4, 32, hidden_act="gelu", exact_gelu=True, name="layer_1")
    assert TransformerBlock.from_config(block.get_config()).get_config() == block.get_config()
