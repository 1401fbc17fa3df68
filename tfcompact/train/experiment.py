"""Experiment configs: one YAML file per pretraining run (`tpu_configs/*.yaml`).

A YAML file loads into the `Experiment` dataclass below. Every key is checked: an unknown key
or a value of the wrong type raises a one-line `ConfigError` naming the file, the line and the
dotted key. `--set a.b=value` overrides are applied before validation (the value is parsed as
YAML, so `--set train.batch_size=64` gives an int and `--set data.eval=null` clears a field).
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import yaml

from tfcompact import typed
from tfcompact.architectures import ARCHITECTURES
from tfcompact.errors import ConfigError
from tfcompact.files import atomic_write_text
from tfcompact.objectives.distillation import Match, check_match

OPTIMIZERS = ("lamb", "adamw")
PRECISIONS = ("auto", "float32", "mixed_bfloat16")  # tfcompact.train.precision resolves them
LAYERWISE_LR = ("none", "progressive")


@dataclass
class ModelSpec:
    """Which network to train: a named preset or an original-format JSON config, plus overrides.

    `vocab_size: data` in `overrides` takes the vocabulary size from the training data's
    manifest (handy for a vocabulary built from the corpus)."""

    preset: str | None = None
    arch: str | None = None
    config_file: str | None = None
    overrides: dict = field(default_factory=dict)


@dataclass
class DataSpec:
    """Where the TFRecords are (directories written by `tfcompact create-data`, or globs)."""

    train: str = ""
    eval: str | None = None
    # vocab.txt copied into the model directory (default: <train dir>/vocab.txt when present)
    vocab: str | None = None
    # Taken from the data's manifest; a value given here is checked against it.
    max_seq_length: int | None = None
    max_predictions_per_seq: int | None = None
    shuffle_buffer: int = 1000
    # Whole-word masking inside tf.data for "unmasked" data (reader's DynamicMaskingConfig
    # fields may be given as a mapping; `true` takes the reader's defaults).
    dynamic_masking: bool | dict = False


@dataclass
class OptimizerSpec:
    """LAMB (ALBERT) or AdamW (BERT/ELECTRA) with linear warm-up then polynomial decay."""

    name: str = "lamb"
    learning_rate: float = 1.76e-3
    warmup_steps: int = 0
    end_learning_rate: float = 0.0
    power: float = 1.0
    weight_decay_rate: float = 0.01
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-6
    clip_norm: float | None = 1.0
    bias_correction: bool = False


@dataclass
class TrainSpec:
    """Batch, length of the run, checkpointing, numerics."""

    model_dir: str = ""
    batch_size: int = 32  # GLOBAL batch: split evenly over the replicas
    total_steps: int = 1000
    steps_per_loop: int = 100  # steps run inside one tf.function call (hundreds on TPU)
    checkpoint_every: int = 1000
    keep_checkpoints: int = 5
    seed: int = 12345
    precision: str = "float32"
    jit_compile: bool = False  # XLA for the per-step function on CPU/GPU (TPU always compiles)
    eval_every: int = 0  # 0: only at the end of the run
    eval_steps: int = 0  # 0: no eval pass
    max_nonfinite_steps: int = 10  # stop after this many skipped (NaN/Inf) steps in a row
    init_checkpoint: str | None = None  # warm start: model directory or TF1 checkpoint
    # Micro-batches per optimizer step: each is batch_size / this, the update is their mean.
    gradient_accumulation_steps: int = 1


@dataclass
class TeacherSpec:
    """The frozen teacher of a distillation stage: its network and the weights to load."""

    preset: str | None = None
    arch: str | None = None
    config_file: str | None = None
    checkpoint: str = ""  # model directory or TF1 checkpoint directory


@dataclass
class DistillationMatches:
    """The part of a distillation stage that pretraining and task distillation share: the
    matches (`tfcompact.objectives.distillation.Match`), the ground-truth loss's weight and
    the length of a progressive phase."""

    matches: list[Match] = field(default_factory=list)
    # Weight of the ordinary loss against the labels (MLM + sentence / task labels); 0: off
    # (its metrics, e.g. mlm_accuracy, are reported either way).
    hard_label_weight: float = 0.0
    # `gates: progressive`: steps per layer pair (0: train.total_steps // pairs).
    steps_per_layer: int = 0
    # same: teacher and student use one vocabulary (checked before training); map_tokens: the
    # teacher reads the student's tokens mapped by string to its own ids ([UNK] when it lacks
    # one) and its MLM logits are taken at the student's tokens.
    vocab: str = "same"


@dataclass
class DistillationSpec(DistillationMatches):
    """Pretraining by distillation: a frozen teacher runs beside the student."""

    teacher: TeacherSpec = field(default_factory=TeacherSpec)
    # progressive: MobileBERT's layer-wise learning rates for progressive knowledge transfer
    # (encoder layer l: 0 before its phase, 3 x background during, 0.3 x after; embeddings and
    # heads 0; background restarted every phase), meant for LAMB with a constant rate.
    layerwise_lr: str = "none"
    # Start the student's variables outside the encoder layers (embeddings, MLM head) from the
    # teacher's of the same name and shape, as MobileBERT's students do.
    copy_from_teacher: bool = False


@dataclass
class TpuSpec:
    """Cloud TPU topology and VM image for `tfcompact submit`."""

    accelerator_type: str = "v3-8"
    # VM image; None: the base image for the accelerator's generation (train/tpu_software.py)
    runtime_version: str | None = None
    zone: str | None = None
    project: str | None = None


@dataclass
class Experiment:
    """A whole pretraining run."""

    name: str = ""
    description: str = ""
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    distillation: DistillationSpec | None = None
    tpu: TpuSpec = field(default_factory=TpuSpec)
    source: str = field(default="<dict>", repr=False, compare=False)

    def to_dict(self) -> dict:
        return plain_dict(self)


def plain_dict(exp) -> dict:
    """An experiment as a plain mapping (YAML-writable) of every field but its source, for the
    model directory's record."""
    d = dataclasses.asdict(exp)
    d.pop("source")
    return d


