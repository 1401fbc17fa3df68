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
from tfcompact.layers.embeddings import Embeddings
from tfcompact.layers.heads import Pooler
from tfcompact.layers.transformer import MobileBertBlock
from tfcompact.models.bert import run_encoder
from tfcompact.models.common import (
    functional_model,
    attach_pretraining_heads,
    backbone_inputs,
    backbone_outputs,
    first_token,
    model_scope,
    scope,
)


def mobilebert_layers(config: MobileBertConfig) -> list[MobileBertBlock]:
    """The L bottleneck blocks ``layer_{n}``."""
    return [
        MobileBertBlock(
            hidden_size=config.hidden_size,
            num_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            intra_bottleneck_size=config.intra_bottleneck_size,
            use_bottleneck=config.use_bottleneck,
            use_bottleneck_attention=config.use_bottleneck_attention,
            key_query_shared_bottleneck=config.key_query_shared_bottleneck,
            num_feedforward_networks=config.num_feedforward_networks,
            normalization_type=config.normalization_type,
            hidden_act=config.hidden_act,
            hidden_dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob,
            initializer_range=config.initializer_range,
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
        embeddings = Embeddings(
            vocab_size=config.vocab_size,
            embedding_size=config.embedding_size,
            hidden_size=config.hidden_size,
            type_vocab_size=config.type_vocab_size,
            max_position_embeddings=config.max_position_embeddings,
            initializer_range=config.initializer_range,
            dropout_rate=config.hidden_dropout_prob,
            layout="mobilebert",
            trigram_input=config.trigram_input,
            normalization_type=config.normalization_type,
            name="embeddings",
        )
        x = embeddings((inputs["input_ids"], inputs["segment_ids"]))
        with scope("encoder"):
            hidden_states, attention_logits = run_encoder(x, inputs["input_mask"], mobilebert_layers(config))
        sequence_output = hidden_states[-1]
        if config.classifier_activation:
            pooled = Pooler(config.hidden_size, config.initializer_range, name="pooler")(sequence_output)
        else:
            pooled = first_token(sequence_output)
    outputs = backbone_outputs(sequence_output, pooled, hidden_states, attention_logits)
    return functional_model(inputs, outputs, name=model_name)


def build_mobilebert_pretraining_model(
    config: MobileBertConfig, sentence_head: str = "nsp", name: str | None = None
) -> keras.Model:
    """MobileBERT backbone + MLM head (transform H → H + LayerNorm, decoder concat(W, extra)) + NSP."""
    backbone = build_mobilebert_backbone(config, name=name)
    return attach_pretraining_heads(
        backbone,
        vocab_size=config.vocab_size,
        transform_size=config.hidden_size,
        hidden_act=config.hidden_act,
        initializer_range=config.initializer_range,
        extra_output_size=config.hidden_size - config.embedding_size,
        sentence_head=sentence_head,
        prefix=f"{name}/" if name else "",
    )
