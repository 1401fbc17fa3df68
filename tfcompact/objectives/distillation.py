"""Distillation as one mechanism: a list of matches between teacher and student outputs.

A distillation objective is configured, not coded per recipe. Each `Match` names a feature of
both models, the layers to pair, a loss, a weight and optionally a trainable projection of the
student's feature to the teacher's width; the objective is the weighted sum of every match
(plus, optionally, the ordinary ground-truth loss). TinyBERT's general and task stages and
MobileBERT's progressive knowledge transfer and main stage are four configurations of it
(`tpu_configs/distill/`). The idea of a list of "intermediate matches" is the one the
TextBrewer toolkit made popular; the losses follow the original code of each recipe:

Features (the models' output dicts; layers are numbered as in the papers):
  hidden      `hidden_states[l]`, l = 0 (embeddings) .. L   [B, S, H]
  embeddings  `hidden_states[0]`
  attention   `attention_logits[l - 1]`, l = 1 .. L, pre-softmax with the additive mask
              applied   [B, heads, S, S]
  logits      the prediction logits: `mlm_logits` at the masked positions (pretraining),
              `logits` (classification [B, C], tagging [B, S, C]), or `start_logits` and
              `end_logits` (spans, each [B, S]; the loss is the mean of the two).

Losses (one layer pair; teacher terms are constants, arithmetic in float32):
  mse            mean((s - t)^2); TinyBERT's hidden-state loss (`general_distill.py`)
  ln_mse         mean((LN(t) - LN(s))^2) with a parameter-free LayerNorm (eps 1e-12);
                 MobileBERT's feature-map transfer (`run_pretraining.py`)
  mean_var       mean((mu_t - mu_s)^2) * weight + mean(|var_t - var_s|) * variance_weight of
                 the per-token statistics over the hidden axis; MobileBERT's mean/variance
                 transfer (`reproduce_original_broadcast_bug` reproduces its released code,
                 which compares each student layer with the statistics of the stack of ALL
                 teacher layers)
  cos            mean(1 - cos(s, t)) over tokens
  mmd            mean((s s^T / H_s - t t^T / H_t)^2): the tokens' Gram matrices, which need
                 no projection between widths (TextBrewer's mmd loss, one layer per side)
  attention_mse  mean((s' - t')^2) with entries <= `masked_threshold` (the -10000 mask) set
                 to 0 on both sides; TinyBERT's attention loss
  attention_ce   mean over (batch, head, query) of sum_key -softmax(t) log_softmax(s);
                 MobileBERT's attention transfer
  attention_kl   the same minus the teacher's entropy: the true KL(teacher || student)
  soft_ce        sum_c -target_c log_softmax(s / T)_c with target = (1 - r) softmax(t / T) +
                 r one_hot(label), averaged over the weighted positions (for the MLM the
                 denominator is sum(w) + 1e-5, as MobileBERT's); `class_mean` divides by the number of
                 classes as TinyBERT's `task_distill.py` does; no T^2 (neither original has it)

Over its layer pairs a match sums (`reduction: sum`, TinyBERT) or averages (`mean`: 1/L,
MobileBERT) the per-pair losses. `gates: progressive` lets one pair count at a time, each for
`steps_per_layer` steps (MobileBERT's progressive knowledge transfer). `weight_schedule` and
`end_temperature` change the weight and the temperature linearly over the run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import keras
import tensorflow as tf

from tfcompact.errors import ConfigError
from tfcompact.objectives.pretraining import as_float32
from tfcompact.optim.schedules import pkt_layer_phase_factor

FEATURES = ("hidden", "embeddings", "attention", "logits")
_STATE_LOSSES = ("mse", "ln_mse", "mean_var", "cos", "mmd")
LOSSES = {
    "hidden": _STATE_LOSSES,
    "embeddings": _STATE_LOSSES,
    "attention": ("attention_mse", "attention_ce", "attention_kl"),
    "logits": ("soft_ce", "mse"),
}
PROJECTIONS = ("none", "linear")
REDUCTIONS = ("sum", "mean")
GATES = ("none", "progressive")
WEIGHT_SCHEDULES = ("constant", "linear_decay", "linear_growth")
STUDENT_LAYER_CHOICES = ("all", "encoder")
TEACHER_LAYER_CHOICES = ("uniform", "same")
# The ground-truth labels (and their weights) of the logits each kind of model predicts.
LOGITS_LABELS = {
    "mlm_logits": ("masked_lm_ids", "masked_lm_weights"),
    "logits": ("label_ids", None),
    "start_logits": ("start_positions", None),
    "end_logits": ("end_positions", None),
}


@dataclass
class Match:
    """One term of a distillation objective (a YAML entry of `distillation.matches`)."""

    feature: str = "hidden"
    loss: str = "mse"
    # Student layers: a list, "all" (hidden 0..L, attention 1..L) or "encoder" (1..L).
    student_layers: list[int] | str = "all"
    # Teacher layers: a list (same length), "uniform" (student l -> teacher l * L_T / L_S,
    # TinyBERT's mapping) or "same" (l -> l, MobileBERT).
    teacher_layers: list[int] | str = "uniform"
    weight: float = 1.0
    reduction: str = "sum"
    projection: str = "none"  # linear: a trained Dense from the student's width to the teacher's
    projection_name: str = ""  # matches naming the same projection share it (fit_dense)
    temperature: float = 1.0
    end_temperature: float | None = None  # linear temperature schedule over the run
    weight_schedule: str = "constant"
    variance_weight: float | None = None  # mean_var: the variance term's weight (default: weight)
    ground_truth_ratio: float = 0.0  # soft_ce: share of the one-hot label in the target
    class_mean: bool = False  # soft_ce: divide by the number of classes (TinyBERT)
    masked_threshold: float = -100.0  # attention_mse: entries <= this are masked
    token_mask: bool = False  # state losses: average over real (input_mask) tokens only
    gates: str = "none"
    # mean_var: the statistics of MobileBERT's released code (all teacher layers at once)
    reproduce_original_broadcast_bug: bool = False
    name: str = ""  # the metric's name (default: <feature>_<loss>)


def check_match(m: Match, fail: Callable[[str, str], None], key: str) -> None:
    """Config-time checks of one match (no model needed); `fail(key, message)` raises."""
    if m.feature not in FEATURES:
        fail(f"{key}.feature", f"must be one of {', '.join(FEATURES)}, got {m.feature!r}")
    if m.loss not in LOSSES[m.feature]:
        fail(f"{key}.loss", f"must be one of {', '.join(LOSSES[m.feature])} for feature "
                            f"{m.feature}, got {m.loss!r}")
    for field, value, allowed in (("projection", m.projection, PROJECTIONS),
                                  ("reduction", m.reduction, REDUCTIONS),
                                  ("gates", m.gates, GATES),
                                  ("weight_schedule", m.weight_schedule, WEIGHT_SCHEDULES)):
        if value not in allowed:
            fail(f"{key}.{field}", f"must be one of {', '.join(allowed)}, got {value!r}")
    if isinstance(m.student_layers, str) and m.student_layers not in STUDENT_LAYER_CHOICES:
        fail(f"{key}.student_layers", f"must be a list of layer numbers or one of "
                                      f"{', '.join(STUDENT_LAYER_CHOICES)}")
    if isinstance(m.teacher_layers, str) and m.teacher_layers not in TEACHER_LAYER_CHOICES:
        fail(f"{key}.teacher_layers", f"must be a list of layer numbers or one of "
                                      f"{', '.join(TEACHER_LAYER_CHOICES)}")
    if m.projection == "linear" and (m.feature in ("attention", "logits") or m.loss == "mmd"):
        fail(f"{key}.projection", f"linear projections apply to hidden states, not to "
                                  f"{m.feature} with loss {m.loss}")
    for field, value in (("weight", m.weight), ("variance_weight", m.variance_weight)):
        if value is not None and value < 0:
            fail(f"{key}.{field}", f"must be >= 0, got {value}")
    for field, value in (("temperature", m.temperature), ("end_temperature", m.end_temperature)):
        if value is not None and value <= 0:
            fail(f"{key}.{field}", f"must be positive, got {value}")
    if not 0.0 <= m.ground_truth_ratio <= 1.0:
        fail(f"{key}.ground_truth_ratio", f"must be in [0, 1], got {m.ground_truth_ratio}")


# ---------------------------------------------------------------------------------------------
# The model side: which features exist and how wide they are
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeatureShapes:
    """What a model's output dict offers distillation: layer count, hidden widths per layer
    (index 0 = embeddings), attention heads, the logits outputs and their last dimension."""

    num_layers: int
    widths: tuple
    heads: int
    logits: tuple  # ((output name, last dim), ...)


def feature_shapes(model: keras.Model, what: str) -> FeatureShapes:
    """The `FeatureShapes` of a functional model whose outputs include `hidden_states` and
    `attention_logits` (every backbone, pretraining model and task model built with
    `backbone_outputs=True`)."""
    try:
        outputs = model.output
    except (AttributeError, ValueError):
        outputs = None
    if not isinstance(outputs, Mapping) or "hidden_states" not in outputs or \
            "attention_logits" not in outputs:
        raise ConfigError(f"{what}: distillation needs a model whose outputs include hidden_states "
                          f"and attention_logits ({type(model).__name__} has none)")
    widths = tuple(int(h.shape[-1]) for h in outputs["hidden_states"])
    heads = int(outputs["attention_logits"][0].shape[1]) if outputs["attention_logits"] else 0
    logits = []
    for name in LOGITS_LABELS:
        if name in outputs:
            shape = outputs[name].shape
            dim = shape[-1] if len(shape) else None
            logits.append((name, -1 if dim is None else int(dim)))  # -1: the sequence length
    logits = tuple(logits)
    return FeatureShapes(len(outputs["attention_logits"]), widths, heads, logits)


# ---------------------------------------------------------------------------------------------
# Losses of one layer pair
# ---------------------------------------------------------------------------------------------

def _teacher(x) -> tf.Tensor:
    return tf.stop_gradient(as_float32(x))


def _token_mean(values, token_weights) -> tf.Tensor:
    """Mean of per-token values [B, S]; over real tokens only when weights are given."""
    if token_weights is None:
        return tf.reduce_mean(values)
    return tf.reduce_sum(values * token_weights) / tf.maximum(tf.reduce_sum(token_weights), 1.0)


def parameter_free_layer_norm(x, epsilon: float = 1e-12) -> tf.Tensor:
    """(x - mean) / sqrt(var + eps) over the last axis (no gamma/beta)."""
    x = as_float32(x)
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + epsilon)


def mse_loss(s, t, token_weights=None) -> tf.Tensor:
    """mean((s - t)^2): over everything, or per token (mean over the width) on real tokens."""
    squared = tf.square(as_float32(s) - _teacher(t))
    if token_weights is None:
        return tf.reduce_mean(squared)
    return _token_mean(tf.reduce_mean(squared, -1), token_weights)


def ln_mse_loss(s, t, token_weights=None) -> tf.Tensor:
    """MobileBERT's feature-map transfer: MSE between parameter-free LayerNorms."""
    return mse_loss(parameter_free_layer_norm(s), parameter_free_layer_norm(_teacher(t)),
                    token_weights)


