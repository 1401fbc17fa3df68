"""LAMB as in ALBERT's (and MobileBERT's) `lamb_optimizer.py`, as a Keras 3 optimizer.

Why not `keras.optimizers.Lamb`: Keras' LAMB applies decoupled weight decay outside the trust
ratio (the paper's later formulation), has no exclusion lists for layer adaptation, and uses
epsilon 1e-7 with bias correction. ALBERT's optimizer, which the published Chinese ALBERT and
MobileBERT checkpoints were trained with, differs on each point:
  * no Adam bias correction (kept as an option here: `bias_correction=True`);
  * weight decay 0.01 is added to the Adam update *before* the trust ratio ||w|| / ||u||;
  * LayerNorm, NoNorm ("FakeLayerNorm") and bias variables are excluded from weight decay
    and, by default, from layer adaptation (trust ratio 1), by regex on the variable name;
  * epsilon 1e-6, gradients clipped to global norm 1.0 before the update.
"""
from __future__ import annotations

from typing import Optional, Sequence

import keras

from tfcompact.optim.base import (
    DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY,
    AdamFamilyOptimizer,
    LearningRateMultipliers,
)


@keras.saving.register_keras_serializable(package="tfcompact")
class Lamb(AdamFamilyOptimizer):
    """ALBERT's LAMB. Patterns are matched (re.search) against full Keras variable paths.

    `exclude_from_layer_adaptation=None` means "the weight-decay list", as in the original.
    `learning_rate_multipliers` scales the step per variable ({pattern: float or fn(step)} or a
    function of the path); a multiplier of 0 also holds the variable's moments at 0, which is
    how MobileBERT's progressive knowledge transfer gates layers that are not yet trained.
    Create it inside `strategy.scope()` when a distribution strategy is used.
    """

    use_trust_ratio = True

    def __init__(
        self,
        learning_rate=1e-3,
        weight_decay_rate: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        exclude_from_weight_decay: Optional[Sequence[str]] = DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY,
        exclude_from_layer_adaptation: Optional[Sequence[str]] = None,
        bias_correction: bool = False,
        global_clipnorm: Optional[float] = 1.0,
        learning_rate_multipliers: Optional[LearningRateMultipliers] = None,
        skip_nonfinite: bool = True,
        name: str = "lamb",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            weight_decay_rate=weight_decay_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            exclude_from_weight_decay=exclude_from_weight_decay,
            bias_correction=bias_correction,
            global_clipnorm=global_clipnorm,
            learning_rate_multipliers=learning_rate_multipliers,
            skip_nonfinite=skip_nonfinite,
            name=name,
            **kwargs,
        )
        if exclude_from_layer_adaptation is None:
            self.layer_adaptation_exclusions = self.weight_decay_exclusions
        else:
            self.layer_adaptation_exclusions = tuple(exclude_from_layer_adaptation)

    def get_config(self) -> dict:
        config = super().get_config()
        config["exclude_from_layer_adaptation"] = list(self.layer_adaptation_exclusions)
        return config
