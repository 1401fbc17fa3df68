"""The distillation mechanism (tfcompact/objectives/distillation.py) against numpy versions of
each formula written here from its definition: the pair losses, the layer mapping and its
errors, progressive gates, weight and temperature schedules, gradients, the ground-truth loss
and the config checks. The shipped recipes are in test_distillation_recipes.py."""
import numpy as np
import pytest

import tfcompact  # noqa: F401
import tensorflow as tf

from tfcompact.errors import ConfigError
from tfcompact.objectives import distillation as D
from tfcompact.objectives.distillation import FeatureShapes, Match
from tfcompact.train import experiment as E

RTOL = 1e-5
RNG = np.random.default_rng(12)
# Two sequences of 5 tokens: 4 and 3 real tokens, the rest padding.
INPUT_MASK = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], np.int32)
BATCH, SEQ = INPUT_MASK.shape


# ---------------------------------------------------------------------------------------------
# numpy references, from the formulas (float64)
# ---------------------------------------------------------------------------------------------

def f64(x):
    return np.asarray(x, np.float64)


def np_log_softmax(x, axis=-1):
    x = f64(x)
    shifted = x - x.max(axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis, keepdims=True))


def np_softmax(x, axis=-1):
    return np.exp(np_log_softmax(x, axis))


def masked_token_mean(per_token, mask):
    """Mean over [B, S]; over real tokens only when `mask` is given."""
    if mask is None:
        return per_token.mean()
    mask = f64(mask)
    return (per_token * mask).sum() / mask.sum()


def np_mse(s, t, mask=None):
    squared = (f64(s) - f64(t)) ** 2
    return squared.mean() if mask is None else masked_token_mean(squared.mean(-1), mask)


def np_layer_norm(x, eps=1e-12):
    x = f64(x)
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


def np_ln_mse(s, t, mask=None):
    return np_mse(np_layer_norm(s), np_layer_norm(t), mask)


def np_cos(s, t, mask=None):
    s, t = f64(s), f64(t)
    cosine = (s * t).sum(-1) / (np.linalg.norm(s, axis=-1) * np.linalg.norm(t, axis=-1))
    return masked_token_mean(1.0 - cosine, mask)


def np_mmd(s, t, mask=None):
    s, t = f64(s), f64(t)
    gram_s = np.einsum("bih,bjh->bij", s, s) / s.shape[-1]
    gram_t = np.einsum("bih,bjh->bij", t, t) / t.shape[-1]
    squared = (gram_s - gram_t) ** 2
    if mask is None:
        return squared.mean()
    pairs = f64(mask)[:, :, None] * f64(mask)[:, None, :]
    return (squared * pairs).sum() / pairs.sum()


def np_moments(x):
    """Per-token mean and (population) variance over the hidden axis, [..., 1] each."""
    x = f64(x)
    mu = x.mean(-1, keepdims=True)
    return mu, ((x - mu) ** 2).mean(-1, keepdims=True)


def np_mean_var(s, t_mu, t_var):
    """(mean((mu_t - mu_s)^2), mean(|var_t - var_s|)), broadcasting the teacher's statistics."""
    s_mu, s_var = np_moments(s)
    return ((t_mu - s_mu) ** 2).mean(), np.abs(t_var - s_var).mean()


def np_attention_mse(s, t, threshold=-100.0):
    s, t = f64(s), f64(t)
    return ((np.where(s <= threshold, 0.0, s) - np.where(t <= threshold, 0.0, t)) ** 2).mean()


def np_attention_ce(s, t):
    return (-(np_softmax(t) * np_log_softmax(s)).sum(-1)).mean()


def np_entropy(t):
    return (-(np_softmax(t) * np_log_softmax(t)).sum(-1)).mean()


def np_soft_ce(s, t, temperature=1.0, labels=None, ratio=0.0, weights=None,
               class_mean=False, eps=0.0):
    """sum_c -target_c log_softmax(s/T)_c, target = (1-r) softmax(t/T) + r one_hot, averaged
    over positions with weights w: sum(w * ce) / (sum(w) + eps)."""
    target = (1.0 - ratio) * np_softmax(f64(t) / temperature)
    if ratio:
        target = target + ratio * np.eye(t.shape[-1])[labels]
    per_position = -(target * np_log_softmax(f64(s) / temperature)).sum(-1)
    if class_mean:
        per_position = per_position / t.shape[-1]
    w = np.ones_like(per_position) if weights is None else f64(weights)
    return (w * per_position).sum() / (w.sum() + eps)


# ---------------------------------------------------------------------------------------------
# inputs and the objective
# ---------------------------------------------------------------------------------------------

def hidden_states(layers, width, padded_scale=1.0):
    """L+1 [B, S, H] float32 tensors, each layer with its own offset and scale; the padded
    tokens are multiplied by `padded_scale` (large: the padding dominates unless masked)."""
    out = []
    for layer in range(layers + 1):
        h = RNG.normal(size=(BATCH, SEQ, width)) * (1.0 + 0.3 * layer) + 0.2 * layer
        h = h * np.where(INPUT_MASK[:, :, None] == 1, 1.0, padded_scale)
        out.append(h.astype(np.float32))
    return out


def attention_logits(layers, heads=2, masked_noise=0.0):
    """L [B, heads, S, S] pre-softmax scores with the additive -10000 mask on padded keys (plus
    `masked_noise` x noise there, so masked entries can differ between models)."""
    out = []
    padded_keys = (1 - INPUT_MASK)[:, None, None, :].astype(np.float64)
    for _ in range(layers):
        a = RNG.normal(size=(BATCH, heads, SEQ, SEQ)) * 2.0
        a = a + padded_keys * (-10000.0 + masked_noise * RNG.normal(size=a.shape))
        out.append(a.astype(np.float32))
    return out


