"""AdamWeightDecay as in BERT's and ELECTRA's `optimization.py`, as a Keras 3 optimizer.

Adam moments without bias correction (an option here), epsilon 1e-6, and weight decay added to
the Adam update (so it is scaled by the learning rate but not by the moments), LayerNorm/bias
variables excluded by regex on the full variable path. This is not `keras.optimizers.AdamW`,
which bias-corrects, uses epsilon 1e-7 and decays every variable unless told otherwise.
"""
from __future__ import annotations

import keras

from tfcompact.optim.base import AdamFamilyOptimizer


@keras.saving.register_keras_serializable(package="tfcompact")
class AdamWeightDecay(AdamFamilyOptimizer):
    """BERT/ELECTRA AdamWeightDecayOptimizer: LAMB's update without the trust ratio.

    `learning_rate_multipliers` gives per-variable learning rates (ELECTRA's layer-wise
    learning-rate decay for fine-tuning; see `layerwise_lr_decay_multipliers`).
    Create it inside `strategy.scope()` when a distribution strategy is used.
    """

    use_trust_ratio = False
    default_name = "adam_weight_decay"