def cos_loss(s, t, token_weights=None) -> tf.Tensor:
    """mean over tokens of 1 - cos(s, t)."""
    s, t = tf.math.l2_normalize(as_float32(s), -1), tf.math.l2_normalize(_teacher(t), -1)
    return _token_mean(1.0 - tf.reduce_sum(s * t, -1), token_weights)


def mmd_loss(s, t, token_weights=None) -> tf.Tensor:
    """mean((s s^T / H_s - t t^T / H_t)^2) over (batch, token, token) (pairs of real tokens)."""
    s, t = as_float32(s), _teacher(t)
    gram_s = tf.matmul(s, s, transpose_b=True) / float(s.shape[-1])
    gram_t = tf.matmul(t, t, transpose_b=True) / float(t.shape[-1])
    squared = tf.square(gram_s - gram_t)
    if token_weights is None:
        return tf.reduce_mean(squared)
    pairs = token_weights[:, :, None] * token_weights[:, None, :]
    return tf.reduce_sum(squared * pairs) / tf.maximum(tf.reduce_sum(pairs), 1.0)


def token_moments(x):
    """Per-token mean and variance over the hidden axis ([..., 1] each)."""
    return tf.nn.moments(as_float32(x), axes=[-1], keepdims=True)


def mean_var_losses(s, t, teacher_moments=None) -> tuple[tf.Tensor, tf.Tensor]:
    """(mean((mu_t - mu_s)^2), mean(|var_t - var_s|)); `teacher_moments` replaces t's own
    statistics (MobileBERT's released broadcast over every teacher layer)."""
    s_mean, s_var = token_moments(s)
    t_mean, t_var = teacher_moments if teacher_moments is not None else token_moments(_teacher(t))
    return tf.reduce_mean(tf.square(t_mean - s_mean)), tf.reduce_mean(tf.abs(t_var - s_var))


