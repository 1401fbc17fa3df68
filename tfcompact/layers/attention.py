"""Multi-head self-attention that also returns the masked pre-softmax scores.

Distillation (TinyBERT, MobileBERT) compares teacher and student attention *before* the
softmax, so the layer returns the logits after the mask has been applied:

- ``mask_style="additive"`` (BERT, ALBERT, ELECTRA): logits = QKᵀ/√d + (1 − mask)·(−10000)
- ``mask_style="mobilebert"``: logits = (QKᵀ/√d)·mask + (1 − mask)·(−6), the
  quantisation-friendly masking of MobileBERT.

Queries and keys come from one input and values optionally from another (MobileBERT's
bottlenecks: Q/K from the shared key/query bottleneck, V from the block input). This layer is
TF1's ``attention/self`` scope: ``query``, ``key`` and ``value`` dense layers with bias; the
output projection belongs to the enclosing block (``attention/output/dense``).
"""
from __future__ import annotations

import math

import keras
from keras import ops

from tfcompact.errors import ConfigError
from tfcompact.layers.core import dense, dropout

MASK_STYLES = ("additive", "mobilebert")
DEFAULT_MASK_VALUE = {"additive": -10000.0, "mobilebert": -6.0}


def apply_attention_mask(scores, input_mask, mask_style: str = "additive", mask_value: float | None = None):
    """Mask scores [B, N, S, T] with a key mask [B, T] (1 = real token, 0 = padding)."""
    if mask_value is None:
        mask_value = DEFAULT_MASK_VALUE[mask_style]
    mask = ops.cast(input_mask, scores.dtype)[:, None, None, :]
    if mask_style == "mobilebert":
        return scores * mask + (1.0 - mask) * mask_value
    return scores + (1.0 - mask) * mask_value


@keras.saving.register_keras_serializable(package="tfcompact")
class SelfAttention(keras.layers.Layer):
    """Call ``(qk_input, v_input=None, input_mask=None)`` → ``(context [B,S,N·d], logits [B,N,S,S])``."""

    def __init__(
        self,
        num_heads: int,
        size_per_head: int,
        attention_dropout: float = 0.1,
        initializer_range: float = 0.02,
        mask_style: str = "additive",
        mask_value: float | None = None,
        **kwargs,
    ):
        kwargs.setdefault("name", "self")
        super().__init__(**kwargs)
        if mask_style not in MASK_STYLES:
            raise ConfigError(f"mask_style: unknown value {mask_style!r}; expected one of {MASK_STYLES}")
        self.num_heads = num_heads
        self.size_per_head = size_per_head
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.mask_style = mask_style
        self.mask_value = DEFAULT_MASK_VALUE[mask_style] if mask_value is None else float(mask_value)
        width = num_heads * size_per_head
        self.query = dense(width, "query", initializer_range)
        self.key = dense(width, "key", initializer_range)
        self.value = dense(width, "value", initializer_range)
        self.dropout = dropout(attention_dropout)

    def build(self, qk_input_shape, v_input_shape=None, input_mask_shape=None):
        self.query.build(qk_input_shape)
        self.key.build(qk_input_shape)
        self.value.build(v_input_shape if v_input_shape is not None else qk_input_shape)

    def _split_heads(self, x):
        """[B, S, N·d] → [B, N, S, d]."""
        x = ops.reshape(x, (-1, ops.shape(x)[1], self.num_heads, self.size_per_head))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, qk_input, v_input=None, input_mask=None, training=None):
        if v_input is None:
            v_input = qk_input
        q = self._split_heads(self.query(qk_input))
        k = self._split_heads(self.key(qk_input))
        v = self._split_heads(self.value(v_input))
        # Batched matmuls on [B, N, S, d] (faster than einsum on TF's CPU kernels, same under XLA).
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * (1.0 / math.sqrt(self.size_per_head))
        if input_mask is not None:
            scores = apply_attention_mask(scores, input_mask, self.mask_style, self.mask_value)
        probs = ops.cast(ops.softmax(ops.cast(scores, "float32"), axis=-1), scores.dtype)
        probs = self.dropout(probs, training=training)
        context = ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3))  # [B, S, N, d]
        context = ops.reshape(context, (-1, ops.shape(context)[1], self.num_heads * self.size_per_head))
        return context, scores

    def compute_output_shape(self, qk_input_shape, v_input_shape=None, input_mask_shape=None):
        b, s = qk_input_shape[0], qk_input_shape[1]
        return (b, s, self.num_heads * self.size_per_head), (b, self.num_heads, s, s)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "size_per_head": self.size_per_head,
            "attention_dropout": self.attention_dropout,
            "initializer_range": self.initializer_range,
            "mask_style": self.mask_style,
            "mask_value": self.mask_value,
        }