def shapes(layers, width, heads=2, logits=()):
    widths = width if isinstance(width, tuple) else (width,) * (layers + 1)
    return FeatureShapes(layers, widths, heads, tuple(logits))


def as_tensors(d):
    return {k: [tf.constant(x) for x in v] if isinstance(v, list) else tf.constant(v)
            for k, v in d.items()}


def build(matches, student, teacher, total_steps=100, **kwargs):
    resolved = D.resolve_matches(matches, student, teacher)
    return D.distillation_objective(resolved, total_steps=total_steps, **kwargs)


def run(loss_fn, s_out, t_out, batch=None, step=0):
    """(total, {metric: value}) as Python floats."""
    batch = {"input_mask": INPUT_MASK} if batch is None else batch
    total, metrics = loss_fn(as_tensors(s_out), as_tensors(batch), as_tensors(t_out),
                             tf.constant(step, tf.int64))
    return float(total), {k: float(v) for k, v in metrics.items()}


def one_layer_pair(width_s=6, width_t=6, padded_scale=1.0):
    """Student and teacher with one encoder layer each: hidden_states [h0, h1]."""
    return ({"hidden_states": hidden_states(1, width_s, padded_scale)},
            {"hidden_states": hidden_states(1, width_t, padded_scale)})


# ---------------------------------------------------------------------------------------------
# 1. the pair losses
# ---------------------------------------------------------------------------------------------

STATE_LOSSES = {"mse": np_mse, "ln_mse": np_ln_mse, "cos": np_cos, "mmd": np_mmd}


@pytest.mark.parametrize("token_mask", [False, True])
@pytest.mark.parametrize("loss", sorted(STATE_LOSSES))
def test_state_losses_follow_their_formulas(loss, token_mask):
    width_t = 8 if loss == "mmd" else 6  # the Gram matrices compare different widths
    s_out, t_out = one_layer_pair(6, width_t, padded_scale=5.0)
    match = Match(feature="hidden", loss=loss, student_layers="encoder", teacher_layers="same",
                  weight=2.0, token_mask=token_mask)
    total, metrics = run(build([match], shapes(1, 6), shapes(1, width_t)), s_out, t_out)
    s, t = s_out["hidden_states"][1], t_out["hidden_states"][1]
    expected = 2.0 * STATE_LOSSES[loss](s, t, INPUT_MASK if token_mask else None)
    assert total == pytest.approx(expected, rel=RTOL)
    assert metrics[f"hidden_{loss}_loss"] == pytest.approx(expected, rel=RTOL)
    # The padded tokens are scaled up: with the mask they must not count, without it they do.
    other = STATE_LOSSES[loss](s, t, None if token_mask else INPUT_MASK)
    assert abs(other - expected / 2.0) > 1e-3 * abs(other)


def test_mean_var_reports_the_mean_and_the_variance_terms_with_their_weights():
    s_out = {"hidden_states": hidden_states(2, 6)}
    t_out = {"hidden_states": hidden_states(2, 6)}
    match = Match(feature="hidden", loss="mean_var", student_layers="encoder",
                  teacher_layers="same", weight=3.0, variance_weight=0.5, reduction="mean")
    total, metrics = run(build([match], shapes(2, 6), shapes(2, 6)), s_out, t_out)
    mean_terms, var_terms = zip(*[np_mean_var(s_out["hidden_states"][l],
                                              *np_moments(t_out["hidden_states"][l]))
                                  for l in (1, 2)])
    mean_term, var_term = 3.0 * np.mean(mean_terms), 0.5 * np.mean(var_terms)
    assert metrics["hidden_mean_var_loss"] == pytest.approx(mean_term, rel=RTOL)
    assert metrics["hidden_mean_var_variance_loss"] == pytest.approx(var_term, rel=RTOL)
    assert total == pytest.approx(mean_term + var_term, rel=RTOL)


def test_mean_var_without_variance_weight_uses_the_weight_for_both_terms():
    s_out, t_out = one_layer_pair()
    match = Match(feature="hidden", loss="mean_var", student_layers=[1], teacher_layers=[1],
                  weight=4.0)
    total, metrics = run(build([match], shapes(1, 6), shapes(1, 6)), s_out, t_out)
    mean_term, var_term = np_mean_var(s_out["hidden_states"][1],
                                      *np_moments(t_out["hidden_states"][1]))
    assert metrics["hidden_mean_var_variance_loss"] == pytest.approx(4.0 * var_term, rel=RTOL)
    assert total == pytest.approx(4.0 * (mean_term + var_term), rel=RTOL)


def test_mean_var_original_broadcast_compares_each_layer_with_all_teacher_layers():
    s_out = {"hidden_states": hidden_states(2, 6)}
    t_out = {"hidden_states": hidden_states(2, 6)}
    match = Match(feature="hidden", loss="mean_var", student_layers="encoder",
                  teacher_layers="same", reproduce_original_broadcast_bug=True)
    total, metrics = run(build([match], shapes(2, 6), shapes(2, 6)), s_out, t_out)
    # Statistics of the stack of every teacher hidden state (embeddings too): [L+1, B, S, 1],
    # broadcast against each student layer's [B, S, 1].
    t_mu, t_var = np_moments(np.stack(t_out["hidden_states"]))
    terms = [np_mean_var(s_out["hidden_states"][l], t_mu, t_var) for l in (1, 2)]
    assert metrics["hidden_mean_var_loss"] == pytest.approx(sum(m for m, _ in terms), rel=RTOL)
    assert metrics["hidden_mean_var_variance_loss"] == pytest.approx(
        sum(v for _, v in terms), rel=RTOL)
    layer_by_layer = sum(sum(np_mean_var(s_out["hidden_states"][l],
                                         *np_moments(t_out["hidden_states"][l]))) for l in (1, 2))
    assert total == pytest.approx(sum(map(sum, terms)), rel=RTOL)
    assert abs(total - layer_by_layer) > 1e-3 * layer_by_layer


