"""Model configs with the field names of the original JSON files, and the published presets.

One frozen dataclass per architecture. The field names are those of `bert_config.json`,
`albert_config.json` (Google and brightmart), ELECTRA's `BertConfig` and MobileBERT's config,
so a released config file loads unchanged and a written one loads in the original code.
Every value is checked when a config is built: a wrong type, an unknown key or an
inconsistent size raises `ConfigError` naming the field and where the config came from.

The presets are the published Chinese models (their READMEs and papers); each records the
published parameter count and which parts of the model that figure counts, so
`tfcompact presets` can show that the shapes here reproduce it.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import json
import math
import os
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Optional, Union

from tfcompact.errors import ConfigError
from tfcompact.files import atomic_write_text

ARCHITECTURES = ("bert", "albert", "electra", "mobilebert", "tinybert")

# Activation names the layers accept. For BERT/ALBERT/MobileBERT "gelu" is the tanh
# approximation (google-research code); for ELECTRA it is the exact erf form.
HIDDEN_ACTS = ("gelu", "gelu_new", "gelu_approx", "gelu_exact", "relu", "relu6", "tanh",
               "swish", "silu", "linear")
NORMALIZATION_TYPES = ("no_norm", "layer_norm")
LN_TYPES = ("postln", "preln")
ALBERT_LAYOUTS = ("google", "brightmart")

# Keys only HuggingFace's config.json files have: named in the error for such a file.
_HF_ONLY_KEYS = frozenset({"model_type", "architectures", "layer_norm_eps", "pad_token_id",
                           "transformers_version", "torch_dtype", "position_embedding_type"})

# Where the config being built came from; `from_dict` sets it so that checks run in
# `__post_init__` can name the file.
_SOURCE: contextvars.ContextVar[str] = contextvars.ContextVar("config_source", default="<arguments>")


@contextlib.contextmanager
def _source(source: str) -> Iterator[None]:
    token = _SOURCE.set(source)
    try:
        yield
    finally:
        _SOURCE.reset(token)


def _fail(name: str, expected: str, value: Any) -> None:
    raise ConfigError(f"{_SOURCE.get()}: field '{name}': expected {expected}, got {value!r}")


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false",
            list: "a list", dict: "an object"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Check `value` against the annotated type `tp`; ints are accepted for float fields."""
    origin = typing.get_origin(tp)
    if origin is Union:  # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(name, args[0], value)
    if origin is list or tp is list:
        if not isinstance(value, (list, tuple)):
            _fail(name, "a list", value)
        (item_tp,) = typing.get_args(tp) or (Any,)
        return [v if item_tp is Any else _coerce(f"{name}[{i}]", item_tp, v) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            _fail(name, "an object", value)
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            _fail(name, "true/false", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(name, "an integer", value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            _fail(name, "a finite number", value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            _fail(name, "a string", value)
        return value
    return value


def _positive(cfg: Any, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value is not None and value <= 0:
            _fail(name, "a positive integer", value)


def _probability(cfg: Any, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not 0.0 <= value < 1.0:
            _fail(name, "a probability in [0, 1)", value)


def _one_of(cfg: Any, name: str, allowed: tuple[str, ...]) -> None:
    value = getattr(cfg, name)
    if value not in allowed:
        _fail(name, "one of " + ", ".join(allowed), value)


def _divisible(cfg: Any, name: str, divisor_name: str) -> None:
    value, divisor = getattr(cfg, name), getattr(cfg, divisor_name)
    if value % divisor:
        raise ConfigError(f"{_SOURCE.get()}: field '{name}': {name}={value} must be a multiple of "
                          f"{divisor_name}={divisor}")


@dataclass(frozen=True)
class _ConfigBase:
    """Loading, checking and writing shared by every architecture's config."""

    # Keys of released config files that the models do not use; they are kept so that a
    # released file round-trips unchanged, and written only when set.
    RELEASE_ONLY_KEYS: ClassVar[tuple[str, ...]] = (
        "directionality", "pooler_fc_size", "pooler_num_attention_heads", "pooler_num_fc_layers",
        "pooler_size_per_head", "pooler_type")

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, hints[f.name], getattr(self, f.name)))
        self._check()

    def _check(self) -> None:
        _positive(self, "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                  "intermediate_size", "max_position_embeddings", "type_vocab_size")
        _probability(self, "hidden_dropout_prob", "attention_probs_dropout_prob")
        if not self.initializer_range > 0:
            _fail("initializer_range", "a positive number", self.initializer_range)
        _one_of(self, "hidden_act", HIDDEN_ACTS)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict, source: str = "<dict>"):
        """Builds a config from a dict in the original JSON format; rejects unknown keys."""
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a JSON object of config fields, got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                if key in _HF_ONLY_KEYS:
                    hint = " (this looks like a HuggingFace config.json; give the original TF1 config file)"
                raise ConfigError(f"{source}: field '{key}': unknown field for {cls.__name__}{hint}")
        for f in dataclasses.fields(cls):
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in d:
                raise ConfigError(f"{source}: field '{f.name}': missing (required by {cls.__name__})")
        with _source(source):
            return cls(**d)

    @classmethod
    def from_json_file(cls, path: Union[str, os.PathLike]):
        """Reads a config JSON file (e.g. a released `bert_config.json`)."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as e:
            raise ConfigError(f"{path}: cannot read config file: {e.strerror or e}") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
        return cls.from_dict(d, source=path)

    def replace(self, **changes: Any):
        """A copy with some fields changed (checked like a new config)."""
        names = {f.name for f in dataclasses.fields(self)}
        for key in changes:
            if key not in names:
                raise ConfigError(f"<replace>: field '{key}': unknown field for {type(self).__name__}")
        with _source(f"<{type(self).__name__}.replace>"):
            return dataclasses.replace(self, **changes)

    # ---- writing ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Every model field written explicitly; release-only keys only when they are set."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self.RELEASE_ONLY_KEYS and value is None:
                continue
            out[f.name] = list(value) if isinstance(value, list) else (dict(value) if isinstance(value, dict) else value)
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def to_json_file(self, path: Union[str, os.PathLike]) -> None:
        """Writes the config atomically (a temporary sibling, then a rename)."""
        atomic_write_text(path, self.to_json_string())


@dataclass(frozen=True)
class BertConfig(_ConfigBase):
    """google-research/bert `bert_config.json` (also TinyBERT students and RoBERTa-wwm-ext).

    `hidden_act="gelu"` is the tanh approximation, as in google-research/bert.
    `fit_size` is TinyBERT's teacher width for the distillation-only `fit_dense`; `emb_size`,
    `cell`, `pre_trained`, `structure` and `training` are bookkeeping keys TinyBERT's released
    configs carry; all are kept verbatim and written only when set.
    """

    RELEASE_ONLY_KEYS: ClassVar[tuple[str, ...]] = _ConfigBase.RELEASE_ONLY_KEYS + (
        "fit_size", "emb_size", "cell", "pre_trained", "structure", "training")

    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    directionality: Optional[str] = field(default=None, repr=False)
    pooler_fc_size: Optional[int] = field(default=None, repr=False)
    pooler_num_attention_heads: Optional[int] = field(default=None, repr=False)
    pooler_num_fc_layers: Optional[int] = field(default=None, repr=False)
    pooler_size_per_head: Optional[int] = field(default=None, repr=False)
    pooler_type: Optional[str] = field(default=None, repr=False)
    fit_size: Optional[int] = field(default=None, repr=False)
    emb_size: Optional[int] = field(default=None, repr=False)
    cell: Optional[dict] = field(default=None, repr=False)
    pre_trained: Optional[str] = field(default=None, repr=False)
    structure: Optional[list] = field(default=None, repr=False)
    training: Optional[str] = field(default=None, repr=False)

    def _check(self) -> None:
        super()._check()
        _positive(self, "fit_size")
        _divisible(self, "hidden_size", "num_attention_heads")


@dataclass(frozen=True)
class AlbertConfig(_ConfigBase):
    """ALBERT `albert_config.json` (Google) plus brightmart/albert_zh's `ln_type`.

    `layout` is this project's option (not in the original files) choosing the checkpoint
    layout: "google" (`embedding_hidden_mapping_in`, `transformer/group_g/inner_group_k`) or
    "brightmart" (`word_embeddings_2` projection applied before type/position embeddings,
    one `layer_shared` BERT-style layer). brightmart's `ln_type` "preln" (xxlarge) moves the
    LayerNorms before each sub-layer.
    """

    vocab_size: int
    embedding_size: int = 128
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_hidden_groups: int = 1
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    inner_group_num: int = 1
    down_scale_factor: int = 1
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    net_structure_type: int = 0
    gap_size: int = 0
    num_memory_blocks: int = 0
    layers_to_keep: list[int] = field(default_factory=list)
    ln_type: str = "postln"
    layout: str = "google"
    directionality: Optional[str] = field(default=None, repr=False)
    pooler_fc_size: Optional[int] = field(default=None, repr=False)
    pooler_num_attention_heads: Optional[int] = field(default=None, repr=False)
    pooler_num_fc_layers: Optional[int] = field(default=None, repr=False)
    pooler_size_per_head: Optional[int] = field(default=None, repr=False)
    pooler_type: Optional[str] = field(default=None, repr=False)

    def _check(self) -> None:
        super()._check()
        _positive(self, "embedding_size", "num_hidden_groups", "inner_group_num", "down_scale_factor")
        for name in ("net_structure_type", "gap_size", "num_memory_blocks"):
            if getattr(self, name) < 0:
                _fail(name, "a non-negative integer", getattr(self, name))
        _divisible(self, "hidden_size", "num_attention_heads")
        if self.num_hidden_groups > self.num_hidden_layers:
            _fail("num_hidden_groups", f"at most num_hidden_layers={self.num_hidden_layers}",
                  self.num_hidden_groups)
        _divisible(self, "num_hidden_layers", "num_hidden_groups")
        _one_of(self, "ln_type", LN_TYPES)
        _one_of(self, "layout", ALBERT_LAYOUTS)
        if self.layout == "brightmart":
            if self.num_hidden_groups != 1:
                _fail("num_hidden_groups", "1 for layout 'brightmart' (one layer_shared layer)",
                      self.num_hidden_groups)
            if self.inner_group_num != 1:
                _fail("inner_group_num", "1 for layout 'brightmart' (one layer_shared layer)",
                      self.inner_group_num)
        for i, layer in enumerate(self.layers_to_keep):
            if not 0 <= layer < self.num_hidden_layers:
                _fail(f"layers_to_keep[{i}]", f"a layer index in [0, {self.num_hidden_layers})", layer)


@dataclass(frozen=True)
class ElectraConfig(_ConfigBase):
    """ELECTRA's `BertConfig` (with `embedding_size`) plus the generator sizing of
    `configure_pretraining.py`: `generator_hidden_size` and `generator_layers` are fractions
    of the discriminator's width and depth.

    `embedding_size=None` means "same as hidden_size" (ELECTRA's rule) and is resolved at
    construction, so the written config always states it. `hidden_act="gelu"` is exact (erf).
    """

    vocab_size: int
    embedding_size: Optional[int] = None
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    generator_hidden_size: float = 0.25
    generator_layers: float = 1.0
    directionality: Optional[str] = field(default=None, repr=False)
    pooler_fc_size: Optional[int] = field(default=None, repr=False)
    pooler_num_attention_heads: Optional[int] = field(default=None, repr=False)
    pooler_num_fc_layers: Optional[int] = field(default=None, repr=False)
    pooler_size_per_head: Optional[int] = field(default=None, repr=False)
    pooler_type: Optional[str] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.embedding_size is None and isinstance(self.hidden_size, int):
            object.__setattr__(self, "embedding_size", self.hidden_size)
        super().__post_init__()

    def _check(self) -> None:
        super()._check()
        _positive(self, "embedding_size")
        _divisible(self, "hidden_size", "num_attention_heads")
        for name in ("generator_hidden_size", "generator_layers"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                _fail(name, "a fraction of the discriminator in (0, 1]", value)
        g_hidden, g_layers, g_heads = self._generator_sizes()
        if g_hidden < 1:
            _fail("generator_hidden_size", f"a fraction giving at least 1 unit of hidden_size={self.hidden_size}",
                  self.generator_hidden_size)
        if g_layers < 1:
            _fail("generator_layers", f"a fraction giving at least 1 of num_hidden_layers={self.num_hidden_layers}",
                  self.generator_layers)
        if g_hidden % g_heads:
            _fail("generator_hidden_size",
                  f"a generator width divisible by its {g_heads} heads (width//64), not {g_hidden}",
                  self.generator_hidden_size)

    def _generator_sizes(self) -> tuple[int, int, int]:
        hidden = int(round(self.hidden_size * self.generator_hidden_size))
        layers = int(round(self.num_hidden_layers * self.generator_layers))
        return hidden, layers, max(1, hidden // 64)

    def generator_config(self) -> "ElectraConfig":
        """The generator's own config, sized as ELECTRA's `get_generator_config`:
        hidden = round(H·frac), heads = max(1, hidden // 64), FFN = 4·hidden, depth = round(L·frac),
        same embedding_size (the embedding layer is shared with the discriminator)."""
        hidden, layers, heads = self._generator_sizes()
        return dataclasses.replace(self, hidden_size=hidden, num_hidden_layers=layers,
                                   num_attention_heads=heads, intermediate_size=4 * hidden,
                                   generator_hidden_size=1.0, generator_layers=1.0)


@dataclass(frozen=True)
class MobileBertConfig(_ConfigBase):
    """google-research MobileBERT config (`uncased_L-24_H-128_B-512_A-4_F-4_OPT.json` fields).

    `hidden_size` is the width between blocks, `intra_bottleneck_size` the width inside them
    (head size = intra_bottleneck_size / heads). `key_query_shared_bottleneck` defaults to
    True here as in the released student, and is always written (HuggingFace's default differs).
    """

    vocab_size: int
    embedding_size: int = 128
    hidden_size: int = 512
    num_hidden_layers: int = 24
    num_attention_heads: int = 4
    intermediate_size: int = 512
    intra_bottleneck_size: int = 128
    hidden_act: str = "relu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    trigram_input: bool = True
    use_bottleneck: bool = True
    use_bottleneck_attention: bool = False
    key_query_shared_bottleneck: bool = True
    num_feedforward_networks: int = 4
    normalization_type: str = "no_norm"
    classifier_activation: bool = False
    directionality: Optional[str] = field(default=None, repr=False)
    pooler_fc_size: Optional[int] = field(default=None, repr=False)
    pooler_num_attention_heads: Optional[int] = field(default=None, repr=False)
    pooler_num_fc_layers: Optional[int] = field(default=None, repr=False)
    pooler_size_per_head: Optional[int] = field(default=None, repr=False)
    pooler_type: Optional[str] = field(default=None, repr=False)

    def _check(self) -> None:
        super()._check()
        _positive(self, "embedding_size", "intra_bottleneck_size", "num_feedforward_networks")
        _one_of(self, "normalization_type", NORMALIZATION_TYPES)
        if self.use_bottleneck:
            _divisible(self, "intra_bottleneck_size", "num_attention_heads")
        else:
            _divisible(self, "hidden_size", "num_attention_heads")
        if self.embedding_size > self.hidden_size:
            _fail("embedding_size", f"at most hidden_size={self.hidden_size} (the MLM decoder is "
                  "concat(word_embeddings, extra_output_weights[V, H-E]))", self.embedding_size)

    @property
    def true_hidden_size(self) -> int:
        """Width inside a block: intra_bottleneck_size with bottlenecks, else hidden_size."""
        return self.intra_bottleneck_size if self.use_bottleneck else self.hidden_size


Config = Union[BertConfig, AlbertConfig, ElectraConfig, MobileBertConfig]

CONFIG_CLASSES: dict[str, type] = {
    "bert": BertConfig,
    "albert": AlbertConfig,
    "electra": ElectraConfig,
    "mobilebert": MobileBertConfig,
    "tinybert": BertConfig,
}


def _check_arch(arch: str) -> str:
    if arch not in CONFIG_CLASSES:
        close = difflib.get_close_matches(str(arch), ARCHITECTURES, n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown architecture {arch!r}: expected one of {', '.join(ARCHITECTURES)}{hint}")
    return arch


def config_from_dict(arch: str, d: dict, source: str = "<dict>") -> Config:
    """Builds the config of architecture `arch` from a dict in the original JSON format."""
    return CONFIG_CLASSES[_check_arch(arch)].from_dict(d, source=source)


def config_from_json_file(arch: str, path: Union[str, os.PathLike]) -> Config:
    """Reads a released or written config JSON file for architecture `arch`."""
    return CONFIG_CLASSES[_check_arch(arch)].from_json_file(path)


# ---------------------------------------------------------------------------------------------
# Presets: the published Chinese models.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Preset:
    """A published model: its config, the published parameter count and what that count covers.

    `params_scope` is a '+'-joined list of parts (embeddings, encoder, pooler, mlm_head,
    sentence_head, generator, generator_head, discriminator_head) that
    `tfcompact.interop.tf1_names.count_parameters` sums to compare with `published_params`.
    `sentence_head` is "nsp", "sop" or "none": the sentence-level pretraining head this
    model's pretraining checkpoint has. `readme_params` is the model's own README figure when
    that differs from `published_params` (see the description for why).
    """

    name: str
    arch: str
    config: Config
    description: str
    published_params: int
    params_scope: str
    teacher: Optional[str] = None
    sentence_head: str = "nsp"
    readme_params: Optional[int] = None


ZH_VOCAB_SIZE = 21128

_BACKBONE = "embeddings+encoder+pooler"


def _albert(name: str, layers: int, hidden: int, heads: int, published: int, readme: Optional[int],
            note: str, ln_type: str = "postln") -> Preset:
    config = AlbertConfig(vocab_size=ZH_VOCAB_SIZE, embedding_size=128, hidden_size=hidden,
                          num_hidden_layers=layers, num_attention_heads=heads,
                          intermediate_size=4 * hidden, hidden_dropout_prob=0.0,
                          attention_probs_dropout_prob=0.0, ln_type=ln_type, layout="google")
    description = (f"brightmart/albert_zh {name}: L{layers} H{hidden} A{heads} I{4 * hidden} E128, "
                   f"{'pre-LN' if ln_type == 'preln' else 'post-LN'}, dropout 0, vocab 21128. "
                   "Published figure: recipes.md's count (Google layout: embeddings + "
                   "embedding_hidden_mapping_in + shared encoder + pooler). " + note +
                   " brightmart's own checkpoints use layout='brightmart' (word_embeddings_2, "
                   "layer_shared); set it with config.replace(layout='brightmart') to import them.")
    return Preset(f"albert_{name}_zh", "albert", config, description, published, _BACKBONE,
                  None, "sop", readme)


def _electra(name: str, layers: int, hidden: int, embedding: int, published: int,
             readme: Optional[int], note: str) -> Preset:
    config = ElectraConfig(vocab_size=ZH_VOCAB_SIZE, embedding_size=embedding, hidden_size=hidden,
                           num_hidden_layers=layers, num_attention_heads=hidden // 64,
                           intermediate_size=4 * hidden, generator_hidden_size=0.25,
                           generator_layers=1.0)
    gen = config.generator_config()
    description = (f"ymcui/Chinese-ELECTRA {name}: discriminator L{layers} H{hidden} E{embedding} "
                   f"A{hidden // 64}; generator {gen.hidden_size}/{gen.num_attention_heads}/"
                   f"{gen.intermediate_size} (1/4 width, same depth), vocab 21128. Published "
                   "figure counts the discriminator (embeddings, projection, encoder; no heads, "
                   "no generator). " + note)
    return Preset(f"electra_{name}_zh", "electra", config, description, published,
                  "embeddings+encoder", None, "none", readme)


def _mobilebert(name: str, layers: int, hidden: int, bottleneck: int, heads: int, ffns: int,
                bottleneck_attention: bool, published: int, teacher: str, note: str) -> Preset:
    config = MobileBertConfig(vocab_size=ZH_VOCAB_SIZE, embedding_size=hidden, hidden_size=hidden,
                              num_hidden_layers=layers, num_attention_heads=heads,
                              intermediate_size=512, intra_bottleneck_size=bottleneck,
                              hidden_act="relu", hidden_dropout_prob=0.0,
                              attention_probs_dropout_prob=0.1, trigram_input=True,
                              use_bottleneck=True, use_bottleneck_attention=bottleneck_attention,
                              key_query_shared_bottleneck=not bottleneck_attention,
                              num_feedforward_networks=ffns, normalization_type="no_norm",
                              classifier_activation=False)
    attention = "bottleneck attention" if bottleneck_attention else "key/query-shared bottleneck"
    description = (f"ymcui/Chinese-MobileBERT {name}: L{layers} H{hidden} B{bottleneck} I512 "
                   f"A{heads} F{ffns}, {attention}, E=H with trigram input, relu, no_norm, "
                   "no pooler, no NSP, vocab 21128. Published figure (README) counts embeddings + "
                   "encoder + MLM head (transform + output bias; E=H so no extra_output_weights)."
                   + (" " + note if note else ""))
    return Preset(f"mobilebert_{name}_zh", "mobilebert", config, description, published,
                  "embeddings+encoder+mlm_head", teacher, "none", None)


def _bert(name: str, arch: str, layers: int, hidden: int, heads: int, intermediate: int,
          published: int, description: str, teacher: Optional[str] = None,
          fit_size: Optional[int] = None, readme: Optional[int] = None) -> Preset:
    config = BertConfig(vocab_size=ZH_VOCAB_SIZE, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=intermediate,
                        fit_size=fit_size)
    return Preset(name, arch, config, description, published, _BACKBONE, teacher, "nsp", readme)


def _ibbert_teacher() -> Preset:
    config = MobileBertConfig(vocab_size=ZH_VOCAB_SIZE, embedding_size=128, hidden_size=512,
                              num_hidden_layers=24, num_attention_heads=4, intermediate_size=4096,
                              intra_bottleneck_size=1024, hidden_act="gelu",
                              hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                              trigram_input=True, use_bottleneck=True,
                              use_bottleneck_attention=False, key_query_shared_bottleneck=False,
                              num_feedforward_networks=1, normalization_type="layer_norm",
                              classifier_activation=False)
    description = ("MobileBERT's IB-BERT teacher (config uncased_L-24_H-1024_B-512_A-4: in the file "
                   "hidden_size 512, intra_bottleneck_size 1024) with the Chinese vocab 21128: L24 "
                   "A4 I4096 E128 trigram, gelu, LayerNorm, dropout 0.1, Q/K/V from the H-wide "
                   "input. Published figure: the MobileBERT paper's 293M (English vocab; recipes.md "
                   "counts 294.2M for embeddings + encoder with V=30522). With V=21128 the same "
                   "scope counts 293.0M: the vocab difference is 1.2M (0.4 %).")
    return Preset("ibbert_teacher", "mobilebert", config, description, 293_000_000,
                  "embeddings+encoder", None, "nsp", None)


def _build_presets() -> dict[str, Preset]:
    presets = [
        _albert("tiny", 4, 312, 12, 4_080_000, 4_000_000,
                "README says 4M (rounded to one digit; 2 % below the count)."),
        _albert("small", 6, 384, 12, 4_740_000, None, "No README figure."),
        _albert("base", 12, 768, 12, 10_550_000, 12_000_000,
                "README says \"12M\"; no layout of this shape reaches it (brightmart layout "
                "with pooler: 10.88M), so it is taken as a rounding up of 10.55M."),
        _albert("large", 24, 1024, 16, 16_550_000, None, "No README figure."),
        _albert("xlarge", 24, 2048, 32, 57_600_000, None, "No README figure."),
        _albert("xxlarge", 12, 4096, 64, 221_500_000, None,
                "No README figure. Pre-LN (ln_type 'preln').", ln_type="preln"),
        _electra("small", 12, 256, 128, 12_280_000, 12_000_000,
                 "README says 12M (two digits; the count 12.28M is 2.3 % above it), so the "
                 "figure is recipes.md's count."),
        _electra("small_ex", 24, 256, 256, 24_500_000, 25_000_000,
                 "README says 25M (two digits: 24.5M rounded up), so the figure is recipes.md's count."),
        _electra("base", 12, 768, 768, 102_000_000, None, "README figure 102M."),
        _electra("large", 24, 1024, 1024, 324_000_000, None, "README figure 324M."),
        _mobilebert("base_f2", 12, 768, 144, 12, 2, True, 26_300_000, "roberta_wwm_ext_zh", ""),
        _mobilebert("base_f4", 12, 768, 144, 12, 4, False, 32_200_000, "roberta_wwm_ext_zh",
                    "The README lists intermediate size 768 for base-f4; the config says 512, "
                    "which reproduces 32.2M (768 would give 35.8M)."),
        _mobilebert("large_f2", 24, 1024, 128, 16, 2, True, 40_600_000, "roberta_wwm_ext_large_zh", ""),
        _mobilebert("large_f4", 24, 1024, 128, 16, 4, False, 52_900_000, "roberta_wwm_ext_large_zh", ""),
        _ibbert_teacher(),
        _bert("tinybert_4l_312_zh", "tinybert", 4, 312, 12, 1200, 11_400_000,
              "TinyBERT general-distillation student 4L-312-1200, 12 heads (head size 26), vocab "
              "21128, fit_size 768 (the distillation-only fit_dense is not counted). Published "
              "figure: recipes.md's count 11.4M (embeddings + encoder + pooler); the paper's 14.5M "
              "is the English vocab plus fit_dense (14.35M + 0.24M).",
              teacher="bert_base_zh", fit_size=768),
        _bert("tinybert_6l_768_zh", "tinybert", 6, 768, 12, 3072, 59_700_000,
              "TinyBERT general-distillation student 6L-768-3072, 12 heads, vocab 21128. Published "
              "figure: recipes.md's count 59.7M (embeddings + encoder + pooler); the paper's 67M "
              "is the English vocab.",
              teacher="bert_base_zh", fit_size=768),
        _bert("bert_base_zh", "bert", 12, 768, 12, 3072, 102_000_000,
              "Google's BERT-Base, Chinese: L12 H768 A12 I3072, vocab 21128. Google's README says "
              "110M, which is the English vocab's figure (V=30522 counts 109.5M); the published "
              "figure here is 102M, the figure ymcui's README gives for the same shape "
              "(RoBERTa-wwm-ext); embeddings + encoder + pooler.", readme=110_000_000),
        _bert("roberta_wwm_ext_zh", "bert", 12, 768, 12, 3072, 102_000_000,
              "HFL RoBERTa-wwm-ext (ymcui/Chinese-BERT-wwm): BERT-Base shape and names, vocab 21128, "
              "trained with whole-word masking and no NSP. Published figure: ymcui's README 102M "
              "(embeddings + encoder + pooler)."),
        _bert("roberta_wwm_ext_large_zh", "bert", 24, 1024, 16, 4096, 325_000_000,
              "HFL RoBERTa-wwm-ext-large: L24 H1024 A16 I4096, vocab 21128. Published figure: "
              "ymcui's README 325M (embeddings + encoder + pooler)."),
    ]
    return {p.name: p for p in presets}


PRESETS: dict[str, Preset] = _build_presets()


def get_preset(name: str) -> Preset:
    """The preset called `name`; an unknown name raises ConfigError listing close names."""
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(PRESETS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(PRESETS)}"
        raise ConfigError(f"unknown preset {name!r}{hint}") from None


# Test-sized shapes shared by every architecture.
_TINY = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
             vocab_size=300, max_position_embeddings=64)


def tiny_config(arch_or_preset: str, **overrides: Any) -> Config:
    """The config of an architecture or preset shrunk for tests.

    2 layers, hidden 64, 4 heads, intermediate 128, vocab 300, max_position 64; embedding
    size 32 where the embeddings are factorised (E≠H in the preset; ALBERT and ELECTRA by
    default), MobileBERT bottleneck 32, TinyBERT fit_size 64 (a tiny teacher's width). Every
    structural flag (layout, ln_type, attention flags, FFN count, norm type) is kept.
    """
    if arch_or_preset in CONFIG_CLASSES:
        arch = arch_or_preset
        base: Config = {
            "bert": BertConfig(vocab_size=300),
            "tinybert": BertConfig(vocab_size=300, fit_size=64),
            "albert": AlbertConfig(vocab_size=300),
            "electra": ElectraConfig(vocab_size=300, embedding_size=128, hidden_size=256,
                                     num_attention_heads=4, intermediate_size=1024),
            "mobilebert": MobileBertConfig(vocab_size=300),
        }[arch]
    else:
        preset = get_preset(arch_or_preset)
        arch, base = preset.arch, preset.config
    changes: dict[str, Any] = dict(_TINY)
    if hasattr(base, "embedding_size"):
        changes["embedding_size"] = 64 if base.embedding_size == base.hidden_size else 32
    if isinstance(base, MobileBertConfig):
        changes["intra_bottleneck_size"] = 32
    if isinstance(base, BertConfig) and base.fit_size is not None:
        changes["fit_size"] = 64
    changes.update(overrides)
    return base.replace(**changes)
