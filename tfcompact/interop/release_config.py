"""Where `tfcompact import-tf1` gets a release's model config: an original config JSON, the
hparams JSON of an ELECTRA release, or a preset; and the checkpoint's vocabulary size.

ELECTRA releases (google-research/electra, ymcui/Chinese-ELECTRA) ship `electra_model.*`,
`vocab.txt` and `checkpoint` but no config file: their pretraining and fine-tuning scripts
build the model from hparams (`run_pretraining.py --hparams`). `electra_config_from_hparams`
derives the same sizes as those scripts:

* `model_size` "small" | "base" | "large" gives hidden_size 256 / 768 / 1024 and
  num_hidden_layers 12 / 12 / 24 (`util/training_utils.py` get_bert_config);
* `vocab_size` (default 30522, the English vocabulary; Chinese releases use 21128);
* `model_hparam_overrides` changes any field of ELECTRA's `BertConfig`
  (`model/modeling.py`); num_attention_heads = max(1, hidden_size // 64) and
  intermediate_size = 4 * hidden_size unless the overrides set them too;
* `embedding_size`: 128 for model_size "small", else hidden_size, unless given
  (`configure_pretraining.py`);
* `generator_hidden_size` (default 0.25) and `generator_layers` (default 1.0) are fractions of
  the discriminator's width and depth; the generator has width//64 heads and a 4·width FFN
  (`run_pretraining.py` get_generator_config, `ElectraConfig.generator_config` here).

Keys that concern only training, data or the machine (learning_rate, num_train_steps,
max_seq_length, train_batch_size, mask_prob, task_names, do_lower_case, use_tpu, the paths,
...) are accepted and ignored. Keys that would build another network than the released
ELECTRA's (a uniform, tied or two-tower generator, untied generator embeddings, the BERT
objective, debug mode's shrunken model) are refused unless they have their default value.
Any other key is refused with a one-line error naming the file and the key, as ELECTRA's
scripts refuse an unknown hparam.
"""
from __future__ import annotations

import difflib
import json
from typing import Any, Mapping, Optional

from tfcompact.configs import (Config, ElectraConfig, Preset, config_from_dict, config_from_json_file,
                               get_preset)
from tfcompact.errors import CheckpointError, ConfigError
from tfcompact.files import read_bytes

# model_size -> (hidden_size, num_hidden_layers), as ELECTRA's get_bert_config sets them.
ELECTRA_MODEL_SIZES: dict[str, tuple[int, int]] = {"small": (256, 12), "base": (768, 12),
                                                   "large": (1024, 24)}
ELECTRA_DEFAULT_VOCAB_SIZE = 30522
ELECTRA_SMALL_EMBEDDING_SIZE = 128

# The hparams that size the model (the rest of the model comes from model_hparam_overrides).
MODEL_HPARAMS = frozenset({"model_size", "model_hparam_overrides", "vocab_size", "embedding_size",
                           "generator_hidden_size", "generator_layers"})

# Hparams that change which networks are built; only their default value describes a release.
STRUCTURE_HPARAMS: dict[str, Any] = {
    "electra_objective": True, "electric_objective": False, "uniform_generator": False,
    "two_tower_generator": False, "untied_generator": True, "untied_generator_embeddings": False,
    "debug": False}

# Hparams of the pretraining and fine-tuning scripts that do not change the weights' shapes.
TRAINING_HPARAMS = frozenset("""
    model_name do_train do_eval do_test gen_weight disc_weight mask_prob learning_rate
    lr_decay_power weight_decay_rate num_warmup_steps iterations_per_loop save_checkpoints_steps
    num_train_steps num_eval_steps keep_checkpoint_max do_lower_case disallow_correct temperature
    max_seq_length max_predictions_per_seq train_batch_size eval_batch_size predict_batch_size
    use_tpu num_tpu_cores tpu_job_name tpu_name tpu_zone gcp_project pretrain_tfrecords
    vocab_file model_dir results_txt results_pkl data_dir raw_data_dir init_checkpoint
    preprocessed_data_dir test_predictions qa_eval_file qa_preds_file qa_na_file log_examples
    num_trials keep_all_models task_names layerwise_lr_decay num_train_epochs warmup_proportion
    use_tfrecords_if_existing write_test_outputs n_writes_test double_unordered max_query_length
    doc_stride n_best_size max_answer_length answerable_classifier answerable_uses_start_logits
    answerable_weight joint_prediction beam_size qa_na_threshold""".split())

# The fields of ELECTRA's BertConfig: what model_hparam_overrides may set.
BERT_CONFIG_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                      "intermediate_size", "hidden_act", "hidden_dropout_prob",
                      "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
                      "initializer_range")

ALL_HPARAMS = MODEL_HPARAMS | frozenset(STRUCTURE_HPARAMS) | TRAINING_HPARAMS
_CONFIG_FIELDS = frozenset(BERT_CONFIG_FIELDS) | {"embedding_size", "generator_hidden_size",
                                                  "generator_layers"}


def is_electra_hparams(d: Any) -> bool:
    """True when a JSON object is an ELECTRA hparams dict rather than a model config: it has a
    key only hparams have (model_size, model_hparam_overrides, learning_rate, ...)."""
    return isinstance(d, Mapping) and any(k in ALL_HPARAMS and k not in _CONFIG_FIELDS for k in d)


