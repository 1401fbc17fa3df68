"""HuggingFace `transformers` names as data: config.json fields and state-dict keys per architecture.

A HuggingFace model directory is `config.json` + `model.safetensors` (PyTorch layout: a Linear's
`weight` is [out, in], a TF1 `kernel` is [in, out]). Both directions go through the TF1 names of
`tf1_names` (which the Keras variables already map onto, see `name_maps`), so one table per
architecture says everything:

    TF1 name  <->  HF key (+ whether the array is transposed)

The keys are those `transformers`' `BertForPreTraining`, `AlbertForPreTraining`,
`ElectraForPreTraining` / `ElectraForMaskedLM` and `MobileBertForPreTraining` hold (checked
against the library in tests/interop/test_hf_export.py). Tied copies (`*.decoder.weight`, the
decoder bias, `generator_lm_head.weight`) are not stored, as `save_pretrained` does not store
them. A model without a sentence head exports as `*ForMaskedLM`, whose backbone has no pooler:
such a model's pooler never received a gradient, so it is left out rather than shipped as if it
were trained.

No import of torch or transformers here: exporting needs neither.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from tfcompact.architectures import ARCHITECTURES
from tfcompact.errors import ConfigError
from tfcompact.interop.tf1_names import tf1_variable_shapes
from tfcompact.layers.norms import LAYER_NORM_EPSILON

# HF model_type -> our arch (TinyBERT is a BERT there, so only the arch named like its type).
ARCH_OF_MODEL_TYPE = {a.hf_model_type: name for name, a in ARCHITECTURES.items() if name == a.hf_model_type}
LAYER_NORM_EPS = LAYER_NORM_EPSILON  # our layers' (BERT's), written and required
# Keys some HF checkpoints carry that are buffers, not weights.
IGNORED_KEY_SUFFIXES = ("position_ids", "embeddings.token_type_ids")


@dataclass(frozen=True)
class HfEntry:
    """One weight: its TF1 name, its HF state-dict key, and whether HF stores it transposed."""
    tf1_name: str
    hf_key: str
    transpose: bool
    tf1_shape: tuple[int, ...]


def hf_stem(arch: str) -> str:
    """HF's class-name stem of `arch` (`Bert`, `Albert`, `Electra`, `MobileBert`)."""
    return ARCHITECTURES[arch].hf_pretraining[:-len("ForPreTraining")]


def base_prefix(arch: str) -> str:
    """The attribute holding the backbone in HF's task models (`bert`, `albert`, ...)."""
    return ARCHITECTURES[arch].hf_model_type


# ----------------------------------------------------------------------------------------------
# config.json
# ----------------------------------------------------------------------------------------------

def hf_activation(arch: str, name: str) -> str:
    """Our `hidden_act` as HF's: "gelu" is the tanh form in BERT/ALBERT/MobileBERT (HF
    `gelu_new`) and the erf form in ELECTRA (HF `gelu`)."""
    if name == "gelu":
        return ARCHITECTURES[arch].hf_gelu
    if name in ("gelu_new", "gelu_tanh", "gelu_approx"):
        return "gelu_new"
    if name == "gelu_exact":
        return "gelu"
    return name


def our_activation(arch: str, name: str, where: str) -> str:
    """HF's `hidden_act` as ours (the inverse of `hf_activation`)."""
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return "gelu" if ARCHITECTURES[arch].hf_gelu == "gelu_new" else "gelu_new"
    if name == "gelu":
        return "gelu" if ARCHITECTURES[arch].hf_gelu == "gelu" else "gelu_exact"
    if name in ("relu", "tanh", "sigmoid", "linear", "swish", "silu"):
        return name
    raise ConfigError(f"{where}: field 'hidden_act': {name!r} has no tfcompact equivalent; expected "
                      "gelu, gelu_new, gelu_pytorch_tanh, relu, tanh, sigmoid, linear, swish or silu")


def _check_representable(arch: str, config) -> None:
    """Flags of ours that HF's classes cannot express are refused, not dropped."""
    if arch == "albert":
        defaults = {"layout": "google", "ln_type": "postln", "down_scale_factor": 1,
                    "net_structure_type": 0, "gap_size": 0, "num_memory_blocks": 0, "layers_to_keep": []}
        for key, value in defaults.items():
            if getattr(config, key) != value:
                raise ConfigError(f"{key}={getattr(config, key)!r}: HuggingFace's ALBERT has no such "
                                  f"variant (only {key}={value!r}); export it as tf1 or savedmodel")


