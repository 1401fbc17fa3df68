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
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Mapping, Optional, Union

from tfcompact import typed
from tfcompact.architectures import ARCHITECTURES, SENTENCE_HEADS, Architecture, get_architecture
from tfcompact.errors import ConfigError
from tfcompact.files import atomic_write_text, read_bytes

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
    typed.fail(_SOURCE.get(), name, expected, value)


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
        _fail(name, f"a multiple of {divisor_name}={divisor}", value)


@dataclass(frozen=True)
class _ConfigBase:
    """The fields every architecture's config has (BERT's names and defaults), and the
    loading, checking and writing they share."""

    # Keys of released config files that the models do not use; they are kept so that a
    # released file round-trips unchanged, and written only when set.
    RELEASE_ONLY_KEYS: ClassVar[tuple[str, ...]] = (
        "directionality", "pooler_fc_size", "pooler_num_attention_heads", "pooler_num_fc_layers",
        "pooler_size_per_head", "pooler_type")
    # Keys in the order the released config files write them (the shared fields are declared
    # here, so a subclass's own fields would otherwise come last); empty: declaration order.
    # Keys not listed follow in declaration order.
    JSON_ORDER: ClassVar[tuple[str, ...]] = ()

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

    def __post_init__(self) -> None:
        typed.check_fields(self, typed.at(_SOURCE.get()))
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
    def from_dict(cls, d: Mapping, source: str = "<dict>"):
        """Builds a config from a dict in the original JSON format; rejects unknown keys."""
        if isinstance(d, Mapping):
            names = {f.name for f in dataclasses.fields(cls)}
            for key in d:
                if key in _HF_ONLY_KEYS and key not in names:
                    raise ConfigError(f"{source}: unknown key '{key}': this looks like a HuggingFace "
                                      "config.json; give the original TF1 config file")
        with _source(source):
            return typed.load(cls, d, typed.at(source))

    @classmethod
    def from_json_file(cls, path: Union[str, os.PathLike]):
        """Reads a config JSON file (e.g. a released `bert_config.json`)."""
        path = os.fspath(path)
        try:
            text = read_bytes(path).decode("utf-8")
        except OSError as e:
            raise ConfigError(f"{path}: cannot read config file: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); expected a config "
                              f"JSON file") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
        return cls.from_dict(d, source=path)

    def replace(self, **changes: Any):
        """A copy with some fields changed (checked like a new config)."""
        current = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        source = f"<{type(self).__name__}.replace>"
        with _source(source):
            return typed.load(type(self), {**current, **changes}, typed.at(source))

    # ---- writing ------------------------------------------------------------------------
    def key_order(self) -> list[str]:
        """Field names in the order of the released config files (`JSON_ORDER`)."""
        names = [f.name for f in dataclasses.fields(self)]
        if not self.JSON_ORDER:
            return names
        return list(self.JSON_ORDER) + [n for n in names if n not in self.JSON_ORDER]

    def to_dict(self) -> dict:
        """Every model field written explicitly, release-only keys only when they are set;
        keys in the released files' order (`key_order`), so a written file diffs cleanly
        against a released one and exports are byte-stable."""
        out = {}
        for name in self.key_order():
            value = getattr(self, name)
            if name in self.RELEASE_ONLY_KEYS and value is None:
                continue
            out[name] = list(value) if isinstance(value, list) else (dict(value) if isinstance(value, dict) else value)
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
    `fit_size` is TinyBERT's teacher width for its distillation projection `fit_dense` (here a
    part of the distillation run, not of the model: `distillation.matches`); `emb_size`,
    `cell`, `pre_trained`, `structure` and `training` are bookkeeping keys TinyBERT's released
    configs carry; all are kept verbatim and written only when set.
    """

    RELEASE_ONLY_KEYS: ClassVar[tuple[str, ...]] = _ConfigBase.RELEASE_ONLY_KEYS + (
        "fit_size", "emb_size", "cell", "pre_trained", "structure", "training")

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

    JSON_ORDER: ClassVar[tuple[str, ...]] = (
        "vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
        "num_attention_heads", "intermediate_size", "inner_group_num", "down_scale_factor",
        "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
        "max_position_embeddings", "type_vocab_size", "initializer_range",
        "net_structure_type", "gap_size", "num_memory_blocks", "layers_to_keep", "ln_type",
        "layout")

    embedding_size: int = 128
    num_hidden_groups: int = 1
    inner_group_num: int = 1
    down_scale_factor: int = 1
    net_structure_type: int = 0
    gap_size: int = 0
    num_memory_blocks: int = 0
    layers_to_keep: list[int] = field(default_factory=list)
    ln_type: str = "postln"
    layout: str = "google"

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

    JSON_ORDER: ClassVar[tuple[str, ...]] = (
        "vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "intermediate_size", "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
        "max_position_embeddings", "type_vocab_size", "initializer_range",
        "generator_hidden_size", "generator_layers")

    embedding_size: Optional[int] = None
    generator_hidden_size: float = 0.25
    generator_layers: float = 1.0

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

    JSON_ORDER: ClassVar[tuple[str, ...]] = (
        "vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "intermediate_size", "intra_bottleneck_size", "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
        "max_position_embeddings", "type_vocab_size", "initializer_range",
        "trigram_input", "use_bottleneck", "use_bottleneck_attention",
        "key_query_shared_bottleneck", "num_feedforward_networks", "normalization_type",
        "classifier_activation")

    hidden_size: int = 512  # MobileBERT's own defaults for the shared fields
    num_hidden_layers: int = 24
    num_attention_heads: int = 4
    intermediate_size: int = 512
    hidden_act: str = "relu"
    hidden_dropout_prob: float = 0.0
    embedding_size: int = 128
    intra_bottleneck_size: int = 128
    trigram_input: bool = True
    use_bottleneck: bool = True
    use_bottleneck_attention: bool = False
    key_query_shared_bottleneck: bool = True
    num_feedforward_networks: int = 4
    normalization_type: str = "no_norm"
    classifier_activation: bool = False

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


def config_from_dict(arch: str, d: dict, source: str = "<dict>") -> Config:
    """Builds the config of architecture `arch` from a dict in the original JSON format."""
    return get_architecture(arch).config_class.from_dict(d, source=source)


def config_from_json_file(arch: str, path: Union[str, os.PathLike]) -> Config:
    """Reads a released or written config JSON file for architecture `arch`."""
    return get_architecture(arch).config_class.from_json_file(path)


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
    model's pretraining checkpoint has. `source` names the paper, README or original config
    the shape and the figure come from; `readme_params` is the model's own README figure when
    that differs from `published_params` (`note` says why).
    """

    name: str
    arch: str
    config: Config
    published_params: int
    params_scope: str
    sentence_head: str
    source: str
    note: str = ""
    teacher: Optional[str] = None
    readme_params: Optional[int] = None


