"""Fine-tuning experiments: one YAML file per task run (`tpu_configs/finetune/*.yaml`).

Loaded and checked by the same machinery as the pretraining experiments
(`tfcompact.train.experiment`): `base:` inheritance, `--set key=value` overrides, one-line
errors naming the file, line and dotted key. Sections:

- ``task``: what the data is (kind, reader format, files, fields, sequence sizes, the dev metric);
- ``model``: where the backbone comes from: ``init`` (a pretraining or `import-tf1` model
  directory: weights and vocabulary), or a ``preset`` / original ``config_file`` for a randomly
  initialised baseline (then ``vocab`` is required);
- ``optimizer``: AdamW with linear warm-up over ``warmup_ratio`` of the steps then linear decay,
  optional layer-wise learning-rate decay (ELECTRA's fine-tuning: 0.8 small/base, 0.9 large);
- ``train``: batch, epochs, evaluation interval, early stopping, seed, numerics.
"""
from __future__ import annotations

import difflib
import os
import pathlib
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import yaml

from tfcompact import typed
from tfcompact.architectures import ARCHITECTURES
from tfcompact.errors import ConfigError
from tfcompact.files import atomic_write_text
from tfcompact.tasks import METRICS, TAGGING_SCHEMES, TASK_KINDS, TaskOptions
from tfcompact.train.experiment import (PRECISIONS, DistillationMatches, Fail, TpuSpec,
                                        apply_overrides, check_matches, failer, plain_dict,
                                        read_yaml_with_base, refuse_old_distillation_keys,
                                        tpu_configs_dir, where_in)

FINETUNE_DIR = "finetune"


@dataclass
class TaskDataSpec(TaskOptions):
    """The task's data: kind, files and labels, plus the reading/sizing options task.json keeps."""

    kind: str = "classification"
    train: str = ""
    dev: str | None = None
    test: str | None = None
    labels: list[str] = field(default_factory=list)  # default: collected from the train split


@dataclass
class TaskModelSpec:
    """The backbone: a model directory to start from, or a preset/config for random init."""

    init: str | None = None
    preset: str | None = None
    arch: str | None = None
    config_file: str | None = None
    overrides: dict = field(default_factory=dict)
    vocab: str | None = None  # required without `init` (which brings its own vocab.txt)
    # With `init`: its architecture, config and vocabulary but NOT its weights, the baseline
    # that shows what pretraining adds under otherwise identical settings.
    random_init: bool = False


@dataclass
class TaskOptimizerSpec:
    """AdamW (BERT's AdamWeightDecay) on a linear warm-up + linear decay schedule."""

    learning_rate: float = 6e-5
    warmup_ratio: float = 0.1
    weight_decay_rate: float = 0.01
    layerwise_lr_decay: float = 1.0  # 1: off; ELECTRA fine-tuning uses 0.8
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-6
    clip_norm: float | None = 1.0


@dataclass
class TaskTrainSpec:
    """Batch, length, evaluation, best-checkpoint selection and numerics."""

    model_dir: str = ""
    batch_size: int = 32  # GLOBAL batch
    epochs: float = 3.0
    total_steps: int = 0  # 0: epochs x (train examples // batch_size)
    steps_per_loop: int = 100
    eval_every: int = 0  # steps between dev evaluations; 0: once per epoch
    eval_batch_size: int = 0  # 0: batch_size
    early_stopping_patience: int = 0  # stop after this many evaluations without a new best; 0: off
    checkpoint_every: int = 0  # 0: at every evaluation
    keep_checkpoints: int = 2
    seed: int = 12345
    precision: str = "float32"
    jit_compile: bool = False
    max_nonfinite_steps: int = 10


@dataclass
class TaskDistillationSpec(DistillationMatches):
    """Task distillation (TinyBERT's `task_distill.py`): the student learns from a fine-tuned
    teacher's features and predictions on the task's (possibly augmented) training data."""

    teacher: str = ""  # the teacher's fine-tuned model directory (`tfcompact finetune` output)
    # online: the teacher runs beside the student at every step; precomputed: its logits on the
    # training split are computed once at the start (logits matches only), so that epochs over
    # (augmented) data cost no teacher forward pass.
    teacher_logits: str = "online"


