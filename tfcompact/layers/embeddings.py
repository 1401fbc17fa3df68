"""Token embeddings: plain BERT, ALBERT's factorised layouts, ELECTRA and MobileBERT's trigram input.

Every layout looks words up in ``word_embeddings`` [V, E]; they differ in where the width E
becomes the model width H, and whether position / token-type embeddings are added before
(width E) or after (width H) that projection:

- ``"bert"``: word + type + position at width E, LayerNorm at E (BERT: E = H; Google ALBERT
  and ELECTRA project E → H afterwards in their own ``embedding_hidden_mapping_in`` /
  ``embeddings_project`` dense layer, outside this layer).
- ``"brightmart"``: brightmart/albert_zh: ``word_embeddings_2`` [E, H] (no bias) applied to the
  word vectors *before* type/position, which are [·, H]; LayerNorm at H.
- ``"mobilebert"``: with ``trigram_input`` the vectors of tokens t+1, t, t−1 (zero padded at the
  ends) are concatenated to 3E, then ``embedding_transformation`` maps to H (also when
  E ≠ H without trigram); type/position at H; LayerNorm or NoNorm.

``attend(h)`` multiplies by the transposed word table(s), for output layers tied to the input.
"""
from __future__ import annotations

import keras
from keras import ops

from tfcompact.errors import ConfigError
from tfcompact.layers.core import dense, dropout, truncated_normal
from tfcompact.layers.norms import make_norm

LAYOUTS = ("bert", "brightmart", "mobilebert")


@keras.saving.register_keras_serializable(package="tfcompact")
class Embeddings(keras.layers.Layer):
    """Inputs ``(input_ids, segment_ids)`` int [B, S] → embeddings [B, S, output width]."""

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int | None = None,
        type_vocab_size: int = 2,
        max_position_embeddings: int = 512,
        initializer_range: float = 0.02,
        dropout_rate: float = 0.1,
        layout: str = "bert",
        trigram_input: bool = False,
        normalization_type: str = "layer_norm",
        **kwargs,
    ):
        kwargs.setdefault("name", "embeddings")
        super().__init__(**kwargs)
        if layout not in LAYOUTS:
            raise ConfigError(f"layout: unknown embedding layout {layout!r}; expected one of {LAYOUTS}")
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size if hidden_size is not None else embedding_size
        self.type_vocab_size = type_vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.dropout_rate = dropout_rate
        self.layout = layout
        self.trigram_input = trigram_input
        self.normalization_type = normalization_type
        # The width at which type/position embeddings are added and the norm is taken.
        self.output_width = self.embedding_size if layout == "bert" else self.hidden_size
        self.use_transformation = layout == "mobilebert" and (
            trigram_input or self.embedding_size != self.hidden_size
        )
        if self.use_transformation:
            self.embedding_transformation = dense(
                self.hidden_size, "embedding_transformation", initializer_range
            )
        self.norm = make_norm(normalization_type)
        self.dropout = dropout(dropout_rate)

    def build(self, input_shape=None):
        init = truncated_normal(self.initializer_range)
        self.word_embeddings = self.add_weight(
            name="word_embeddings", shape=(self.vocab_size, self.embedding_size), initializer=init
        )
        if self.layout == "brightmart":
            self.word_embeddings_2 = self.add_weight(
                name="word_embeddings_2", shape=(self.embedding_size, self.hidden_size), initializer=init
            )
        if self.use_transformation:
            width_in = self.embedding_size * (3 if self.trigram_input else 1)
            self.embedding_transformation.build((None, None, width_in))
        self.token_type_embeddings = self.add_weight(
            name="token_type_embeddings", shape=(self.type_vocab_size, self.output_width), initializer=init
        )
        self.position_embeddings = self.add_weight(
            name="position_embeddings",
            shape=(self.max_position_embeddings, self.output_width),
            initializer=init,
        )
        self.norm.build((None, None, self.output_width))

    def word_vectors(self, input_ids):
        """Word vectors after the layout's projection, before type/position: [B, S, output width]."""
        x = ops.take(self.word_embeddings, input_ids, axis=0)
        if self.layout == "brightmart":
            x = ops.matmul(x, self.word_embeddings_2)
        elif self.layout == "mobilebert":
            if self.trigram_input:
                x = trigram_concat(x)
            if self.use_transformation:
                x = self.embedding_transformation(x)
        return x

    def call(self, inputs, training=None):
        input_ids, segment_ids = inputs
        x = self.word_vectors(input_ids)
        x = x + ops.take(self.token_type_embeddings, segment_ids, axis=0)
        seq_len = ops.shape(input_ids)[1]
        positions = ops.slice(self.position_embeddings, (0, 0), (seq_len, self.output_width))
        x = x + ops.expand_dims(ops.cast(positions, x.dtype), 0)
        x = self.norm(x)
        return self.dropout(x, training=training)

    def attend(self, h):
        """Tied output projection: h [.., E] · word_embeddingsᵀ (brightmart: first · word_embeddings_2ᵀ)."""
        if self.layout == "brightmart":
            h = ops.matmul(h, ops.transpose(ops.cast(self.word_embeddings_2, h.dtype)))
        return ops.matmul(h, ops.transpose(ops.cast(self.word_embeddings, h.dtype)))

    def compute_output_shape(self, input_shape):
        ids_shape = input_shape[0]
        return tuple(ids_shape) + (self.output_width,)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_size": self.embedding_size,
            "hidden_size": self.hidden_size,
            "type_vocab_size": self.type_vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
            "initializer_range": self.initializer_range,
            "dropout_rate": self.dropout_rate,
            "layout": self.layout,
            "trigram_input": self.trigram_input,
            "normalization_type": self.normalization_type,
        }


def trigram_concat(x):
    """MobileBERT trigram input: concat(e[t+1], e[t], e[t−1]) along features, zeros past the ends."""
    nxt = ops.pad(x[:, 1:], ((0, 0), (0, 1), (0, 0)))
    prev = ops.pad(x[:, :-1], ((0, 0), (1, 0), (0, 0)))
    return ops.concatenate([nxt, x, prev], axis=-1)
