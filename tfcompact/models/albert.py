"""ALBERT: factorised embeddings, cross-layer parameter sharing, SOP head.

Two checkpoint layouts (``config.layout``):

- ``"google"`` (google-research/albert): embeddings at width E with LayerNorm at E, then
  ``bert/encoder/embedding_hidden_mapping_in`` (E → H, only if E ≠ H); layer n runs
  ``bert/encoder/transformer/group_{g}`` with g = n·num_hidden_groups // L, each group applying
  ``inner_group_{k}`` blocks (scopes attention_1, LayerNorm, ffn_1, LayerNorm_1). The MLM
  transform maps H → E before the tied output.
- ``"brightmart"`` (brightmart/albert_zh): ``word_embeddings_2`` (E → H, no bias) applied before
  type/position embeddings (width H); one BERT-named block ``bert/encoder/layer_shared`` used by
  every layer; MLM logits = (h·W₂ᵀ)·W₁ᵀ with an H-wide transform.

``ln_type: "preln"`` moves each LayerNorm before its sub-layer (no final norm).
"""
from __future__ import annotations

import keras

from tfcompact.configs import AlbertConfig
from tfcompact.layers.core import dense
from tfcompact.layers.transformer import AlbertGroup, TransformerBlock
from tfcompact.models.common import (
    attach_pretraining_heads,
    backbone_inputs,
    backbone_model,
    block_options,
    config_embeddings,
    model_scope,
    run_encoder,
    scope,
)


def _block_kwargs(config: AlbertConfig) -> dict:
    return dict(block_options(config), exact_gelu=False,
                norm_position="pre" if config.ln_type == "preln" else "post")


def albert_layer_groups(config: AlbertConfig) -> list:
    """The layer object each of the L layers calls (the same object where parameters are shared)."""
    if config.layout == "brightmart":
        shared = TransformerBlock(naming="bert", name="layer_shared", **_block_kwargs(config))
        return [shared] * config.num_hidden_layers
    groups = [
        AlbertGroup(config.inner_group_num, _block_kwargs(config), name=f"group_{g}")
        for g in range(config.num_hidden_groups)
    ]
    L, G = config.num_hidden_layers, config.num_hidden_groups
    return [groups[int(n / L * G)] for n in range(L)]


def build_albert_backbone(config: AlbertConfig, name: str | None = None) -> keras.Model:
    """ALBERT backbone with the layout's variable names; pooled output = tanh pooler on [CLS]."""
    model_name, prefix = model_scope("bert", name)
    brightmart = config.layout == "brightmart"
    inputs = backbone_inputs()
    with scope(prefix):
        embeddings = config_embeddings(config, config.embedding_size, hidden_size=config.hidden_size,
                                       layout="brightmart" if brightmart else "bert")
        x = embeddings((inputs["input_ids"], inputs["segment_ids"]))
        with scope("encoder"):
            if not brightmart and config.embedding_size != config.hidden_size:
                x = dense(config.hidden_size, "embedding_hidden_mapping_in", config.initializer_range)(x)
            with scope("" if brightmart else "transformer"):
                hidden_states, attention_logits = run_encoder(x, inputs["input_mask"], albert_layer_groups(config))
        return backbone_model(inputs, hidden_states, attention_logits, config, model_name)


def build_albert_pretraining_model(
    config: AlbertConfig, sentence_head: str = "sop", name: str | None = None, seed: int | None = None
) -> keras.Model:
    """ALBERT backbone + tied MLM head (transform H → E, Google layout) + SOP head.

    ``seed`` is unused (nothing is sampled); it is part of every pretraining builder's signature.
    """
    backbone = build_albert_backbone(config, name=name)
    brightmart = config.layout == "brightmart"
    return attach_pretraining_heads(
        backbone, config, transform_size=config.hidden_size if brightmart else config.embedding_size,
        sentence_head=sentence_head, name=name)
