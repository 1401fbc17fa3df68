"""The architecture table: one record per architecture, and the only list of them.

Each record names the architecture's config class, its default sentence-level pretraining
head, its backbone and pretraining-model builders, its TF1 name-and-shape function and the
file name its original code gives the config. Code is referenced as "module:name" strings,
loaded on first use, so this module imports nothing: configs, models and interop all read it,
and reading it loads no TensorFlow.

Builders share one signature each: ``backbone(config, name=None)`` and
``pretraining_model(config, sentence_head=..., name=None, seed=None)``; the TF1 shape
function is ``tf1_shapes(config, pretraining, sentence_head, component) -> {name: shape}``.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from tfcompact.errors import ConfigError

SENTENCE_HEADS = ("nsp", "sop", "none")


def load(reference: str) -> Any:
    """The object a "package.module:name" reference names."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Architecture:
    """One architecture: what builds it, what configures it, how its TF1 checkpoint is named."""

    name: str
    title: str  # as the paper writes it, for messages
    config: str  # "module:ConfigClass"
    sentence_head: str  # default pretraining head: "nsp", "sop" or "none"
    backbone: str  # "module:function"
    pretraining: str  # "module:function"
    tf1_names: str  # "module:function"
    config_file: str  # the config file name of the original code
    # HuggingFace transformers: the model type (also the attribute holding the backbone in its
    # *ForPreTraining model), that class, and its name for what the original code calls
    # "gelu" (the tanh approximation "gelu_new" in BERT/ALBERT/MobileBERT, erf "gelu" in ELECTRA).
    hf_model_type: str
    hf_pretraining: str
    hf_gelu: str = "gelu_new"
    # False: no NSP/SOP head is possible (the sentence head must be "none").
    has_sentence_head: bool = True
    # Fields of the test-sized config beyond the shared tiny shape (see configs.tiny_config).
    tiny: dict = field(default_factory=dict)

    @property
    def config_class(self) -> type:
        return load(self.config)

    @property
    def build_backbone(self) -> Callable:
        return load(self.backbone)

    @property
    def build_pretraining_model(self) -> Callable:
        return load(self.pretraining)

    @property
    def tf1_variable_shapes(self) -> Callable:
        return load(self.tf1_names)


_MODELS = "tfcompact.models"
_TF1 = "tfcompact.interop.tf1_names"

ARCHITECTURES: dict[str, Architecture] = {
    "bert": Architecture(
        name="bert", title="BERT", config="tfcompact.configs:BertConfig", sentence_head="nsp",
        backbone=f"{_MODELS}.bert:build_bert_backbone",
        pretraining=f"{_MODELS}.bert:build_bert_pretraining_model",
        tf1_names=f"{_TF1}:bert_shapes", config_file="bert_config.json",
        hf_model_type="bert", hf_pretraining="BertForPreTraining"),
    "albert": Architecture(
        name="albert", title="ALBERT", config="tfcompact.configs:AlbertConfig", sentence_head="sop",
        backbone=f"{_MODELS}.albert:build_albert_backbone",
        pretraining=f"{_MODELS}.albert:build_albert_pretraining_model",
        tf1_names=f"{_TF1}:albert_shapes", config_file="albert_config.json",
        hf_model_type="albert", hf_pretraining="AlbertForPreTraining"),
    "electra": Architecture(
        name="electra", title="ELECTRA", config="tfcompact.configs:ElectraConfig",
        sentence_head="none", has_sentence_head=False,
        backbone=f"{_MODELS}.electra:build_electra_backbone",
        pretraining=f"{_MODELS}.electra:build_electra_pretraining_model",
        tf1_names=f"{_TF1}:electra_shapes", config_file="electra_config.json",
        hf_model_type="electra", hf_pretraining="ElectraForPreTraining", hf_gelu="gelu",
        tiny={"embedding_size": 32}),
    "mobilebert": Architecture(
        name="mobilebert", title="MobileBERT", config="tfcompact.configs:MobileBertConfig",
        sentence_head="nsp",
        backbone=f"{_MODELS}.mobilebert:build_mobilebert_backbone",
        pretraining=f"{_MODELS}.mobilebert:build_mobilebert_pretraining_model",
        tf1_names=f"{_TF1}:mobilebert_shapes", config_file="bert_config.json",
        hf_model_type="mobilebert", hf_pretraining="MobileBertForPreTraining"),
    "tinybert": Architecture(
        name="tinybert", title="TinyBERT", config="tfcompact.configs:BertConfig",
        sentence_head="nsp",
        backbone=f"{_MODELS}.tinybert:build_tinybert_backbone",
        pretraining=f"{_MODELS}.tinybert:build_tinybert_pretraining_model",
        tf1_names=f"{_TF1}:bert_shapes", config_file="bert_config.json",
        hf_model_type="bert", hf_pretraining="BertForPreTraining", tiny={"fit_size": 64}),
}


def get_architecture(name: str, where: str = "") -> Architecture:
    """The record of architecture `name`; an unknown name raises ConfigError (prefixed with
    `where`, e.g. a file and field) listing the architectures and the close names."""
    try:
        return ARCHITECTURES[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(ARCHITECTURES), n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ConfigError(f"{where + ': ' if where else ''}unknown architecture {name!r}: expected "
                          f"one of {', '.join(ARCHITECTURES)}{hint}") from None
