"""Pretraining losses on hand-checkable cases (expected values worked out with numpy here)."""
import numpy as np
import pytest

import tfcompact  # noqa: F401
import tensorflow as tf

from tfcompact.errors import ConfigError
from tfcompact.objectives import (
    auc_from_histogram,
    electra_loss,
    electra_rtd_accuracy,
    electra_rtd_loss,
    masked_lm_accuracy,
    masked_lm_loss,
    pretraining_loss,
    rtd_auc_histogram,
    sentence_accuracy,
    sentence_loss,
)


def log_softmax(x):
    x = np.asarray(x, np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


# One sequence, 3 prediction slots over a 3-token vocabulary; slot 3 is padding (weight 0).
MLM_LOGITS = np.array([[[np.log(2.0), 0.0, 0.0],   # p(token 0) = 2/4 = 0.5
                        [0.0, 0.0, 0.0],            # p = 1/3 each
                        [5.0, -1.0, 3.0]]], np.float32)
MLM_IDS = np.array([[0, 2, 1]])
MLM_WEIGHTS = np.array([[1.0, 1.0, 0.0]], np.float32)


def test_masked_lm_loss_by_hand():
    # (-log 0.5 - log(1/3)) / (2 + 1e-5); the padded third slot does not count.
    expected = (np.log(2.0) + np.log(3.0)) / (2.0 + 1e-5)
    got = masked_lm_loss(MLM_LOGITS, MLM_IDS, MLM_WEIGHTS)
    assert got.dtype == tf.float32
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_masked_lm_loss_is_float32_for_bfloat16_logits():
    got = masked_lm_loss(tf.cast(MLM_LOGITS, tf.bfloat16), MLM_IDS, MLM_WEIGHTS)
    assert got.dtype == tf.float32
    assert float(got) == pytest.approx((np.log(2.0) + np.log(3.0)) / 2.0, rel=1e-2)


def test_masked_lm_accuracy_by_hand():
    # Slot 1: argmax 0 == 0 (right); slot 2: ties -> argmax 0 != 2 (wrong); slot 3 padding.
    assert float(masked_lm_accuracy(MLM_LOGITS, MLM_IDS, MLM_WEIGHTS)) == pytest.approx(
        1.0 / (2.0 + 1e-5), rel=1e-6)


def test_sentence_loss_and_accuracy():
    logits = np.array([[0.0, 0.0], [np.log(3.0), 0.0], [2.0, 0.0]], np.float32)
    labels = np.array([[1], [0], [1]])  # [B, 1] as the TFRecords store it
    # CE: log 2; -log(3/4); -log(1/(1+e^2))
    expected = (np.log(2.0) - np.log(0.75) + np.log(1.0 + np.exp(2.0))) / 3.0
    assert float(sentence_loss(logits, labels)) == pytest.approx(expected, rel=1e-6)
    # argmax: 0 (tie), 0, 0 -> right only for example 2.
    assert float(sentence_accuracy(logits, labels)) == pytest.approx(1.0 / 3.0)


def sigmoid_ce(logit, label):
    return np.log1p(np.exp(-logit)) if label else np.log1p(np.exp(logit))


RTD_LOGITS = np.array([[2.0, -1.0, 0.5, 3.0], [-2.0, 1.0, 0.0, 0.0]], np.float32)
RTD_LABELS = np.array([[1, 0, 0, 1], [0, 1, 1, 0]])
INPUT_MASK = np.array([[1, 1, 1, 0], [1, 1, 1, 1]])


def test_rtd_loss_and_accuracy():
    terms = [sigmoid_ce(l, y) for l, y, m in zip(RTD_LOGITS.ravel(), RTD_LABELS.ravel(),
                                                  INPUT_MASK.ravel()) if m]
    expected = sum(terms) / (7 + 1e-6)
    assert float(electra_rtd_loss(RTD_LOGITS, RTD_LABELS, INPUT_MASK)) == pytest.approx(expected, rel=1e-6)
    # Predictions (logit > 0) on the 7 real tokens: 1,0,1 | 0,1,0,0 vs labels 1,0,0 | 0,1,1,0.
    assert float(electra_rtd_accuracy(RTD_LOGITS, RTD_LABELS, INPUT_MASK)) == pytest.approx(5 / 7)


def exact_auc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auc_histogram_matches_exact_auc_when_bins_separate():
    scores = np.array([0.05, 0.31, 0.47, 0.62, 0.88, 0.93, 0.15, 0.71])
    labels = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    logits = np.log(scores / (1 - scores)).astype(np.float32)
    hist = rtd_auc_histogram(logits[None], labels[None], np.ones((1, 8)), num_bins=100)
    assert float(tf.reduce_sum(hist)) == 8.0
    assert float(auc_from_histogram(hist)) == pytest.approx(exact_auc(scores, labels), rel=1e-6)
    # Padding is ignored; summing histograms of two halves gives the same AUC as the whole.
    half_a = rtd_auc_histogram(logits[None, :4], labels[None, :4], np.ones((1, 4)), num_bins=100)
    half_b = rtd_auc_histogram(logits[None, 4:], labels[None, 4:], np.ones((1, 4)), num_bins=100)
    assert float(auc_from_histogram(half_a + half_b)) == pytest.approx(float(auc_from_histogram(hist)))
    masked = rtd_auc_histogram(logits[None], labels[None], np.array([[1, 1, 1, 1, 1, 1, 0, 0]]), 100)
    assert float(auc_from_histogram(masked)) == pytest.approx(exact_auc(scores[:6], labels[:6]))
    # Ties in one bin count one half.
    tied = rtd_auc_histogram(np.zeros((1, 2), np.float32), np.array([[0, 1]]), np.ones((1, 2)), 10)
    assert float(auc_from_histogram(tied)) == pytest.approx(0.5)


def electra_case():
    outputs = {"mlm_logits": MLM_LOGITS, "rtd_logits": RTD_LOGITS[:1], "rtd_labels": RTD_LABELS[:1],
               "sampled_ids": np.array([[0, 1, 1]])}
    batch = {"masked_lm_ids": MLM_IDS, "masked_lm_weights": MLM_WEIGHTS,
             "input_mask": INPUT_MASK[:1]}
    return outputs, batch


def test_electra_loss_is_gen_plus_50_disc():
    outputs, batch = electra_case()
    total, metrics = electra_loss(outputs, batch)
    mlm = (np.log(2.0) + np.log(3.0)) / (2.0 + 1e-6)
    rtd = (sigmoid_ce(2.0, 1) + sigmoid_ce(-1.0, 0) + sigmoid_ce(0.5, 0)) / (3 + 1e-6)
    assert float(total) == pytest.approx(mlm + 50.0 * rtd, rel=1e-6)
    assert float(metrics["mlm_loss"]) == pytest.approx(mlm, rel=1e-6)
    assert float(metrics["rtd_loss"]) == pytest.approx(rtd, rel=1e-6)
    assert float(metrics["rtd_accuracy"]) == pytest.approx(2 / 3)
    # Sampled ids 0, 1 vs originals 0, 2 (third slot padding): 1 of 2.
    assert float(metrics["sampled_accuracy"]) == pytest.approx(0.5, rel=1e-5)
    # One replaced token (logit 2.0) vs two originals (-1.0, 0.5): AUC 1.
    assert float(metrics["rtd_auc"]) == pytest.approx(1.0)
    assert float(metrics["rtd_precision"]) == pytest.approx(0.5)
    assert float(metrics["rtd_recall"]) == pytest.approx(1.0)
    total_10, _ = pretraining_loss("electra", outputs, batch, disc_weight=10.0)
    assert float(total_10) == pytest.approx(mlm + 10.0 * rtd, rel=1e-6)


def test_pretraining_loss_bert_and_albert():
    sentence_logits = np.array([[np.log(3.0), 0.0]], np.float32)
    outputs = {"mlm_logits": MLM_LOGITS, "sentence_logits": sentence_logits}
    batch = {"masked_lm_ids": MLM_IDS, "masked_lm_weights": MLM_WEIGHTS,
             "next_sentence_labels": np.array([[0]])}
    mlm = (np.log(2.0) + np.log(3.0)) / (2.0 + 1e-5)
    total, metrics = pretraining_loss("bert", outputs, batch)
    assert float(total) == pytest.approx(mlm - np.log(0.75), rel=1e-6)
    assert set(metrics) == {"total_loss", "mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy"}
    _, metrics = pretraining_loss("albert", outputs, batch)
    assert "sop_loss" in metrics and float(metrics["sop_accuracy"]) == 1.0
    # MobileBERT zh has no NSP head: MLM only.
    total, metrics = pretraining_loss("mobilebert", {"mlm_logits": MLM_LOGITS}, batch)
    assert float(total) == pytest.approx(mlm, rel=1e-6) and "nsp_loss" not in metrics
    with pytest.raises(ConfigError, match="arch"):
        pretraining_loss("gpt", outputs, batch)


def test_cross_replica_denominators_with_one_replica_equal_local():
    outputs, batch = electra_case()
    local, _ = electra_loss(outputs, batch)
    shared, metrics = electra_loss(outputs, batch, cross_replica=True)
    assert float(shared) == pytest.approx(float(local), rel=1e-6)
    assert "rtd_auc" not in metrics  # not additive over replicas