def test_attention_mse_zeroes_masked_entries_on_both_sides():
    # The masked entries differ between student and teacher (-10000 plus different noise).
    student, teacher = attention_logits(1, masked_noise=50.0), attention_logits(1)
    match = Match(feature="attention", loss="attention_mse", student_layers="all",
                  teacher_layers="same")
    loss_fn = build([match], shapes(1, 6), shapes(1, 6))
    total, _ = run(loss_fn, {"attention_logits": student}, {"attention_logits": teacher})
    real_keys = INPUT_MASK[:, None, None, :].astype(bool)
    s, t = f64(student[0]), f64(teacher[0])
    # By hand: masked entries are 0 on both sides, so only real keys contribute, averaged over
    # every entry (TinyBERT's MSE over the whole score tensor).
    expected = (np.where(real_keys, s - t, 0.0) ** 2).sum() / s.size
    assert total == pytest.approx(expected, rel=RTOL)
    assert total == pytest.approx(np_attention_mse(s, t), rel=RTOL)
    # Other values in the masked entries (still below the threshold) change nothing.
    moved = [np.where(real_keys, student[0], -20000.0 + student[0]).astype(np.float32)]
    again, _ = run(loss_fn, {"attention_logits": moved}, {"attention_logits": teacher})
    assert again == pytest.approx(total, rel=RTOL)
    # Without the masking the -10000 entries' noise would dominate.
    assert ((s - t) ** 2).mean() > 100 * expected


def test_attention_ce_and_kl_follow_their_formulas():
    student, teacher = attention_logits(2), attention_logits(2)
    s_out, t_out = {"attention_logits": student}, {"attention_logits": teacher}
    matches = [Match(feature="attention", loss=loss, student_layers="all", teacher_layers="same")
               for loss in ("attention_ce", "attention_kl")]
    _, metrics = run(build(matches, shapes(2, 6), shapes(2, 6)), s_out, t_out)
    ce = [np_attention_ce(s, t) for s, t in zip(student, teacher)]
    kl = [np_attention_ce(s, t) - np_entropy(t) for s, t in zip(student, teacher)]
    assert metrics["attention_attention_ce_loss"] == pytest.approx(sum(ce), rel=RTOL)
    assert metrics["attention_attention_kl_loss"] == pytest.approx(sum(kl), rel=RTOL)
    # KL of a distribution with itself is 0; the cross-entropy is then the entropy.
    _, same = run(build(matches, shapes(2, 6), shapes(2, 6)), t_out, t_out)
    assert same["attention_attention_kl_loss"] == pytest.approx(0.0, abs=1e-5)
    assert same["attention_attention_ce_loss"] == pytest.approx(
        sum(np_entropy(t) for t in teacher), rel=RTOL)


def mlm_case(vocab=7, predictions=3):
    s = RNG.normal(size=(BATCH, predictions, vocab)).astype(np.float32) * 2
    t = RNG.normal(size=(BATCH, predictions, vocab)).astype(np.float32) * 2
    ids = RNG.integers(0, vocab, size=(BATCH, predictions)).astype(np.int32)
    return s, t, ids


def logits_objective(match, name, dim, **kwargs):
    return build([match], shapes(1, 6, logits=((name, dim),)),
                 shapes(1, 6, logits=((name, dim),)), **kwargs)


def test_soft_ce_on_the_mlm_mixes_the_label_and_divides_by_sum_of_weights_plus_epsilon():
    s, t, ids = mlm_case()
    weights = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    match = Match(feature="logits", loss="soft_ce", temperature=2.0, ground_truth_ratio=0.3)
    loss_fn = logits_objective(match, "mlm_logits", 7)
    batch = {"masked_lm_ids": ids, "masked_lm_weights": weights}
    total, metrics = run(loss_fn, {"mlm_logits": s}, {"mlm_logits": t}, batch)
    expected = np_soft_ce(s, t, 2.0, ids, 0.3, weights, eps=1e-5)
    assert total == pytest.approx(expected, rel=RTOL)
    assert metrics["logits_soft_ce_loss"] == pytest.approx(expected, rel=RTOL)
    # One position of weight 1e-5: the denominator is 1e-5 + 1e-5, so half its cross-entropy.
    tiny = np.zeros_like(weights)
    tiny[0, 1] = 1e-5
    total, _ = run(loss_fn, {"mlm_logits": s}, {"mlm_logits": t},
                   {"masked_lm_ids": ids, "masked_lm_weights": tiny})
    assert total == pytest.approx(0.5 * np_soft_ce(s[0, 1], t[0, 1], 2.0, ids[0, 1], 0.3),
                                  rel=1e-4)


