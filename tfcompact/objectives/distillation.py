"""Distillation losses of TinyBERT and MobileBERT, as the original code computes them.

The trainer runs a frozen teacher beside the student and passes both output dicts (keys
`hidden_states`: L+1 tensors [B, S, H], embeddings first; `attention_logits`: L tensors
[B, heads, S, S], pre-softmax with the additive mask applied). Teacher terms are wrapped in
`stop_gradient`; all arithmetic is float32.

TinyBERT (`general_distill.py`, `task_distill.py`):
  attention: sum over student layers i of MSE(S_i, T_{i*k+k-1}) on pre-softmax scores, entries
  <= -100 (the -10000 mask) set to 0 on both sides; hidden: sum over j = 0..L_S of
  MSE(fit_dense(S_j), T_{j*k}); k = L_T / L_S. Task stage: soft cross-entropy
  mean(-softmax(t/T) * log_softmax(s/T)) over batch x classes (no T^2).
MobileBERT (`run_pretraining.py`, progressive knowledge transfer):
  feature map: 100/L * sum_l MSE(LN(T_l), LN(S_l)) with a parameter-free LayerNorm (eps 1e-12);
  attention: 1/L * sum_l mean over rows of sum_k -softmax(T_l) log_softmax(S_l);
  mean/variance: 5000/L * sum_l mean((mu_T - mu_S)^2) and 5/L * sum_l mean(|var_T - var_S|) of
  per-token statistics over the hidden axis. The original computes the teacher statistics over
  the stacked list of ALL teacher hidden states, broadcasting each student layer against every
  teacher layer; `reproduce_original_broadcast_bug=True` reproduces that, the default pairs
  layer l with layer l. During PKT only the current phase's layer contributes (`pkt_layer_gates`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import keras
import tensorflow as tf

from tfcompact.errors import ConfigError
from tfcompact.objectives.pretraining import masked_lm_accuracy
from tfcompact.optim.schedules import pkt_layer_phase_factor


def as_float32(x) -> tf.Tensor:
    return tf.cast(x, tf.float32)


def _teacher(x) -> tf.Tensor:
    return tf.stop_gradient(as_float32(x))


def _mse(a, b) -> tf.Tensor:
    return tf.reduce_mean(tf.square(a - b))


# ---------------------------------------------------------------------------------------------
# TinyBERT
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TinyBertLayerMap:
    """Teacher indices for each student layer: `attention[i]` indexes the teacher's
    attention_logits list (0-based layers), `hidden[j]` its hidden_states list (0 = embeddings)."""

    attention: tuple
    hidden: tuple


def tinybert_layer_map(student_layers: int, teacher_layers: int) -> TinyBertLayerMap:
    """TinyBERT's uniform mapping: k = L_T / L_S; attention i -> i*k+k-1; hidden j -> j*k."""
    if student_layers <= 0 or teacher_layers <= 0 or teacher_layers % student_layers:
        raise ConfigError(f"num_hidden_layers: TinyBERT needs the teacher's layer count "
                          f"({teacher_layers}) to be a multiple of the student's ({student_layers})")
    k = teacher_layers // student_layers
    return TinyBertLayerMap(attention=tuple(i * k + k - 1 for i in range(student_layers)),
                            hidden=tuple(j * k for j in range(student_layers + 1)))


def _zero_masked(scores, threshold: float) -> tf.Tensor:
    return tf.where(scores <= threshold, tf.zeros_like(scores), scores)


def tinybert_attention_loss(student_attention_logits: Sequence, teacher_attention_logits: Sequence,
                            layer_map: Optional[TinyBertLayerMap] = None,
                            threshold: float = -100.0) -> tf.Tensor:
    """Sum over student layers of the MSE between mapped pre-softmax attention scores."""
    if layer_map is None:
        layer_map = tinybert_layer_map(len(student_attention_logits), len(teacher_attention_logits))
    total = tf.constant(0.0, tf.float32)
    for student, teacher_index in zip(student_attention_logits, layer_map.attention):
        s = _zero_masked(as_float32(student), threshold)
        t = _zero_masked(_teacher(teacher_attention_logits[teacher_index]), threshold)
        total += _mse(s, t)
    return total


def build_fit_dense(teacher_hidden_size: int, initializer_range: float = 0.02,
                    name: str = "fit_dense") -> keras.layers.Dense:
    """TinyBERT's single projection H_s -> H_t shared by every student hidden state."""
    return keras.layers.Dense(teacher_hidden_size, name=name,
                              kernel_initializer=keras.initializers.RandomNormal(
                                  stddev=initializer_range))