def attention_mse_loss(s, t, threshold: float = -100.0) -> tf.Tensor:
    """TinyBERT: MSE of pre-softmax scores, masked entries (<= threshold) zeroed on both sides."""
    def zeroed(x):
        return tf.where(x <= threshold, tf.zeros_like(x), x)

    return tf.reduce_mean(tf.square(zeroed(as_float32(s)) - zeroed(_teacher(t))))


def attention_ce_loss(s, t) -> tf.Tensor:
    """MobileBERT: mean over (batch, head, query) of sum_key -softmax(t) * log_softmax(s)."""
    probs = tf.nn.softmax(_teacher(t), axis=-1)
    return tf.reduce_mean(tf.reduce_sum(-probs * tf.nn.log_softmax(as_float32(s), -1), -1))


def attention_kl_loss(s, t) -> tf.Tensor:
    """mean over (batch, head, query) of KL(softmax(t) || softmax(s))."""
    t = _teacher(t)
    probs, log_t = tf.nn.softmax(t, axis=-1), tf.nn.log_softmax(t, axis=-1)
    return tf.reduce_mean(tf.reduce_sum(probs * (log_t - tf.nn.log_softmax(as_float32(s), -1)), -1))


def soft_targets(teacher_logits, temperature, labels=None, ground_truth_ratio: float = 0.0):
    """(1 - r) softmax(t / T) + r one_hot(labels)."""
    targets = tf.nn.softmax(_teacher(teacher_logits) / temperature, axis=-1)
    if ground_truth_ratio > 0.0:
        one_hot = tf.one_hot(tf.cast(labels, tf.int32), tf.shape(targets)[-1], dtype=tf.float32)
        targets = (1.0 - ground_truth_ratio) * targets + ground_truth_ratio * one_hot
    return targets


