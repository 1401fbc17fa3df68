"""Learning-rate schedules of the original pretraining code, the optimizer factory, and
per-variable learning-rate multipliers (ELECTRA layer-wise decay, MobileBERT PKT).

BERT/ALBERT `optimization.py` compute the learning rate as
    decayed = (peak - end) * (1 - min(step, total_steps) / total_steps) ** power + end
    lr      = peak * step / warmup_steps   if step < warmup_steps   else decayed
i.e. the polynomial decay runs over `total_steps` counted from step 0 and the warm-up simply
overrides its first `warmup_steps` values (so right after warm-up the rate is already
slightly below the peak). `WarmupPolynomialDecay` reproduces exactly that
(`warmup_mode="replace"`). ELECTRA instead multiplies the decayed rate by
min(1, step / warmup_steps) (`warmup_mode="multiply"`).
"""
from __future__ import annotations

import re
from typing import Callable, Optional, Sequence

import keras
import tensorflow as tf

from tfcompact.errors import ConfigError
from tfcompact.optim.adamw import AdamWeightDecay
from tfcompact.optim.base import DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY, LearningRateMultipliers
from tfcompact.optim.lamb import Lamb


@keras.saving.register_keras_serializable(package="tfcompact")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak_lr`, polynomial decay to `end_lr` at `total_steps`."""

    def __init__(self, peak_lr: float, warmup_steps: int, total_steps: int, end_lr: float = 0.0,
                 power: float = 1.0, warmup_mode: str = "replace"):
        if total_steps <= 0:
            raise ConfigError(f"total_steps: expected a positive number of steps, got {total_steps}")
        if warmup_steps < 0:
            raise ConfigError(f"warmup_steps: expected >= 0, got {warmup_steps}")
        if warmup_mode not in ("replace", "multiply"):
            raise ConfigError(f"warmup_mode: expected 'replace' (BERT/ALBERT) or 'multiply' "
                              f"(ELECTRA), got {warmup_mode!r}")
        self.peak_lr = float(peak_lr)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.end_lr = float(end_lr)
        self.power = float(power)
        self.warmup_mode = warmup_mode

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        decay_step = tf.minimum(step, float(self.total_steps))
        fraction = 1.0 - decay_step / float(self.total_steps)
        decayed = (self.peak_lr - self.end_lr) * tf.pow(fraction, self.power) + self.end_lr
        if self.warmup_steps == 0:
            return decayed
        warmup_fraction = step / float(self.warmup_steps)
        if self.warmup_mode == "multiply":
            return decayed * tf.minimum(1.0, warmup_fraction)
        return tf.where(step < float(self.warmup_steps), self.peak_lr * warmup_fraction, decayed)

    def get_config(self) -> dict:
        return {"peak_lr": self.peak_lr, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps, "end_lr": self.end_lr, "power": self.power,
                "warmup_mode": self.warmup_mode}


OPTIMIZERS = ("lamb", "adamw")


def create_optimizer(
    name: str,
    learning_rate: float,
    warmup_steps: int,
    total_steps: int,
    weight_decay_rate: float = 0.01,
    *,
    end_lr: float = 0.0,
    power: float = 1.0,
    warmup_mode: str = "replace",
    constant_learning_rate: bool = False,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-6,
    exclude_from_weight_decay: Sequence[str] = DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY,
    exclude_from_layer_adaptation: Optional[Sequence[str]] = None,
    bias_correction: bool = False,
    global_clipnorm: Optional[float] = 1.0,
    learning_rate_multipliers: Optional[LearningRateMultipliers] = None,
    skip_nonfinite: bool = True,
) -> keras.optimizers.Optimizer:
    """LAMB or AdamWeightDecay on a warm-up + polynomial-decay schedule (the trainer's factory).

    `constant_learning_rate=True` uses `learning_rate` at every step (MobileBERT's PKT stage,
    whose original passes end_lr_rate=1.0). Call inside `strategy.scope()`.
    """
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {name!r}")
    if constant_learning_rate:
        schedule = float(learning_rate)
    else:
        schedule = WarmupPolynomialDecay(learning_rate, warmup_steps, total_steps,
                                         end_lr=end_lr, power=power, warmup_mode=warmup_mode)
    common = dict(learning_rate=schedule, weight_decay_rate=weight_decay_rate, beta_1=beta_1,
                  beta_2=beta_2, epsilon=epsilon,
                  exclude_from_weight_decay=tuple(exclude_from_weight_decay),
                  bias_correction=bias_correction, global_clipnorm=global_clipnorm,
                  learning_rate_multipliers=learning_rate_multipliers,
                  skip_nonfinite=skip_nonfinite)
    if name == "lamb":
        return Lamb(exclude_from_layer_adaptation=exclude_from_layer_adaptation, **common)
    return AdamWeightDecay(**common)


# ---------------------------------------------------------------------------------------------
# Per-variable learning-rate multipliers
# ---------------------------------------------------------------------------------------------

DEFAULT_LAYER_PATTERN = r"(?:^|/)layer_(\d+)(?:/|$)"


def layer_index(path: str, layer_pattern: str = DEFAULT_LAYER_PATTERN) -> Optional[int]:
    """The encoder layer number in a variable path (first group of `layer_pattern`), or None."""
    match = re.search(layer_pattern, path)
    return None if match is None else int(match.group(1))


def layerwise_lr_decay_multipliers(
    num_layers: int,
    decay: float,
    *,
    layer_pattern: str = DEFAULT_LAYER_PATTERN,
    embedding_pattern: str = r"embedding",
) -> Callable[[str], float]:
    """ELECTRA fine-tuning's layer-wise decay: depth 0 embeddings, layer i depth i+1, the rest
    (task head, pooler) depth L+2; multiplier = decay ** (L + 2 - depth)."""

    def multiplier(path: str) -> float:
        index = layer_index(path, layer_pattern)
        if index is not None:
            depth = index + 1
        elif re.search(embedding_pattern, path):
            depth = 0
        else:
            depth = num_layers + 2
        return float(decay ** (num_layers + 2 - depth))

    return multiplier


def pkt_background_lr(step: tf.Tensor, steps_per_phase: int) -> tf.Tensor:
    """MobileBERT's periodic background rate, restarted every phase:
    min(0.1 (1 - t/P)^0.5 + 0.9, 10 t/P) with t = step mod P (1.0 when P <= 1)."""
    if steps_per_phase <= 1:
        return tf.constant(1.0, tf.float32)
    t = tf.cast(tf.math.floormod(tf.cast(step, tf.int64), steps_per_phase), tf.float32)
    fraction = t / float(steps_per_phase)
    decay_half = 0.1 * tf.sqrt(1.0 - fraction) + 0.9
    linear_up = 10.0 * fraction
    return tf.minimum(decay_half, linear_up)


def pkt_layer_phase_factor(step: tf.Tensor, layer_id: int, steps_per_phase: int) -> tf.Tensor:
    """0 before layer `layer_id`'s phase, 1 during it, 0.1 after (piecewise constant on step)."""
    step = tf.cast(step, tf.int64)
    start = layer_id * steps_per_phase
    return tf.where(step <= start, 0.0,
                    tf.where(step <= start + steps_per_phase, 1.0, 0.1))


def pkt_layer_learning_rate(step: tf.Tensor, layer_id: int, steps_per_phase: int) -> tf.Tensor:
    """LAMB learning-rate multiplier of encoder layer `layer_id` during progressive knowledge
    transfer: 3 * background * (0 before its phase, 1 during, 0.1 after)."""
    return 3.0 * pkt_background_lr(step, steps_per_phase) * pkt_layer_phase_factor(
        step, layer_id, steps_per_phase)


def pkt_learning_rate_multipliers(
    steps_per_phase: int, *, layer_pattern: str = DEFAULT_LAYER_PATTERN
) -> Callable[[str], object]:
    """`learning_rate_multipliers` for MobileBERT PKT with LAMB: encoder layers follow
    `pkt_layer_learning_rate`; every other variable (embeddings, heads) gets 0."""

    def multiplier(path: str):
        index = layer_index(path, layer_pattern)
        if index is None:
            return 0.0
        return lambda step: pkt_layer_learning_rate(step, index, steps_per_phase)

    return multiplier
