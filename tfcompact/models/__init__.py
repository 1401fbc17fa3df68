"""Model builders for every architecture, by architecture name or preset name.

``build_backbone`` returns a Keras model from the dict inputs ``input_ids``, ``input_mask``,
``segment_ids`` (int32 [B, S]) to ``sequence_output``, ``pooled_output``, ``hidden_states``
(embeddings + every layer) and ``attention_logits`` (masked, pre-softmax).
``build_pretraining_model`` adds the pretraining heads (``mlm_logits`` at
``masked_lm_positions``; ``sentence_logits`` for NSP/SOP); for ELECTRA it returns the
``ElectraPretrainer``. Keras variable paths equal the TF1 checkpoint names
(see ``variable_paths``).
"""
from __future__ import annotations

from typing import Optional

import keras

from tfcompact.configs import ARCHITECTURES, CONFIG_CLASSES, Preset, get_preset
from tfcompact.errors import ConfigError
from tfcompact.models.albert import build_albert_backbone, build_albert_pretraining_model
from tfcompact.models.bert import build_bert_backbone, build_bert_pretraining_model
from tfcompact.models.common import SENTENCE_HEADS
from tfcompact.models.electra import ElectraPretrainer, build_electra_backbone
from tfcompact.models.mobilebert import build_mobilebert_backbone, build_mobilebert_pretraining_model
from tfcompact.models.tinybert import (
    build_tinybert_backbone,
    build_tinybert_pretraining_model,
    build_tinybert_student,
)

DEFAULT_SENTENCE_HEAD = {"bert": "nsp", "tinybert": "nsp", "albert": "sop", "electra": "none", "mobilebert": "nsp"}

_BACKBONES = {
    "bert": build_bert_backbone,
    "tinybert": build_tinybert_backbone,
    "albert": build_albert_backbone,
    "electra": build_electra_backbone,
    "mobilebert": build_mobilebert_backbone,
}


def resolve(arch_or_preset, config=None) -> tuple[str, object, Optional[Preset]]:
    """(arch, config, preset or None) from an architecture or preset name and an optional config."""
    if isinstance(arch_or_preset, Preset) or arch_or_preset not in ARCHITECTURES:
        preset = get_preset(arch_or_preset)
        arch = preset.arch
        config = preset.config if config is None else config
    else:
        preset, arch = None, arch_or_preset
        if config is None:
            names = ", ".join(n for n in _preset_names() if get_preset(n).arch == arch)
            raise ConfigError(f"architecture {arch!r} needs a config, or pass a preset name ({names})")
    expected = CONFIG_CLASSES[arch]
    if not isinstance(config, expected):
        raise ConfigError(f"architecture {arch!r} needs a {expected.__name__}, got {type(config).__name__}")
    return arch, config, preset


def _preset_names() -> list[str]:
    from tfcompact.configs import PRESETS

    return list(PRESETS)


def build_backbone(arch_or_preset, config=None, name: Optional[str] = None) -> keras.Model:
    """The backbone of an architecture (config required) or preset (config optional override).

    ``name`` (e.g. "teacher") names the model and prefixes every variable path.
    """
    arch, config, _ = resolve(arch_or_preset, config)
    return _BACKBONES[arch](config, name=name)


def build_pretraining_model(
    arch_or_preset,
    config=None,
    *,
    sentence_head: Optional[str] = None,
    name: Optional[str] = None,
    seed: Optional[int] = None,
) -> keras.Model:
    """Backbone + pretraining heads. ``sentence_head`` ("nsp", "sop", "none") defaults to the
    preset's, else the architecture's (BERT/TinyBERT/MobileBERT NSP, ALBERT SOP). ELECTRA
    returns an ``ElectraPretrainer`` (``seed`` seeds its Gumbel sampling)."""
    arch, config, preset = resolve(arch_or_preset, config)
    if sentence_head is None:
        sentence_head = preset.sentence_head if preset is not None else DEFAULT_SENTENCE_HEAD[arch]
    if sentence_head not in SENTENCE_HEADS:
        raise ConfigError(f"sentence_head: expected one of {SENTENCE_HEADS}, got {sentence_head!r}")
    if arch == "electra":
        if sentence_head != "none":
            raise ConfigError("sentence_head: ELECTRA has no sentence-level head; use 'none'")
        return ElectraPretrainer(config, seed=seed)
    if arch == "bert":
        return build_bert_pretraining_model(config, sentence_head=sentence_head, name=name)
    if arch == "tinybert":
        return build_tinybert_pretraining_model(config, sentence_head=sentence_head, name=name)
    if arch == "albert":
        return build_albert_pretraining_model(config, sentence_head=sentence_head, name=name)
    return build_mobilebert_pretraining_model(config, sentence_head=sentence_head, name=name)


def variable_paths(model: keras.Model, trainable_only: bool = True) -> dict[str, tuple[int, ...]]:
    """Keras variable path → shape, in creation order (trainable variables, or all of them)."""
    variables = model.trainable_variables if trainable_only else model.variables
    return {v.path: tuple(v.shape) for v in variables}


def get_backbone(model: keras.Model) -> keras.Model:
    """The backbone inside a pretraining model (ELECTRA: the discriminator)."""
    if isinstance(model, ElectraPretrainer):
        return model.discriminator
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            return layer
    return model


__all__ = [
    "ARCHITECTURES",
    "DEFAULT_SENTENCE_HEAD",
    "ElectraPretrainer",
    "build_backbone",
    "build_pretraining_model",
    "build_tinybert_student",
    "get_backbone",
    "resolve",
    "variable_paths",
]