def architectures_entry(arch: str, sentence_head: str, component: str) -> str:
    """The `architectures` class: *ForPreTraining with a sentence head (and ELECTRA's
    discriminator), *ForMaskedLM otherwise (and ELECTRA's generator)."""
    stem = hf_stem(arch)
    if arch == "electra":
        return f"{stem}ForMaskedLM" if component == "generator" else f"{stem}ForPreTraining"
    return f"{stem}ForPreTraining" if sentence_head != "none" else f"{stem}ForMaskedLM"


def hf_config_dict(arch: str, config, *, sentence_head: str = "nsp", component: str = "discriminator",
                   do_lower_case: bool = True) -> dict:
    """config.json for `transformers`, every flag written (its defaults differ from the
    originals in places, e.g. MobileBERT's key_query_shared_bottleneck, the GELU form)."""
    _check_representable(arch, config)
    d = config.to_dict()
    if arch == "electra" and component == "generator":
        d.update({k: v for k, v in config.generator_config().to_dict().items()
                  if k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")})
    out = {"architectures": [architectures_entry(arch, sentence_head, component)],
           "model_type": ARCHITECTURES[arch].hf_model_type}
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "hidden_dropout_prob", "attention_probs_dropout_prob",
                "max_position_embeddings", "type_vocab_size", "initializer_range"):
        out[key] = d[key]
    out.update(hidden_act=hf_activation(arch, d["hidden_act"]), layer_norm_eps=LAYER_NORM_EPS,
               pad_token_id=0, position_embedding_type="absolute",
               # Chinese ALBERT, ELECTRA and MobileBERT models all use BERT's WordPiece tokenizer.
               tokenizer_class="BertTokenizer", do_lower_case=do_lower_case)
    if arch == "albert":
        out.update(embedding_size=d["embedding_size"], num_hidden_groups=d["num_hidden_groups"],
                   inner_group_num=d["inner_group_num"], classifier_dropout_prob=0.1)
    elif arch == "electra":
        out["embedding_size"] = d["embedding_size"]
    elif arch == "mobilebert":
        out.update({k: d[k] for k in ("embedding_size", "trigram_input", "use_bottleneck",
                                      "intra_bottleneck_size", "use_bottleneck_attention",
                                      "key_query_shared_bottleneck", "num_feedforward_networks",
                                      "normalization_type", "classifier_activation")})
        out["true_hidden_size"] = d["intra_bottleneck_size"] if d["use_bottleneck"] else d["hidden_size"]
        # bottleneck attention wins over the shared Q/K bottleneck (as in the original); with both
        # flags on HF would create shared-bottleneck weights it never uses
        out["key_query_shared_bottleneck"] = d["key_query_shared_bottleneck"] and not d["use_bottleneck_attention"]
    return out


# ----------------------------------------------------------------------------------------------
# state-dict keys
# ----------------------------------------------------------------------------------------------

# ALBERT's shared layer: TF1 scope under inner_group_k -> HF module under albert_layers.k.
_ALBERT_LAYER = (("attention_1/self/", "attention."), ("attention_1/output/dense", "attention.dense"),
                 ("LayerNorm_1/", "full_layer_layer_norm."), ("LayerNorm/", "attention.LayerNorm."),
                 ("ffn_1/intermediate/output/dense", "ffn_output"), ("ffn_1/intermediate/dense", "ffn"))


def _leaf(name: str) -> tuple[str, bool]:
    """TF1 leaf -> HF leaf and transpose flag (kernels are [in, out] in TF1, [out, in] in HF)."""
    scope, _, leaf = name.rpartition("/")
    if leaf == "kernel":
        return f"{scope}/weight", True
    if leaf == "gamma":
        return f"{scope}/weight", False
    if leaf == "beta":
        return f"{scope}/bias", False
    if leaf in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        return f"{name}/weight", False
    return name, False


def _albert_scope(name: str) -> str:
    m = re.match(r"bert/encoder/transformer/group_(\d+)/inner_group_(\d+)/(.*)$", name)
    if m:
        rest = m.group(3)
        for old, new in _ALBERT_LAYER:
            if rest.startswith(old):
                rest = new + rest[len(old):]
                break
        return f"albert/encoder/albert_layer_groups/{m.group(1)}/albert_layers/{m.group(2)}/{rest}"
    name = name.replace("bert/pooler/dense", "albert/pooler")
    name = name.replace("cls/predictions/transform/", "predictions/")
    name = name.replace("cls/seq_relationship/", "sop_classifier/classifier/")
    return re.sub(r"^bert/", "albert/", name)


def _scope(arch: str, name: str) -> str:
    """Architecture-specific scope renames (before the generic `/` -> `.`)."""
    if arch == "albert":
        name = _albert_scope(name)
    elif arch == "mobilebert":
        name = re.sub(r"^bert/", "mobilebert/", name).replace("FakeLayerNorm", "LayerNorm")
        name = re.sub(r"/ffn_layer_(\d+)/", r"/ffn/\1/", name)
    elif arch == "electra":
        name = re.sub(r"^generator/", "electra/", name)
        name = name.replace("discriminator_predictions/dense_1/", "discriminator_predictions/dense_prediction/")
    else:
        name = re.sub(r"^bert/", "bert/", name)
    return re.sub(r"/layer_(\d+)/", r"/layer/\1/", name)


def hf_key(arch: str, tf1_name: str) -> tuple[str, bool]:
    """The HF state-dict key of one TF1 variable, and whether its array is transposed."""
    special = {
        "cls/predictions/output_bias": "predictions/bias" if arch == "albert" else "cls/predictions/bias",
        "cls/predictions/extra_output_weights": "cls/predictions/dense/weight",
        "cls/seq_relationship/output_weights": ("sop_classifier/classifier/weight" if arch == "albert"
                                                else "cls/seq_relationship/weight"),
        "cls/seq_relationship/output_bias": ("sop_classifier/classifier/bias" if arch == "albert"
                                             else "cls/seq_relationship/bias"),
        "generator_predictions/output_bias": "generator_lm_head/bias",
    }
    if tf1_name in special:
        # MobileBERT's extra output weights are [V, H-E] in TF1 and [H-E, V] in HF's Linear
        return special[tf1_name].replace("/", "."), tf1_name.endswith("extra_output_weights")
    name, transpose = _leaf(tf1_name)
    return _scope(arch, name).replace("/", "."), transpose


def hf_table(arch: str, config, *, sentence_head: str, component: str = "discriminator",
             with_pooler: bool | None = None) -> list[HfEntry]:
    """Every weight of the HF model of `arch` (ELECTRA: of `component`), in TF1 order.

    `with_pooler` defaults to "only with a sentence head" (see the module doc).
    """
    if arch == "electra" and component not in ("discriminator", "generator"):
        raise ConfigError(f"component: expected discriminator or generator, got {component!r}")
    shapes = tf1_variable_shapes(arch, config, pretraining=True, sentence_head=sentence_head,
                                 component=component if arch == "electra" else "all")
    if with_pooler is None:
        with_pooler = sentence_head != "none"
    table = []
    for name, shape in shapes.items():
        if name.startswith("bert/pooler/") and not with_pooler:
            continue
        key, transpose = hf_key(arch, name)
        table.append(HfEntry(name, key, transpose, tuple(shape)))
    keys = [e.hf_key for e in table]
    if len(set(keys)) != len(keys):  # a rule above mapped two variables onto one key
        raise ConfigError(f"{arch}: HF key table maps two TF1 names onto one key")
    return table


def tied_keys(arch: str, component: str = "discriminator") -> dict[str, str]:
    """HF keys that are tied copies of another key (never stored; equal when present)."""
    p = base_prefix(arch)
    if arch == "electra":
        return {"generator_lm_head.weight": f"{p}.embeddings.word_embeddings.weight"} \
            if component == "generator" else {}
    head = "predictions" if arch == "albert" else "cls.predictions"
    return {f"{head}.decoder.weight": f"{p}.embeddings.word_embeddings.weight",
            f"{head}.decoder.bias": f"{head}.bias"}


def empty_keys(arch: str, config) -> dict[str, tuple[int, int]]:
    """Zero-element weights HF's modules hold but TF1 never wrote: MobileBERT's extra output
    weights [H-E, V] when E == H (the Chinese base releases). Written, so HF finds every key."""
    if arch == "mobilebert" and config.hidden_size == config.embedding_size:
        return {"cls.predictions.dense.weight": (0, config.vocab_size)}
    return {}