def test_soft_ce_on_classification_logits_class_mean_and_example_weights():
    s = RNG.normal(size=(4, 3)).astype(np.float32)
    t = RNG.normal(size=(4, 3)).astype(np.float32)
    labels = np.array([0, 2, 1, 1], np.int32)
    match = Match(feature="logits", loss="soft_ce", temperature=1.5, class_mean=True)
    loss_fn = logits_objective(match, "logits", 3)
    total, _ = run(loss_fn, {"logits": s}, {"logits": t}, {"label_ids": labels})
    # class_mean: the mean over batch x classes of -target log p.
    by_hand = (-(np_softmax(f64(t) / 1.5) * np_log_softmax(f64(s) / 1.5))).mean()
    assert total == pytest.approx(by_hand, rel=RTOL)
    # Example weights (no epsilon outside the MLM: a tiny weight gives the full value).
    weights = np.array([1e-5, 0.0, 0.0, 0.0], np.float32)
    total, _ = run(loss_fn, {"logits": s}, {"logits": t},
                   {"label_ids": labels, "example_weight": weights})
    assert total == pytest.approx(np_soft_ce(s[0], t[0], 1.5, class_mean=True), rel=1e-4)
    match = Match(feature="logits", loss="soft_ce", ground_truth_ratio=1.0)
    total, _ = run(logits_objective(match, "logits", 3), {"logits": s}, {"logits": t},
                   {"label_ids": labels})
    assert total == pytest.approx(-np_log_softmax(s)[np.arange(4), labels].mean(), rel=RTOL)


def test_soft_ce_on_tagging_logits_counts_the_labelled_pieces_only():
    s = RNG.normal(size=(BATCH, SEQ, 4)).astype(np.float32)
    t = RNG.normal(size=(BATCH, SEQ, 4)).astype(np.float32)
    label_weights = np.array([[0, 1, 1, 0, 0], [0, 1, 0, 0, 0]], np.float32)
    batch = {"label_ids": np.zeros((BATCH, SEQ), np.int32), "label_weights": label_weights}
    match = Match(feature="logits", loss="soft_ce")
    total, _ = run(logits_objective(match, "logits", 4), {"logits": s}, {"logits": t}, batch)
    assert total == pytest.approx(np_soft_ce(s, t, weights=label_weights), rel=RTOL)


def test_soft_ce_on_spans_is_the_mean_of_start_and_end():
    s = {n: RNG.normal(size=(BATCH, SEQ)).astype(np.float32)
         for n in ("start_logits", "end_logits")}
    t = {n: RNG.normal(size=(BATCH, SEQ)).astype(np.float32)
         for n in ("start_logits", "end_logits")}
    logits = (("start_logits", SEQ), ("end_logits", SEQ))
    match = Match(feature="logits", loss="soft_ce", temperature=2.0)
    loss_fn = build([match], shapes(1, 6, logits=logits), shapes(1, 6, logits=logits))
    batch = {"start_positions": np.array([1, 2], np.int32),
             "end_positions": np.array([2, 2], np.int32)}
    total, _ = run(loss_fn, s, t, batch)
    expected = 0.5 * (np_soft_ce(s["start_logits"], t["start_logits"], 2.0) +
                      np_soft_ce(s["end_logits"], t["end_logits"], 2.0))
    assert total == pytest.approx(expected, rel=RTOL)


def test_logits_mse_on_classification_and_on_the_weighted_mlm():
    s = RNG.normal(size=(4, 3)).astype(np.float32)
    t = RNG.normal(size=(4, 3)).astype(np.float32)
    match = Match(feature="logits", loss="mse", weight=0.5)
    total, _ = run(logits_objective(match, "logits", 3), {"logits": s}, {"logits": t},
                   {"label_ids": np.zeros(4, np.int32)})
    assert total == pytest.approx(0.5 * ((f64(s) - t) ** 2).mean(), rel=RTOL)
    s, t, ids = mlm_case()
    weights = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], np.float32)
    total, _ = run(logits_objective(match, "mlm_logits", 7), {"mlm_logits": s},
                   {"mlm_logits": t}, {"masked_lm_ids": ids, "masked_lm_weights": weights})
    per_position = ((f64(s) - t) ** 2).mean(-1)
    assert total == pytest.approx(0.5 * (weights * per_position).sum() / (weights.sum() + 1e-5),
                                  rel=RTOL)


# ---------------------------------------------------------------------------------------------
# 2. layer mapping, reductions, projections and their errors
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("feature, student_layers, teacher_layers, n_s, n_t, pairs", [
    ("hidden", "all", "uniform", 2, 4, ((0, 0), (1, 2), (2, 4))),
    ("hidden", "encoder", "uniform", 2, 6, ((1, 3), (2, 6))),
    ("attention", "all", "uniform", 2, 4, ((1, 2), (2, 4))),
    ("attention", "encoder", "uniform", 3, 3, ((1, 1), (2, 2), (3, 3))),
    ("hidden", "all", "same", 2, 2, ((0, 0), (1, 1), (2, 2))),
    ("attention", "all", "same", 2, 4, ((1, 1), (2, 2))),
    ("hidden", [0, 2], [1, 3], 2, 4, ((0, 1), (2, 3))),
    ("attention", [2], [4], 2, 4, ((2, 4),)),
    ("embeddings", "all", "uniform", 2, 4, ((0, 0),)),
])
def test_layer_pairs_and_the_summed_loss_over_them(feature, student_layers, teacher_layers,
                                                   n_s, n_t, pairs):
    loss = "attention_mse" if feature == "attention" else "mse"
    match = Match(feature=feature, loss=loss, student_layers=student_layers,
                  teacher_layers=teacher_layers)
    (resolved,) = D.resolve_matches([match], shapes(n_s, 6), shapes(n_t, 6))
    assert resolved.pairs == pairs
    s_out = {"hidden_states": hidden_states(n_s, 6), "attention_logits": attention_logits(n_s)}
    t_out = {"hidden_states": hidden_states(n_t, 6), "attention_logits": attention_logits(n_t)}
    total, _ = run(build([match], shapes(n_s, 6), shapes(n_t, 6)), s_out, t_out)
    if feature == "attention":  # attention layer l is attention_logits[l - 1]
        expected = sum(np_attention_mse(s_out["attention_logits"][i - 1],
                                        t_out["attention_logits"][j - 1]) for i, j in pairs)
    else:
        expected = sum(np_mse(s_out["hidden_states"][i], t_out["hidden_states"][j])
                       for i, j in pairs)
    assert total == pytest.approx(expected, rel=RTOL)


