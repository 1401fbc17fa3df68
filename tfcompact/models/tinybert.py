"""TinyBERT students: BERT backbones plus ``fit_dense``, the H_s → H_teacher projection that
general distillation applies to every student hidden state (embeddings included) before the
hidden-state MSE against the teacher.
"""
from __future__ import annotations

import keras

from tfcompact.configs import BertConfig
from tfcompact.layers.core import dense
from tfcompact.models.bert import build_bert_backbone, build_bert_pretraining_model
from tfcompact.models.common import backbone_inputs, functional_model


def teacher_width(config: BertConfig, teacher_hidden_size: int | None = None) -> int:
    """fit_dense's output width: the argument, else config.fit_size, else the student width."""
    if teacher_hidden_size is not None:
        return teacher_hidden_size
    return config.fit_size if config.fit_size is not None else config.hidden_size


def build_tinybert_backbone(config: BertConfig, name: str | None = None) -> keras.Model:
    """A TinyBERT student backbone is a BERT backbone (names ``bert/...``)."""
    return build_bert_backbone(config, name=name)


def build_tinybert_student(
    config: BertConfig, teacher_hidden_size: int | None = None, name: str | None = None
) -> keras.Model:
    """Backbone + ``fit_dense``: outputs the backbone dict plus ``fit_hidden_states`` (L+1 tensors
    [B, S, H_teacher]) for the hidden-state loss. ``model.get_layer("fit_dense")`` is the projection."""
    backbone = build_bert_backbone(config, name=name)
    inputs = backbone_inputs()
    outputs = dict(backbone(inputs))
    fit_dense = dense(teacher_width(config, teacher_hidden_size), "fit_dense", config.initializer_range)
    outputs["fit_hidden_states"] = [fit_dense(h) for h in outputs["hidden_states"]]
    return functional_model(inputs, outputs, name=f"{backbone.name}_student")


def build_tinybert_pretraining_model(
    config: BertConfig, sentence_head: str = "nsp", name: str | None = None,
    seed: int | None = None, teacher_hidden_size: int | None = None,
) -> keras.Model:
    """BERT pretraining model (MLM + NSP) with ``fit_dense`` and ``fit_hidden_states`` added."""
    return build_bert_pretraining_model(
        config, sentence_head=sentence_head, name=name,
        fit_size=teacher_width(config, teacher_hidden_size),
    )