# --------------------------------------------------------------------------- locating configs

def tpu_configs_dir() -> pathlib.Path:
    """The directory holding the shipped experiment YAMLs, in a checkout or an installed package.

    Installed: `tfcompact/tpu_configs/` (package data). Checkout: `<repo>/tpu_configs/`."""
    here = pathlib.Path(__file__).resolve().parent.parent  # .../tfcompact
    for candidate in (here / "tpu_configs", here.parent / "tpu_configs"):
        if candidate.is_dir() and any(candidate.glob("*.yaml")):
            return candidate
    raise ConfigError(f"no tpu_configs directory next to {here} (looked in {here / 'tpu_configs'} "
                      f"and {here.parent / 'tpu_configs'})")


def cpu_example_path() -> pathlib.Path:
    """The CPU example experiment (`cpu_smoke`, the quickstart's), shipped with the package's
    demo data: `tpu_configs/` holds only accelerator experiments."""
    return pathlib.Path(__file__).resolve().parent.parent / "data" / "cpu_smoke.yaml"


def list_experiment_files() -> list[pathlib.Path]:
    """Every shipped experiment YAML: the accelerator experiments, sorted by name, then the
    CPU examples (the quickstart's and the distillation stages on its outputs)."""
    data = cpu_example_path().parent
    return sorted(tpu_configs_dir().glob("*.yaml")) + [cpu_example_path()] + sorted(
        data.glob("distill_*_cpu.yaml"))