@dataclass
class FinetuneExperiment:
    """A whole fine-tuning (or task distillation) run."""

    name: str = ""
    description: str = ""
    task: TaskDataSpec = field(default_factory=TaskDataSpec)
    model: TaskModelSpec = field(default_factory=TaskModelSpec)
    optimizer: TaskOptimizerSpec = field(default_factory=TaskOptimizerSpec)
    train: TaskTrainSpec = field(default_factory=TaskTrainSpec)
    distillation: TaskDistillationSpec | None = None
    tpu: TpuSpec = field(default_factory=TpuSpec)
    source: str = field(default="<dict>", repr=False, compare=False)

    def to_dict(self) -> dict:
        return plain_dict(self)


# --------------------------------------------------------------------------- checks

def _check_task(t: TaskDataSpec, fail: Fail) -> None:
    if t.kind not in TASK_KINDS:
        fail("task.kind", f"must be one of {', '.join(TASK_KINDS)}, got {t.kind!r}")
    if not t.train:
        fail("task.train", "is required (the training split)")
    if t.metric and t.metric not in METRICS[t.kind]:
        fail("task.metric", f"must be one of {', '.join(METRICS[t.kind])} for a {t.kind} task, "
                            f"got {t.metric!r}")
    if t.tagging_scheme not in TAGGING_SCHEMES:
        fail("task.tagging_scheme", f"must be one of {', '.join(TAGGING_SCHEMES)}")
    if len(t.text_fields) > 2:
        fail("task.text_fields", f"takes one or two fields, got {len(t.text_fields)}")
    for key, value, low in (("task.max_seq_length", t.max_seq_length, 8),
                            ("task.doc_stride", t.doc_stride, 1),
                            ("task.max_query_length", t.max_query_length, 1),
                            ("task.max_answer_length", t.max_answer_length, 1),
                            ("task.n_best_size", t.n_best_size, 1)):
        if value < low:
            fail(key, f"must be at least {low}, got {value}")
    if t.kind == "span" and t.max_query_length + 3 >= t.max_seq_length:
        fail("task.max_query_length", f"leaves no room for the context in max_seq_length "
                                      f"{t.max_seq_length}")


def _check_model(m: TaskModelSpec, fail: Fail) -> None:
    given = [k for k in ("init", "preset", "config_file") if getattr(m, k)]
    if len(given) != 1:
        fail("model", "needs exactly one of 'init' (a model directory), 'preset' or 'config_file'")
    if m.config_file and not m.arch:
        fail("model.arch", f"is required with model.config_file (one of {', '.join(ARCHITECTURES)})")
    if m.arch and m.arch not in ARCHITECTURES:
        fail("model.arch", f"must be one of {', '.join(ARCHITECTURES)}, got {m.arch!r}")
    if not m.init and not m.vocab:
        fail("model.vocab", "is required when the backbone is not loaded from a model directory")
    if m.init and m.overrides:
        fail("model.overrides", "cannot change a model loaded from model.init")
    if m.random_init and not m.init:
        fail("model.random_init", "needs model.init (the model directory whose config to use)")


def _check_numbers(exp: FinetuneExperiment, fail: Fail) -> None:
    o, t = exp.optimizer, exp.train
    for key, value, ok, expected in (
            ("optimizer.learning_rate", o.learning_rate, o.learning_rate > 0, "positive"),
            ("optimizer.warmup_ratio", o.warmup_ratio, 0 <= o.warmup_ratio < 1, "in [0, 1)"),
            ("optimizer.weight_decay_rate", o.weight_decay_rate, 0 <= o.weight_decay_rate < 1,
             "in [0, 1)"),
            ("optimizer.layerwise_lr_decay", o.layerwise_lr_decay,
             0 < o.layerwise_lr_decay <= 1, "in (0, 1]"),
            ("optimizer.beta_1", o.beta_1, 0 <= o.beta_1 < 1, "in [0, 1)"),
            ("optimizer.beta_2", o.beta_2, 0 <= o.beta_2 < 1, "in [0, 1)"),
            ("optimizer.epsilon", o.epsilon, o.epsilon > 0, "positive"),
            ("optimizer.clip_norm", o.clip_norm, o.clip_norm is None or o.clip_norm > 0,
             "positive or null"),
            ("train.batch_size", t.batch_size, t.batch_size > 0, "positive"),
            ("train.epochs", t.epochs, t.epochs > 0, "positive"),
            ("train.steps_per_loop", t.steps_per_loop, t.steps_per_loop > 0, "positive"),
            ("train.keep_checkpoints", t.keep_checkpoints, t.keep_checkpoints > 0, "positive"),
            ("train.max_nonfinite_steps", t.max_nonfinite_steps, t.max_nonfinite_steps > 0,
             "positive")):
        if not ok:
            fail(key, f"must be {expected}, got {value}")
    for key in ("total_steps", "eval_every", "eval_batch_size", "early_stopping_patience",
                "checkpoint_every"):
        if getattr(t, key) < 0:
            fail(f"train.{key}", f"must be >= 0, got {getattr(t, key)}")
    if t.precision not in PRECISIONS:
        fail("train.precision", f"must be one of {', '.join(PRECISIONS)}, got {t.precision!r}")