def tinybert_hidden_loss(student_hidden_states: Sequence, teacher_hidden_states: Sequence,
                         fit_dense=None, layer_map: Optional[TinyBertLayerMap] = None) -> tf.Tensor:
    """Sum over j = 0..L_S of MSE(fit_dense(student_j), teacher_{j*k}) (embeddings included)."""
    if layer_map is None:
        layer_map = tinybert_layer_map(len(student_hidden_states) - 1, len(teacher_hidden_states) - 1)
    total = tf.constant(0.0, tf.float32)
    for student, teacher_index in zip(student_hidden_states, layer_map.hidden):
        s = student if fit_dense is None else fit_dense(student)
        total += _mse(as_float32(s), _teacher(teacher_hidden_states[teacher_index]))
    return total


def tinybert_general_distillation_loss(student_outputs: Mapping, teacher_outputs: Mapping,
                                       fit_dense=None) -> tuple[tf.Tensor, dict]:
    """TinyBERT general distillation: attention loss + hidden loss (weights 1, no MLM term)."""
    attention = tinybert_attention_loss(student_outputs["attention_logits"],
                                        teacher_outputs["attention_logits"])
    hidden = tinybert_hidden_loss(student_outputs["hidden_states"],
                                  teacher_outputs["hidden_states"], fit_dense)
    total = attention + hidden
    return total, {"total_loss": total, "attention_loss": attention, "hidden_loss": hidden}


def soft_cross_entropy(student_logits, teacher_logits, temperature: float = 1.0) -> tf.Tensor:
    """TinyBERT task distillation: mean over batch x classes of -softmax(t/T) * log_softmax(s/T)."""
    targets = tf.nn.softmax(_teacher(teacher_logits) / temperature, axis=-1)
    log_probs = tf.nn.log_softmax(as_float32(student_logits) / temperature, axis=-1)
    return tf.reduce_mean(-targets * log_probs)


# ---------------------------------------------------------------------------------------------
# MobileBERT
# ---------------------------------------------------------------------------------------------

def parameter_free_layer_norm(x, epsilon: float = 1e-12) -> tf.Tensor:
    """(x - mean) / sqrt(var + eps) over the last axis (no gamma/beta)."""
    x = as_float32(x)
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + epsilon)


def _gated_mean(per_layer: Sequence[tf.Tensor], gates) -> tf.Tensor:
    """(1/L) * sum_l gate_l * loss_l; gates None means all 1 (gates can be any weights)."""
    losses = tf.stack(per_layer)
    if gates is not None:
        losses = losses * tf.reshape(as_float32(gates), [-1])
    return tf.reduce_sum(losses) / float(len(per_layer))


def _check_pairs(student: Sequence, teacher: Sequence, what: str) -> None:
    if len(student) != len(teacher):
        raise ConfigError(f"num_hidden_layers: MobileBERT {what} transfer needs as many teacher "
                          f"as student layers (teacher {len(teacher)}, student {len(student)})")


def mobilebert_feature_map_loss(student_hidden_states: Sequence, teacher_hidden_states: Sequence,
                                gates=None, factor: float = 100.0) -> tf.Tensor:
    """factor/L * sum over layers 1..L of gate_l * MSE(LN(teacher_l), LN(student_l))."""
    _check_pairs(student_hidden_states, teacher_hidden_states, "feature-map")
    per_layer = [
        _mse(parameter_free_layer_norm(_teacher(t)), parameter_free_layer_norm(s))
        for s, t in zip(student_hidden_states[1:], teacher_hidden_states[1:])
    ]
    return factor * _gated_mean(per_layer, gates)


def mobilebert_attention_loss(student_attention_logits: Sequence,
                              teacher_attention_logits: Sequence, gates=None,
                              factor: float = 1.0) -> tf.Tensor:
    """factor/L * sum_l gate_l * mean over (batch, head, query) of
    sum_key -softmax(teacher) * log_softmax(student) (same heads on both sides)."""
    _check_pairs(student_attention_logits, teacher_attention_logits, "attention")
    per_layer = []
    for s, t in zip(student_attention_logits, teacher_attention_logits):
        teacher_probs = tf.nn.softmax(_teacher(t), axis=-1)
        student_log_probs = tf.nn.log_softmax(as_float32(s), axis=-1)
        per_layer.append(tf.reduce_mean(tf.reduce_sum(-teacher_probs * student_log_probs, axis=-1)))
    return factor * _gated_mean(per_layer, gates)


def _token_moments(x):
    return tf.nn.moments(as_float32(x), axes=[-1], keepdims=True)


