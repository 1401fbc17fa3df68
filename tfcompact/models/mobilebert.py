"""MobileBERT (google-research mobilebert) and its IB-BERT teacher: backbone and pretraining model.

Embeddings: word [V, E] → trigram concat (3E) → ``embedding_transformation`` (→ H) → + type +
position (width H) → NoNorm/LayerNorm. Blocks: see ``MobileBertBlock``. Attention masking is
scores·mask + (1 − mask)·(−6). ``classifier_activation: false`` means no pooler: the pooled
output is the raw [CLS] vector. The MLM head's decoder is concat(word_embeddings,
``extra_output_weights`` [V, H − E]) with a real LayerNorm in its transform.
"""
from __future__ import annotations

import keras

from tfcompact.configs import MobileBertConfig
from tfcompact.layers.transformer import MobileBertBlock
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


def mobilebert_layers(config: MobileBertConfig) -> list[MobileBertBlock]:
    """The L bottleneck blocks ``layer_{n}``."""
    return [
        MobileBertBlock(
            **block_options(config),
            intra_bottleneck_size=config.intra_bottleneck_size,
            use_bottleneck=config.use_bottleneck,
            use_bottleneck_attention=config.use_bottleneck_attention,
            key_query_shared_bottleneck=config.key_query_shared_bottleneck,
            num_feedforward_networks=config.num_feedforward_networks,
            normalization_type=config.normalization_type,
            mask_style="mobilebert",
            name=f"layer_{n}",
        )
        for n in range(config.num_hidden_layers)
    ]


def build_mobilebert_backbone(config: MobileBertConfig, name: str | None = None) -> keras.Model:
    """MobileBERT backbone (``name="teacher"`` puts the variables under ``teacher/bert/...``)."""
    model_name, prefix = model_scope("bert", name)
    inputs = backbone_inputs()
    with scope(prefix):
        embeddings = config_embeddings(config, config.embedding_size, layout="mobilebert",
                                       hidden_size=config.hidden_size,
                                       trigram_input=config.trigram_input,
                                       normalization_type=config.normalization_type)
        x = embeddings((inputs["input_ids"], inputs["segment_ids"]))
        with scope("encoder"):
            hidden_states, attention_logits = run_encoder(x, inputs["input_mask"], mobilebert_layers(config))
        return backbone_model(inputs, hidden_states, attention_logits, config, model_name,
                              pooler=config.classifier_activation)


def build_mobilebert_pretraining_model(
    config: MobileBertConfig, sentence_head: str = "nsp", name: str | None = None,
    seed: int | None = None,
) -> keras.Model:
    """MobileBERT backbone + MLM head (transform H → H + LayerNorm, decoder concat(W, extra)) + NSP.

    ``seed`` is unused (nothing is sampled); it is part of every pretraining builder's signature.
    """
    backbone = build_mobilebert_backbone(config, name=name)
    return attach_pretraining_heads(
        backbone, config, transform_size=config.hidden_size, sentence_head=sentence_head, name=name,
        extra_output_size=config.hidden_size - config.embedding_size)
