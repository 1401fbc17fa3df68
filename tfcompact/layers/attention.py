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
import tensorflow as tf
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

    def _project(self, qk_input, v_input):
        """Q, K, V as [B, N, S, d] with as few matmuls and transposes as the inputs allow.

        When Q, K and V read the same input, the three kernels are concatenated at call time
        (the variables keep their TF1 names and shapes) and one [H, 3·N·d] matmul, one reshape
        and one transpose give all three; with MobileBERT's shared key/query input Q and K share
        one matmul. The 1/√d scale is folded into Q ([B, S, N·d]) instead of the [B, N, S, S]
        scores: the same product, an S/d-times smaller multiply in the forward and backward pass.
        """
        n, d = self.num_heads, self.size_per_head
        scale = 1.0 / math.sqrt(d)
        if v_input is None or v_input is qk_input:
            layers = (self.query, self.key, self.value)
            kernel = ops.cast(ops.concatenate([l.kernel for l in layers], axis=-1), qk_input.dtype)
            bias = ops.cast(ops.concatenate([l.bias for l in layers], axis=-1), qk_input.dtype)
            qkv = tf.matmul(tf.reshape(qk_input, (-1, qk_input.shape[-1])), kernel) + bias
            qkv = tf.reshape(qkv, (tf.shape(qk_input)[0], tf.shape(qk_input)[1], 3, n, d))
            # unstack, not qkv[i]: its gradient is one stack, a slice's is a padded full copy.
            q, k, v = tf.unstack(tf.transpose(qkv, (2, 0, 3, 1, 4)))  # 3 × [B, N, S, d]
            return q * scale, k, v
        layers = (self.query, self.key)
        kernel = ops.cast(ops.concatenate([l.kernel for l in layers], axis=-1), qk_input.dtype)
        bias = ops.cast(ops.concatenate([l.bias for l in layers], axis=-1), qk_input.dtype)
        qk = tf.matmul(tf.reshape(qk_input, (-1, qk_input.shape[-1])), kernel) + bias
        qk = tf.reshape(qk, (tf.shape(qk_input)[0], tf.shape(qk_input)[1], 2, n, d))
        q, k = tf.unstack(tf.transpose(qk, (2, 0, 3, 1, 4)))  # 2 × [B, N, S, d]
        v = self.value(v_input)
        v = tf.transpose(tf.reshape(v, (tf.shape(v)[0], tf.shape(v)[1], n, d)), (0, 2, 1, 3))
        return q * scale, k, v

    def call(self, qk_input, v_input=None, input_mask=None, training=None):
        q, k, v = self._project(qk_input, v_input)
        # Batched matmuls on [B, N, S, d] (faster than einsum on TF's CPU kernels, same under
        # XLA); Kᵀ through the matmul's adjoint flag, not a transpose op.
        scores = tf.matmul(q, k, transpose_b=True)
        if input_mask is not None:
            scores = apply_attention_mask(scores, input_mask, self.mask_style, self.mask_value)
        probs = ops.softmax(ops.cast(scores, "float32"), axis=-1)
        probs = self.dropout(ops.cast(probs, scores.dtype), training=training)
        context = tf.transpose(tf.matmul(probs, v), (0, 2, 1, 3))  # [B, S, N, d]
        context = tf.reshape(context, (tf.shape(context)[0], tf.shape(context)[1], self.num_heads * self.size_per_head))
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
