"""TF1 checkpoint variable names and shapes of the original releases, per architecture.

`tf1_variable_shapes` lists every variable the original TF1 code creates (google-research
bert, albert, electra, mobilebert; brightmart/albert_zh), with its shape, in this order:
embeddings, encoder layers, pooler, heads (the creation order of the original code, except
that ELECTRA builds its generator first; TF1 checkpoint files store keys sorted by name, so
the order carries no meaning there). Optimizer slots and
`global_step` are not listed.

`count_parameters` sums those shapes, optionally over only some parts of the model, so
parameter counts come from the same table the checkpoint converters use and nothing is built.
"""
from __future__ import annotations

import math
from typing import Optional, Union

from tfcompact.configs import (AlbertConfig, BertConfig, ElectraConfig, MobileBertConfig, Preset,
                               ResolvedModel, get_preset, resolve_model)
from tfcompact.errors import ConfigError

Shape = tuple[int, ...]

# Parts of a model a parameter count may cover; `classify_tf1_name` maps each name to one.
PARTS = ("embeddings", "encoder", "pooler", "mlm_head", "sentence_head", "generator",
         "generator_head", "discriminator_head")


def _layer_norm(out: dict, scope: str, width: int, name: str = "LayerNorm") -> None:
    out[f"{scope}/{name}/beta"] = (width,)
    out[f"{scope}/{name}/gamma"] = (width,)


def _dense(out: dict, scope: str, n_in: int, n_out: int, bias: bool = True) -> None:
    out[f"{scope}/kernel"] = (n_in, n_out)
    if bias:
        out[f"{scope}/bias"] = (n_out,)


def _bert_layer(out: dict, prefix: str, hidden: int, intermediate: int) -> None:
    """One google-research/bert encoder layer under `prefix` (e.g. bert/encoder/layer_0)."""
    for proj in ("query", "key", "value"):
        _dense(out, f"{prefix}/attention/self/{proj}", hidden, hidden)
    _dense(out, f"{prefix}/attention/output/dense", hidden, hidden)
    _layer_norm(out, f"{prefix}/attention/output", hidden)
    _dense(out, f"{prefix}/intermediate/dense", hidden, intermediate)
    _dense(out, f"{prefix}/output/dense", intermediate, hidden)
    _layer_norm(out, f"{prefix}/output", hidden)


def _embeddings(out: dict, scope: str, vocab: int, word_width: int, width: int, config) -> None:
    out[f"{scope}/word_embeddings"] = (vocab, word_width)
    if word_width != width:  # brightmart's projection applied before type/position embeddings
        out[f"{scope}/word_embeddings_2"] = (word_width, width)
    out[f"{scope}/token_type_embeddings"] = (config.type_vocab_size, width)
    out[f"{scope}/position_embeddings"] = (config.max_position_embeddings, width)
    _layer_norm(out, scope, width)


def _pretraining_heads(out: dict, config, width: int, sentence_head: str, extra: int = 0) -> None:
    """cls/predictions (transform H -> width, LayerNorm, output bias; MobileBERT's
    extra_output_weights [V, extra]) and cls/seq_relationship unless the head is "none"."""
    h = config.hidden_size
    _dense(out, "cls/predictions/transform/dense", h, width)
    _layer_norm(out, "cls/predictions/transform", width)  # a real LayerNorm, whatever the type
    out["cls/predictions/output_bias"] = (config.vocab_size,)
    if extra:
        out["cls/predictions/extra_output_weights"] = (config.vocab_size, extra)
    if sentence_head != "none":
        out["cls/seq_relationship/output_weights"] = (2, h)  # [out, in]
        out["cls/seq_relationship/output_bias"] = (2,)


def bert_shapes(config: BertConfig, pretraining: bool, sentence_head: str, component: str) -> dict:
    """BERT and TinyBERT (google-research/bert `modeling.py`)."""
    out: dict = {}
    h = config.hidden_size
    _embeddings(out, "bert/embeddings", config.vocab_size, h, h, config)
    for n in range(config.num_hidden_layers):
        _bert_layer(out, f"bert/encoder/layer_{n}", h, config.intermediate_size)
    _dense(out, "bert/pooler/dense", h, h)
    if pretraining:
        _pretraining_heads(out, config, h, sentence_head)
    return out