ZH_VOCAB_SIZE = 21128

_BACKBONE = "embeddings+encoder+pooler"
# brightmart/albert_zh's shapes in Google's layout (brightmart's own checkpoints need
# `config.replace(layout="brightmart")`: word_embeddings_2 and layer_shared).
_ALBERT_ZH = dict(vocab_size=ZH_VOCAB_SIZE, embedding_size=128, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0, layout="google")
_ALBERT_SCOPE = dict(arch="albert", params_scope=_BACKBONE, sentence_head="sop")
# Chinese-ELECTRA: heads = hidden / 64, FFN = 4 hidden, generator 1/4 wide and as deep.
_ELECTRA_ZH = dict(vocab_size=ZH_VOCAB_SIZE, generator_hidden_size=0.25, generator_layers=1.0)
_ELECTRA_SCOPE = dict(arch="electra", params_scope="embeddings+encoder", sentence_head="none",
                      source="ymcui/Chinese-ELECTRA README; generator sizing from the ELECTRA paper")
# Chinese-MobileBERT: E = H with trigram input, relu, NoNorm, no pooler and no NSP.
_MOBILEBERT_ZH = dict(vocab_size=ZH_VOCAB_SIZE, intermediate_size=512, hidden_act="relu",
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.1, trigram_input=True,
                      use_bottleneck=True, normalization_type="no_norm", classifier_activation=False)
