"""BERT (google-research/bert): backbone and pretraining model (MLM + NSP).

Variable paths mirror the TF1 checkpoint names, e.g. ``bert/embeddings/word_embeddings``,
``bert/encoder/layer_0/attention/self/query/kernel``, ``cls/predictions/output_bias``.
"""
from __future__ import annotations

import keras

from tfcompact.configs import BertConfig
from tfcompact.layers.embeddings import Embeddings
from tfcompact.layers.heads import Pooler
from tfcompact.layers.transformer import TransformerBlock
from tfcompact.models.common import (
    functional_model,
    attach_pretraining_heads,
    backbone_inputs,
    backbone_outputs,
    model_scope,
    scope,
)


def bert_encoder_layers(config, prefix: str, exact_gelu: bool = False) -> list[TransformerBlock]:
    """The L post-LN blocks ``layer_{n}`` of a BERT-style encoder (also ELECTRA's)."""
    return [
        TransformerBlock(
            hidden_size=config.hidden_size,
            num_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            hidden_act=config.hidden_act,
            exact_gelu=exact_gelu,
            hidden_dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob,
            initializer_range=config.initializer_range,
            name=f"layer_{n}",
        )
        for n in range(config.num_hidden_layers)
    ]


def run_encoder(x, input_mask, layers) -> tuple[list, list]:
    """Apply the blocks in order; hidden states start with the encoder input."""
    hidden_states, attention_logits = [x], []
    for layer in layers:
        x, logits = layer(x, input_mask=input_mask)
        hidden_states.append(x)
        attention_logits.append(logits)
    return hidden_states, attention_logits


def build_bert_backbone(config: BertConfig, name: str | None = None) -> keras.Model:
    """BERT: embeddings (word + type + position, LN) → L post-LN blocks → tanh pooler on [CLS]."""
    model_name, prefix = model_scope("bert", name)
    inputs = backbone_inputs()
    with scope(prefix):
        embeddings = Embeddings(
            vocab_size=config.vocab_size,
            embedding_size=config.hidden_size,
            type_vocab_size=config.type_vocab_size,
            max_position_embeddings=config.max_position_embeddings,
            initializer_range=config.initializer_range,
            dropout_rate=config.hidden_dropout_prob,
            layout="bert",
            name="embeddings",
        )
        x = embeddings((inputs["input_ids"], inputs["segment_ids"]))
        with scope("encoder"):
            hidden_states, attention_logits = run_encoder(
                x, inputs["input_mask"], bert_encoder_layers(config, prefix)
            )
        pooled = Pooler(config.hidden_size, config.initializer_range, name="pooler")(hidden_states[-1])
    outputs = backbone_outputs(hidden_states[-1], pooled, hidden_states, attention_logits)
    return functional_model(inputs, outputs, name=model_name)


def build_bert_pretraining_model(
    config: BertConfig, sentence_head: str = "nsp", name: str | None = None, fit_size: int | None = None
) -> keras.Model:
    """BERT backbone + tied MLM head (``cls/predictions``) + NSP head (``cls/seq_relationship``)."""
    backbone = build_bert_backbone(config, name=name)
    return attach_pretraining_heads(
        backbone,
        vocab_size=config.vocab_size,
        transform_size=config.hidden_size,
        hidden_act=config.hidden_act,
        initializer_range=config.initializer_range,
        sentence_head=sentence_head,
        prefix=f"{name}/" if name else "",
        fit_size=fit_size,
    )
