"""HuggingFace model directories in and out, without torch: `export --format huggingface` and
`tfcompact import-hf`.

Out: `config.json` (every flag, see `hf_names.hf_config_dict`), `model.safetensors` written with
the `safetensors` library's numpy API, and the tokenizer files `BertTokenizer(Fast)` reads
(`vocab.txt`, `tokenizer_config.json`, `special_tokens_map.json`).

In: `config.json` + `model.safetensors` (or a sharded `model.safetensors.index.json`, or
`pytorch_model.bin` when torch is installed) + `vocab.txt`, checked all-or-nothing like
`import-tf1`: every weight of our model found, every stored weight used (tied copies must equal
what they copy; buffers such as `position_ids` are ignored), shapes equal. ELECTRA's Hub
releases are two directories (discriminator, generator) sharing one embedding table: pass both.
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np

from tfcompact import modeldir
from tfcompact.architectures import ARCHITECTURES
from tfcompact.configs import config_from_dict
from tfcompact.errors import CheckpointError, ConfigError, DataError, UserError
from tfcompact.interop import hf_names, name_maps
from tfcompact.interop.output_dir import atomic_output_dir, check_output_dir

CONFIG = "config.json"
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
IMPORT_KIND = "import-hf"  # the marker kind of import-hf outputs (see interop/output_dir.py)
SPECIAL_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                  "cls_token": "[CLS]", "mask_token": "[MASK]"}


# ----------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------

def _write_json(path: str, payload: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")


def hf_tensors(model, arch: str, config, *, component: str = "discriminator") -> dict[str, np.ndarray]:
    """HF key -> array (float32, contiguous) for every weight the HF model of `model` holds."""
    tf1_values = name_maps.keras_to_tf1(model, name_maps.name_table(arch, config, model))
    head = name_maps.model_sentence_head(model)
    out = {}
    for e in hf_names.hf_table(arch, config, sentence_head=head, component=component):
        value = tf1_values[e.tf1_name]
        out[e.hf_key] = np.ascontiguousarray(value.T if e.transpose else value)
    if component == "discriminator":
        out.update({k: np.zeros(shape, np.float32) for k, shape in hf_names.empty_keys(arch, config).items()})
    return out


def write_tokenizer_files(vocab_path: str, out_dir: str, *, do_lower_case: bool, max_length: int) -> None:
    """vocab.txt + the two JSON files `BertTokenizer(Fast).from_pretrained` reads."""
    shutil.copyfile(vocab_path, os.path.join(out_dir, "vocab.txt"))
    # Every CJK character its own token; accents stripped iff lower-casing (as our tokenizer).
    _write_json(os.path.join(out_dir, "tokenizer_config.json"), {
        "tokenizer_class": "BertTokenizer", "do_lower_case": do_lower_case,
        "tokenize_chinese_chars": True, "strip_accents": None, "model_max_length": max_length,
        "clean_up_tokenization_spaces": True, **SPECIAL_TOKENS})
    _write_json(os.path.join(out_dir, "special_tokens_map.json"), dict(SPECIAL_TOKENS))


def export_huggingface(model, arch: str, config, vocab_path: str | None, out_dir: str, *,
                       component: str = "discriminator", do_lower_case: bool = True) -> str:
    """Write `model` (ELECTRA: one `component`) as a HuggingFace directory; returns what was written."""
    from safetensors.numpy import save_file

    head = name_maps.model_sentence_head(model)
    payload = hf_names.hf_config_dict(arch, config, sentence_head=head, component=component,
                                      do_lower_case=do_lower_case)
    tensors = hf_tensors(model, arch, config, component=component)
    save_file(tensors, os.path.join(out_dir, SAFETENSORS), metadata={"format": "pt"})
    _write_json(os.path.join(out_dir, CONFIG), payload)
    what = f"{payload['architectures'][0]} ({len(tensors)} tensors)"
    if vocab_path:
        write_tokenizer_files(vocab_path, out_dir, do_lower_case=do_lower_case,
                              max_length=config.max_position_embeddings)
    else:
        what += " without tokenizer files (the model directory has no vocab.txt)"
    return what


# ----------------------------------------------------------------------------------------------
# import: config
# ----------------------------------------------------------------------------------------------

def read_hf_config(directory: str) -> dict:
    """config.json of a HuggingFace model directory, with one-line errors."""
    path = os.path.join(directory, CONFIG)
    if not os.path.isfile(path):
        raise DataError(f"{path}: not found; expected a HuggingFace model directory "
                        "(config.json, model.safetensors, vocab.txt)")
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(d).__name__}")
    return d


def _field(d: dict, key: str, where: str):
    if key not in d:
        raise ConfigError(f"{where}: field '{key}' missing")
    return d[key]


def _check_hf_fixed(d: dict, where: str) -> None:
    """HF options our models do not implement."""
    kind = d.get("position_embedding_type", "absolute")
    if kind != "absolute":
        raise ConfigError(f"{where}: field 'position_embedding_type': {kind!r}; only 'absolute' is supported")
    eps = d.get("layer_norm_eps", hf_names.LAYER_NORM_EPS)
    if not np.isclose(eps, hf_names.LAYER_NORM_EPS, rtol=1e-3, atol=0):
        raise ConfigError(f"{where}: field 'layer_norm_eps': {eps}; tfcompact's layers use "
                          f"{hf_names.LAYER_NORM_EPS} as every original release")
    if d.get("is_decoder") or d.get("add_cross_attention"):
        raise ConfigError(f"{where}: a decoder configuration (is_decoder/add_cross_attention); "
                          "expected an encoder")


_COMMON = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
           "max_position_embeddings", "type_vocab_size")
_OPTIONAL = {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02}
_ARCH_FIELDS = {"albert": ("embedding_size", "num_hidden_groups", "inner_group_num"),
                "electra": ("embedding_size",),
                "mobilebert": ("embedding_size", "trigram_input", "use_bottleneck", "intra_bottleneck_size",
                               "use_bottleneck_attention", "key_query_shared_bottleneck",
                               "num_feedforward_networks", "normalization_type", "classifier_activation")}


def arch_of(d: dict, where: str) -> str:
    """Our architecture for a config.json's `model_type`."""
    model_type = d.get("model_type")
    if model_type not in hf_names.ARCH_OF_MODEL_TYPE:
        raise ConfigError(f"{where}: field 'model_type': {model_type!r}; expected one of "
                          + ", ".join(hf_names.ARCH_OF_MODEL_TYPE))
    return hf_names.ARCH_OF_MODEL_TYPE[model_type]


