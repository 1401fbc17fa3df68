"""What the pretraining and the fine-tuning drivers share when a frozen teacher runs beside
the student: the objective built from `distillation.matches` (with its trained projections),
the vocabulary check, and MobileBERT's start from the teacher's embeddings.

The teacher is never in the optimizer (its variables are not trainable and the loop only
updates the student's and the projections'), never in the run's checkpoints (it is reloaded
from its own directory) and never in an export (exports read the student's `model` only).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import keras
import numpy as np

from tfcompact.errors import ConfigError
from tfcompact.objectives.distillation import (DistillationProjections, distillation_objective,
                                               feature_shapes, projection_sizes, resolve_matches)
from tfcompact.text.tokenizer import Vocab

TEACHER_PREFIX = "teacher/"


@dataclasses.dataclass
class Distillation:
    """The objective of a distillation stage and its trained projections (None: none)."""

    loss_fn: Callable
    projections: Optional[DistillationProjections]
    terms: list  # metric names of the matches, for the log


def build_distillation(spec, student: keras.Model, teacher: keras.Model, *, total_steps: int,
                       hard_loss: Callable | None, source: str,
                       initializer_range: float = 0.02) -> Distillation:
    """Resolve `spec.matches` against both models (one-line errors naming the match) and build
    the loss function; call inside the strategy's scope (the projections are variables)."""
    try:
        student_shapes = feature_shapes(student, "the student")
        teacher_shapes = feature_shapes(teacher, "distillation.teacher")
        resolved = resolve_matches(spec.matches, student_shapes, teacher_shapes)
        sizes = projection_sizes(resolved, student_shapes, teacher_shapes)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    projections = DistillationProjections(sizes, initializer_range) if sizes else None
    loss_fn = distillation_objective(resolved, total_steps=total_steps,
                                     steps_per_layer=spec.steps_per_layer,
                                     projections=projections, hard_loss=hard_loss,
                                     hard_label_weight=spec.hard_label_weight)
    return Distillation(loss_fn, projections, [r.name for r in resolved])


def check_same_vocab(student_vocab: Optional[str], teacher_vocab: Optional[str],
                     source: str) -> None:
    """Teacher and student must read the same token ids: the same vocabulary file contents."""
    if not student_vocab or not teacher_vocab:
        return
    if Vocab.load(student_vocab).md5 != Vocab.load(teacher_vocab).md5:
        raise ConfigError(f"{source}: the teacher's vocabulary {teacher_vocab} differs from the "
                          f"student's {student_vocab}; distillation needs both to read the same "
                          f"token ids (train the student on data made with the teacher's vocab)")


def _plain_path(path: str) -> str:
    return path[len(TEACHER_PREFIX):] if path.startswith(TEACHER_PREFIX) else path


def copy_from_teacher(student: keras.Model, teacher: keras.Model) -> list[str]:
    """Assign the teacher's values to every student variable outside the encoder
    (`/encoder/` not in its path) that the teacher has under the same name and shape
    (MobileBERT's students start from the teacher's embeddings and MLM head). Returns the
    paths copied."""
    source: dict[str, Any] = {_plain_path(v.path): v for v in teacher.weights}
    copied = []
    for v in student.weights:
        t = source.get(v.path)
        if t is None or "/encoder/" in f"/{v.path}" or tuple(t.shape) != tuple(v.shape):
            continue
        v.assign(np.asarray(t.numpy(), dtype=np.dtype(v.dtype)))
        copied.append(v.path)
    return copied