def albert_shapes(config: AlbertConfig, pretraining: bool, sentence_head: str, component: str) -> dict:
    """ALBERT, Google's layout or brightmart's (`config.layout`)."""
    out: dict = {}
    h, e, i = config.hidden_size, config.embedding_size, config.intermediate_size
    if config.layout == "brightmart":
        _embeddings(out, "bert/embeddings", config.vocab_size, e, h, config)
        _bert_layer(out, "bert/encoder/layer_shared", h, i)
        head_width = h  # MLM logits = (h·W2ᵀ)·W1ᵀ, the transform stays H wide
    else:
        _embeddings(out, "bert/embeddings", config.vocab_size, e, e, config)
        if e != h:
            _dense(out, "bert/encoder/embedding_hidden_mapping_in", e, h)
        for g in range(config.num_hidden_groups):
            for k in range(config.inner_group_num):
                p = f"bert/encoder/transformer/group_{g}/inner_group_{k}"
                for proj in ("query", "key", "value"):
                    _dense(out, f"{p}/attention_1/self/{proj}", h, h)
                _dense(out, f"{p}/attention_1/output/dense", h, h)
                _layer_norm(out, p, h)
                _dense(out, f"{p}/ffn_1/intermediate/dense", h, i)
                _dense(out, f"{p}/ffn_1/intermediate/output/dense", i, h)
                _layer_norm(out, p, h, "LayerNorm_1")
        head_width = e
    _dense(out, "bert/pooler/dense", h, h)
    if pretraining:
        _pretraining_heads(out, config, head_width, sentence_head)
    return out


def electra_shapes(config: ElectraConfig, pretraining: bool, sentence_head: str, component: str) -> dict:
    """ELECTRA: shared embeddings, discriminator and/or generator (`component`)."""
    out: dict = {}
    h, e = config.hidden_size, config.embedding_size
    gen = config.generator_config()
    # Without pretraining heads, "all" means the discriminator: the model fine-tuning uses.
    with_discriminator = component == "discriminator" or (component == "all")
    with_generator = component == "generator" or (component == "all" and pretraining)
    # The embedding layer (width E) is shared by generator and discriminator.
    _embeddings(out, "electra/embeddings", config.vocab_size, e, e, config)
    if with_discriminator:
        if e != h:
            _dense(out, "electra/embeddings_project", e, h)
        for n in range(config.num_hidden_layers):
            _bert_layer(out, f"electra/encoder/layer_{n}", h, config.intermediate_size)
    if with_generator:
        if e != gen.hidden_size:
            _dense(out, "generator/embeddings_project", e, gen.hidden_size)
        for n in range(gen.num_hidden_layers):
            _bert_layer(out, f"generator/encoder/layer_{n}", gen.hidden_size, gen.intermediate_size)
        _dense(out, "generator_predictions/dense", gen.hidden_size, e)
        _layer_norm(out, "generator_predictions", e)
        out["generator_predictions/output_bias"] = (config.vocab_size,)
    if pretraining and with_discriminator:
        _dense(out, "discriminator_predictions/dense", h, h)
        _dense(out, "discriminator_predictions/dense_1", h, 1)
    return out


def mobilebert_shapes(config: MobileBertConfig, pretraining: bool, sentence_head: str,
                      component: str) -> dict:
    """MobileBERT and its IB-BERT teacher (google-research mobilebert `modeling.py`)."""
    out: dict = {}
    h, e, i = config.hidden_size, config.embedding_size, config.intermediate_size
    b = config.true_hidden_size
    norm = "FakeLayerNorm" if config.normalization_type == "no_norm" else "LayerNorm"
    out["bert/embeddings/word_embeddings"] = (config.vocab_size, e)
    if config.trigram_input or e != h:
        _dense(out, "bert/embeddings/embedding_transformation", 3 * e if config.trigram_input else e, h)
    out["bert/embeddings/token_type_embeddings"] = (config.type_vocab_size, h)
    out["bert/embeddings/position_embeddings"] = (config.max_position_embeddings, h)
    _layer_norm(out, "bert/embeddings", h, norm)
    # Widths feeding query/key and value (see `transformer_model` in MobileBERT's modeling.py).
    if config.use_bottleneck and config.use_bottleneck_attention:
        qk_in, v_in = b, b
    elif config.use_bottleneck and config.key_query_shared_bottleneck:
        qk_in, v_in = b, h
    else:
        qk_in, v_in = h, h
    for n in range(config.num_hidden_layers):
        p = f"bert/encoder/layer_{n}"
        if config.use_bottleneck:
            _dense(out, f"{p}/bottleneck/input/dense", h, b)
            _layer_norm(out, f"{p}/bottleneck/input", b, norm)
            if not config.use_bottleneck_attention and config.key_query_shared_bottleneck:
                _dense(out, f"{p}/bottleneck/attention/dense", h, b)
                _layer_norm(out, f"{p}/bottleneck/attention", b, norm)
        _dense(out, f"{p}/attention/self/query", qk_in, b)
        _dense(out, f"{p}/attention/self/key", qk_in, b)
        _dense(out, f"{p}/attention/self/value", v_in, b)
        _dense(out, f"{p}/attention/output/dense", b, b)
        _layer_norm(out, f"{p}/attention/output", b, norm)
        for j in range(config.num_feedforward_networks - 1):
            _dense(out, f"{p}/ffn_layer_{j}/intermediate/dense", b, i)
            _dense(out, f"{p}/ffn_layer_{j}/output/dense", i, b)
            _layer_norm(out, f"{p}/ffn_layer_{j}/output", b, norm)
        _dense(out, f"{p}/intermediate/dense", b, i)
        _dense(out, f"{p}/output/dense", i, b)
        _layer_norm(out, f"{p}/output", b, norm)
        if config.use_bottleneck:
            _dense(out, f"{p}/output/bottleneck/dense", b, h)
            _layer_norm(out, f"{p}/output/bottleneck", h, norm)
    if config.classifier_activation:
        _dense(out, "bert/pooler/dense", h, h)
    if pretraining:
        _pretraining_heads(out, config, h, sentence_head, extra=h - e)
    return out