def config_from_hf(d: dict, where: str, generator: dict | None = None, generator_where: str = ""):
    """Our (arch, config) for a HF config.json (ELECTRA: plus its generator's config.json)."""
    arch = arch_of(d, where)
    _check_hf_fixed(d, where)
    ours = {k: _field(d, k, where) for k in _COMMON + _ARCH_FIELDS.get(arch, ())}
    ours.update({k: d.get(k, v) for k, v in _OPTIONAL.items()})
    ours["hidden_act"] = hf_names.our_activation(arch, _field(d, "hidden_act", where), where)
    if arch == "mobilebert":
        true_hidden = ours["intra_bottleneck_size"] if ours["use_bottleneck"] else ours["hidden_size"]
        if d.get("true_hidden_size", true_hidden) != true_hidden:
            raise ConfigError(f"{where}: field 'true_hidden_size': {d['true_hidden_size']}; expected "
                              f"{true_hidden} (intra_bottleneck_size with use_bottleneck, else hidden_size)")
    if arch == "electra":
        if generator is None:
            raise UserError(f"{where} is an ELECTRA {d.get('architectures', ['model'])[0]}: pass its "
                            "generator's directory with --generator (ELECTRA's pretraining model holds both)")
        ours.update(_generator_fractions(ours, generator, generator_where))
    return arch, config_from_dict(arch, ours, source=where)


