"""The shipped distillation recipes (tpu_configs/distill/*.yaml), loaded as configs and run
through the mechanism, against numpy versions of each ORIGINAL recipe written here from the
papers and the released code's formulas (TinyBERT's general_distill.py / task_distill.py,
MobileBERT's run_pretraining.py), not from tfcompact's matches."""
import dataclasses

import numpy as np
import pytest
import yaml

import tfcompact  # noqa: F401
import tensorflow as tf

from tfcompact import typed
from tfcompact.objectives import distillation as D
from tfcompact.objectives.distillation import FeatureShapes
from tfcompact.train.experiment import DistillationMatches, tpu_configs_dir

RTOL = 1e-5
RNG = np.random.default_rng(2012)
INPUT_MASK = np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]], np.int32)
BATCH, SEQ = INPUT_MASK.shape
HEADS = 2


def load_recipe(name: str) -> DistillationMatches:
    """The `distillation` section of tpu_configs/distill/<name>.yaml, as the shared part of a
    distillation config (the teacher and the optimizer settings left out)."""
    path = tpu_configs_dir() / "distill" / f"{name}.yaml"
    section = yaml.safe_load(path.read_text(encoding="utf-8"))["distillation"]
    kept = {k: section[k] for k in ("matches", "hard_label_weight", "steps_per_layer")
            if k in section}
    return typed.load(DistillationMatches, kept, typed.at(str(path)))


# ---------------------------------------------------------------------------------------------
# model outputs
# ---------------------------------------------------------------------------------------------

def model_outputs(layers, width, **logits):
    """hidden_states (L+1 [B,S,H], embeddings first), attention_logits (L [B,heads,S,S] with
    the additive -10000 on padded key columns) and any logits given."""
    padded_keys = (1 - INPUT_MASK)[:, None, None, :] * -10000.0
    return {
        "hidden_states": [(RNG.normal(size=(BATCH, SEQ, width)) * (1 + 0.25 * l) + 0.1 * l)
                          .astype(np.float32) for l in range(layers + 1)],
        "attention_logits": [(RNG.normal(size=(BATCH, HEADS, SEQ, SEQ)) * 2 + padded_keys)
                             .astype(np.float32) for _ in range(layers)],
        **{k: v.astype(np.float32) for k, v in logits.items()},
    }


def feature_shapes(outputs, logits=()):
    return FeatureShapes(len(outputs["attention_logits"]),
                         tuple(h.shape[-1] for h in outputs["hidden_states"]), HEADS,
                         tuple((name, outputs[name].shape[-1]) for name in logits))


def tensors(d):
    return {k: [tf.constant(x) for x in v] if isinstance(v, list) else tf.constant(v)
            for k, v in d.items()}


def objective(name, student, teacher, total_steps=100, logits=(), matches=None):
    """(loss_fn, projections) of recipe `name` between the two models' outputs."""
    recipe = load_recipe(name)
    s_shapes, t_shapes = feature_shapes(student, logits), feature_shapes(teacher, logits)
    resolved = D.resolve_matches(matches or recipe.matches, s_shapes, t_shapes)
    projections = D.DistillationProjections(D.projection_sizes(resolved, s_shapes, t_shapes))
    loss_fn = D.distillation_objective(resolved, total_steps=total_steps,
                                       steps_per_layer=recipe.steps_per_layer,
                                       projections=projections,
                                       hard_label_weight=recipe.hard_label_weight)
    return loss_fn, projections


def run(loss_fn, student, teacher, batch, step=0):
    total, metrics = loss_fn(tensors(student), tensors(batch), tensors(teacher),
                             tf.constant(step, tf.int64))
    return float(total), {k: float(v) for k, v in metrics.items()}


# ---------------------------------------------------------------------------------------------
# numpy pieces (float64)
# ---------------------------------------------------------------------------------------------

def log_softmax(x):
    x = np.asarray(x, np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def softmax(x):
    return np.exp(log_softmax(x))


def mse(a, b):
    return ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).mean()


def layer_norm(x):
    """LayerNorm without gamma and beta, epsilon 1e-12."""
    x = np.asarray(x, np.float64)
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-12)