_MOBILEBERT_SCOPE = dict(arch="mobilebert", params_scope="embeddings+encoder+mlm_head",
                         sentence_head="none",
                         source="ymcui/Chinese-MobileBERT README and its released configs")
_MOBILEBERT_NOTE = ("The README figure counts embeddings + encoder + MLM head (transform + "
                    "output bias; E = H, so no extra_output_weights).")
_BERT_SCOPE = dict(params_scope=_BACKBONE, sentence_head="nsp")
_TINYBERT = dict(arch="tinybert", teacher="bert_base_zh",
                 source="TinyBERT paper (Jiao et al.) and huawei-noah/Pretrained-Language-Model "
                        "General_TinyBERT configs", **_BERT_SCOPE)
_COUNTED = "the figure is the count of this shape"

_PRESET_RECORDS: list[dict] = [
    dict(name="albert_tiny_zh", **_ALBERT_SCOPE, published_params=4_080_000,
         readme_params=4_000_000, source="brightmart/albert_zh README, albert_config_tiny.json",
         config=dict(_ALBERT_ZH, num_hidden_layers=4, hidden_size=312, num_attention_heads=12,
                     intermediate_size=1248),
         note=f"README says 4M (rounded to one digit; 2 % below the count), so {_COUNTED}."),
    dict(name="albert_small_zh", **_ALBERT_SCOPE, published_params=4_740_000,
         source="brightmart/albert_zh README, albert_config_small_google.json",
         config=dict(_ALBERT_ZH, num_hidden_layers=6, hidden_size=384, num_attention_heads=12,
                     intermediate_size=1536),
         note=f"No README figure: {_COUNTED}."),
    dict(name="albert_base_zh", **_ALBERT_SCOPE, published_params=10_550_000,
         readme_params=12_000_000, source="brightmart/albert_zh README, albert_config_base.json",
         config=dict(_ALBERT_ZH, num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                     intermediate_size=3072),
         note="README says 12M; no layout of this shape reaches it (brightmart layout with "
              "pooler: 10.88M), so it is taken as a rounding up of the count, 10.55M."),
    dict(name="albert_large_zh", **_ALBERT_SCOPE, published_params=16_550_000,
         source="brightmart/albert_zh README, albert_config_large.json",
         config=dict(_ALBERT_ZH, num_hidden_layers=24, hidden_size=1024, num_attention_heads=16,
                     intermediate_size=4096),
         note=f"No README figure: {_COUNTED}."),
    dict(name="albert_xlarge_zh", **_ALBERT_SCOPE, published_params=57_600_000,
         source="brightmart/albert_zh README, albert_config_xlarge.json",
         config=dict(_ALBERT_ZH, num_hidden_layers=24, hidden_size=2048, num_attention_heads=32,
                     intermediate_size=8192),
         note=f"No README figure: {_COUNTED}."),
    dict(name="albert_xxlarge_zh", **_ALBERT_SCOPE, published_params=221_500_000,
         source="brightmart/albert_zh README, albert_config_xxlarge.json",
         config=dict(_ALBERT_ZH, num_hidden_layers=12, hidden_size=4096, num_attention_heads=64,
                     intermediate_size=16384, ln_type="preln"),
         note=f"Pre-LN (ln_type 'preln'). No README figure: {_COUNTED}."),
    dict(name="electra_small_zh", **_ELECTRA_SCOPE, published_params=12_280_000,
         readme_params=12_000_000,
         config=dict(_ELECTRA_ZH, num_hidden_layers=12, hidden_size=256, embedding_size=128,
                     num_attention_heads=4, intermediate_size=1024),
         note=f"README says 12M (two digits; the count, 12.28M, is 2.3 % above it), so {_COUNTED}."),
    dict(name="electra_small_ex_zh", **_ELECTRA_SCOPE, published_params=24_500_000,
         readme_params=25_000_000,
         config=dict(_ELECTRA_ZH, num_hidden_layers=24, hidden_size=256, embedding_size=256,
                     num_attention_heads=4, intermediate_size=1024),
         note=f"README says 25M (two digits: 24.5M rounded up), so {_COUNTED}."),
    dict(name="electra_base_zh", **_ELECTRA_SCOPE, published_params=102_000_000,
         config=dict(_ELECTRA_ZH, num_hidden_layers=12, hidden_size=768, embedding_size=768,
                     num_attention_heads=12, intermediate_size=3072),
         note="README figure 102M (the discriminator: no heads, no generator)."),
    dict(name="electra_large_zh", **_ELECTRA_SCOPE, published_params=324_000_000,
         config=dict(_ELECTRA_ZH, num_hidden_layers=24, hidden_size=1024, embedding_size=1024,
                     num_attention_heads=16, intermediate_size=4096),
         note="README figure 324M (the discriminator: no heads, no generator)."),
    dict(name="mobilebert_base_f2_zh", **_MOBILEBERT_SCOPE, published_params=26_300_000,
         teacher="roberta_wwm_ext_zh", note=_MOBILEBERT_NOTE,
         config=dict(_MOBILEBERT_ZH, num_hidden_layers=12, hidden_size=768, embedding_size=768,
                     intra_bottleneck_size=144, num_attention_heads=12, num_feedforward_networks=2,
                     use_bottleneck_attention=True, key_query_shared_bottleneck=False)),
    dict(name="mobilebert_base_f4_zh", **_MOBILEBERT_SCOPE, published_params=32_200_000,
         teacher="roberta_wwm_ext_zh",
         config=dict(_MOBILEBERT_ZH, num_hidden_layers=12, hidden_size=768, embedding_size=768,
                     intra_bottleneck_size=144, num_attention_heads=12, num_feedforward_networks=4,
                     use_bottleneck_attention=False, key_query_shared_bottleneck=True),
         note=_MOBILEBERT_NOTE + " The README lists intermediate size 768 for base-f4; the config "
              "says 512, which reproduces 32.2M (768 would give 35.8M)."),
    dict(name="mobilebert_large_f2_zh", **_MOBILEBERT_SCOPE, published_params=40_600_000,
         teacher="roberta_wwm_ext_large_zh", note=_MOBILEBERT_NOTE,
         config=dict(_MOBILEBERT_ZH, num_hidden_layers=24, hidden_size=1024, embedding_size=1024,
                     intra_bottleneck_size=128, num_attention_heads=16, num_feedforward_networks=2,
                     use_bottleneck_attention=True, key_query_shared_bottleneck=False)),
    dict(name="mobilebert_large_f4_zh", **_MOBILEBERT_SCOPE, published_params=52_900_000,
         teacher="roberta_wwm_ext_large_zh", note=_MOBILEBERT_NOTE,
         config=dict(_MOBILEBERT_ZH, num_hidden_layers=24, hidden_size=1024, embedding_size=1024,
                     intra_bottleneck_size=128, num_attention_heads=16, num_feedforward_networks=4,
                     use_bottleneck_attention=False, key_query_shared_bottleneck=True)),
    dict(name="ibbert_teacher", arch="mobilebert", params_scope="embeddings+encoder",
         sentence_head="nsp", published_params=293_000_000,
         source="MobileBERT paper (Sun et al.), IB-BERT teacher config "
                "uncased_L-24_H-1024_B-512_A-4.json",
         config=dict(vocab_size=ZH_VOCAB_SIZE, embedding_size=128, hidden_size=512,
                     num_hidden_layers=24, num_attention_heads=4, intermediate_size=4096,
                     intra_bottleneck_size=1024, hidden_act="gelu", hidden_dropout_prob=0.1,
                     attention_probs_dropout_prob=0.1, trigram_input=True, use_bottleneck=True,
                     use_bottleneck_attention=False, key_query_shared_bottleneck=False,
                     num_feedforward_networks=1, normalization_type="layer_norm",
                     classifier_activation=False),
         note="In the file hidden_size is 512 and intra_bottleneck_size 1024; Q/K/V read the "
              "H-wide input. The paper's 293M is for the English vocab (embeddings + encoder "
              "count 294.2M with V=30522); with V=21128 the same scope counts 293.0M (0.4 % "
              "apart)."),
    dict(name="tinybert_4l_312_zh", **_TINYBERT, published_params=11_400_000,
         config=dict(vocab_size=ZH_VOCAB_SIZE, num_hidden_layers=4, hidden_size=312,
                     num_attention_heads=12, intermediate_size=1200, fit_size=768),
         note=f"General-distillation student, head size 26; fit_dense (distillation only) is not "
              f"counted; {_COUNTED}. The paper's 14.5M is the English vocab plus fit_dense "
              "(14.35M + 0.24M)."),
    dict(name="tinybert_6l_768_zh", **_TINYBERT, published_params=59_700_000,
         config=dict(vocab_size=ZH_VOCAB_SIZE, num_hidden_layers=6, hidden_size=768,
                     num_attention_heads=12, intermediate_size=3072, fit_size=768),
         note=f"General-distillation student; {_COUNTED}. The paper's 67M is the English vocab."),
    dict(name="bert_base_zh", arch="bert", **_BERT_SCOPE, published_params=102_000_000,
         readme_params=110_000_000,
         source="google-research/bert README (BERT-Base, Chinese), chinese_L-12_H-768_A-12",
         config=dict(vocab_size=ZH_VOCAB_SIZE, num_hidden_layers=12, hidden_size=768,
                     num_attention_heads=12, intermediate_size=3072),
         note="Google's README says 110M, the English vocab's figure (V=30522 counts 109.5M); "
              "102M is the figure ymcui/Chinese-BERT-wwm's README gives for this shape."),
    dict(name="roberta_wwm_ext_zh", arch="bert", **_BERT_SCOPE, published_params=102_000_000,
         source="ymcui/Chinese-BERT-wwm README (RoBERTa-wwm-ext)",
         config=dict(vocab_size=ZH_VOCAB_SIZE, num_hidden_layers=12, hidden_size=768,
                     num_attention_heads=12, intermediate_size=3072),
         note="BERT-Base shape and names, trained with whole-word masking and no NSP."),
    dict(name="roberta_wwm_ext_large_zh", arch="bert", **_BERT_SCOPE,
         published_params=325_000_000,
         source="ymcui/Chinese-BERT-wwm README (RoBERTa-wwm-ext-large)",
         config=dict(vocab_size=ZH_VOCAB_SIZE, num_hidden_layers=24, hidden_size=1024,
                     num_attention_heads=16, intermediate_size=4096),
         note="BERT-Large shape and names, trained with whole-word masking and no NSP."),
]