def _generator_fractions(disc: dict, g: dict, where: str) -> dict:
    """ELECTRA's generator sizing as fractions of the discriminator; checked to reproduce g."""
    if arch_of(g, where) != "electra":
        raise ConfigError(f"{where}: field 'model_type': expected 'electra' for the generator")
    _check_hf_fixed(g, where)
    for key in ("vocab_size", "embedding_size", "max_position_embeddings", "type_vocab_size"):
        if _field(g, key, where) != disc[key]:
            raise ConfigError(f"{where}: field '{key}': {g[key]} but the discriminator has {disc[key]} "
                              "(generator and discriminator share the embeddings)")
    fractions = {"generator_hidden_size": _field(g, "hidden_size", where) / disc["hidden_size"],
                 "generator_layers": _field(g, "num_hidden_layers", where) / disc["num_hidden_layers"]}
    derived = config_from_dict("electra", {**disc, **fractions}, source=where).generator_config()
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        if _field(g, key, where) != getattr(derived, key):
            raise ConfigError(f"{where}: field '{key}': {g[key]}; ELECTRA's generator sizing gives "
                              f"{getattr(derived, key)} for a {g['hidden_size']}-wide generator "
                              "(heads = width // 64, FFN = 4 x width)")
    return fractions


# ----------------------------------------------------------------------------------------------
# import: weights
# ----------------------------------------------------------------------------------------------

def _load_safetensors(path: str) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise DataError(f"{path}: cannot read safetensors ({' '.join(str(e).split())})") from None


def _load_torch_bin(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise UserError(f"{path}: reading pytorch_model.bin needs torch (pip install "
                        "'tfcompact[interop]'), or save the model as safetensors") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt or foreign pickle
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None
    return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in state.items()}


