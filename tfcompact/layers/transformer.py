"""Transformer blocks: BERT post-LN (and pre-LN), ALBERT shared groups, MobileBERT bottleneck.

Each block returns ``(output, attention_logits)`` where the logits are the masked pre-softmax
scores [B, N, S, S]. Sub-layers are built inside name scopes that reproduce the TF1 variable
scopes, so a Keras variable path reads like its TF1 checkpoint name, e.g.
``bert/encoder/layer_0/attention/output/dense/kernel``.
"""
from __future__ import annotations

import contextlib
from typing import Sequence

import keras

from tfcompact.errors import ConfigError
from tfcompact.layers.activations import get_activation
from tfcompact.layers.attention import SelfAttention
from tfcompact.layers.core import dense, dropout
from tfcompact.layers.norms import LayerNorm, make_norm

# Where each sub-layer of a BERT-style block lives, per naming scheme (TF1 scopes, relative
# to the block). "pre_attention_norm" / "pre_ffn_norm" are used only by the pre-LN variant;
# brightmart's modeling_preln.py keeps the same two LayerNorm scopes as its post-LN code.
_SCOPES = {
    "bert": {
        "attention": ("attention",),
        "attention_output": ("attention", "output"),
        "attention_norm": ("attention", "output"),
        "intermediate": ("intermediate",),
        "output": ("output",),
        "output_norm": ("output",),
        "pre_attention_norm": ("attention", "output"),
        "pre_ffn_norm": ("output",),
    },
    "albert": {
        "attention": ("attention_1",),
        "attention_output": ("attention_1", "output"),
        "attention_norm": (),
        "intermediate": ("ffn_1", "intermediate"),
        "output": ("ffn_1", "intermediate", "output"),
        "output_norm": (),
        "pre_attention_norm": (),
        "pre_ffn_norm": (),
    },
}
_NORM_NAMES = {
    "bert": {"first": "LayerNorm", "second": "LayerNorm"},
    "albert": {"first": "LayerNorm", "second": "LayerNorm_1"},
}


def build_in_scope(scope: Sequence[str], layer: keras.layers.Layer, input_shape) -> None:
    """Build ``layer`` inside the nested name scopes ``scope`` (variable paths follow them)."""
    with contextlib.ExitStack() as stack:
        for part in scope:
            stack.enter_context(keras.name_scope(part))
        layer.build(input_shape)


