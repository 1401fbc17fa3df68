"""TinyBERT students (Jiao et al. 2020): BERT backbones of TinyBERT's sizes.

The projection `fit_dense` (student width -> teacher width) that TinyBERT's distillation
applies to the student's hidden states is not part of the model: it belongs to the
distillation run (`distillation.matches` with `projection: linear`), is saved in the run's
checkpoints only and never exported.
"""
from __future__ import annotations

import keras

from tfcompact.configs import BertConfig
from tfcompact.models.bert import build_bert_backbone, build_bert_pretraining_model


def build_tinybert_backbone(config: BertConfig, name: str | None = None) -> keras.Model:
    """A TinyBERT student backbone is a BERT backbone (names ``bert/...``)."""
    return build_bert_backbone(config, name=name)


def build_tinybert_pretraining_model(
    config: BertConfig, sentence_head: str = "nsp", name: str | None = None,
    seed: int | None = None,
) -> keras.Model:
    """BERT pretraining model (MLM + NSP) of a TinyBERT config."""
    return build_bert_pretraining_model(config, sentence_head=sentence_head, name=name)