def _preset(record: Mapping[str, Any]) -> Preset:
    config_class = get_architecture(record["arch"]).config_class
    with _source(f"preset {record['name']}"):
        return Preset(**{**record, "config": config_class(**record["config"])})


PRESETS: dict[str, Preset] = {r["name"]: _preset(r) for r in _PRESET_RECORDS}


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


# ---------------------------------------------------------------------------------------------
# What to build: an architecture or preset, a config and a sentence head, checked together.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResolvedModel:
    """An architecture, its config, the preset they came from (None: not a preset, or a
    preset changed by overrides) and the sentence-level pretraining head."""

    arch: str
    config: Config
    preset: Optional[Preset]
    sentence_head: str

    @property
    def architecture(self) -> Architecture:
        return ARCHITECTURES[self.arch]

    @property
    def preset_name(self) -> Optional[str]:
        return self.preset.name if self.preset is not None else None

    def with_overrides(self, overrides: Mapping[str, Any], where: str = "overrides") -> "ResolvedModel":
        """The config with `overrides` (field -> value) applied and checked; a preset whose
        config changed is no longer that preset. Errors start with `where`."""
        if not overrides:
            return self
        names = {f.name for f in dataclasses.fields(self.config)}
        for key in overrides:
            if key not in names:
                raise ConfigError(f"{where}.{key}: not a field of {type(self.config).__name__}")
        try:
            config = self.config.replace(**overrides)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        return dataclasses.replace(self, config=config, preset=None)


