"""What the pretraining and the fine-tuning drivers share when a frozen teacher runs beside
the student: the objective built from `distillation.matches` (with its trained projections),
the vocabulary check, and MobileBERT's start from the teacher's embeddings.

The teacher is never in the optimizer (its variables are not trainable and the loop only
updates the student's and the projections'), never in the run's checkpoints (it is reloaded
from its own directory) and never in an export (exports read the student's `model` only).
"""
from __future__ import annotations

import dataclasses
import os
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


VOCAB_CHOICES = ("same", "map_tokens")


def check_same_vocab(student_vocab: Optional[str], teacher_vocab: Optional[str],
                     source: str, how: str = "same") -> None:
    """`same`: teacher and student must read the same token ids (the same vocabulary file
    contents). `map_tokens`: both vocabularies are needed (the teacher reads the student's
    tokens through `vocab_table`)."""
    if how == "map_tokens":
        if not student_vocab or not teacher_vocab:
            raise ConfigError(f"{source}: distillation.vocab map_tokens needs the student's and the "
                              f"teacher's vocab.txt (student {student_vocab}, teacher "
                              f"{teacher_vocab})")
        return
    if not student_vocab or not teacher_vocab:
        return
    if Vocab.load(student_vocab).md5 != Vocab.load(teacher_vocab).md5:
        raise ConfigError(f"{source}: the teacher's vocabulary {teacher_vocab} differs from the "
                          f"student's {student_vocab}; distillation needs both to read the same "
                          f"token ids: train the student on data made with the teacher's vocab, "
                          f"or set distillation.vocab: map_tokens")


def vocab_table(student_vocab: str, teacher_vocab: str) -> tuple[np.ndarray, int]:
    """(teacher id of every student token, by its string ([UNK] when the teacher lacks it);
    how many student tokens the teacher lacks)."""
    student, teacher = Vocab.load(student_vocab), Vocab.load(teacher_vocab)
    table = np.array([teacher.token_to_id.get(t, teacher.unk_id) for t in student.tokens],
                     np.int32)
    return table, sum(1 for t in student.tokens if t not in teacher.token_to_id)


def teacher_on_student_tokens(teacher: keras.Model, table: np.ndarray) -> keras.Model:
    """The teacher reading the student's token ids: `input_ids` mapped through `table`, and
    its MLM logits (when it has them) taken at the student's tokens, so that logits matches
    compare the same vocabulary. Same variables; nothing new is trained."""
    inputs = {t.name: keras.Input(shape=(None,), dtype="int32", name=t.name)
              for t in teacher.inputs}
    table_t = keras.ops.convert_to_tensor(table)
    mapped = dict(inputs, input_ids=keras.ops.take(table_t, inputs["input_ids"], axis=0))
    outputs = dict(teacher(mapped))
    if "mlm_logits" in outputs:
        outputs["mlm_logits"] = keras.ops.take(outputs["mlm_logits"], table_t, axis=-1)
    return keras.Model(list(inputs.values()), outputs, name=f"{teacher.name}_mapped")


def _plain_path(path: str) -> str:
    return path[len(TEACHER_PREFIX):] if path.startswith(TEACHER_PREFIX) else path


def teacher_vocab_of(model_dir: str) -> Optional[str]:
    """The vocab.txt of a teacher's model directory, None when it has none."""
    import tensorflow as tf

    from tfcompact import modeldir

    path = os.path.join(model_dir, modeldir.VOCAB_FILE)
    return path if tf.io.gfile.exists(path) else None


def prepare_teacher(spec, teacher: keras.Model, student_vocab: Optional[str],
                    teacher_vocab: Optional[str], log) -> keras.Model:
    """The teacher as the loop calls it: itself, or reading the student's tokens
    (`distillation.vocab: map_tokens`)."""
    if spec.vocab != "map_tokens":
        return teacher
    table, missing = vocab_table(student_vocab, teacher_vocab)
    log(f"distillation.vocab map_tokens: {len(table) - missing} of {len(table)} student tokens "
        f"found in the teacher's vocabulary ({missing} read as [UNK])")
    return teacher_on_student_tokens(teacher, table)


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