def resolve_config_path(name_or_path: str) -> pathlib.Path:
    """A path as given, or a bare name (`cpu_smoke`, `cpu_smoke.yaml`) of a shipped config."""
    p = pathlib.Path(name_or_path)
    if p.is_file():
        return p
    if os.sep not in name_or_path:
        stem = name_or_path[:-5] if name_or_path.endswith(".yaml") else name_or_path
        shipped = {f.stem: f for f in list_experiment_files()}
        if stem in shipped:
            return shipped[stem]
        close = difflib.get_close_matches(stem, list(shipped), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; shipped: {', '.join(shipped)}"
        raise ConfigError(f"{name_or_path}: no such file and no shipped config of that name{hint}")
    raise ConfigError(f"{name_or_path}: no such experiment config file")


# --------------------------------------------------------------------------- loading

def _line_map(text: str, source: str) -> dict[str, int]:
    """Dotted key -> 1-based line number, from the YAML node tree (for error messages)."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
    lines: dict[str, int] = {}

    def walk(node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = f"{prefix}.{k.value}" if prefix else str(k.value)
                lines[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):  # list items: key[i] (distillation.matches)
            for i, item in enumerate(node.value):
                lines[f"{prefix}[{i}]"] = item.start_mark.line + 1
                walk(item, f"{prefix}[{i}]")

    if root is not None:
        walk(root, "")
    return lines


def _set_dotted(raw: dict, dotted: str, value: Any, source: str) -> None:
    parts = dotted.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"{source}: --set {dotted}: '{'.'.join(parts[:i + 1])}' is not a "
                              f"section")
        node = nxt
    node[parts[-1]] = value


def apply_overrides(raw: dict, overrides: Sequence[str], source: str = "--set") -> dict:
    """Apply `key.sub=value` strings to a raw config mapping (values parsed as YAML)."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected dotted.key=value")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set {item!r}: empty key")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        _set_dotted(raw, key, value, source)
    return raw


def where_in(source: str, lines: Mapping[str, int | str]) -> typed.Where:
    """Where a dotted key was written: `file:line`, `file (--set ...)` or the file."""
    def where(key: str) -> str:
        line = lines.get(key)
        if isinstance(line, str):
            return f"{source} ({line})"
        return f"{source}:{line}" if line else source

    return where


Fail = Callable[[str, str], None]


def failer(source: str, lines: Mapping[str, int | str]) -> Fail:
    """fail(key, message): a ConfigError naming the file and the key's line (or --set item)."""
    where = where_in(source, lines)

    def fail(key: str, msg: str) -> None:
        raise ConfigError(f"{where(key)}: '{key}' {msg}")

    return fail


def _check_model(m: ModelSpec, fail: Fail) -> None:
    if bool(m.preset) == bool(m.config_file):
        fail("model", "needs exactly one of 'preset' or 'config_file'")
    if m.config_file and not m.arch:
        fail("model.arch", f"is required with model.config_file (one of {', '.join(ARCHITECTURES)})")
    if m.arch and m.arch not in ARCHITECTURES:
        fail("model.arch", f"must be one of {', '.join(ARCHITECTURES)}, got {m.arch!r}")


def _check_counts(exp: Experiment, fail: Fail) -> None:
    """Sizes, steps and intervals: positive, or >= 0 where 0 switches something off."""
    d, t = exp.data, exp.train
    for key, value in (("data.max_seq_length", d.max_seq_length),
                       ("data.max_predictions_per_seq", d.max_predictions_per_seq),
                       ("train.batch_size", t.batch_size), ("train.total_steps", t.total_steps),
                       ("train.steps_per_loop", t.steps_per_loop),
                       ("train.checkpoint_every", t.checkpoint_every),
                       ("train.keep_checkpoints", t.keep_checkpoints),
                       ("train.max_nonfinite_steps", t.max_nonfinite_steps),
                       ("train.gradient_accumulation_steps", t.gradient_accumulation_steps)):
        if value is not None and value <= 0:
            fail(key, f"must be positive, got {value}")
    for key, value in (("train.eval_every", t.eval_every), ("train.eval_steps", t.eval_steps),
                       ("optimizer.warmup_steps", exp.optimizer.warmup_steps),
                       ("data.shuffle_buffer", d.shuffle_buffer)):
        if value < 0:
            fail(key, f"must be >= 0, got {value}")
    if None not in (d.max_seq_length, d.max_predictions_per_seq) and \
            d.max_predictions_per_seq > d.max_seq_length:
        fail("data.max_predictions_per_seq", "must not exceed data.max_seq_length")


