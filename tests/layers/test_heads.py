"""Heads against numpy: pooler, tied MLM (BERT, ALBERT, MobileBERT), NSP/SOP, discriminator."""
import math

import numpy as np

from tfcompact.layers.embeddings import Embeddings
from tfcompact.layers.heads import (
    DiscriminatorHead,
    MaskedLMHead,
    Pooler,
    SentenceHead,
    gather_positions,
)

RNG = np.random.default_rng(0)
B, S, V = 2, 8, 30
POS = np.array([[1, 4, 6], [2, 0, 0]], "int32")


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _ln(x, gamma, beta):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-12) * gamma + beta


def _randomize(layer):
    out = {}
    for v in layer.weights:
        if v.path.endswith("seed_generator_state"):
            continue
        value = RNG.normal(scale=0.3, size=v.shape).astype("float32")
        v.assign(value)
        out[v.path] = value
    return out


def test_gather_positions():
    seq = RNG.normal(size=(B, S, 4)).astype("float32")
    got = np.asarray(gather_positions(seq, POS))
    expected = np.stack([seq[b, POS[b]] for b in range(B)])
    np.testing.assert_array_equal(got, expected)


def test_pooler_is_tanh_dense_on_cls():
    seq = RNG.normal(size=(B, S, 6)).astype("float32")
    pooler = Pooler(6)
    pooler(seq)
    w = _randomize(pooler)
    expected = np.tanh(seq[:, 0] @ w["pooler/dense/kernel"] + w["pooler/dense/bias"])
    np.testing.assert_allclose(np.asarray(pooler(seq)), expected, rtol=1e-5, atol=1e-5)


def _mlm_case(embedding_size, hidden, transform_size, extra, layout="bert"):
    emb = Embeddings(V, embedding_size, hidden_size=hidden, layout=layout, name="embeddings")
    emb.build(None)
    head = MaskedLMHead(emb, V, transform_size, hidden_act="gelu", extra_output_size=extra)
    seq = RNG.normal(size=(B, S, hidden)).astype("float32")
    head(seq, POS)
    w = {**_randomize(emb), **_randomize(head)}
    return emb, head, seq, w


def test_bert_mlm_head_tied_to_word_embeddings():
    emb, head, seq, w = _mlm_case(12, 12, 12, 0)
    gathered = np.stack([seq[b, POS[b]] for b in range(B)])
    h = _gelu_tanh(gathered @ w["predictions/transform/dense/kernel"] + w["predictions/transform/dense/bias"])
    h = _ln(h, w["predictions/transform/LayerNorm/gamma"], w["predictions/transform/LayerNorm/beta"])
    expected = h @ w["embeddings/word_embeddings"].T + w["predictions/output_bias"]
    logits = np.asarray(head(seq, POS))
    assert logits.shape == (B, 3, V)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    # The head reads the embedding layer's variable itself, not a copy.
    assert any(v is emb.word_embeddings for v in head.weights)


def test_albert_google_mlm_head_transforms_h_to_e():
    emb, head, seq, w = _mlm_case(6, 16, 6, 0)
    assert w["predictions/transform/dense/kernel"].shape == (16, 6)
    gathered = np.stack([seq[b, POS[b]] for b in range(B)])
    h = _gelu_tanh(gathered @ w["predictions/transform/dense/kernel"] + w["predictions/transform/dense/bias"])
    h = _ln(h, w["predictions/transform/LayerNorm/gamma"], w["predictions/transform/LayerNorm/beta"])
    expected = h @ w["embeddings/word_embeddings"].T + w["predictions/output_bias"]
    np.testing.assert_allclose(np.asarray(head(seq, POS)), expected, rtol=1e-4, atol=1e-4)


def test_mobilebert_decoder_is_concat_of_embeddings_and_extra_weights():
    E, H = 6, 16
    emb, head, seq, w = _mlm_case(E, H, H, H - E, layout="mobilebert")
    assert w["predictions/extra_output_weights"].shape == (V, H - E)
    gathered = np.stack([seq[b, POS[b]] for b in range(B)])
    h = _gelu_tanh(gathered @ w["predictions/transform/dense/kernel"] + w["predictions/transform/dense/bias"])
    h = _ln(h, w["predictions/transform/LayerNorm/gamma"], w["predictions/transform/LayerNorm/beta"])
    decoder = np.concatenate([w["embeddings/word_embeddings"], w["predictions/extra_output_weights"]], axis=1)
    expected = h @ decoder.T + w["predictions/output_bias"]
    np.testing.assert_allclose(np.asarray(head(seq, POS)), expected, rtol=1e-4, atol=1e-4)


def test_sentence_head_stores_output_weights_out_by_in():
    pooled = RNG.normal(size=(B, 10)).astype("float32")
    head = SentenceHead()
    head(pooled)
    w = _randomize(head)
    assert w["seq_relationship/output_weights"].shape == (2, 10)
    expected = pooled @ w["seq_relationship/output_weights"].T + w["seq_relationship/output_bias"]
    np.testing.assert_allclose(np.asarray(head(pooled)), expected, rtol=1e-5, atol=1e-5)


def test_discriminator_head():
    seq = RNG.normal(size=(B, S, 8)).astype("float32")
    head = DiscriminatorHead(8, "gelu", exact_gelu=True)
    head(seq)
    w = _randomize(head)
    h = seq @ w["discriminator_predictions/dense/kernel"] + w["discriminator_predictions/dense/bias"]
    h = h * 0.5 * (1.0 + np.vectorize(math.erf)(h / math.sqrt(2.0)))
    expected = (h @ w["discriminator_predictions/dense_1/kernel"] + w["discriminator_predictions/dense_1/bias"])[..., 0]
    out = np.asarray(head(seq))
    assert out.shape == (B, S)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
