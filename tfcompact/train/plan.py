"""The plan of a pretraining run, made before anything is built: the data manifests (read
once), the student's and teacher's architecture and config, and the sequence sizes taken
from the data. `tfcompact pretrain` and `tfcompact submit` both make it, so a job is checked
the same way on the laptop that submits it and on the TPU VM that runs it.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

import tensorflow as tf

from tfcompact.configs import get_preset, resolve_model
from tfcompact import modeldir
from tfcompact.errors import ConfigError, DataError
from tfcompact.train.experiment import Experiment, ModelSpec, TeacherSpec
from tfcompact.inputs.manifest import read_data_manifest
from tfcompact.train.preflight import Placement, preflight


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    """An architecture with its config; `preset` is set when the config is a preset's as is."""

    arch: str
    config: Any
    preset: str | None
    sentence_head: str | None  # None for ELECTRA, which has no sentence-level head


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a run trains on what: `exp` carries the data's sequence sizes (from its manifest)."""

    exp: Experiment
    manifests: Mapping[str, Mapping[str, Any]]  # "data.train" (and "data.eval" when evaluated)
    model: ModelChoice
    teacher: ModelChoice | None

    @property
    def train_manifest(self) -> Mapping[str, Any]:
        return self.manifests["data.train"]


def resolve_model_section(spec: ModelSpec | TeacherSpec, manifest: Mapping | None,
                          source: str, field: str = "model") -> ModelChoice:
    """The architecture and config a `model` (or `distillation.teacher`) section asks for:
    a preset, or an architecture with an original config file, plus `overrides` (for the
    student; `vocab_size: data` takes the data's vocabulary size)."""
    where = f"{source}: {field}"
    if spec.preset and spec.arch and spec.arch != get_preset(spec.preset).arch:
        raise ConfigError(f"{where}.arch {spec.arch!r} contradicts preset {spec.preset!r} "
                          f"({get_preset(spec.preset).arch})")
    if not spec.preset and not tf.io.gfile.exists(spec.config_file):
        raise ConfigError(f"{where}.config_file {spec.config_file}: file not found")
    resolved = resolve_model(spec.preset or spec.arch, None if spec.preset else spec.config_file,
                             where=where)
    overrides = dict(getattr(spec, "overrides", {}) or {})
    if overrides.get("vocab_size") == "data":
        if manifest is None:
            raise ConfigError(f"{where}.overrides.vocab_size 'data' needs data.train")
        overrides["vocab_size"] = int(manifest["vocab_size"])
    resolved = resolved.with_overrides(overrides, where=f"{where}.overrides")
    head = resolved.sentence_head if resolved.architecture.has_sentence_head else None
    return ModelChoice(resolved.arch, resolved.config, resolved.preset_name, head)


def resolve_teacher(spec: TeacherSpec, manifest: Mapping | None, source: str) -> ModelChoice:
    """The teacher's architecture and config: its preset or config file, else the model
    directory it is loaded from (`tfcompact.json`)."""
    if spec.preset or spec.config_file:
        return resolve_model_section(spec, manifest, source, "distillation.teacher")
    if not tf.io.gfile.exists(os.path.join(spec.checkpoint, modeldir.CONFIG_FILE)):
        raise ConfigError(f"{source}: distillation.teacher needs 'preset' or 'config_file' when "
                          f"its checkpoint {spec.checkpoint} is not a model directory (no "
                          f"{modeldir.CONFIG_FILE})")
    info = modeldir.read_model_dir(spec.checkpoint)
    return ModelChoice(info.arch, info.config, info.preset, info.sentence_head)


def read_manifests(exp: Experiment) -> dict[str, dict]:
    """The manifests of data.train and (when evaluated) data.eval, by field name."""
    manifests = {"data.train": read_data_manifest(exp.data.train, "data.train")}
    if exp.data.eval and exp.train.eval_steps:
        manifests["data.eval"] = read_data_manifest(exp.data.eval, "data.eval")
    return manifests


def sizes_from_data(exp: Experiment, manifest: Mapping[str, Any]) -> Experiment:
    """`exp` with data.max_seq_length and data.max_predictions_per_seq taken from the train
    manifest where the experiment leaves them out; a value it gives is checked against every
    manifest by `preflight.check_data`."""
    sizes = {key: int(manifest[key]) for key in ("max_seq_length", "max_predictions_per_seq")
             if getattr(exp.data, key) is None}
    return dataclasses.replace(exp, data=dataclasses.replace(exp.data, **sizes))


def make_plan(exp: Experiment, manifests: Mapping[str, dict] | None = None) -> Plan:
    """Read the manifests (unless given) and resolve the student and the teacher."""
    manifests = dict(manifests) if manifests is not None else read_manifests(exp)
    train = manifests["data.train"]
    exp = sizes_from_data(exp, train)
    teacher = None
    if exp.distillation is not None:
        teacher = resolve_teacher(exp.distillation.teacher, train, exp.source)
    return Plan(exp, manifests, resolve_model_section(exp.model, train, exp.source), teacher)


def check_plan(plan: Plan, placement: Placement) -> None:
    """Every check that needs no model: paths, batch split, data against the model."""
    exp = plan.exp
    preflight(exp, placement, plan.model.config, plan.manifests)
    if "data.eval" in plan.manifests:
        needed = exp.train.eval_steps * exp.train.batch_size
        have = int(plan.manifests["data.eval"]["num_instances"])
        if have < needed:
            raise DataError(f"data.eval ({exp.data.eval}): {have} instances, but train.eval_steps "
                            f"{exp.train.eval_steps} x batch {exp.train.batch_size} = {needed}")