def check_optimizer(o: OptimizerSpec, fail: Fail) -> None:
    if o.name not in OPTIMIZERS:
        fail("optimizer.name", f"must be one of {', '.join(OPTIMIZERS)}, got {o.name!r}")
    for key, value, ok, expected in (
            ("optimizer.learning_rate", o.learning_rate, o.learning_rate > 0, "positive"),
            ("optimizer.end_learning_rate", o.end_learning_rate,
             0 <= o.end_learning_rate <= o.learning_rate, "in [0, optimizer.learning_rate]"),
            ("optimizer.power", o.power, o.power > 0, "positive"),
            ("optimizer.weight_decay_rate", o.weight_decay_rate, 0 <= o.weight_decay_rate < 1,
             "in [0, 1)"),
            ("optimizer.beta_1", o.beta_1, 0 <= o.beta_1 < 1, "in [0, 1)"),
            ("optimizer.beta_2", o.beta_2, 0 <= o.beta_2 < 1, "in [0, 1)"),
            ("optimizer.epsilon", o.epsilon, o.epsilon > 0, "positive"),
            ("optimizer.clip_norm", o.clip_norm, o.clip_norm is None or o.clip_norm > 0,
             "positive or null (no clipping)")):
        if not ok:
            fail(key, f"must be {expected}, got {value}")


def check_matches(d: DistillationMatches, fail: Fail) -> None:
    """The config-time checks of a distillation section's matches (pretraining and tasks)."""
    if not d.matches:
        fail("distillation.matches", "needs at least one match (see tpu_configs/distill/ for "
                                     "the TinyBERT and MobileBERT recipes)")
    for i, m in enumerate(d.matches):
        check_match(m, fail, f"distillation.matches[{i}]")
    if d.steps_per_layer < 0:
        fail("distillation.steps_per_layer", f"must be >= 0, got {d.steps_per_layer}")
    if d.vocab not in ("same", "map_tokens"):
        fail("distillation.vocab", f"must be same or map_tokens, got {d.vocab!r}")
    if not math.isfinite(d.hard_label_weight) or d.hard_label_weight < 0:
        fail("distillation.hard_label_weight", f"must be >= 0, got {d.hard_label_weight}")


def _check_distillation(d: DistillationSpec, fail: Fail) -> None:
    t = d.teacher
    if t.preset and t.config_file:
        fail("distillation.teacher", "takes 'preset' or 'config_file', not both (or neither: "
                                     "the teacher's model directory gives its config)")
    if t.config_file and not t.arch:
        fail("distillation.teacher.arch", "is required with a teacher config_file")
    if not t.checkpoint:
        fail("distillation.teacher.checkpoint", "is required (the teacher's trained weights)")
    if d.layerwise_lr not in LAYERWISE_LR:
        fail("distillation.layerwise_lr", f"must be one of {', '.join(LAYERWISE_LR)}, got "
                                          f"{d.layerwise_lr!r}")
    check_matches(d, fail)


def refuse_old_distillation_keys(raw: Mapping, source: str) -> None:
    """`distillation.kind` / `weights` / `ground_truth_ratio` (the hard-coded recipes before
    the matches) get a one-line pointer to what replaced them."""
    d = raw.get("distillation")
    old = [k for k in ("kind", "weights", "ground_truth_ratio") if isinstance(d, Mapping) and k in d]
    if old:
        raise ConfigError(f"{source}: distillation.{old[0]} is no longer read: a distillation "
                          f"stage is a list of distillation.matches; start from a recipe with "
                          f"'base: distill/<recipe>.yaml' (tinybert_general, mobilebert_pkt, "
                          f"mobilebert_main, tinybert_task_intermediate, tinybert_task_prediction)")


