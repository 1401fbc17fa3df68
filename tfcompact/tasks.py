"""The fine-tuning task contract: task kinds, the examples readers yield, the features models
take, and `task.json`, the part of a fine-tuned model directory that says what the task is.

Three kinds cover the Chinese benchmarks:

- ``classification``: one text (ChnSentiCorp, TNEWS, IFLYTEK) or a pair (LCQMC, BQ, XNLI,
  AFQMC, CMNLI, OCNLI, CSL) -> one of ``labels``; scored by accuracy (or macro-F1);
- ``tagging``: one label per word (NER, segmentation; CoNLL ``char tag`` lines) -> entity-level
  precision/recall/F1 over the BIO/BIOES ``labels``;
- ``span``: a question and a context (SQuAD v1 JSON: CMRC 2018, DRCD) -> an answer span,
  scored by EM/F1 as the CMRC 2018 scorer computes them.

A fine-tuned model directory is a model directory (`tfcompact.modeldir`: ``tfcompact.json``
with the backbone's architecture and config, ``vocab.txt``, ``checkpoints/``) plus::

    <dir>/task.json    TaskSpec below (kind, labels in id order, sequence sizes, input format)
    <dir>/best/        the checkpoint with the best dev metric (tf.train.Checkpoint(model=...))

Features (what `tfcompact.inputs.task_features` writes and the task models read), per example,
all int32 except the weights:
    input_ids, input_mask, segment_ids      [max_seq_length]
    example_weight (float32) []             1, or 0 for padding examples of a last eval batch
    classification: label_ids []
    tagging:        label_ids [S], label_weights (float32) [S]   (weight 1 on a word's first piece)
    span:           start_positions [], end_positions []        (0 = [CLS]: answer not in window)
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

from tfcompact import typed
from tfcompact.errors import ConfigError
from tfcompact.files import atomic_write_text, read_bytes

TASK_KINDS = ("classification", "tagging", "span")
TASK_FILE = "task.json"
BEST_DIR = "best"
TAGGING_SCHEMES = ("BIO", "BIOES")
# The dev metric each kind is judged by (the best checkpoint is chosen on it).
METRICS = {
    "classification": ("accuracy", "macro_f1"),
    "tagging": ("f1", "precision", "recall", "accuracy"),
    "span": ("f1", "em"),
}

ENCODER_FEATURES = ("input_ids", "input_mask", "segment_ids")
LABEL_FEATURES = {
    "classification": ("label_ids",),
    "tagging": ("label_ids", "label_weights"),
    "span": ("start_positions", "end_positions"),
}
FLOAT_FEATURES = ("example_weight", "label_weights")


def feature_names(kind: str) -> tuple[str, ...]:
    """Every feature key of a `kind` example, in a fixed order."""
    check_kind(kind)
    return ENCODER_FEATURES + ("example_weight",) + LABEL_FEATURES[kind]


def per_token(kind: str, name: str) -> bool:
    """Whether a feature has one value per token ([max_seq_length]) rather than one per example."""
    return name in ENCODER_FEATURES or (kind == "tagging" and name in LABEL_FEATURES["tagging"])


def check_kind(kind: str, where: str = "task kind") -> str:
    if kind not in TASK_KINDS:
        raise ConfigError(f"{where}: expected one of {', '.join(TASK_KINDS)}, got {kind!r}")
    return kind


# ------------------------------------------------------------------------------ examples

@dataclasses.dataclass(frozen=True)
class TextExample:
    """A classification example: one text or a pair, and its label (None when unlabelled).
    `source` is ``file:line`` (or ``file:line:field``) for error messages."""

    guid: str
    text_a: str
    text_b: Optional[str]
    label: Optional[str]
    source: str = ""


@dataclasses.dataclass(frozen=True)
class TaggedExample:
    """A tagging example: words (characters for Chinese NER) and one tag per word."""

    guid: str
    words: tuple
    tags: Optional[tuple]
    source: str = ""


@dataclasses.dataclass(frozen=True)
class SpanExample:
    """A SQuAD v1 question: `answers` are (text, character offset in `context`) pairs; the
    first is the training target, all are references for scoring."""

    guid: str
    question: str
    context: str
    answers: tuple
    source: str = ""


# ------------------------------------------------------------------------------ task.json

@dataclasses.dataclass
class TaskOptions:
    """How a task's files are read and its inputs sized: shared by `task.json` and the
    `task:` section of a fine-tuning experiment."""

    max_seq_length: int = 128
    task_format: str = ""  # the reader format (tfcompact.inputs.task_readers.FORMATS)
    text_fields: list = dataclasses.field(default_factory=list)
    label_field: Optional[str] = None
    metric: str = ""  # the dev metric the best checkpoint is chosen by; "": the kind's first
    tagging_scheme: str = "BIO"
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best_size: int = 20
    do_lower_case: bool = True


@dataclasses.dataclass
class TaskSpec(TaskOptions):
    """What a fine-tuned model does and how its inputs are read (``task.json``)."""

    kind: str = "classification"
    labels: list = dataclasses.field(default_factory=list)  # class names / tags in id order
    name: str = ""
    # classification: whether the examples are text pairs (known from the training data even
    # when the reader found its columns by itself and text_fields is empty)
    text_pair: bool = False

    def __post_init__(self):
        check_kind(self.kind, "task.kind")
        if not self.metric:
            self.metric = METRICS[self.kind][0]
        if self.metric not in METRICS[self.kind]:
            raise ConfigError(f"task.metric: expected one of {', '.join(METRICS[self.kind])} for "
                              f"a {self.kind} task, got {self.metric!r}")
        if self.tagging_scheme not in TAGGING_SCHEMES:
            raise ConfigError(f"task.tagging_scheme: expected one of {', '.join(TAGGING_SCHEMES)}, "
                              f"got {self.tagging_scheme!r}")
        if self.kind != "span" and not self.labels:
            raise ConfigError(f"task.labels: a {self.kind} task needs at least one label")
        if self.max_seq_length < 8:
            raise ConfigError(f"task.max_seq_length: expected at least 8, got {self.max_seq_length}")

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False, indent=2) + "\n"


def write_task_spec(model_dir: str, spec: TaskSpec) -> str:
    path = os.path.join(model_dir, TASK_FILE)
    atomic_write_text(path, spec.to_json())
    return path


def is_task_dir(model_dir: str) -> bool:
    import tensorflow as tf

    return tf.io.gfile.exists(os.path.join(model_dir, TASK_FILE))


def read_task_spec(model_dir: str) -> TaskSpec:
    """`task.json` of a fine-tuned model directory; one-line errors naming the file and field."""
    path = os.path.join(model_dir, TASK_FILE)
    try:
        raw = json.loads(read_bytes(path).decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; {model_dir} is not a fine-tuned model directory "
                          f"(run `tfcompact finetune` first)") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return typed.load(TaskSpec, raw, typed.at(path))