def token_statistics(x):
    x = np.asarray(x, np.float64)
    mu = x.mean(-1, keepdims=True)
    return mu, ((x - mu) ** 2).mean(-1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# TinyBERT
# ---------------------------------------------------------------------------------------------

def tinybert_intermediate_original(student, teacher, kernel, bias):
    """Attention: sum over student layers i (0-based) of MSE of the scores with entries <= -100
    zeroed, against teacher layer i*k + k - 1 (0-based); hidden: sum over j = 0..L_S of
    MSE(student_j W + b, teacher_{j*k}), embeddings included."""
    s_atts, t_atts = student["attention_logits"], teacher["attention_logits"]
    k = len(t_atts) // len(s_atts)
    att_loss = 0.0
    for i, s_att in enumerate(s_atts):
        t_att = t_atts[i * k + k - 1]
        att_loss += mse(np.where(s_att <= -100, 0.0, s_att), np.where(t_att <= -100, 0.0, t_att))
    rep_loss = 0.0
    for j, s_rep in enumerate(student["hidden_states"]):
        rep_loss += mse(np.asarray(s_rep, np.float64) @ kernel + bias,
                        teacher["hidden_states"][j * k])
    return att_loss, rep_loss


@pytest.mark.parametrize("name", ["tinybert_general", "tinybert_task_intermediate"])
def test_tinybert_intermediate_recipes_equal_the_original_losses(name):
    student, teacher = model_outputs(2, 16), model_outputs(4, 24)
    loss_fn, projections = objective(name, student, teacher)
    assert set(projections.dense) == {"fit_dense"}  # one projection shared by every layer
    kernel = RNG.normal(size=(16, 24)) * 0.3
    bias = RNG.normal(size=(24,))
    projections.dense["fit_dense"].kernel.assign(kernel.astype(np.float32))
    projections.dense["fit_dense"].bias.assign(bias.astype(np.float32))
    kernel, bias = kernel.astype(np.float32), bias.astype(np.float32)
    total, metrics = run(loss_fn, student, teacher, {"input_mask": INPUT_MASK}, step=7)
    att_loss, rep_loss = tinybert_intermediate_original(student, teacher, kernel, bias)
    assert metrics["attention_loss"] == pytest.approx(att_loss, rel=RTOL)
    assert metrics["hidden_loss"] == pytest.approx(rep_loss, rel=RTOL)
    assert total == pytest.approx(att_loss + rep_loss, rel=RTOL)


def test_tinybert_task_prediction_recipe_is_the_soft_cross_entropy_over_batch_and_classes():
    classes = 3
    student = model_outputs(2, 16, logits=RNG.normal(size=(4, classes)) * 2)
    teacher = model_outputs(4, 24, logits=RNG.normal(size=(4, classes)) * 2)
    loss_fn, projections = objective("tinybert_task_prediction", student, teacher,
                                     logits=("logits",))
    assert not projections.dense
    batch = {"input_mask": INPUT_MASK, "label_ids": np.array([0, 2, 1, 0], np.int32)}
    total, metrics = run(loss_fn, student, teacher, batch)
    # task_distill.py: (-softmax(t / T) * log_softmax(s / T)).mean() with T = 1, the mean
    # over batch x classes.
    expected = (-softmax(teacher["logits"]) * log_softmax(student["logits"])).mean()
    assert total == pytest.approx(expected, rel=RTOL)
    assert metrics["prediction_loss"] == pytest.approx(expected, rel=RTOL)


# ---------------------------------------------------------------------------------------------
# MobileBERT
# ---------------------------------------------------------------------------------------------

def mobilebert_transfer_original(student, teacher, gates, broadcast=False):
    """The layer-wise transfer of MobileBERT (L = student layers, layer l = 1..L, gate g_l):
    feature map 100/L sum g_l MSE(LN(T_l), LN(S_l)); attention 1/L sum g_l mean over rows of
    sum_key -softmax(T) log_softmax(S); mean 5000/L sum g_l mean((mu_T - mu_S)^2) and variance
    5/L sum g_l mean(|var_T - var_S|) of each token's hidden vector. With `broadcast` the
    teacher statistics are those of the stack of all its hidden states (the released code)."""
    s_h, t_h = student["hidden_states"], teacher["hidden_states"]
    layers = len(s_h) - 1
    feature_map = attention = mean = variance = 0.0
    stacked = token_statistics(np.stack(t_h))
    for l in range(1, layers + 1):
        g = gates[l - 1]
        feature_map += g * mse(layer_norm(t_h[l]), layer_norm(s_h[l]))
        t_att, s_att = teacher["attention_logits"][l - 1], student["attention_logits"][l - 1]
        attention += g * (-(softmax(t_att) * log_softmax(s_att)).sum(-1)).mean()
        t_mu, t_var = stacked if broadcast else token_statistics(t_h[l])
        s_mu, s_var = token_statistics(s_h[l])
        mean += g * ((t_mu - s_mu) ** 2).mean()
        variance += g * np.abs(t_var - s_var).mean()
    return {"feature_map_loss": 100.0 * feature_map / layers,
            "attention_loss": attention / layers,
            "mean_loss": 5000.0 * mean / layers,
            "mean_variance_loss": 5.0 * variance / layers}


def pkt_gates(step, layers, steps_per_phase):
    """Layer l (0-based) is trained at the 0-based steps l*P .. (l+1)*P - 1, alone."""
    return [1.0 if step // steps_per_phase == layer else 0.0 for layer in range(layers)]


def mobilebert_pair(width=16, layers=2):
    """Student and teacher of the same depth, width and heads (what PKT requires)."""
    student, teacher = model_outputs(layers, width), model_outputs(layers, width)
    # Means and variances of the teacher differ clearly from the student's.
    teacher["hidden_states"] = [(h * 1.7 + 0.4).astype(np.float32)
                                for h in teacher["hidden_states"]]
    return student, teacher


def assert_terms(total, metrics, expected):
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=RTOL, abs=1e-9), name
    assert total == pytest.approx(sum(expected.values()), rel=RTOL, abs=1e-9)


@pytest.mark.parametrize("step", [0, 9, 10, 19])
def test_mobilebert_pkt_recipe_equals_the_gated_original_transfer(step):
    student, teacher = mobilebert_pair()
    loss_fn, projections = objective("mobilebert_pkt", student, teacher, total_steps=20)
    assert not projections.dense
    total, metrics = run(loss_fn, student, teacher, {"input_mask": INPUT_MASK}, step=step)
    expected = mobilebert_transfer_original(student, teacher, pkt_gates(step, 2, 10))
    assert_terms(total, metrics, expected)
    # Only one layer counts: the other layer's gate is really 0.
    assert total != pytest.approx(sum(mobilebert_transfer_original(
        student, teacher, [1.0, 1.0]).values()), rel=1e-3)


@pytest.mark.parametrize("step", [0, 5, 6, 11])
def test_mobilebert_pkt_with_three_layers_and_the_released_broadcast_statistics(step):
    student, teacher = mobilebert_pair(layers=3)
    recipe = load_recipe("mobilebert_pkt")
    matches = [dataclasses.replace(m, reproduce_original_broadcast_bug=(m.loss == "mean_var"))
               for m in recipe.matches]
    loss_fn, _ = objective("mobilebert_pkt", student, teacher, total_steps=18, matches=matches)
    total, metrics = run(loss_fn, student, teacher, {"input_mask": INPUT_MASK}, step=step)
    expected = mobilebert_transfer_original(student, teacher, pkt_gates(step, 3, 6),
                                            broadcast=True)
    assert_terms(total, metrics, expected)


def mlm_case(vocab=11, predictions=3):
    student_logits = RNG.normal(size=(BATCH, predictions, vocab)) * 2
    teacher_logits = RNG.normal(size=(BATCH, predictions, vocab)) * 2
    batch = {"input_mask": INPUT_MASK,
             "masked_lm_ids": RNG.integers(0, vocab, size=(BATCH, predictions)).astype(np.int32),
             "masked_lm_weights": np.array([[1, 1, 0], [1, 0, 0]], np.float32)}
    return student_logits, teacher_logits, batch


def mobilebert_mlm_original(student_logits, teacher_logits, ids, weights, ratio=0.5):
    """sum_p w_p * sum_v -(0.5 softmax(teacher) + 0.5 one_hot)_v log_softmax(student)_v over
    sum(w) + 1e-5."""
    targets = (1 - ratio) * softmax(teacher_logits) + ratio * np.eye(teacher_logits.shape[-1])[ids]
    per_position = -(targets * log_softmax(student_logits)).sum(-1)
    return (weights * per_position).sum() / (weights.sum() + 1e-5)


@pytest.mark.parametrize("step", [0, 13])
def test_mobilebert_main_recipe_is_the_mixed_target_mlm_alone(step):
    """As the released run_pretraining.py's stage without layer_wise_warmup: no transfer terms."""
    s_logits, t_logits, batch = mlm_case()
    student, teacher = mobilebert_pair()
    student["mlm_logits"], teacher["mlm_logits"] = (s_logits.astype(np.float32),
                                                    t_logits.astype(np.float32))
    loss_fn, _ = objective("mobilebert_main", student, teacher, total_steps=20,
                           logits=("mlm_logits",))
    total, metrics = run(loss_fn, student, teacher, batch, step=step)
    expected = {}
    expected["mlm_loss"] = mobilebert_mlm_original(student["mlm_logits"], teacher["mlm_logits"],
                                                   batch["masked_lm_ids"],
                                                   batch["masked_lm_weights"])
    assert_terms(total, metrics, expected)


def test_every_recipe_loads_and_passes_the_config_checks():
    def fail(key, message):
        raise AssertionError(f"{key}: {message}")

    for path in sorted((tpu_configs_dir() / "distill").glob("*.yaml")):
        recipe = load_recipe(path.stem)
        assert recipe.matches and recipe.hard_label_weight == 0.0
        for i, m in enumerate(recipe.matches):
            D.check_match(m, fail, f"distillation.matches[{i}]")