def mobilebert_mean_variance_loss(student_hidden_states: Sequence, teacher_hidden_states: Sequence,
                                  gates=None, beta: float = 5000.0, gamma: float = 5.0,
                                  reproduce_original_broadcast_bug: bool = False,
                                  ) -> tuple[tf.Tensor, tf.Tensor]:
    """(beta/L * sum_l gate_l mean((mu_T,l - mu_S,l)^2), gamma/L * sum_l gate_l mean(|var_T,l -
    var_S,l|)) over layers 1..L with per-token statistics over the hidden axis.

    With `reproduce_original_broadcast_bug=True` the teacher statistics are those of the stack
    of all L+1 teacher hidden states, so each student layer is compared with every teacher
    layer (the mean runs over the teacher-layer axis too), as the released code does.
    """
    _check_pairs(student_hidden_states, teacher_hidden_states, "mean/variance")
    if reproduce_original_broadcast_bug:
        stacked = tf.stack([_teacher(t) for t in teacher_hidden_states])  # [L+1, B, S, H]
        all_means, all_variances = _token_moments(stacked)
    mean_terms, variance_terms = [], []
    for s, t in zip(student_hidden_states[1:], teacher_hidden_states[1:]):
        student_mean, student_variance = _token_moments(s)
        if reproduce_original_broadcast_bug:
            teacher_mean, teacher_variance = all_means, all_variances
        else:
            teacher_mean, teacher_variance = _token_moments(_teacher(t))
        mean_terms.append(tf.reduce_mean(tf.square(teacher_mean - student_mean)))
        variance_terms.append(tf.reduce_mean(tf.abs(teacher_variance - student_variance)))
    return beta * _gated_mean(mean_terms, gates), gamma * _gated_mean(variance_terms, gates)


def mobilebert_transfer_loss(student_outputs: Mapping, teacher_outputs: Mapping, gates=None, *,
                             hidden_factor: float = 100.0, attention_factor: float = 1.0,
                             beta: float = 5000.0, gamma: float = 5.0,
                             reproduce_original_broadcast_bug: bool = False,
                             ) -> tuple[tf.Tensor, dict]:
    """MobileBERT's knowledge-transfer objective (the PKT stage): the sum of the feature-map,
    attention, mean and variance terms, each reported in the metrics dict."""
    s_hidden, t_hidden = student_outputs["hidden_states"], teacher_outputs["hidden_states"]
    feature_map = mobilebert_feature_map_loss(s_hidden, t_hidden, gates, hidden_factor)
    attention = mobilebert_attention_loss(student_outputs["attention_logits"],
                                          teacher_outputs["attention_logits"], gates,
                                          attention_factor)
    mean, variance = mobilebert_mean_variance_loss(
        s_hidden, t_hidden, gates, beta, gamma,
        reproduce_original_broadcast_bug=reproduce_original_broadcast_bug)
    total = feature_map + attention + mean + variance
    return total, {"total_loss": total, "feature_map_transfer_loss": feature_map,
                   "attention_transfer_loss": attention, "mean_transfer_loss": mean,
                   "variance_transfer_loss": variance}


def mobilebert_mlm_distillation_targets(teacher_logits, ids, ground_truth_ratio: float = 0.5
                                        ) -> tf.Tensor:
    """Main-stage MLM targets: (1 - r) * softmax(teacher logits) + r * one_hot(ids).

    In the original the temperature multiplies the teacher's sequence output before its MLM
    head (T = 1 in both published recipes), so it is applied by whoever computes the logits.
    """
    teacher_logits = _teacher(teacher_logits)
    one_hot = tf.one_hot(tf.cast(ids, tf.int32), tf.shape(teacher_logits)[-1], dtype=tf.float32)
    return (1.0 - ground_truth_ratio) * tf.nn.softmax(teacher_logits, axis=-1) + (
        ground_truth_ratio * one_hot)


def mobilebert_mlm_distillation_loss(student_logits, teacher_logits, ids, weights,
                                     ground_truth_ratio: float = 0.5,
                                     epsilon: float = 1e-5) -> tf.Tensor:
    """sum(w * -sum_v target * log_softmax(student)) / (sum(w) + 1e-5) with the mixed targets."""
    targets = mobilebert_mlm_distillation_targets(teacher_logits, ids, ground_truth_ratio)
    per_position = -tf.reduce_sum(targets * tf.nn.log_softmax(as_float32(student_logits), axis=-1), -1)
    weights = as_float32(weights)
    return tf.reduce_sum(weights * per_position) / (tf.reduce_sum(weights) + epsilon)


# ---------------------------------------------------------------------------------------------
# Progressive knowledge transfer
# ---------------------------------------------------------------------------------------------

def pkt_steps_per_phase(num_train_steps: int, num_layers: int) -> int:
    """Length of one PKT phase: num_train_steps // L (as the original computes it)."""
    if num_layers <= 0 or num_train_steps < num_layers:
        raise ConfigError(f"num_train_steps: progressive knowledge transfer needs at least one step "
                          f"per layer ({num_train_steps} steps, {num_layers} layers)")
    return num_train_steps // num_layers