def _unknown_key(source: str, key: str, known) -> ConfigError:
    close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.75)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"{source}: unknown ELECTRA hparam '{key}'{hint}")


def _check_hparam_keys(d: Mapping, source: str) -> None:
    for key, value in d.items():
        if key in BERT_CONFIG_FIELDS and key not in MODEL_HPARAMS:
            raise ConfigError(f"{source}: '{key}' is a model config field, not an ELECTRA hparam; "
                              f'put it in "model_hparam_overrides" (as ELECTRA\'s scripts expect)')
        if key not in ALL_HPARAMS:
            raise _unknown_key(source, key, ALL_HPARAMS)
        if key in STRUCTURE_HPARAMS and value != STRUCTURE_HPARAMS[key]:
            raise ConfigError(f"{source}: '{key}' is {json.dumps(value)}: that builds another network "
                              f"than a released ELECTRA's; only {json.dumps(STRUCTURE_HPARAMS[key])} "
                              "(the default) can be imported")


def _overrides(d: Mapping, source: str) -> dict:
    overrides = d.get("model_hparam_overrides", {})
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{source}: 'model_hparam_overrides' must be a mapping of BertConfig "
                          f"fields, got {overrides!r}")
    for key in overrides:
        if key == "embedding_size":
            raise ConfigError(f"{source}: 'model_hparam_overrides.embedding_size' is not read by "
                              "ELECTRA's scripts; give embedding_size at the top level of the hparams")
        if key not in BERT_CONFIG_FIELDS:
            close = difflib.get_close_matches(str(key), BERT_CONFIG_FIELDS, n=1, cutoff=0.75)
            raise ConfigError(f"{source}: 'model_hparam_overrides.{key}' is not a BertConfig field"
                              + (f"; did you mean '{close[0]}'?" if close
                                 else f" (expected one of {', '.join(BERT_CONFIG_FIELDS)})"))
    return dict(overrides)


def electra_config_from_hparams(d: Mapping, source: str = "<hparams>") -> ElectraConfig:
    """The ElectraConfig that ELECTRA's scripts build from hparams `d` (see the module doc);
    errors are one line naming `source` and the key."""
    _check_hparam_keys(d, source)
    overrides = _overrides(d, source)
    size = d.get("model_size", "small")
    if not isinstance(size, str) or size not in ELECTRA_MODEL_SIZES:
        raise ConfigError(f"{source}: 'model_size' must be one of {', '.join(ELECTRA_MODEL_SIZES)}, "
                          f"got {size!r}")
    hidden, layers = ELECTRA_MODEL_SIZES[size]
    args: dict[str, Any] = {"hidden_size": hidden, "num_hidden_layers": layers,
                            "vocab_size": d.get("vocab_size", ELECTRA_DEFAULT_VOCAB_SIZE), **overrides}
    hidden = args["hidden_size"]
    hidden = int(hidden) if isinstance(hidden, float) and hidden.is_integer() else hidden
    if isinstance(hidden, int) and not isinstance(hidden, bool):  # else the config names the field
        args.setdefault("num_attention_heads", max(1, hidden // 64))
        args.setdefault("intermediate_size", 4 * hidden)
    embedding = d.get("embedding_size", ELECTRA_SMALL_EMBEDDING_SIZE if size == "small" else None)
    args.update(embedding_size=embedding,
                generator_hidden_size=d.get("generator_hidden_size", 0.25),
                generator_layers=d.get("generator_layers", 1.0))
    return config_from_dict("electra", args, source=source)


def _json_object(path: str) -> Optional[dict]:
    """The file's JSON object, or None when it is not one (the config loader then says why)."""
    try:
        d = json.loads(read_bytes(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def load_release_config(arch: str, path: str) -> Config:
    """`arch`'s config from a release's --config file: the original config JSON, or for
    ELECTRA the hparams JSON its scripts take (told apart by `is_electra_hparams`)."""
    d = _json_object(path)
    if d is None or not is_electra_hparams(d):
        return config_from_json_file(arch, path)
    if arch != "electra":
        raise ConfigError(f"--config {path} holds ELECTRA hparams (e.g. "
                          f"'{next(k for k in d if k not in _CONFIG_FIELDS)}'), not "
                          f"{'an' if arch[0] in 'aeiou' else 'a'} {arch} config: --arch electra?")
    return electra_config_from_hparams(d, source=path)


def preset_for_import(arch: str, name: str) -> Preset:
    """The preset `name` (--preset), which must be of architecture `arch` (--arch)."""
    try:
        preset = get_preset(name)
    except ConfigError as e:
        raise ConfigError(f"--preset {name}: {e}") from None
    if preset.arch != arch:
        raise ConfigError(f"--preset {name} is {'an' if preset.arch[0] in 'aeiou' else 'a'} "
                          f"{preset.arch} model, not --arch {arch}; use --arch {preset.arch}")
    return preset


def check_checkpoint_vocab(prefix: str, shapes: Mapping[str, Any], config: Config, source: str) -> None:
    """Every `*/embeddings/word_embeddings` of the checkpoint has the config's vocab_size rows;
    a mismatch is one line naming both numbers (before any model is built)."""
    for name, shape in sorted(shapes.items()):
        if name.endswith("embeddings/word_embeddings") and len(shape) == 2 and shape[0] != config.vocab_size:
            raise CheckpointError(f"{prefix}: {name} has {shape[0]} rows (vocabulary entries) but "
                                  f"{source} says vocab_size={config.vocab_size}")