def test_reduction_sum_adds_and_mean_averages_the_layer_pairs():
    s_out, t_out = {"hidden_states": hidden_states(3, 6)}, {"hidden_states": hidden_states(3, 6)}
    per_pair = [np_mse(s_out["hidden_states"][l], t_out["hidden_states"][l]) for l in (1, 2, 3)]
    for reduction, expected in (("sum", sum(per_pair)), ("mean", sum(per_pair) / 3)):
        match = Match(feature="hidden", loss="mse", student_layers="encoder",
                      teacher_layers="same", reduction=reduction)
        total, _ = run(build([match], shapes(3, 6), shapes(3, 6)), s_out, t_out)
        assert total == pytest.approx(expected, rel=RTOL)


def set_projection(projections, name, width_s, width_t):
    kernel = RNG.normal(size=(width_s, width_t)).astype(np.float32) * 0.5
    bias = RNG.normal(size=(width_t,)).astype(np.float32)
    projections.dense[name].kernel.assign(kernel)
    projections.dense[name].bias.assign(bias)
    return f64(kernel), f64(bias)


def test_a_linear_projection_maps_the_student_to_the_teacher_width():
    student, teacher = shapes(1, 4), shapes(1, 6)
    match = Match(feature="embeddings", loss="mse", projection="linear", projection_name="fit")
    resolved = D.resolve_matches([match], student, teacher)
    sizes = D.projection_sizes(resolved, student, teacher)
    assert sizes == {"fit": (4, 6)}
    projections = D.DistillationProjections(sizes)
    kernel, bias = set_projection(projections, "fit", 4, 6)
    loss_fn = D.distillation_objective(resolved, total_steps=10, projections=projections)
    s_out, t_out = one_layer_pair(4, 6)
    total, metrics = run(loss_fn, s_out, t_out)
    projected = f64(s_out["hidden_states"][0]) @ kernel + bias
    assert total == pytest.approx(np_mse(projected, t_out["hidden_states"][0]), rel=RTOL)
    assert "embeddings_mse_loss" in metrics


def test_unnamed_projections_are_one_per_match_and_named_ones_are_shared():
    student, teacher = shapes(2, 4), shapes(2, 6)
    matches = [Match(feature="hidden", loss="mse", projection="linear"),
               Match(feature="hidden", loss="cos", projection="linear"),
               Match(feature="hidden", loss="mse", student_layers=[1], teacher_layers=[1],
                     projection="linear", projection_name="shared"),
               Match(feature="embeddings", loss="mse", projection="linear",
                     projection_name="shared")]
    resolved = D.resolve_matches(matches, student, teacher)
    assert [r.projection for r in resolved] == ["projection_0", "projection_1", "shared", "shared"]
    assert [r.name for r in resolved] == ["hidden_mse", "hidden_cos", "hidden_mse_2",
                                          "embeddings_mse"]
    assert D.projection_sizes(resolved, student, teacher) == {
        "projection_0": (4, 6), "projection_1": (4, 6), "shared": (4, 6)}


def good_match():
    """A match that resolves against every pair of models below (mmd needs no equal widths)."""
    return Match(feature="hidden", loss="mmd", student_layers="encoder", teacher_layers="same")


@pytest.mark.parametrize("match, student, teacher, message", [
    (Match(feature="hidden", loss="mse"), shapes(3, 6), shapes(4, 6),
     r"distillation\.matches\[1\]\.teacher_layers: uniform needs the teacher's layer count "
     r"\(4\) to be a multiple of the student's \(3\)"),
    (Match(feature="hidden", loss="mse", student_layers=[1, 3], teacher_layers=[1, 2]),
     shapes(2, 6), shapes(2, 6),
     r"distillation\.matches\[1\]\.student_layers: 3 is not one of the hidden layers of the student "
     r"\(it has 0\.\.2\)"),
    (Match(feature="attention", loss="attention_mse", student_layers=[0], teacher_layers=[1]),
     shapes(2, 6), shapes(2, 6), r"matches\[1\]\.student_layers: 0 is not one of the attention layers"),
    (Match(feature="hidden", loss="mse", student_layers=[1], teacher_layers=[5]),
     shapes(2, 6), shapes(4, 6), r"matches\[1\]\.teacher_layers: 5 is not one of the hidden layers of "
                                 r"the teacher \(it has 0\.\.4\)"),
    (Match(feature="hidden", loss="mse", student_layers=[1, 2], teacher_layers=[2]),
     shapes(2, 6), shapes(4, 6),
     r"distillation\.matches\[1\]: student_layers and teacher_layers must pair up \(got 2 and 1"),
    (Match(feature="hidden", loss="mse", student_layers=[], teacher_layers=[]),
     shapes(2, 6), shapes(4, 6), r"must pair up \(got 0 and 0"),
    (Match(feature="hidden", loss="mse"), shapes(2, 4), shapes(4, 6),
     r"distillation\.matches\[1\]: student layer 0 is 4 wide, teacher layer 0 6: "
     r"add 'projection: linear'"),
    (Match(feature="attention", loss="attention_ce"), shapes(2, 6, heads=2),
     shapes(4, 6, heads=3),
     r"distillation\.matches\[1\]: attention matches need as many heads in the student \(2\) "
     r"as in the teacher \(3\)"),
    (Match(feature="logits", loss="soft_ce"), shapes(2, 6, logits=(("mlm_logits", 7),)),
     shapes(2, 6, logits=(("mlm_logits", 9),)),
     r"distillation\.matches\[1\]: the student's and the teacher's prediction logits differ"),
])
def test_resolve_errors_name_the_match(match, student, teacher, message):
    with pytest.raises(ConfigError, match=message) as e:
        D.resolve_matches([good_match(), match], student, teacher)
    assert "\n" not in str(e.value)