def pkt_layer_gates(step, num_layers: int, steps_per_phase: int) -> tf.Tensor:
    """float32 [L]: 1 for the layer whose phase contains `step` (l*P < step <= (l+1)*P), else 0.
    Pass as `gates` so only that layer's transfer losses contribute."""
    return tf.stack([
        tf.cast(pkt_layer_phase_factor(step, layer, steps_per_phase) > 0.5, tf.float32)
        for layer in range(num_layers)
    ])


# ---------------------------------------------------------------------------- the objectives
# A loss function for the train loop: loss_fn(outputs, batch, teacher_outputs, step) ->
# (total loss, metrics), from a recipe name and its loss weights by term name.

def _take_weights(weights: Mapping[str, float], defaults: Mapping[str, float], kind: str,
                  source: str) -> dict[str, float]:
    unknown = sorted(set(weights) - set(defaults))
    if unknown:
        raise ConfigError(f"{source}: distillation.weights: unknown term(s) {', '.join(unknown)} "
                          f"for kind {kind}")
    return {k: float(weights.get(k, v)) for k, v in defaults.items()}


def _tinybert_general_objective(w: Mapping[str, float]):
    def loss_fn(outputs, batch, teacher_outputs, step):
        attention = tinybert_attention_loss(outputs["attention_logits"],
                                            teacher_outputs["attention_logits"])
        hidden_states = outputs.get("fit_hidden_states", outputs["hidden_states"])
        hidden = tinybert_hidden_loss(hidden_states, teacher_outputs["hidden_states"])
        total = w["attention"] * attention + w["hidden"] * hidden
        return total, {"total_loss": total, "attention_loss": attention, "hidden_loss": hidden}

    return loss_fn


def _mobilebert_factors(w: Mapping[str, float]) -> dict[str, float]:
    return dict(hidden_factor=w["hidden"], attention_factor=w["attention"], beta=w["beta"],
                gamma=w["gamma"])


def _mobilebert_pkt_objective(w: Mapping[str, float], num_layers: int, steps_per_phase: int):
    def loss_fn(outputs, batch, teacher_outputs, step):
        gates = pkt_layer_gates(step + 1, num_layers, steps_per_phase)
        return mobilebert_transfer_loss(outputs, teacher_outputs, gates, **_mobilebert_factors(w))

    return loss_fn


def _mobilebert_main_objective(w: Mapping[str, float], ground_truth_ratio: float):
    def loss_fn(outputs, batch, teacher_outputs, step):
        transfer, metrics = mobilebert_transfer_loss(outputs, teacher_outputs, None,
                                                     **_mobilebert_factors(w))
        mlm = mobilebert_mlm_distillation_loss(
            outputs["mlm_logits"], teacher_outputs["mlm_logits"], batch["masked_lm_ids"],
            batch["masked_lm_weights"], ground_truth_ratio=ground_truth_ratio)
        total = transfer + w["mlm"] * mlm
        accuracy = masked_lm_accuracy(outputs["mlm_logits"], batch["masked_lm_ids"],
                                      batch["masked_lm_weights"])
        return total, dict(metrics, total_loss=total, mlm_distillation_loss=mlm,
                           mlm_accuracy=accuracy)

    return loss_fn


_MOBILEBERT_WEIGHTS = {"hidden": 100.0, "attention": 1.0, "beta": 5000.0, "gamma": 5.0}


def distillation_objective(kind: str, weights: Mapping[str, float], *, num_layers: int,
                           total_steps: int, steps_per_layer: int = 0,
                           ground_truth_ratio: float = 0.5, source: str = "distillation"):
    """The loss function of a distillation recipe: TinyBERT general distillation (attention
    + hidden MSE), MobileBERT progressive knowledge transfer (one layer's phase at a time) or
    MobileBERT's main stage (all transfer terms + MLM against the mixed target)."""
    if kind == "tinybert_general":
        w = _take_weights(weights, {"attention": 1.0, "hidden": 1.0}, kind, source)
        return _tinybert_general_objective(w)
    if kind == "mobilebert_pkt":
        w = _take_weights(weights, _MOBILEBERT_WEIGHTS, kind, source)
        per_phase = steps_per_layer or pkt_steps_per_phase(total_steps, num_layers)
        return _mobilebert_pkt_objective(w, num_layers, per_phase)
    if kind == "mobilebert_main":
        w = _take_weights(weights, dict(_MOBILEBERT_WEIGHTS, mlm=1.0), kind, source)
        return _mobilebert_main_objective(w, ground_truth_ratio)
    raise ConfigError(f"{source}: distillation.kind: expected tinybert_general, mobilebert_pkt "
                      f"or mobilebert_main, got {kind!r}")