def _preset_or_fail(name: Any, fail) -> Preset:
    if isinstance(name, Preset) or name in PRESETS:
        return get_preset(name)
    known = list(ARCHITECTURES) + list(PRESETS)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; presets: {', '.join(PRESETS)}"
    fail(f"unknown preset {name!r} and no such architecture ({', '.join(ARCHITECTURES)}){hint}")


def resolve_model(arch_or_preset: Union[str, Preset], config: Union[Config, str, os.PathLike, None] = None,
                  sentence_head: Optional[str] = None, *, where: str = "") -> ResolvedModel:
    """What to build from an architecture or preset name, an optional config and head.

    An architecture needs `config`; a preset brings its own (`config` replaces it). `config`
    may be a config object or the path of a config JSON file in the original format. The
    sentence head defaults to the preset's, else the architecture's. Every error is a
    ConfigError starting with `where` (e.g. "exp.yaml: model") when given.
    """
    def fail(message: str) -> None:
        raise ConfigError(f"{where}: {message}" if where else message)

    preset = None
    if isinstance(arch_or_preset, str) and arch_or_preset in ARCHITECTURES:
        arch = arch_or_preset
        if config is None:
            names = ", ".join(n for n, p in PRESETS.items() if p.arch == arch)
            fail(f"architecture {arch!r} needs a config, or pass a preset name ({names})")
    else:
        preset = _preset_or_fail(arch_or_preset, fail)
        arch, config = preset.arch, preset.config if config is None else config
    record = ARCHITECTURES[arch]
    if isinstance(config, (str, os.PathLike)):
        config = config_from_json_file(arch, config)
    if not isinstance(config, record.config_class):
        fail(f"architecture {arch!r} needs a {record.config_class.__name__}, got {type(config).__name__}")
    head = sentence_head or (preset.sentence_head if preset is not None else record.sentence_head)
    if head not in SENTENCE_HEADS:
        fail(f"sentence_head: expected one of {', '.join(SENTENCE_HEADS)}, got {head!r}")
    if head != "none" and not record.has_sentence_head:
        fail(f"sentence_head: {record.title} has no sentence-level head; use 'none'")
    return ResolvedModel(arch, config, preset, head)


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
    if arch_or_preset in ARCHITECTURES:
        record = ARCHITECTURES[arch_or_preset]
        base, arch_changes = record.config_class(vocab_size=300), record.tiny
    else:
        base, arch_changes = get_preset(arch_or_preset).config, {}
    changes: dict[str, Any] = dict(_TINY)
    if hasattr(base, "embedding_size"):
        changes["embedding_size"] = 64 if base.embedding_size == base.hidden_size else 32
    if isinstance(base, MobileBertConfig):
        changes["intra_bottleneck_size"] = 32
    if isinstance(base, BertConfig) and base.fit_size is not None:
        changes["fit_size"] = 64
    changes.update(arch_changes)
    changes.update(overrides)
    return base.replace(**changes)
