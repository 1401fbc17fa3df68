"""Embedding layouts against numpy: BERT, ALBERT (Google and brightmart), MobileBERT trigram."""
import numpy as np
import pytest

from tfcompact.errors import ConfigError
from tfcompact.layers.embeddings import Embeddings

V, T, P, B, S = 40, 2, 20, 2, 7
RNG = np.random.default_rng(0)
IDS = RNG.integers(0, V, size=(B, S)).astype("int32")
SEG = RNG.integers(0, T, size=(B, S)).astype("int32")


def _np_layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _build(**kwargs):
    layer = Embeddings(vocab_size=V, type_vocab_size=T, max_position_embeddings=P, dropout_rate=0.1, **kwargs)
    layer.build(None)
    # Random norm parameters, so the test sees whether gamma/beta are applied.
    layer.norm.gamma.assign(RNG.normal(size=layer.norm.gamma.shape).astype("float32"))
    layer.norm.beta.assign(RNG.normal(size=layer.norm.beta.shape).astype("float32"))
    weights = {v.path.split("/", 1)[1]: np.asarray(v.numpy()) for v in layer.weights
               if not v.path.endswith("seed_generator_state")}
    return layer, weights


def test_bert_layout():
    layer, w = _build(embedding_size=16)
    expected = w["word_embeddings"][IDS] + w["token_type_embeddings"][SEG] + w["position_embeddings"][:S][None]
    expected = _np_layer_norm(expected, w["LayerNorm/gamma"], w["LayerNorm/beta"])
    np.testing.assert_allclose(np.asarray(layer((IDS, SEG))), expected, rtol=1e-4, atol=1e-4)
    assert w["position_embeddings"].shape == (P, 16)


def test_albert_google_layout_adds_type_and_position_at_width_e():
    layer, w = _build(embedding_size=8, hidden_size=32)
    assert w["word_embeddings"].shape == (V, 8)
    assert w["token_type_embeddings"].shape == (T, 8)
    assert w["position_embeddings"].shape == (P, 8)
    assert w["LayerNorm/gamma"].shape == (8,)
    assert "word_embeddings_2" not in w
    out = np.asarray(layer((IDS, SEG)))
    assert out.shape == (B, S, 8)  # the E -> H mapping is embedding_hidden_mapping_in, outside


def test_albert_brightmart_layout_projects_before_type_and_position():
    layer, w = _build(embedding_size=8, hidden_size=32, layout="brightmart")
    assert w["word_embeddings_2"].shape == (8, 32)
    assert w["token_type_embeddings"].shape == (T, 32)
    assert w["position_embeddings"].shape == (P, 32)
    projected = w["word_embeddings"][IDS] @ w["word_embeddings_2"]
    expected = projected + w["token_type_embeddings"][SEG] + w["position_embeddings"][:S][None]
    expected = _np_layer_norm(expected, w["LayerNorm/gamma"], w["LayerNorm/beta"])
    np.testing.assert_allclose(np.asarray(layer((IDS, SEG))), expected, rtol=1e-4, atol=1e-4)
    # Tied output: (h·W2ᵀ)·W1ᵀ
    h = RNG.normal(size=(B, 3, 32)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(layer.attend(h)), h @ w["word_embeddings_2"].T @ w["word_embeddings"].T, rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("normalization_type", ["no_norm", "layer_norm"])
def test_mobilebert_trigram_layout(normalization_type):
    E, H = 6, 16
    layer, w = _build(embedding_size=E, hidden_size=H, layout="mobilebert", trigram_input=True,
                      normalization_type=normalization_type)
    norm = "FakeLayerNorm" if normalization_type == "no_norm" else "LayerNorm"
    assert w["embedding_transformation/kernel"].shape == (3 * E, H)
    e = w["word_embeddings"][IDS]  # [B, S, E]
    zeros = np.zeros((B, 1, E), "float32")
    nxt = np.concatenate([e[:, 1:], zeros], axis=1)  # token t+1
    prev = np.concatenate([zeros, e[:, :-1]], axis=1)  # token t-1
    tri = np.concatenate([nxt, e, prev], axis=-1)
    x = tri @ w["embedding_transformation/kernel"] + w["embedding_transformation/bias"]
    x = x + w["token_type_embeddings"][SEG] + w["position_embeddings"][:S][None]
    if normalization_type == "no_norm":
        expected = x * w[f"{norm}/gamma"] + w[f"{norm}/beta"]
    else:
        expected = _np_layer_norm(x, w[f"{norm}/gamma"], w[f"{norm}/beta"])
    np.testing.assert_allclose(np.asarray(layer((IDS, SEG))), expected, rtol=1e-4, atol=1e-4)


def test_mobilebert_without_trigram_projects_only_when_e_differs():
    layer, w = _build(embedding_size=16, hidden_size=16, layout="mobilebert", trigram_input=False)
    assert "embedding_transformation/kernel" not in w
    layer, w = _build(embedding_size=8, hidden_size=16, layout="mobilebert", trigram_input=False)
    assert w["embedding_transformation/kernel"].shape == (8, 16)


def test_dropout_only_in_training():
    layer, _ = _build(embedding_size=16)
    a, b = np.asarray(layer((IDS, SEG))), np.asarray(layer((IDS, SEG)))
    np.testing.assert_array_equal(a, b)
    c = np.asarray(layer((IDS, SEG), training=True))
    assert (c == 0).mean() > 0.02 and not np.allclose(a, c)


def test_unknown_layout():
    with pytest.raises(ConfigError, match="layout"):
        Embeddings(vocab_size=V, embedding_size=8, layout="xlnet")


def test_get_config_round_trip():
    layer, _ = _build(embedding_size=8, hidden_size=32, layout="brightmart")
    clone = Embeddings.from_config(layer.get_config())
    clone.build(None)
    assert [tuple(v.shape) for v in clone.weights] == [tuple(v.shape) for v in layer.weights]