@keras.saving.register_keras_serializable(package="tfcompact")
class TransformerBlock(keras.layers.Layer):
    """BERT encoder layer: self-attention and a feed-forward net, each with residual + LayerNorm.

    ``norm_position="post"`` (BERT, ALBERT): y = LN(x + Drop(Attn(x)));  z = LN(y + Drop(FFN(y))).
    ``norm_position="pre"`` (brightmart ALBERT ``ln_type: preln``):
    y = x + Drop(Attn(LN(x)));  z = y + Drop(FFN(LN(y)))  (no final norm, as in brightmart).
    ``naming`` picks the TF1 scopes: ``"bert"`` (attention/self, intermediate, output) or
    ``"albert"`` (attention_1, ffn_1/intermediate[/output], LayerNorm, LayerNorm_1).
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        hidden_act: str = "gelu",
        exact_gelu: bool = False,
        hidden_dropout: float = 0.1,
        attention_dropout: float = 0.1,
        initializer_range: float = 0.02,
        norm_position: str = "post",
        naming: str = "bert",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if norm_position not in ("post", "pre"):
            raise ConfigError(f"ln_type: unknown norm position {norm_position!r}; expected 'post' or 'pre'")
        if naming not in _SCOPES:
            raise ConfigError(f"naming: unknown scheme {naming!r}; expected one of {tuple(_SCOPES)}")
        if hidden_size % num_heads:
            raise ConfigError(
                f"hidden_size: {hidden_size} is not a multiple of num_attention_heads {num_heads}"
            )
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.exact_gelu = exact_gelu
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.norm_position = norm_position
        self.naming = naming
        self._act = get_activation(hidden_act, exact_gelu)
        self.attention = SelfAttention(
            num_heads, hidden_size // num_heads, attention_dropout, initializer_range, name="self"
        )
        # Attribute order = variable order = the creation order of the original TF1 code.
        names = _NORM_NAMES[naming]
        self.attention_output = dense(hidden_size, "dense", initializer_range)
        self.first_norm = LayerNorm(name=names["first"])
        self.intermediate = dense(intermediate_size, "dense", initializer_range)
        self.output_dense = dense(hidden_size, "dense", initializer_range)
        self.second_norm = LayerNorm(name=names["second"])
        self.dropout = dropout(hidden_dropout)

    def build(self, input_shape):
        scopes = _SCOPES[self.naming]
        h = (None, None, self.hidden_size)
        pre = self.norm_position == "pre"
        build_in_scope(scopes["attention"], self.attention, input_shape)
        build_in_scope(scopes["attention_output"], self.attention_output, h)
        build_in_scope(scopes["pre_attention_norm" if pre else "attention_norm"], self.first_norm, h)
        build_in_scope(scopes["intermediate"], self.intermediate, h)
        build_in_scope(scopes["output"], self.output_dense, (None, None, self.intermediate_size))
        build_in_scope(scopes["pre_ffn_norm" if pre else "output_norm"], self.second_norm, h)

    def call(self, x, input_mask=None, training=None):
        if self.norm_position == "pre":
            context, logits = self.attention(self.first_norm(x), input_mask=input_mask, training=training)
            y = x + self.dropout(self.attention_output(context), training=training)
            ffn = self.output_dense(self._act(self.intermediate(self.second_norm(y))))
            return y + self.dropout(ffn, training=training), logits
        context, logits = self.attention(x, input_mask=input_mask, training=training)
        y = self.first_norm(x + self.dropout(self.attention_output(context), training=training))
        ffn = self.output_dense(self._act(self.intermediate(y)))
        return self.second_norm(y + self.dropout(ffn, training=training)), logits

    def compute_output_shape(self, input_shape):
        b, s = input_shape[0], input_shape[1]
        return (b, s, self.hidden_size), (b, self.num_heads, s, s)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "num_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "hidden_act": self.hidden_act,
            "exact_gelu": self.exact_gelu,
            "hidden_dropout": self.hidden_dropout,
            "attention_dropout": self.attention_dropout,
            "initializer_range": self.initializer_range,
            "norm_position": self.norm_position,
            "naming": self.naming,
        }


@keras.saving.register_keras_serializable(package="tfcompact")
class AlbertGroup(keras.layers.Layer):
    """ALBERT ``group_{g}``: ``inner_group_num`` blocks ``inner_group_{k}`` applied in sequence.

    The same group object is called for every layer assigned to it, which is ALBERT's
    cross-layer parameter sharing. Returns the group output and the last inner block's logits.
    """

    def __init__(self, inner_group_num: int = 1, block_kwargs: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.inner_group_num = inner_group_num
        self.block_kwargs = dict(block_kwargs or {})
        self.block_kwargs.setdefault("naming", "albert")
        # One attribute per block: tf.train.Checkpoint does not follow Keras 3 layer lists.
        for k in range(inner_group_num):
            setattr(self, f"inner_group_{k}", TransformerBlock(name=f"inner_group_{k}", **self.block_kwargs))

    @property
    def blocks(self) -> list:
        """The inner-group blocks, in order."""
        return [getattr(self, f"inner_group_{k}") for k in range(self.inner_group_num)]

    def build(self, input_shape):
        for block in self.blocks:
            block.build(input_shape)

    def call(self, x, input_mask=None, training=None):
        logits = None
        for block in self.blocks:
            x, logits = block(x, input_mask=input_mask, training=training)
        return x, logits

    def compute_output_shape(self, input_shape):
        return self.blocks[-1].compute_output_shape(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "inner_group_num": self.inner_group_num, "block_kwargs": self.block_kwargs}


@keras.saving.register_keras_serializable(package="tfcompact")
class StackedFFN(keras.layers.Layer):
    """One of MobileBERT's extra feed-forward nets ``ffn_layer_{j}``: norm(a + W₂·act(W₁·a)), no dropout."""

    def __init__(
        self,
        width: int,
        intermediate_size: int,
        hidden_act: str = "relu",
        normalization_type: str = "no_norm",
        initializer_range: float = 0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.width = width
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.normalization_type = normalization_type
        self.initializer_range = initializer_range
        self._act = get_activation(hidden_act, exact_gelu=False)
        self.intermediate = dense(intermediate_size, "dense", initializer_range)
        self.output_dense = dense(width, "dense", initializer_range)
        self.norm = make_norm(normalization_type)

    def build(self, input_shape):
        build_in_scope(("intermediate",), self.intermediate, (None, None, self.width))
        build_in_scope(("output",), self.output_dense, (None, None, self.intermediate_size))
        build_in_scope(("output",), self.norm, (None, None, self.width))

    def call(self, a):
        return self.norm(a + self.output_dense(self._act(self.intermediate(a))))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "width": self.width,
            "intermediate_size": self.intermediate_size,
            "hidden_act": self.hidden_act,
            "normalization_type": self.normalization_type,
            "initializer_range": self.initializer_range,
        }