def soft_ce_loss(s, t, temperature=1.0, *, labels=None, weights=None,
                 ground_truth_ratio: float = 0.0, class_mean: bool = False,
                 epsilon: float = 0.0) -> tf.Tensor:
    """sum_c -target_c log_softmax(s / T)_c averaged over positions weighted by `weights`
    (denominator sum(w) + epsilon: MobileBERT's MLM adds 1e-5); `class_mean` also divides by
    the number of classes."""
    targets = soft_targets(t, temperature, labels, ground_truth_ratio)
    per_position = -tf.reduce_sum(targets * tf.nn.log_softmax(as_float32(s) / temperature, -1), -1)
    if class_mean:
        per_position = per_position / tf.cast(tf.shape(targets)[-1], tf.float32)
    if weights is None:
        weights = tf.ones_like(per_position)
    weights = tf.broadcast_to(as_float32(weights), tf.shape(per_position))
    return tf.math.divide_no_nan(tf.reduce_sum(weights * per_position),
                                 tf.reduce_sum(weights) + epsilon)


def logits_mse_loss(s, t, weights=None, epsilon: float = 0.0) -> tf.Tensor:
    """Mean over the weighted positions of mean_c (s_c - t_c)^2."""
    per_position = tf.reduce_mean(tf.square(as_float32(s) - _teacher(t)), -1)
    if weights is None:
        return tf.reduce_mean(per_position)
    weights = tf.broadcast_to(as_float32(weights), tf.shape(per_position))
    return tf.math.divide_no_nan(tf.reduce_sum(weights * per_position),
                                 tf.reduce_sum(weights) + epsilon)


# ---------------------------------------------------------------------------------------------
# Resolving the matches against the two models
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResolvedMatch:
    """A match with its layer pairs, projection and metric name fixed."""

    match: Match
    pairs: tuple  # ((student layer, teacher layer), ...)
    projection: str  # projection layer name, "" for none
    name: str


def _layer_range(feature: str, choice: str, num_layers: int) -> list[int]:
    first = 0 if feature == "hidden" and choice == "all" else 1
    return list(range(first, num_layers + 1))


