"""Training objectives: pretraining losses (MLM, NSP/SOP, ELECTRA RTD) and distillation losses."""
from tfcompact.objectives import distillation, pretraining
from tfcompact.objectives.pretraining import (
    auc_from_histogram,
    electra_loss,
    electra_rtd_accuracy,
    electra_rtd_loss,
    masked_lm_accuracy,
    masked_lm_loss,
    pretraining_loss,
    rtd_auc_histogram,
    sentence_accuracy,
    sentence_loss,
)

__all__ = [
    "auc_from_histogram", "distillation", "electra_loss", "electra_rtd_accuracy",
    "electra_rtd_loss", "masked_lm_accuracy", "masked_lm_loss", "pretraining", "pretraining_loss",
    "rtd_auc_histogram", "sentence_accuracy", "sentence_loss",
]
