"""TinyBERT and MobileBERT distillation losses against numpy versions written from the formulas."""
import numpy as np
import pytest

import tfcompact  # noqa: F401
import tensorflow as tf

from tfcompact.errors import ConfigError
from tfcompact.objectives import distillation as D

RNG = np.random.default_rng(7)


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def np_ln(x, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


def attention_logits(layers, batch=2, heads=3, seq=5, pad_from=4, mask=-10000.0):
    out = []
    for _ in range(layers):
        a = RNG.normal(size=(batch, heads, seq, seq)).astype(np.float32)
        a[..., pad_from:] += mask  # padded key columns carry the additive mask
        out.append(a)
    return out


def hidden_states(layers, batch=2, seq=5, width=6, scale=1.0):
    return [(scale * RNG.normal(size=(batch, seq, width)) + RNG.normal()).astype(np.float32)
            for _ in range(layers + 1)]


def test_tinybert_layer_maps():
    m = D.tinybert_layer_map(4, 12)
    assert m.attention == (2, 5, 8, 11)  # teacher layers 3, 6, 9, 12 (1-based)
    assert m.hidden == (0, 3, 6, 9, 12)
    m = D.tinybert_layer_map(6, 12)
    assert m.attention == (1, 3, 5, 7, 9, 11) and m.hidden == (0, 2, 4, 6, 8, 10, 12)
    m = D.tinybert_layer_map(12, 12)
    assert m.attention == tuple(range(12)) and m.hidden == tuple(range(13))
    with pytest.raises(ConfigError, match="multiple"):
        D.tinybert_layer_map(5, 12)


def test_tinybert_attention_loss():
    student, teacher = attention_logits(2), attention_logits(4)
    expected = 0.0
    for i, t_index in enumerate([1, 3]):  # k = 2: i*k + k - 1
        s = np.where(student[i] <= -100, 0.0, student[i])
        t = np.where(teacher[t_index] <= -100, 0.0, teacher[t_index])
        expected += np.mean((s - t) ** 2)
    got = D.tinybert_attention_loss(student, teacher)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_tinybert_hidden_loss_with_fit_dense():
    student, teacher = hidden_states(2, width=4), hidden_states(4, width=6)
    fit = D.build_fit_dense(6)
    fit.build((None, None, 4))
    kernel, bias = RNG.normal(size=(4, 6)).astype(np.float32), RNG.normal(size=6).astype(np.float32)
    fit.set_weights([kernel, bias])
    expected = sum(np.mean((student[j] @ kernel + bias - teacher[2 * j]) ** 2) for j in range(3))
    assert float(D.tinybert_hidden_loss(student, teacher, fit)) == pytest.approx(expected, rel=1e-5)
    total, metrics = D.tinybert_general_distillation_loss(
        {"hidden_states": student, "attention_logits": attention_logits(2)},
        {"hidden_states": teacher, "attention_logits": attention_logits(4)}, fit)
    assert float(total) == pytest.approx(float(metrics["attention_loss"] + metrics["hidden_loss"]))


def test_soft_cross_entropy_by_hand():
    # Teacher softmax [0.75, 0.25]; student uniform: entries 0.75 log 2 and 0.25 log 2; mean over
    # batch x classes (2 entries) = 0.5 log 2.
    got = D.soft_cross_entropy(np.array([[0.0, 0.0]]), np.array([[np.log(3.0), 0.0]]))
    assert float(got) == pytest.approx(0.5 * np.log(2.0), rel=1e-6)
    s, t = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    log_p = np.log(np_softmax(s / 2.0))
    expected = np.mean(-np_softmax(t / 2.0) * log_p)
    assert float(D.soft_cross_entropy(s, t, temperature=2.0)) == pytest.approx(expected, rel=1e-5)


def test_mobilebert_feature_map_loss():
    student, teacher = hidden_states(3), hidden_states(3, scale=3.0)
    per_layer = [np.mean((np_ln(teacher[l]) - np_ln(student[l])) ** 2) for l in (1, 2, 3)]
    got = D.mobilebert_feature_map_loss(student, teacher)
    assert float(got) == pytest.approx(100.0 / 3 * sum(per_layer), rel=1e-5)
    gated = D.mobilebert_feature_map_loss(student, teacher, gates=[0.0, 1.0, 0.0])
    assert float(gated) == pytest.approx(100.0 / 3 * per_layer[1], rel=1e-5)


def test_mobilebert_attention_loss():
    student, teacher = attention_logits(2, mask=-6.0), attention_logits(2, mask=-6.0)
    per_layer = [np.mean(np.sum(-np_softmax(t) * np.log(np_softmax(s)), -1))
                 for s, t in zip(student, teacher)]
    got = D.mobilebert_attention_loss(student, teacher)
    assert float(got) == pytest.approx(sum(per_layer) / 2, rel=1e-5)


def test_mobilebert_mean_variance_loss_correct_and_original_bug():
    student, teacher = hidden_states(2), hidden_states(2, scale=2.0)

    def stats(x):
        return x.mean(-1, keepdims=True), x.var(-1, keepdims=True)

    mean_terms, var_terms, bug_mean, bug_var = [], [], [], []
    all_t = np.stack(teacher)  # [L+1, B, S, H]: every teacher hidden state, embeddings included
    t_all_mean, t_all_var = stats(all_t)
    for l in (1, 2):
        s_mean, s_var = stats(student[l])
        t_mean, t_var = stats(teacher[l])
        mean_terms.append(np.mean((t_mean - s_mean) ** 2))
        var_terms.append(np.mean(np.abs(t_var - s_var)))
        bug_mean.append(np.mean((t_all_mean - s_mean[None]) ** 2))
        bug_var.append(np.mean(np.abs(t_all_var - s_var[None])))
    mean, var = D.mobilebert_mean_variance_loss(student, teacher)
    assert float(mean) == pytest.approx(5000.0 / 2 * sum(mean_terms), rel=1e-5)
    assert float(var) == pytest.approx(5.0 / 2 * sum(var_terms), rel=1e-5)
    mean_b, var_b = D.mobilebert_mean_variance_loss(student, teacher,
                                                    reproduce_original_broadcast_bug=True)
    assert float(mean_b) == pytest.approx(5000.0 / 2 * sum(bug_mean), rel=1e-5)
    assert float(var_b) == pytest.approx(5.0 / 2 * sum(bug_var), rel=1e-5)
    assert abs(float(mean_b) - float(mean)) > 1e-3 * float(mean)
    # A student equal to its teacher has zero loss only in the correct version.
    zero_mean, zero_var = D.mobilebert_mean_variance_loss(teacher, teacher)
    assert float(zero_mean) == 0.0 and float(zero_var) == 0.0


def test_mobilebert_transfer_loss_teacher_gets_no_gradient():
    student = [tf.Variable(h) for h in hidden_states(2)]
    teacher = [tf.Variable(h) for h in hidden_states(2)]
    s_att = [tf.Variable(a) for a in attention_logits(2, mask=-6.0)]
    t_att = [tf.Variable(a) for a in attention_logits(2, mask=-6.0)]
    with tf.GradientTape(persistent=True) as tape:
        total, metrics = D.mobilebert_transfer_loss(
            {"hidden_states": student, "attention_logits": s_att},
            {"hidden_states": teacher, "attention_logits": t_att})
    expected = sum(float(metrics[k]) for k in ("feature_map_transfer_loss", "attention_transfer_loss",
                                               "mean_transfer_loss", "variance_transfer_loss"))
    assert float(total) == pytest.approx(expected, rel=1e-6)
    assert all(g is None for g in tape.gradient(total, teacher + t_att))
    assert all(g is not None for g in tape.gradient(total, student[1:] + s_att))


def test_mlm_distillation_targets_and_loss():
    teacher = np.array([[[np.log(3.0), 0.0, 0.0]]], np.float32)  # softmax [0.6, 0.2, 0.2]
    targets = D.mobilebert_mlm_distillation_targets(teacher, np.array([[1]]), 0.5)
    np.testing.assert_allclose(targets.numpy(), [[[0.3, 0.6, 0.1]]], rtol=1e-6)
    student = np.array([[[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]], np.float32)
    teacher2 = np.concatenate([teacher, teacher], axis=1)
    loss = D.mobilebert_mlm_distillation_loss(student, teacher2, np.array([[1, 0]]),
                                              np.array([[1.0, 0.0]]))
    # Only the first slot counts: uniform student -> -sum(target * log(1/3)) = log 3.
    assert float(loss) == pytest.approx(np.log(3.0) / (1 + 1e-5), rel=1e-6)


def test_pkt_gates():
    assert D.pkt_steps_per_phase(30, 3) == 10
    with pytest.raises(ConfigError):
        D.pkt_steps_per_phase(2, 3)
    expected = {0: [0, 0, 0], 5: [1, 0, 0], 10: [1, 0, 0], 11: [0, 1, 0], 25: [0, 0, 1],
                30: [0, 0, 1], 35: [0, 0, 0]}
    for step, gates in expected.items():
        got = D.pkt_layer_gates(tf.constant(step, tf.int64), 3, 10).numpy().tolist()
        assert got == gates, step


def test_distillation_objective_names_unknown_kinds_and_terms():
    from tfcompact.objectives.distillation import distillation_objective

    with pytest.raises(ConfigError, match=r"exp.yaml: distillation.kind: expected tinybert_general, "
                                          r"mobilebert_pkt or mobilebert_main, got 'tinybert_task'"):
        distillation_objective("tinybert_task", {}, num_layers=2, total_steps=10, source="exp.yaml")
    with pytest.raises(ConfigError, match=r"unknown term\(s\) beta for kind tinybert_general"):
        distillation_objective("tinybert_general", {"beta": 1.0}, num_layers=2, total_steps=10)
    assert callable(distillation_objective("mobilebert_main", {"mlm": 0.5, "beta": 10.0},
                                           num_layers=2, total_steps=10))