def test_mmd_needs_no_projection_between_widths():
    (resolved,) = D.resolve_matches([Match(feature="hidden", loss="mmd")], shapes(2, 4),
                                    shapes(4, 6))
    assert resolved.pairs == ((0, 0), (1, 2), (2, 4)) and resolved.projection == ""


def test_a_projection_shared_by_different_widths_is_refused():
    student = shapes(2, 4)
    teacher = shapes(2, (6, 8, 8))  # embeddings 6 wide, encoder layers 8
    matches = [Match(feature="hidden", loss="mse", student_layers="all", teacher_layers="same",
                     projection="linear", projection_name="fit_dense")]
    resolved = D.resolve_matches(matches, student, teacher)
    with pytest.raises(ConfigError, match=r"distillation\.matches: projection 'fit_dense' is "
                                          r"shared by layers of different widths \(\(4, 6\) "
                                          r"and \(4, 8\)\)"):
        D.projection_sizes(resolved, student, teacher)


# ---------------------------------------------------------------------------------------------
# 3. progressive gates
# ---------------------------------------------------------------------------------------------

def progressive_case(total_steps=30, steps_per_layer=0):
    s_out, t_out = {"hidden_states": hidden_states(3, 6)}, {"hidden_states": hidden_states(3, 6)}
    matches = [Match(feature="hidden", loss="mse", student_layers="encoder", teacher_layers="same",
                     reduction="mean", gates="progressive", name="mse"),
               Match(feature="hidden", loss="mean_var", student_layers="encoder",
                     teacher_layers="same", weight=2.0, gates="progressive", name="mv")]
    loss_fn = build(matches, shapes(3, 6), shapes(3, 6), total_steps=total_steps,
                    steps_per_layer=steps_per_layer)
    mse = [np_mse(s_out["hidden_states"][l], t_out["hidden_states"][l]) for l in (1, 2, 3)]
    mean_var = [np_mean_var(s_out["hidden_states"][l], *np_moments(t_out["hidden_states"][l]))
                for l in (1, 2, 3)]
    assert len(set(np.round(mse, 6))) == 3  # each pair's term is recognisable
    return loss_fn, s_out, t_out, mse, mean_var


def expect_only_pair(metrics, total, pair, mse, mean_var):
    if pair is None:
        expected = {"mse_loss": 0.0, "mv_loss": 0.0, "mv_variance_loss": 0.0}
    else:
        expected = {"mse_loss": mse[pair] / 3.0, "mv_loss": 2.0 * mean_var[pair][0],
                    "mv_variance_loss": 2.0 * mean_var[pair][1]}
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=RTOL, abs=1e-12), name
    assert total == pytest.approx(sum(expected.values()), rel=RTOL, abs=1e-12)


@pytest.mark.parametrize("step, pair", [(0, 0), (4, 0), (9, 0), (10, 1), (19, 1), (20, 2),
                                        (29, 2)])
def test_progressive_gates_let_one_layer_pair_count_at_a_time(step, pair):
    # 30 steps, 3 pairs: 0-based steps 0..9 -> pair 0, 10..19 -> pair 1, 20..29 -> pair 2.
    loss_fn, s_out, t_out, mse, mean_var = progressive_case()
    total, metrics = run(loss_fn, s_out, t_out, step=step)
    expect_only_pair(metrics, total, pair, mse, mean_var)


@pytest.mark.parametrize("step, pair", [(0, 0), (3, 0), (4, 1), (7, 1), (8, 2), (11, 2),
                                        (12, None), (25, None)])
def test_steps_per_layer_overrides_the_phase_length(step, pair):
    # 4 steps per pair; after the last phase no pair is open.
    loss_fn, s_out, t_out, mse, mean_var = progressive_case(total_steps=30, steps_per_layer=4)
    total, metrics = run(loss_fn, s_out, t_out, step=step)
    expect_only_pair(metrics, total, pair, mse, mean_var)


def test_progressive_gates_need_a_step_per_layer_pair():
    match = Match(feature="hidden", loss="mse", student_layers="encoder", teacher_layers="same",
                  gates="progressive")
    with pytest.raises(ConfigError, match=r"train\.total_steps: progressive gates need at least "
                                          r"one step per layer \(2 steps, 3 layers\)"):
        build([match], shapes(3, 6), shapes(3, 6), total_steps=2)


