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

from typing import Optional, Union

import keras

from tfcompact.configs import Config, Preset, resolve_model
from tfcompact.models.electra import ElectraPretrainer



def build_backbone(arch_or_preset: Union[str, Preset], config: Optional[Config] = None,
                   name: Optional[str] = None) -> keras.Model:
    """The backbone of an architecture (config required) or preset (config optional override).

    ``name`` (e.g. "teacher") names the model and prefixes every variable path.
    """
    resolved = resolve_model(arch_or_preset, config)
    return resolved.architecture.build_backbone(resolved.config, name=name)


def build_pretraining_model(
    arch_or_preset: Union[str, Preset],
    config: Optional[Config] = None,
    *,
    sentence_head: Optional[str] = None,
    name: Optional[str] = None,
    seed: Optional[int] = None,
) -> keras.Model:
    """Backbone + pretraining heads. ``sentence_head`` ("nsp", "sop", "none") defaults to the
    preset's, else the architecture's (BERT/TinyBERT/MobileBERT NSP, ALBERT SOP). ELECTRA
    returns an ``ElectraPretrainer`` (``seed`` seeds its Gumbel sampling)."""
    resolved = resolve_model(arch_or_preset, config, sentence_head)
    return resolved.architecture.build_pretraining_model(
        resolved.config, sentence_head=resolved.sentence_head, name=name, seed=seed)


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
    "ElectraPretrainer",
    "build_backbone",
    "build_pretraining_model",
    "get_backbone",
    "resolve_model",
    "variable_paths",
]
