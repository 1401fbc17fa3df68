"""Output heads: pooler, tied masked-LM head, NSP/SOP head and ELECTRA's discriminator head.

The masked-LM head gathers the masked positions *first* and runs the transform and the
vocabulary projection on those P positions only ([B, P, V], never [B, S, V]).
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from tfcompact.layers.activations import get_activation
from tfcompact.layers.core import dense, truncated_normal
from tfcompact.layers.embeddings import Embeddings
from tfcompact.layers.norms import LayerNorm
from tfcompact.layers.transformer import build_in_scope


def gather_positions(sequence, positions):
    """sequence [B, S, W], positions int [B, P] → [B, P, W] (row b picks its own positions).

    One row gather from the flattened [B·S, W] sequence, as google-research/bert does.
    """
    shape = ops.shape(sequence)
    batch, seq_len, width = shape[0], shape[1], sequence.shape[-1]
    positions = ops.cast(positions, "int32")
    offsets = ops.expand_dims(ops.arange(batch, dtype="int32") * seq_len, -1)
    flat = ops.take(ops.reshape(sequence, (-1, width)), ops.reshape(positions + offsets, (-1,)), axis=0)
    return ops.reshape(flat, (batch, ops.shape(positions)[1], width))


@keras.saving.register_keras_serializable(package="tfcompact")
class Pooler(keras.layers.Layer):
    """BERT pooler: tanh(dense([CLS])) (TF1 ``pooler/dense``)."""

    def __init__(self, hidden_size: int, initializer_range: float = 0.02, **kwargs):
        kwargs.setdefault("name", "pooler")
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.initializer_range = initializer_range
        self.dense = dense(hidden_size, "dense", initializer_range)

    def build(self, input_shape):
        self.dense.build((None, input_shape[-1]))

    def call(self, sequence_output):
        return ops.tanh(self.dense(sequence_output[:, 0]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.hidden_size)

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_size": self.hidden_size, "initializer_range": self.initializer_range}


@keras.saving.register_keras_serializable(package="tfcompact")
class MaskedLMHead(keras.layers.Layer):
    """Masked-LM head tied to the input word embeddings.

    h = LN(act(dense(gather(sequence, positions))))  (width ``transform_size``)
    logits = embeddings.attend(h[..., :E]) + h[..., E:]·extra_output_weightsᵀ + output_bias.
    The extra weights [V, H − E] exist only for MobileBERT (its decoder is
    concat(word_embeddings, extra_output_weights)). ``transform_scope`` is ``("transform",)`` for
    ``cls/predictions/transform/{dense,LayerNorm}`` and ``()`` for ELECTRA's
    ``generator_predictions/{dense,LayerNorm}``. The embedding layer is shared, not copied; a
    head restored from get_config alone needs ``embedding_layer`` passed again.
    """

    def __init__(
        self,
        embedding_layer: Embeddings,
        vocab_size: int,
        transform_size: int,
        hidden_act: str = "gelu",
        exact_gelu: bool = False,
        initializer_range: float = 0.02,
        extra_output_size: int = 0,
        transform_scope: Sequence[str] = ("transform",),
        **kwargs,
    ):
        kwargs.setdefault("name", "predictions")
        super().__init__(**kwargs)
        self.embedding_layer = embedding_layer
        self.vocab_size = vocab_size
        self.transform_size = transform_size
        self.hidden_act = hidden_act
        self.exact_gelu = exact_gelu
        self.initializer_range = initializer_range
        self.extra_output_size = extra_output_size
        self.transform_scope = tuple(transform_scope)
        self._act = get_activation(hidden_act, exact_gelu)
        self.dense = dense(transform_size, "dense", initializer_range)
        self.norm = LayerNorm(name="LayerNorm")

    def build(self, sequence_shape, positions_shape=None):
        build_in_scope(self.transform_scope, self.dense, (None, None, sequence_shape[-1]))
        build_in_scope(self.transform_scope, self.norm, (None, None, self.transform_size))
        self.output_bias = self.add_weight(name="output_bias", shape=(self.vocab_size,), initializer="zeros")
        if self.extra_output_size:
            self.extra_output_weights = self.add_weight(
                name="extra_output_weights",
                shape=(self.vocab_size, self.extra_output_size),
                initializer=truncated_normal(self.initializer_range),
            )

    def call(self, sequence, positions):
        h = self.norm(self._act(self.dense(gather_positions(sequence, positions))))
        if self.extra_output_size:
            e = self.transform_size - self.extra_output_size
            logits = self.embedding_layer.attend(h[..., :e])
            logits = logits + ops.matmul(h[..., e:], ops.transpose(self.extra_output_weights))
        else:
            logits = self.embedding_layer.attend(h)
        return logits + self.output_bias

    def compute_output_shape(self, sequence_shape, positions_shape=None):
        return (sequence_shape[0], positions_shape[1] if positions_shape else None, self.vocab_size)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "transform_size": self.transform_size,
            "hidden_act": self.hidden_act,
            "exact_gelu": self.exact_gelu,
            "initializer_range": self.initializer_range,
            "extra_output_size": self.extra_output_size,
            "transform_scope": list(self.transform_scope),
        }


@keras.saving.register_keras_serializable(package="tfcompact")
class SentenceHead(keras.layers.Layer):
    """Two-way sentence classifier on the pooled output: NSP (BERT) or sentence order (ALBERT).

    ``output_weights`` is stored [2, H] exactly as TF1's ``cls/seq_relationship/output_weights``
    ([out, in], the transpose of a Dense kernel): logits = pooled·Wᵀ + b.
    """

    def __init__(self, num_classes: int = 2, initializer_range: float = 0.02, **kwargs):
        kwargs.setdefault("name", "seq_relationship")
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.initializer_range = initializer_range

    def build(self, input_shape):
        self.output_weights = self.add_weight(
            name="output_weights",
            shape=(self.num_classes, input_shape[-1]),
            initializer=truncated_normal(self.initializer_range),
        )
        self.output_bias = self.add_weight(name="output_bias", shape=(self.num_classes,), initializer="zeros")

    def call(self, pooled):
        return ops.matmul(pooled, ops.transpose(self.output_weights)) + self.output_bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "initializer_range": self.initializer_range}


@keras.saving.register_keras_serializable(package="tfcompact")
class DiscriminatorHead(keras.layers.Layer):
    """ELECTRA replaced-token detection: dense(H, act) → dense(1) per token → logits [B, S]."""

    def __init__(
        self,
        hidden_size: int,
        hidden_act: str = "gelu",
        exact_gelu: bool = True,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        kwargs.setdefault("name", "discriminator_predictions")
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.hidden_act = hidden_act
        self.exact_gelu = exact_gelu
        self.initializer_range = initializer_range
        self._act = get_activation(hidden_act, exact_gelu)
        self.dense = dense(hidden_size, "dense", initializer_range)
        self.dense_1 = dense(1, "dense_1", initializer_range)

    def build(self, input_shape):
        self.dense.build((None, None, input_shape[-1]))
        self.dense_1.build((None, None, self.hidden_size))

    def call(self, sequence):
        return ops.squeeze(self.dense_1(self._act(self.dense(sequence))), -1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2])

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "hidden_act": self.hidden_act,
            "exact_gelu": self.exact_gelu,
            "initializer_range": self.initializer_range,
        }


@keras.saving.register_keras_serializable(package="tfcompact")
class FirstToken(keras.layers.Layer):
    """The [CLS] vector [B, H]: the pooled output of models without a pooler (no variables)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("name", "first_token")
        super().__init__(**kwargs)

    def call(self, sequence_output):
        return sequence_output[:, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])