# ---------------------------------------------------------------------------------------------
# 4. weight and temperature schedules
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule, factors", [
    ("constant", {0: 1.0, 5: 1.0, 10: 1.0}),
    ("linear_decay", {0: 1.0, 2: 0.8, 5: 0.5, 10: 0.0, 15: 0.0}),
    ("linear_growth", {0: 0.0, 2: 0.2, 5: 0.5, 10: 1.0, 15: 1.0}),
])
def test_weight_schedules_scale_the_term_linearly_over_the_run(schedule, factors):
    s_out, t_out = one_layer_pair()
    match = Match(feature="hidden", loss="mean_var", student_layers="encoder",
                  teacher_layers="same", weight=3.0, variance_weight=2.0,
                  weight_schedule=schedule)
    loss_fn = build([match], shapes(1, 6), shapes(1, 6), total_steps=10)
    mean_term, var_term = np_mean_var(s_out["hidden_states"][1],
                                      *np_moments(t_out["hidden_states"][1]))
    for step, factor in factors.items():
        total, metrics = run(loss_fn, s_out, t_out, step=step)
        assert metrics["hidden_mean_var_loss"] == pytest.approx(factor * 3.0 * mean_term,
                                                                rel=RTOL, abs=1e-12)
        assert metrics["hidden_mean_var_variance_loss"] == pytest.approx(
            factor * 2.0 * var_term, rel=RTOL, abs=1e-12)
        assert total == pytest.approx(factor * (3.0 * mean_term + 2.0 * var_term),
                                      rel=RTOL, abs=1e-12)


def test_end_temperature_moves_the_temperature_linearly_over_the_run():
    s = RNG.normal(size=(4, 5)).astype(np.float32) * 3
    t = RNG.normal(size=(4, 5)).astype(np.float32) * 3
    match = Match(feature="logits", loss="soft_ce", temperature=4.0, end_temperature=1.0)
    loss_fn = logits_objective(match, "logits", 5, total_steps=10)
    batch = {"label_ids": np.zeros(4, np.int32)}
    for step, temperature in ((0, 4.0), (5, 2.5), (8, 1.6), (10, 1.0), (20, 1.0)):
        total, _ = run(loss_fn, {"logits": s}, {"logits": t}, batch, step=step)
        assert total == pytest.approx(np_soft_ce(s, t, temperature), rel=RTOL), step


# ---------------------------------------------------------------------------------------------
# 5. gradients: teacher constant, student and projection trained
# ---------------------------------------------------------------------------------------------

def test_teacher_tensors_get_no_gradient_and_the_student_and_projection_do():
    student, teacher = shapes(2, 4, logits=(("mlm_logits", 7),)), \
        shapes(2, 6, logits=(("mlm_logits", 7),))
    matches = [Match(feature="hidden", loss="mse", projection="linear", projection_name="fit"),
               Match(feature="hidden", loss="mmd", student_layers="encoder"),
               Match(feature="attention", loss="attention_mse"),
               Match(feature="attention", loss="attention_kl", teacher_layers=[1, 2]),
               Match(feature="hidden", loss="mean_var", student_layers=[1], teacher_layers=[2],
                     projection="linear", projection_name="fit", reproduce_original_broadcast_bug=True),
               Match(feature="logits", loss="soft_ce", ground_truth_ratio=0.5)]
    resolved = D.resolve_matches(matches, student, teacher)
    projections = D.DistillationProjections(D.projection_sizes(resolved, student, teacher))
    loss_fn = D.distillation_objective(resolved, total_steps=10, projections=projections)
    s, t, ids = mlm_case()
    s_out = as_tensors({"hidden_states": hidden_states(2, 4),
                        "attention_logits": attention_logits(2), "mlm_logits": s})
    t_out = as_tensors({"hidden_states": hidden_states(4, 6),
                        "attention_logits": attention_logits(4), "mlm_logits": t})
    batch = as_tensors({"input_mask": INPUT_MASK, "masked_lm_ids": ids,
                        "masked_lm_weights": np.ones(ids.shape, np.float32)})
    s_flat, t_flat = tf.nest.flatten(s_out), tf.nest.flatten(t_out)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(s_flat + t_flat)
        total, _ = loss_fn(s_out, batch, t_out, tf.constant(3, tf.int64))
    assert all(g is None for g in tape.gradient(total, t_flat))
    assert all(g is not None for g in tape.gradient(total, s_flat))
    grads = tape.gradient(total, projections.trainable_variables)
    assert len(grads) == 2 and all(g is not None and float(tf.norm(g)) > 0 for g in grads)


# ---------------------------------------------------------------------------------------------
# 6. the ground-truth loss
# ---------------------------------------------------------------------------------------------

def hard_loss(outputs, batch):
    """A stand-in ground-truth loss: mean square of the student's logits, plus a metric."""
    loss = tf.reduce_mean(tf.square(outputs["logits"]))
    return loss, {"total_loss": loss, "accuracy": tf.constant(0.25)}


@pytest.mark.parametrize("hard_label_weight", [0.0, 0.7])
def test_the_ground_truth_loss_is_reported_and_added_times_its_weight(hard_label_weight):
    s = RNG.normal(size=(4, 3)).astype(np.float32)
    t = RNG.normal(size=(4, 3)).astype(np.float32)
    match = Match(feature="logits", loss="mse")
    loss_fn = logits_objective(match, "logits", 3, hard_loss=hard_loss,
                               hard_label_weight=hard_label_weight)
    total, metrics = run(loss_fn, {"logits": s}, {"logits": t},
                         {"label_ids": np.zeros(4, np.int32)})
    distill, hard = ((f64(s) - t) ** 2).mean(), (f64(s) ** 2).mean()
    assert metrics["ground_truth_loss"] == pytest.approx(hard, rel=RTOL)
    assert metrics["accuracy"] == pytest.approx(0.25)
    assert metrics["logits_mse_loss"] == pytest.approx(distill, rel=RTOL)
    assert total == pytest.approx(distill + hard_label_weight * hard, rel=RTOL)
    assert metrics["total_loss"] == pytest.approx(total, rel=RTOL)