def _pairs(m: Match, student: FeatureShapes, teacher: FeatureShapes, key: str) -> tuple:
    if m.feature == "logits":
        return ((0, 0),)
    if m.feature == "embeddings":
        return ((0, 0),)
    top = 0 if m.feature == "hidden" else 1
    s_layers = (list(m.student_layers) if not isinstance(m.student_layers, str)
                else _layer_range(m.feature, m.student_layers, student.num_layers))
    if isinstance(m.teacher_layers, str):
        if m.teacher_layers == "same":
            t_layers = list(s_layers)
        else:
            if teacher.num_layers % student.num_layers:
                raise ConfigError(f"{key}.teacher_layers: uniform needs the teacher's layer count "
                                  f"({teacher.num_layers}) to be a multiple of the student's "
                                  f"({student.num_layers})")
            k = teacher.num_layers // student.num_layers
            t_layers = [layer * k for layer in s_layers]
    else:
        t_layers = list(m.teacher_layers)
    if len(s_layers) != len(t_layers) or not s_layers:
        raise ConfigError(f"{key}: student_layers and teacher_layers must pair up (got "
                          f"{len(s_layers)} and {len(t_layers)} layers)")
    for side, layers, shapes in (("student", s_layers, student), ("teacher", t_layers, teacher)):
        bad = [layer for layer in layers if not top <= layer <= shapes.num_layers]
        if bad:
            raise ConfigError(f"{key}.{side}_layers: {bad[0]} is not one of the {m.feature} layers of the "
                              f"{side} (it has {top}..{shapes.num_layers})")
    return tuple(zip(s_layers, t_layers))


def _check_shapes(m: Match, pairs: tuple, student: FeatureShapes, teacher: FeatureShapes,
                  key: str) -> None:
    if m.feature == "attention" and student.heads != teacher.heads:
        raise ConfigError(f"{key}: attention matches need as many heads in the student "
                          f"({student.heads}) as in the teacher ({teacher.heads})")
    if m.feature == "logits":
        s, t = dict(student.logits), dict(teacher.logits)
        common = [n for n in s if n in t]
        if not common or any(s[n] != t[n] for n in common):
            raise ConfigError(f"{key}: the student's and the teacher's prediction logits differ "
                              f"(student {student.logits}, teacher {teacher.logits})")
        return
    if m.feature in ("hidden", "embeddings") and m.projection == "none" and m.loss != "mmd":
        for s_layer, t_layer in pairs:
            if student.widths[s_layer] != teacher.widths[t_layer]:
                raise ConfigError(
                    f"{key}: student layer {s_layer} is {student.widths[s_layer]} wide, teacher "
                    f"layer {t_layer} {teacher.widths[t_layer]}: add 'projection: linear'")


def resolve_matches(matches: Sequence[Match], student: FeatureShapes, teacher: FeatureShapes,
                    key: str = "distillation.matches") -> list[ResolvedMatch]:
    """Pair the layers of every match and check them against both models (one-line errors
    naming the match), naming each metric and projection."""
    resolved, names = [], set()
    for i, m in enumerate(matches):
        where = f"{key}[{i}]"
        pairs = _pairs(m, student, teacher, where)
        _check_shapes(m, pairs, student, teacher, where)
        name = m.name or f"{m.feature}_{m.loss}"
        if name in names:
            name = f"{name}_{i}"
        names.add(name)
        projection = ""
        if m.projection == "linear":
            projection = m.projection_name or f"projection_{i}"
        resolved.append(ResolvedMatch(m, pairs, projection, name))
    return resolved


class DistillationProjections(keras.layers.Layer):
    """The trained projections of a distillation run (TinyBERT's `fit_dense`: student width
    -> teacher width). They belong to the run, not to the student: saved in the run's
    checkpoints under `distillation`, never in an export."""

    def __init__(self, sizes: Mapping[str, tuple], initializer_range: float = 0.02, **kwargs):
        kwargs.setdefault("name", "distillation")
        super().__init__(**kwargs)
        self.sizes = dict(sizes)
        self.dense = {
            name: keras.layers.Dense(units, name=name, kernel_initializer=(
                keras.initializers.TruncatedNormal(stddev=initializer_range)))
            for name, (_, units) in self.sizes.items()}
        for name, (width, _) in self.sizes.items():
            self.dense[name].build((None, None, width))
        self.built = True

    def trackable(self) -> tf.train.Checkpoint:
        """The projections as checkpoint children by name (what a run's checkpoint saves
        under `distillation`)."""
        return tf.train.Checkpoint(**self.dense)

    def project(self, name: str, x):
        """The student feature `x` through projection `name`."""
        return self.dense[name](x)


