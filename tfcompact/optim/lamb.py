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

from tfcompact.optim.base import AdamFamilyOptimizer


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

    default_name = "lamb"

    def __init__(self, learning_rate=1e-3,
                 exclude_from_layer_adaptation: Optional[Sequence[str]] = None, **kwargs):
        """Arguments as `AdamFamilyOptimizer`, plus `exclude_from_layer_adaptation`."""
        super().__init__(learning_rate=learning_rate, **kwargs)
        if exclude_from_layer_adaptation is None:
            self.layer_adaptation_exclusions = self.weight_decay_exclusions
        else:
            self.layer_adaptation_exclusions = tuple(exclude_from_layer_adaptation)

    def get_config(self) -> dict:
        config = super().get_config()
        config["exclude_from_layer_adaptation"] = list(self.layer_adaptation_exclusions)
        return config