# ---------------------------------------------------------------------------------------------
# 7. config checks
# ---------------------------------------------------------------------------------------------

def raising(key, message):
    raise ConfigError(f"{key}: {message}")


@pytest.mark.parametrize("fields, key, message", [
    ({"feature": "hidden", "loss": "attention_ce"}, "loss",
     "must be one of mse, ln_mse, mean_var, cos, mmd for feature hidden, got 'attention_ce'"),
    ({"feature": "attention", "loss": "mse"}, "loss", "for feature attention, got 'mse'"),
    ({"feature": "logits", "loss": "cos"}, "loss", "must be one of soft_ce, mse for feature"),
    ({"feature": "pooled"}, "feature", "must be one of hidden, embeddings, attention, logits"),
    ({"feature": "attention", "loss": "attention_mse", "projection": "linear"}, "projection",
     "linear projections apply to hidden states, not to attention"),
    ({"feature": "logits", "loss": "soft_ce", "projection": "linear"}, "projection",
     "not to logits"),
    ({"loss": "mmd", "projection": "linear"}, "projection", "with loss mmd"),
    ({"projection": "mlp"}, "projection", "must be one of none, linear, got 'mlp'"),
    ({"gates": "layerwise"}, "gates", "must be one of none, progressive, got 'layerwise'"),
    ({"reduction": "max"}, "reduction", "must be one of sum, mean"),
    ({"weight_schedule": "cosine"}, "weight_schedule",
     "must be one of constant, linear_decay, linear_growth"),
    ({"student_layers": "top"}, "student_layers", "a list of layer numbers or one of all, encoder"),
    ({"teacher_layers": "last"}, "teacher_layers", "one of uniform, same"),
    ({"weight": -1.0}, "weight", "must be >= 0, got -1.0"),
    ({"loss": "mean_var", "variance_weight": -5.0}, "variance_weight", "must be >= 0"),
    ({"temperature": 0.0}, "temperature", "must be positive, got 0.0"),
    ({"end_temperature": -1.0}, "end_temperature", "must be positive"),
    ({"ground_truth_ratio": 1.5}, "ground_truth_ratio", "must be in [0, 1], got 1.5"),
])
def test_check_match_names_the_field(fields, key, message):
    with pytest.raises(ConfigError) as e:
        D.check_match(Match(**fields), raising, "distillation.matches[2]")
    assert str(e.value).startswith(f"distillation.matches[2].{key}: ")
    assert message in str(e.value)


def test_the_shipped_defaults_pass_check_match():
    for m in (Match(), Match(feature="attention", loss="attention_ce"),
              Match(feature="logits", loss="soft_ce", ground_truth_ratio=1.0, end_temperature=1.0),
              Match(feature="embeddings", loss="ln_mse", projection="linear", weight=0.0)):
        D.check_match(m, raising, "distillation.matches[0]")


def experiment_raw(distillation):
    return {"name": "t", "model": {"preset": "tinybert_4l_312_zh"},
            "data": {"train": "/data/train"}, "train": {"model_dir": "/tmp/m", "batch_size": 8},
            "distillation": {"teacher": {"preset": "bert_base_zh", "checkpoint": "/ckpt"},
                             **distillation}}


@pytest.mark.parametrize("matches, message", [
    ([{"feature": "attention", "loss": "mse"}],
     r"<dict>: 'distillation\.matches\[0\]\.loss' must be one of attention_mse, attention_ce, "
     r"attention_kl for feature attention, got 'mse'"),
    ([{"feature": "hidden"}, {"feature": "attention", "loss": "attention_ce",
                              "projection": "linear"}],
     r"'distillation\.matches\[1\]\.projection' linear projections apply to hidden states"),
    ([{"gates": "progresive"}], r"'distillation\.matches\[0\]\.gates' must be one of none, "
                                r"progressive, got 'progresive'"),
    ([{"weight": -2}], r"'distillation\.matches\[0\]\.weight' must be >= 0, got -2"),
    ([{"lose": "mse"}], r"unknown key 'distillation\.matches\[0\]\.lose' \(did you mean 'loss'"),
    ([], r"'distillation\.matches' needs at least one match"),
])
def test_experiment_config_errors_name_the_match_field(matches, message):
    with pytest.raises(ConfigError, match=message) as e:
        E.experiment_from_dict(experiment_raw({"matches": matches}))
    assert "\n" not in str(e.value)


def test_a_valid_distillation_section_loads_into_matches():
    exp = E.experiment_from_dict(experiment_raw({
        "matches": [{"feature": "hidden", "loss": "mse", "student_layers": [0, 2],
                     "teacher_layers": "uniform", "projection": "linear"}],
        "hard_label_weight": 0.5, "steps_per_layer": 7}))
    (m,) = exp.distillation.matches
    assert isinstance(m, Match) and m.student_layers == [0, 2] and m.projection == "linear"
    assert exp.distillation.hard_label_weight == 0.5 and exp.distillation.steps_per_layer == 7


@pytest.mark.parametrize("old", ["kind", "weights", "ground_truth_ratio"])
def test_the_old_recipe_keys_point_at_matches(old):
    raw = experiment_raw({old: "tinybert_general"})
    with pytest.raises(ConfigError, match=rf"exp\.yaml: distillation\.{old} is no longer read: "
                                          r"a distillation stage is a list of "
                                          r"distillation\.matches") as e:
        E.refuse_old_distillation_keys(raw, "exp.yaml")
    assert "\n" not in str(e.value) and "base: distill/" in str(e.value)
    with pytest.raises(ConfigError, match=rf"distillation\.{old} is no longer read"):
        E.experiment_from_dict(raw)