def projection_sizes(resolved: Sequence[ResolvedMatch], student: FeatureShapes,
                     teacher: FeatureShapes, key: str = "distillation.matches") -> dict:
    """{projection name: (student width, teacher width)}; shared projections must agree."""
    sizes: dict[str, tuple] = {}
    for r in resolved:
        if not r.projection:
            continue
        for s_layer, t_layer in r.pairs:
            size = (student.widths[s_layer], teacher.widths[t_layer])
            if sizes.setdefault(r.projection, size) != size:
                raise ConfigError(f"{key}: projection {r.projection!r} is shared by layers of "
                                  f"different widths ({sizes[r.projection]} and {size})")
    return sizes


# ---------------------------------------------------------------------------------------------
# The objective
# ---------------------------------------------------------------------------------------------

def progressive_gates(step, num_pairs: int, steps_per_pair: int) -> tf.Tensor:
    """float32 [n]: 1 for the pair whose phase holds `step` (1-based: i*P < step <= (i+1)*P),
    else 0 (MobileBERT's progressive knowledge transfer; the phases of `pkt_layer_phase_factor`)."""
    return tf.stack([tf.cast(pkt_layer_phase_factor(step, i, steps_per_pair) > 0.5, tf.float32)
                     for i in range(num_pairs)])


def steps_per_pair(total_steps: int, num_pairs: int, steps_per_layer: int = 0) -> int:
    """The length of one progressive phase: `steps_per_layer`, else total_steps // pairs."""
    if steps_per_layer:
        return steps_per_layer
    if num_pairs <= 0 or total_steps < num_pairs:
        raise ConfigError(f"train.total_steps: progressive gates need at least one step per layer "
                          f"({total_steps} steps, {num_pairs} layers)")
    return total_steps // num_pairs


def _progress(step, total_steps: int) -> tf.Tensor:
    return tf.clip_by_value(tf.cast(step, tf.float32) / float(max(total_steps, 1)), 0.0, 1.0)


def _weight_factor(schedule: str, step, total_steps: int) -> tf.Tensor:
    if schedule == "linear_decay":
        return 1.0 - _progress(step, total_steps)
    if schedule == "linear_growth":
        return _progress(step, total_steps)
    return tf.constant(1.0, tf.float32)


def _temperature(m: Match, step, total_steps: int):
    if m.end_temperature is None:
        return m.temperature
    return m.temperature + (m.end_temperature - m.temperature) * _progress(step, total_steps)


def _logits_terms(r: ResolvedMatch, outputs, batch, teacher_outputs, step, total_steps):
    """The loss of a logits match: one term per logits output both models have (averaged)."""
    m = r.match
    names = [n for n in LOGITS_LABELS if n in outputs and n in teacher_outputs]
    terms = []
    for name in names:
        label_key, weight_key = LOGITS_LABELS[name]
        weights = batch.get(weight_key) if weight_key else None
        if name == "logits" and "label_weights" in batch:  # tagging: the first pieces only
            weights = batch["label_weights"]
        elif weights is None and "example_weight" in batch:
            weights = batch["example_weight"]
        s, t = outputs[name], teacher_outputs[name]
        epsilon = 1e-5 if name == "mlm_logits" else 0.0  # MobileBERT's MLM denominator
        if m.loss == "mse":
            terms.append(logits_mse_loss(s, t, weights, epsilon))
        else:
            terms.append(soft_ce_loss(s, t, _temperature(m, step, total_steps),
                                      labels=batch.get(label_key), weights=weights,
                                      ground_truth_ratio=m.ground_truth_ratio,
                                      class_mean=m.class_mean, epsilon=epsilon))
    return tf.add_n(terms) / float(len(terms))