def read_hf_weights(directory: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """(HF key -> array, the files read) of a HuggingFace directory."""
    single = os.path.join(directory, SAFETENSORS)
    index = os.path.join(directory, SAFETENSORS_INDEX)
    if os.path.isfile(single):
        return _load_safetensors(single), [single]
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            try:
                shards = sorted(set(json.load(f)["weight_map"].values()))
            except (json.JSONDecodeError, KeyError, AttributeError, TypeError):
                raise DataError(f"{index}: expected a JSON object with a 'weight_map'") from None
        files = [os.path.join(directory, s) for s in shards]
        out: dict[str, np.ndarray] = {}
        for path in files:
            out.update(_load_safetensors(path))
        return out, files
    binary = os.path.join(directory, TORCH_BIN)
    if os.path.isfile(binary):
        return _load_torch_bin(binary), [binary]
    raise DataError(f"{directory}: no {SAFETENSORS}, {SAFETENSORS_INDEX} or {TORCH_BIN}")


def _with_prefix(arch: str, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A bare backbone (saved from `BertModel` etc.) has keys without the `bert.` prefix."""
    p = hf_names.base_prefix(arch) + "."
    if any(k.startswith(p) for k in weights):
        return weights
    return {p + k: v for k, v in weights.items()}


def _sentence_head(arch: str, keys) -> str:
    if arch == "electra":
        return "none"
    key = "sop_classifier.classifier.weight" if arch == "albert" else "cls.seq_relationship.weight"
    return ("sop" if arch == "albert" else "nsp") if key in keys else "none"


def match_weights(arch: str, config, weights: dict[str, np.ndarray], where: str, *,
                  component: str = "discriminator", sentence_head: str | None = None):
    """(TF1 name -> array, the HF table) for one directory's weights, checked all-or-nothing."""
    weights = _with_prefix(arch, weights)
    head = sentence_head or _sentence_head(arch, weights)
    pooler = any(".pooler." in k for k in weights)
    table = hf_names.hf_table(arch, config, sentence_head=head, component=component, with_pooler=pooler)
    tied = hf_names.tied_keys(arch, component)
    empty = hf_names.empty_keys(arch, config)
    expected = {e.hf_key: e for e in table}
    problems = [f"missing {k}" for k in expected if k not in weights]
    for key, value in weights.items():
        if key in expected:
            e = expected[key]
            shape = value.T.shape if e.transpose else value.shape
            if tuple(shape) != e.tf1_shape:
                problems.append(f"{key} {list(value.shape)} does not fit {e.tf1_name} {list(e.tf1_shape)}")
        elif key in tied:
            source = weights.get(tied[key])
            if source is None or source.shape != value.shape or not np.array_equal(source, value):
                problems.append(f"{key} differs from {tied[key]}, which it is tied to")
        elif not (key.endswith(hf_names.IGNORED_KEY_SUFFIXES)  # a buffer, or a zero-element weight
                  or (key in empty and tuple(value.shape) == empty[key])):
            problems.append(f"unused {key}")
    if problems:
        raise CheckpointError(f"{where} does not match {ARCHITECTURES[arch].hf_model_type} "
                              f"({len(problems)} problems): " + "; ".join(problems[:12])
                              + (f"; +{len(problems) - 12} more" if len(problems) > 12 else ""))
    values = {}
    for e in table:
        value = np.asarray(weights[e.hf_key], dtype=np.float32)
        values[e.tf1_name] = value.T if e.transpose else value
    return values, head


def import_huggingface(model_dir: str, output: str, *, generator: str | None = None,
                       vocab: str | None = None, overwrite: bool = False) -> str:
    """Import a HuggingFace directory (ELECTRA: + `generator`) into a new model directory."""
    from tfcompact.interop.convert import check_vocab, build_model, save_training_checkpoint

    for flag, d in (("--model_dir", model_dir), ("--generator", generator)):
        if d is not None and not os.path.isdir(d):
            raise UserError(f"{flag} {d}: not a directory")
    d = read_hf_config(model_dir)
    where = os.path.join(model_dir, CONFIG)
    g = read_hf_config(generator) if generator else None
    if g is not None and arch_of(d, where) != "electra":
        raise UserError(f"--generator applies to ELECTRA only; {where} is model_type {d.get('model_type')!r}")
    arch, config = config_from_hf(d, where, g, os.path.join(generator or "", CONFIG))
    vocab = vocab or os.path.join(model_dir, "vocab.txt")
    weights, _ = read_hf_weights(model_dir)
    inputs = [("--model_dir", model_dir), ("--vocab", vocab)] + ([("--generator", generator)] if generator else [])
    check_output_dir(output, kind=IMPORT_KIND, inputs=inputs, overwrite=overwrite)
    check_vocab(vocab, config, where, "" if os.path.isfile(vocab) else " (pass --vocab)")
    component = "discriminator"
    values, head = match_weights(arch, config, weights, model_dir, component=component)
    if g is not None:
        g_weights, _ = read_hf_weights(generator)
        g_values, _ = match_weights(arch, config, g_weights, generator, component="generator")
        for name in set(values) & set(g_values):
            if not np.array_equal(values[name], g_values[name]):
                raise CheckpointError(f"{generator}: {name} differs from the discriminator's; ELECTRA's "
                                      "generator and discriminator share their embeddings")
        values.update(g_values)
    model = build_model(arch, config, head)
    table = [e for e in name_maps.name_table(arch, config, model) if e.tf1_name in values]
    name_maps.tf1_to_keras(model, table, values)
    with atomic_output_dir(output, kind=IMPORT_KIND, inputs=inputs, overwrite=overwrite) as tmp:
        modeldir.write_model_dir_config(tmp, arch, config, vocab_path=vocab,
                                        sentence_head=None if arch == "electra" else head)
        save_training_checkpoint(model, tmp)
    fresh = "" if any(n.startswith("bert/pooler/") for n in values) or arch == "electra" \
        or (arch == "mobilebert" and not config.classifier_activation) \
        else "; the pooler (absent: an MLM-only model) keeps its fresh initialisation"
    return f"imported {arch} ({len(table)} variables) from {model_dir} into {output}{fresh}"