@keras.saving.register_keras_serializable(package="tfcompact")
class MobileBertBlock(keras.layers.Layer):
    """MobileBERT encoder layer (also the IB-BERT teacher, which uses B > H and LayerNorm).

    With ``use_bottleneck`` the block input x (width H) is projected to B
    (``bottleneck/input``: dense + norm); attention runs at width B:
    Q=K=V=bottleneck with ``use_bottleneck_attention``; Q=K=``bottleneck/attention`` projection
    of x and V=x with ``key_query_shared_bottleneck``; otherwise Q=K=V=x.
    a = norm(out(attn) + bottleneck); then F−1 extra FFNs ``ffn_layer_j``
    (a = norm(a + W₂·act(W₁·a))); then the last FFN (``intermediate``/``output``) with norm, and
    ``output/bottleneck`` maps B → H: z = norm(Drop(dense(f)) + x).
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        intra_bottleneck_size: int = 128,
        use_bottleneck: bool = True,
        use_bottleneck_attention: bool = False,
        key_query_shared_bottleneck: bool = True,
        num_feedforward_networks: int = 4,
        normalization_type: str = "no_norm",
        hidden_act: str = "relu",
        hidden_dropout: float = 0.0,
        attention_dropout: float = 0.1,
        initializer_range: float = 0.02,
        mask_style: str = "mobilebert",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.intra_bottleneck_size = intra_bottleneck_size
        self.use_bottleneck = use_bottleneck
        self.use_bottleneck_attention = use_bottleneck and use_bottleneck_attention
        self.key_query_shared_bottleneck = (
            use_bottleneck and key_query_shared_bottleneck and not self.use_bottleneck_attention
        )
        self.num_feedforward_networks = num_feedforward_networks
        self.normalization_type = normalization_type
        self.hidden_act = hidden_act
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.mask_style = mask_style
        # "true hidden size": the width inside the block.
        self.inner_size = intra_bottleneck_size if use_bottleneck else hidden_size
        if self.inner_size % num_heads:
            raise ConfigError(
                f"intra_bottleneck_size: {self.inner_size} is not a multiple of num_attention_heads {num_heads}"
            )
        self._act = get_activation(hidden_act, exact_gelu=False)
        r = initializer_range
        B, I = self.inner_size, intermediate_size
        if use_bottleneck:
            self.bottleneck_input = dense(B, "dense", r)
            self.bottleneck_input_norm = make_norm(normalization_type)
        if self.key_query_shared_bottleneck:
            self.bottleneck_attention = dense(B, "dense", r)
            self.bottleneck_attention_norm = make_norm(normalization_type)
        self.attention = SelfAttention(num_heads, B // num_heads, attention_dropout, r, mask_style=mask_style, name="self")
        self.attention_output = dense(B, "dense", r)
        self.attention_norm = make_norm(normalization_type)
        # One attribute per FFN: tf.train.Checkpoint does not follow Keras 3 layer lists.
        for j in range(num_feedforward_networks - 1):
            setattr(self, f"ffn_layer_{j}", StackedFFN(B, I, hidden_act, normalization_type, r, name=f"ffn_layer_{j}"))
        self.intermediate = dense(I, "dense", r)
        self.output_dense = dense(B, "dense", r)
        self.output_norm = make_norm(normalization_type)
        if use_bottleneck:
            self.output_bottleneck = dense(hidden_size, "dense", r)
            self.output_bottleneck_norm = make_norm(normalization_type)
        self.dropout = dropout(hidden_dropout)

    @property
    def ffn_layers(self) -> list:
        """The F − 1 extra feed-forward nets, in order."""
        return [getattr(self, f"ffn_layer_{j}") for j in range(self.num_feedforward_networks - 1)]

    def build(self, input_shape):
        H, B, I = self.hidden_size, self.inner_size, self.intermediate_size
        h, b, i = (None, None, H), (None, None, B), (None, None, I)
        if self.use_bottleneck:
            build_in_scope(("bottleneck", "input"), self.bottleneck_input, h)
            build_in_scope(("bottleneck", "input"), self.bottleneck_input_norm, b)
        if self.key_query_shared_bottleneck:
            build_in_scope(("bottleneck", "attention"), self.bottleneck_attention, h)
            build_in_scope(("bottleneck", "attention"), self.bottleneck_attention_norm, b)
        with keras.name_scope("attention"):
            if self.use_bottleneck_attention:
                self.attention.build(b, b)
            elif self.key_query_shared_bottleneck:
                self.attention.build(b, h)
            else:
                self.attention.build(h, h)
        build_in_scope(("attention", "output"), self.attention_output, b)
        build_in_scope(("attention", "output"), self.attention_norm, b)
        for ffn in self.ffn_layers:
            ffn.build(b)
        build_in_scope(("intermediate",), self.intermediate, b)
        build_in_scope(("output",), self.output_dense, i)
        build_in_scope(("output",), self.output_norm, b)
        if self.use_bottleneck:
            build_in_scope(("output", "bottleneck"), self.output_bottleneck, b)
            build_in_scope(("output", "bottleneck"), self.output_bottleneck_norm, h)

    def call(self, x, input_mask=None, training=None):
        if self.use_bottleneck:
            layer_input = self.bottleneck_input_norm(self.bottleneck_input(x))
        else:
            layer_input = x
        if self.use_bottleneck_attention:
            qk, v = layer_input, layer_input
        elif self.key_query_shared_bottleneck:
            qk, v = self.bottleneck_attention_norm(self.bottleneck_attention(x)), x
        else:
            qk, v = x, x
        context, logits = self.attention(qk, v, input_mask=input_mask, training=training)
        a = self.attention_output(context)
        if not self.use_bottleneck:
            a = self.dropout(a, training=training)
        a = self.attention_norm(a + layer_input)
        for ffn in self.ffn_layers:
            a = ffn(a)
        f = self.output_dense(self._act(self.intermediate(a)))
        if not self.use_bottleneck:
            return self.output_norm(self.dropout(f, training=training) + a), logits
        f = self.output_norm(f + a)
        z = self.dropout(self.output_bottleneck(f), training=training)
        return self.output_bottleneck_norm(z + x), logits

    def compute_output_shape(self, input_shape):
        b, s = input_shape[0], input_shape[1]
        return (b, s, self.hidden_size), (b, self.num_heads, s, s)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "num_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "intra_bottleneck_size": self.intra_bottleneck_size,
            "use_bottleneck": self.use_bottleneck,
            "use_bottleneck_attention": self.use_bottleneck_attention,
            "key_query_shared_bottleneck": self.key_query_shared_bottleneck,
            "num_feedforward_networks": self.num_feedforward_networks,
            "normalization_type": self.normalization_type,
            "hidden_act": self.hidden_act,
            "hidden_dropout": self.hidden_dropout,
            "attention_dropout": self.attention_dropout,
            "initializer_range": self.initializer_range,
            "mask_style": self.mask_style,
        }
