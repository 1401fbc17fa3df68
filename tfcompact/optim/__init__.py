"""Optimizers and schedules of the original pretraining recipes (LAMB, AdamWeightDecay)."""
from tfcompact.optim.accumulation import GradientAccumulator
from tfcompact.optim.adamw import AdamWeightDecay
from tfcompact.optim.base import DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY, variable_path
from tfcompact.optim.lamb import Lamb
from tfcompact.optim.schedules import (
    OPTIMIZERS,
    WarmupPolynomialDecay,
    create_optimizer,
    layer_index,
    layerwise_lr_decay_multipliers,
    pkt_background_lr,
    pkt_layer_learning_rate,
    pkt_layer_phase_factor,
    pkt_learning_rate_multipliers,
)

__all__ = [
    "AdamWeightDecay", "DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY", "GradientAccumulator", "Lamb",
    "OPTIMIZERS", "WarmupPolynomialDecay", "create_optimizer", "layer_index",
    "layerwise_lr_decay_multipliers", "pkt_background_lr", "pkt_layer_learning_rate",
    "pkt_layer_phase_factor", "pkt_learning_rate_multipliers", "variable_path",
]