def tf1_variable_shapes(arch: str, config, *, pretraining: bool = True, component: str = "all",
                        sentence_head: str = "default", prefix: str = "") -> dict[str, Shape]:
    """TF1 variable name -> shape for a model of architecture `arch` with `config`.

    pretraining: include the pretraining heads (MLM, NSP/SOP; for ELECTRA the generator and
      both prediction heads); without them only the backbone (and its pooler) remains.
    component: ELECTRA only: "all", "discriminator" (electra/* + discriminator_predictions) or
      "generator" (the shared electra/embeddings + generator/* + generator_predictions).
    sentence_head: "default" (NSP for BERT/TinyBERT/MobileBERT, SOP for ALBERT, none for
      ELECTRA), "nsp", "sop" or "none"; NSP and SOP share the names cls/seq_relationship/*.
    prefix: prepended to every name, e.g. "teacher/" for MobileBERT's teacher variables.
    """
    resolved = resolve_model(arch, config, None if sentence_head == "default" else sentence_head)
    if component not in ("all", "discriminator", "generator"):
        raise ConfigError(f"component: expected all, discriminator or generator, got {component!r}")
    if resolved.arch != "electra" and component != "all":
        raise ConfigError(f"component: only ELECTRA has generator/discriminator components, "
                          f"not {resolved.arch!r}")
    shapes = resolved.architecture.tf1_variable_shapes(resolved.config, pretraining, resolved.sentence_head,
                                                       component)
    return {prefix + name: shape for name, shape in shapes.items()}


def classify_tf1_name(name: str) -> str:
    """The model part (one of PARTS) a TF1 variable name belongs to."""
    name = name.split("/", 1)[1] if name.startswith("teacher/") else name
    top = name.split("/", 1)[0]
    if top in ("bert", "electra"):
        second = name.split("/")[1]
        if second in ("embeddings", "embeddings_project") or "/embedding_hidden_mapping_in/" in name:
            return "embeddings"
        if second == "encoder":
            return "encoder"
        if second == "pooler":
            return "pooler"
    elif top == "cls":
        return "mlm_head" if name.startswith("cls/predictions/") else "sentence_head"
    elif top == "generator":
        return "generator"
    elif top in ("generator_predictions", "discriminator_predictions"):
        return top.replace("_predictions", "_head")
    raise ConfigError(f"TF1 variable {name!r} belongs to no known model part")


def _parse_scope(scope: str) -> set[str]:
    if scope == "all":
        return set(PARTS)
    parts = {p.strip() for p in scope.split("+") if p.strip()}
    unknown = parts - set(PARTS)
    if not parts or unknown:
        raise ConfigError(f"params scope {scope!r}: unknown part(s) {', '.join(sorted(unknown)) or '(none)'}; "
                          f"expected 'all' or parts joined by '+' from {', '.join(PARTS)}")
    return parts


def parameter_breakdown(preset_or_arch_config: Union[str, Preset, tuple]) -> dict[str, int]:
    """Parameters per model part (pretraining heads included), from the TF1 shapes."""
    resolved = _resolve(preset_or_arch_config)
    counts = {part: 0 for part in PARTS}
    for name, shape in tf1_variable_shapes(resolved.arch, resolved.config, pretraining=True,
                                           sentence_head=resolved.sentence_head).items():
        counts[classify_tf1_name(name)] += math.prod(shape)
    return {part: n for part, n in counts.items() if n}


def count_parameters(preset_or_arch_config: Union[str, Preset, tuple],
                     scope: Optional[str] = None) -> int:
    """Number of parameters in `scope` ('all', or parts joined by '+', e.g.
    'embeddings+encoder+pooler'), counted from the TF1 shapes without building the model.

    Accepts a preset (name or Preset: scope defaults to the preset's `params_scope`) or an
    `(arch, config)` pair (scope defaults to 'all', the full pretraining model).
    """
    if scope is None:
        scope = get_preset(preset_or_arch_config).params_scope if _is_preset(preset_or_arch_config) else "all"
    parts = _parse_scope(scope)
    return sum(n for part, n in parameter_breakdown(preset_or_arch_config).items() if part in parts)


def _is_preset(value) -> bool:
    return isinstance(value, (str, Preset))


def _resolve(value) -> ResolvedModel:
    if _is_preset(value):
        return resolve_model(value)
    if isinstance(value, tuple) and len(value) in (2, 3):
        head = value[2] if len(value) == 3 and value[2] != "default" else None
        return resolve_model(value[0], value[1], head)
    raise ConfigError(f"expected a preset name, a Preset or an (arch, config) pair, got {type(value).__name__}")
