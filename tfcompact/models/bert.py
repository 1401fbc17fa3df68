"""BERT (google-research/bert): backbone and pretraining model (MLM + NSP).

Variable paths mirror the TF1 checkpoint names, e.g. ``bert/embeddings/word_embeddings``,
``bert/encoder/layer_0/attention/self/query/kernel``, ``cls/predictions/output_bias``.
"""
from __future__ import annotations

import keras

from tfcompact.configs import BertConfig
from tfcompact.layers.transformer import TransformerBlock
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


def bert_encoder_layers(config, exact_gelu: bool = False) -> list[TransformerBlock]:
    """The L post-LN blocks ``layer_{n}`` of a BERT-style encoder (also ELECTRA's)."""
    return [
        TransformerBlock(**block_options(config), exact_gelu=exact_gelu, name=f"layer_{n}")
        for n in range(config.num_hidden_layers)
    ]


def build_bert_backbone(config: BertConfig, name: str | None = None) -> keras.Model:
    """BERT: embeddings (word + type + position, LN) → L post-LN blocks → tanh pooler on [CLS]."""
    model_name, prefix = model_scope("bert", name)
    inputs = backbone_inputs()
    with scope(prefix):
        x = config_embeddings(config, config.hidden_size)((inputs["input_ids"], inputs["segment_ids"]))
        with scope("encoder"):
            hidden_states, attention_logits = run_encoder(x, inputs["input_mask"], bert_encoder_layers(config))
        return backbone_model(inputs, hidden_states, attention_logits, config, model_name)


def build_bert_pretraining_model(
    config: BertConfig,
    sentence_head: str = "nsp",
    name: str | None = None,
    seed: int | None = None,
) -> keras.Model:
    """BERT backbone + tied MLM head (``cls/predictions``) + NSP head (``cls/seq_relationship``).

    ``seed`` is unused (nothing is sampled); it is part of every pretraining builder's signature.
    """
    backbone = build_bert_backbone(config, name=name)
    return attach_pretraining_heads(backbone, config, transform_size=config.hidden_size,
                                    sentence_head=sentence_head, name=name)
