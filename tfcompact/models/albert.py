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
from tfcompact.layers.embeddings import Embeddings
from tfcompact.layers.heads import Pooler
from tfcompact.layers.transformer import AlbertGroup, TransformerBlock
from tfcompact.models.bert import run_encoder
from tfcompact.models.common import (
    functional_model,
    attach_pretraining_heads,
    backbone_inputs,
    backbone_outputs,
    model_scope,
    scope,
)


def _block_kwargs(config: AlbertConfig) -> dict:
    return dict(
        hidden_size=config.hidden_size,
        num_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_act,
        exact_gelu=False,
        hidden_dropout=config.hidden_dropout_prob,
        attention_dropout=config.attention_probs_dropout_prob,
        initializer_range=config.initializer_range,
        norm_position="pre" if config.ln_type == "preln" else "post",
    )


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
        embeddings = Embeddings(
            vocab_size=config.vocab_size,
            embedding_size=config.embedding_size,
            hidden_size=config.hidden_size,
            type_vocab_size=config.type_vocab_size,
            max_position_embeddings=config.max_position_embeddings,
            initializer_range=config.initializer_range,
            dropout_rate=config.hidden_dropout_prob,
            layout="brightmart" if brightmart else "bert",
            name="embeddings",
        )
        x = embeddings((inputs["input_ids"], inputs["segment_ids"]))
        with scope("encoder"):
            if not brightmart and config.embedding_size != config.hidden_size:
                x = dense(config.hidden_size, "embedding_hidden_mapping_in", config.initializer_range)(x)
            with scope("" if brightmart else "transformer"):
                hidden_states, attention_logits = run_encoder(x, inputs["input_mask"], albert_layer_groups(config))
        pooled = Pooler(config.hidden_size, config.initializer_range, name="pooler")(hidden_states[-1])
    outputs = backbone_outputs(hidden_states[-1], pooled, hidden_states, attention_logits)
    return functional_model(inputs, outputs, name=model_name)


def build_albert_pretraining_model(
    config: AlbertConfig, sentence_head: str = "sop", name: str | None = None
) -> keras.Model:
    """ALBERT backbone + tied MLM head (transform H → E, Google layout) + SOP head."""
    backbone = build_albert_backbone(config, name=name)
    brightmart = config.layout == "brightmart"
    return attach_pretraining_heads(
        backbone,
        vocab_size=config.vocab_size,
        transform_size=config.hidden_size if brightmart else config.embedding_size,
        hidden_act=config.hidden_act,
        initializer_range=config.initializer_range,
        sentence_head=sentence_head,
        prefix=f"{name}/" if name else "",
    )