def finetune_experiment_from_dict(raw: Mapping, source: str = "<dict>",
                                  overrides: Sequence[str] = (),
                                  _lines: Mapping[str, int | str] | None = None
                                  ) -> FinetuneExperiment:
    """Validate a raw mapping (as read from YAML) into a `FinetuneExperiment`."""
    raw = apply_overrides(dict(raw or {}), overrides)
    lines: dict[str, int | str] = dict(_lines or {})
    for item in overrides:
        lines[item.split("=", 1)[0].strip()] = f"--set {item}"
    refuse_old_distillation_keys(raw, source)
    exp = typed.load(FinetuneExperiment, raw, where_in(source, lines), skip=("source",))
    exp.source = source
    fail = failer(source, lines)
    if exp.distillation is not None:
        if not exp.distillation.teacher:
            fail("distillation.teacher", "is required (the teacher's fine-tuned model directory)")
        check_matches(exp.distillation, fail)
        d = exp.distillation
        if d.teacher_logits not in ("online", "precomputed"):
            fail("distillation.teacher_logits", f"must be online or precomputed, got "
                                                f"{d.teacher_logits!r}")
        if d.teacher_logits == "precomputed" and any(m.feature != "logits" for m in d.matches):
            fail("distillation.teacher_logits", "precomputed needs logits matches only (hidden "
                                                "states and attention come from the teacher at "
                                                "every step)")
    _check_task(exp.task, fail)
    _check_model(exp.model, fail)
    _check_numbers(exp, fail)
    if not exp.task.metric:
        exp.task.metric = METRICS[exp.task.kind][0]
    return exp


# --------------------------------------------------------------------------- files

def finetune_configs_dir() -> pathlib.Path:
    """`tpu_configs/finetune/`: the published fine-tuning recipes as task configs."""
    return tpu_configs_dir() / FINETUNE_DIR


def cpu_task_examples() -> list[pathlib.Path]:
    """The CPU examples on the packaged datasets (tfcompact/data/finetune_*.yaml)."""
    return sorted((pathlib.Path(__file__).resolve().parent.parent / "data").glob("finetune_*.yaml"))


def list_task_config_files() -> list[pathlib.Path]:
    return sorted(finetune_configs_dir().glob("*.yaml")) + cpu_task_examples()


def resolve_task_config_path(name_or_path: str) -> pathlib.Path:
    """A path as given, or the bare name of a shipped task config (`lcqmc`, `cmrc2018.yaml`)."""
    p = pathlib.Path(name_or_path)
    if p.is_file():
        return p
    if os.sep in name_or_path:
        raise ConfigError(f"{name_or_path}: no such task config file")
    stem = name_or_path[:-5] if name_or_path.endswith(".yaml") else name_or_path
    shipped = {f.stem: f for f in list_task_config_files()}
    if stem in shipped:
        return shipped[stem]
    close = difflib.get_close_matches(stem, list(shipped), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; shipped: {', '.join(shipped)}"
    raise ConfigError(f"{name_or_path}: no such file and no shipped task config of that name{hint}")


def load_finetune_experiment(path: str | os.PathLike, overrides: Sequence[str] = ()
                             ) -> FinetuneExperiment:
    """Read and validate a task config (a path or a shipped name), with its `base:` chain."""
    p = resolve_task_config_path(str(path))
    raw, lines = read_yaml_with_base(p)
    return finetune_experiment_from_dict(raw, source=str(p), overrides=overrides, _lines=lines)


def dump_finetune_experiment(exp: FinetuneExperiment, path: str | os.PathLike) -> None:
    atomic_write_text(path, yaml.safe_dump(exp.to_dict(), sort_keys=False, allow_unicode=True))