def _check(exp: Experiment, lines: Mapping[str, int | str]) -> None:
    """Every value in range and every combination consistent; errors name key and line."""
    fail = failer(exp.source, lines)
    _check_model(exp.model, fail)
    if not exp.data.train:
        fail("data.train", "is required (a directory written by `tfcompact create-data`, or a glob)")
    _check_counts(exp, fail)
    check_optimizer(exp.optimizer, fail)
    if exp.train.precision not in PRECISIONS:
        fail("train.precision", f"must be one of {', '.join(PRECISIONS)}, got "
                                f"{exp.train.precision!r}")
    if exp.train.eval_steps and not exp.data.eval:
        fail("train.eval_steps", "needs data.eval (held-out shards)")
    if exp.distillation is not None:
        _check_distillation(exp.distillation, fail)


def experiment_from_dict(raw: Mapping, source: str = "<dict>",
                         overrides: Sequence[str] = (), _lines: Mapping[str, int | str] | None = None
                         ) -> Experiment:
    """Validate a raw mapping (as read from YAML) into an `Experiment`."""
    raw = apply_overrides(dict(raw or {}), overrides)
    lines: dict[str, int | str] = dict(_lines or {})
    for item in overrides:  # errors in overridden keys point at the override, not the file
        key = item.split("=", 1)[0].strip()
        lines[key] = f"--set {item}"
    refuse_old_distillation_keys(raw, source)
    exp = typed.load(Experiment, raw, where_in(source, lines), skip=("source",))
    exp.source = source
    _check(exp, lines)
    return exp


def _merge(base: Mapping, child: Mapping) -> dict:
    """`base` with `child`'s values: sections merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            value = _merge(merged[key], value)
        merged[key] = value
    return merged


def read_yaml_with_base(path: pathlib.Path, chain: tuple[pathlib.Path, ...] = ()
               ) -> tuple[dict, dict[str, int | str]]:
    """(raw mapping, dotted key -> line) of an experiment file, with its `base:` file (a path
    relative to it, itself possibly with a base; or a list of them, merged in order) merged
    under it. Lines of keys that come from a base read `<base file>:<line>`."""
    text = path.read_text(encoding="utf-8")
    lines: dict[str, int | str] = dict(_line_map(text, str(path)))
    raw = yaml.safe_load(text)
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    raw = raw or {}
    if "base" not in raw:
        return raw, lines
    names = raw.pop("base")
    merged: dict = {}
    inherited: dict[str, int | str] = {}
    for name in names if isinstance(names, list) else [names]:
        base = path.parent / str(name)
        if not isinstance(name, str) or not base.is_file():
            raise ConfigError(f"{path}:{lines['base']}: 'base' must name an experiment file "
                              f"(or a list of them) relative to it, got {name!r}")
        if base.resolve() in chain + (path.resolve(),):
            raise ConfigError(f"{path}:{lines['base']}: 'base' {name} includes this file again")
        base_raw, base_lines = read_yaml_with_base(base, chain + (path.resolve(),))
        merged = _merge(merged, base_raw)
        inherited.update({k: v if isinstance(v, str) else f"{base.name}:{v}"
                          for k, v in base_lines.items()})
    return _merge(merged, raw), {**inherited, **lines}


def load_experiment(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Experiment:
    """Read and validate an experiment YAML (a path or the name of a shipped config). A file
    may start from another (`base: name.yaml`) and give only the values that differ."""
    p = resolve_config_path(str(path))
    raw, lines = read_yaml_with_base(p)
    return experiment_from_dict(raw, source=str(p), overrides=overrides, _lines=lines)


def dump_experiment(exp: Experiment, path: str | os.PathLike) -> None:
    """Write the resolved experiment (after overrides) as YAML, atomically."""
    atomic_write_text(path, yaml.safe_dump(exp.to_dict(), sort_keys=False, allow_unicode=True))
