"""Keras 3 layers of the compact Chinese language models (TF backend).

Each layer builds its variables inside name scopes that mirror the TF1 variable scopes of the
original releases, so Keras variable paths read like TF1 checkpoint names.
"""
from tfcompact.layers.activations import Activation, get_activation, gelu_exact, gelu_tanh
from tfcompact.layers.attention import SelfAttention, apply_attention_mask
from tfcompact.layers.core import Dropout, dense, truncated_normal
from tfcompact.layers.embeddings import Embeddings, trigram_concat
from tfcompact.layers.heads import (
    DiscriminatorHead,
    FirstToken,
    MaskedLMHead,
    Pooler,
    SentenceHead,
    gather_positions,
)
from tfcompact.layers.norms import LayerNorm, NoNorm, make_norm
from tfcompact.layers.transformer import AlbertGroup, MobileBertBlock, StackedFFN, TransformerBlock

__all__ = [
    "Activation", "AlbertGroup", "DiscriminatorHead", "Dropout", "Embeddings", "FirstToken",
    "LayerNorm", "MaskedLMHead", "MobileBertBlock", "NoNorm", "Pooler", "SelfAttention",
    "SentenceHead", "StackedFFN", "TransformerBlock", "apply_attention_mask", "dense",
    "gather_positions", "gelu_exact", "gelu_tanh", "get_activation", "make_norm",
    "trigram_concat", "truncated_normal",
]