def _pair_loss(r: ResolvedMatch, s, t, token_weights, projections, teacher_moments):
    """(loss, variance loss or None) of one layer pair of a hidden/embeddings/attention match."""
    m = r.match
    if r.projection:
        s = projections.project(r.projection, s)
    if m.feature == "attention":
        if m.loss == "attention_mse":
            return attention_mse_loss(s, t, m.masked_threshold), None
        if m.loss == "attention_ce":
            return attention_ce_loss(s, t), None
        return attention_kl_loss(s, t), None
    if m.loss == "mean_var":
        return mean_var_losses(s, t, teacher_moments)
    loss_fn = {"mse": mse_loss, "ln_mse": ln_mse_loss, "cos": cos_loss, "mmd": mmd_loss}[m.loss]
    return loss_fn(s, t, token_weights), None


def _reduce(values: Sequence[tf.Tensor], gates, reduction: str) -> tf.Tensor:
    stacked = tf.stack(values)
    if gates is not None:
        stacked = stacked * gates
    total = tf.reduce_sum(stacked)
    return total / float(len(values)) if reduction == "mean" else total


def _feature(outputs, feature: str, layer: int):
    if feature == "attention":
        return outputs["attention_logits"][layer - 1]
    return outputs["hidden_states"][layer]


def _layer_terms(r: ResolvedMatch, outputs, batch, teacher_outputs, projections, gates):
    """(main term, variance term or None) of a layered match, before its weight."""
    m = r.match
    token_weights = None
    if m.token_mask and "input_mask" in batch:
        token_weights = as_float32(batch["input_mask"])
    moments = None
    if m.reproduce_original_broadcast_bug:
        moments = token_moments(tf.stack([_teacher(h) for h in teacher_outputs["hidden_states"]]))
    main, variance = [], []
    for s_layer, t_layer in r.pairs:
        loss, var = _pair_loss(r, _feature(outputs, m.feature, s_layer),
                               _feature(teacher_outputs, m.feature, t_layer), token_weights,
                               projections, moments)
        main.append(loss)
        if var is not None:
            variance.append(var)
    return (_reduce(main, gates, m.reduction),
            _reduce(variance, gates, m.reduction) if variance else None)


def _gates_of(r: ResolvedMatch, step, total_steps: int, steps_per_layer: int):
    if r.match.gates != "progressive":
        return None
    per = steps_per_pair(total_steps, len(r.pairs), steps_per_layer)
    return progressive_gates(tf.cast(step, tf.int64) + 1, len(r.pairs), per)


HardLoss = Callable[[Mapping, Mapping], tuple]


def distillation_objective(resolved: Sequence[ResolvedMatch], *, total_steps: int,
                           steps_per_layer: int = 0, projections=None,
                           hard_loss: Optional[HardLoss] = None,
                           hard_label_weight: float = 0.0):
    """The train loop's loss function: sum over matches of weight x schedule x term (plus
    `hard_label_weight` x the ground-truth loss). Every term and the ground-truth metrics
    (e.g. mlm_accuracy) are reported. Losses are per-replica means (the loop divides by the
    replica count: run it with ``loss_is_replica_share=False``)."""
    if total_steps > 0:
        for r in resolved:  # fail now, not inside the traced step
            if r.match.gates == "progressive":
                steps_per_pair(total_steps, len(r.pairs), steps_per_layer)

    def loss_fn(outputs, batch, teacher_outputs, step):
        total, metrics = tf.constant(0.0, tf.float32), {}
        for r in resolved:
            m = r.match
            factor = m.weight * _weight_factor(m.weight_schedule, step, total_steps)
            if m.feature == "logits":
                term, variance = _logits_terms(r, outputs, batch, teacher_outputs, step,
                                               total_steps), None
            else:
                term, variance = _layer_terms(r, outputs, batch, teacher_outputs, projections,
                                              _gates_of(r, step, total_steps, steps_per_layer))
            weighted = factor * term
            metrics[f"{r.name}_loss"] = weighted
            if variance is not None:
                weight = m.weight if m.variance_weight is None else m.variance_weight
                var_weighted = weight * _weight_factor(m.weight_schedule, step, total_steps) * variance
                metrics[f"{r.name}_variance_loss"] = var_weighted
                weighted += var_weighted
            total += weighted
        if hard_loss is not None:
            hard, hard_metrics = hard_loss(outputs, batch)
            metrics.update({k: v for k, v in hard_metrics.items() if k != "total_loss"})
            metrics["ground_truth_loss"] = hard
            if hard_label_weight:
                total += hard_label_weight * hard
        metrics["total_loss"] = total
        return total, metrics

    return loss_fn

