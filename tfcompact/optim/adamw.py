"""AdamWeightDecay as in BERT's and ELECTRA's `optimization.py`, as a Keras 3 optimizer.

Adam moments without bias correction (an option here), epsilon 1e-6, and weight decay added to
the Adam update (so it is scaled by the learning rate but not by the moments), LayerNorm/bias
variables excluded by regex on the full variable path. This is not `keras.optimizers.AdamW`,
which bias-corrects, uses epsilon 1e-7 and decays every variable unless told otherwise.
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
class AdamWeightDecay(AdamFamilyOptimizer):
    """BERT/ELECTRA AdamWeightDecayOptimizer: LAMB's update without the trust ratio.

    `learning_rate_multipliers` gives per-variable learning rates (ELECTRA's layer-wise
    learning-rate decay for fine-tuning; see `layerwise_lr_decay_multipliers`).
    Create it inside `strategy.scope()` when a distribution strategy is used.
    """

    use_trust_ratio = False

    def __init__(
        self,
        learning_rate=1e-3,
        weight_decay_rate: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        exclude_from_weight_decay: Optional[Sequence[str]] = DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY,
        bias_correction: bool = False,
        global_clipnorm: Optional[float] = 1.0,
        learning_rate_multipliers: Optional[LearningRateMultipliers] = None,
        skip_nonfinite: bool = True,
        name: str = "adam_weight_decay",
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
