"""Predictions of a task model over a whole split, decoded and scored.

One path for the dev evaluations during fine-tuning, `tfcompact evaluate` and `tfcompact
predict`: read the split (`inputs.task_readers`), encode it (`inputs.task_features`), run the
model over padded evaluation batches under the strategy (every example exactly once, in order),
decode (class labels; word tags; n-best answer spans across windows) and score with the
official metric (`tfcompact.metrics`).
"""
from __future__ import annotations

import collections
import dataclasses
import json
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from tfcompact import metrics
from tfcompact.errors import DataError
from tfcompact.files import atomic_write_text
from tfcompact.inputs.task_features import (EncodedTask, decode_spans, decode_tags,
                                            encode_examples, task_dataset)
from tfcompact.inputs.task_readers import check_labels, read_examples
from tfcompact.tasks import TaskSpec
from tfcompact.train.loop import call_model, input_keys

ROW = "example_row"


@dataclasses.dataclass
class Split:
    """A split read and encoded: the examples, their features and the decoding metadata."""

    path: str
    examples: list
    encoded: EncodedTask
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    @property
    def labelled(self) -> bool:
        e = self.examples[0] if self.examples else None
        return e is not None and getattr(e, "label", getattr(e, "tags", getattr(e, "answers", None))) \
            not in (None, ())


def read_examples_of(spec: TaskSpec, path: str, labelled: bool = True
                     ) -> tuple[list, collections.Counter]:
    """Every example of a task file (a file with none is an error naming it) and the counts of
    what the reader skipped or repaired."""
    counts: collections.Counter = collections.Counter()
    examples = list(read_examples(spec.kind, path, spec.task_format, spec.text_fields or None,
                                  spec.label_field, labelled, counts))
    if not examples:
        raise DataError(f"{path}: no examples (expected at least one "
                        f"{'question' if spec.kind == 'span' else 'row'})")
    return examples, counts


def read_split(spec: TaskSpec, path: str, tokenizer, *, labelled: bool = True,
               is_training: bool = False, check: bool = True,
               read: tuple[list, collections.Counter] | None = None) -> Split:
    """Read (or take the already `read` examples) and encode one split; labels outside
    `spec.labels` (and, for tagging, tag sequences the scheme forbids) are errors when `check`."""
    examples, counts = read if read is not None else read_examples_of(spec, path, labelled)
    if check and labelled and spec.kind != "span":
        check_labels(examples, spec.labels, path)
    return Split(path, examples, encode_examples(spec.kind, examples, tokenizer, spec, is_training),
                 counts)


def predict_outputs(strategy: tf.distribute.Strategy, model, features: dict,
                    batch_size: int) -> dict[str, np.ndarray]:
    """The model's outputs for every feature row, in row order (padding rows dropped)."""
    rows = len(next(iter(features.values())))
    features = dict(features, **{ROW: np.arange(rows, dtype=np.int32)})
    dataset = task_dataset(features, batch_size, is_training=False, seed=0)
    keys = input_keys(model)

    def replica_fn(batch):
        out = call_model(model, batch, False, keys)
        return {**{k: tf.cast(v, tf.float32) for k, v in out.items()},
                ROW: batch[ROW], "example_weight": batch["example_weight"]}

    @tf.function
    def step(batch):
        return strategy.run(replica_fn, (batch,))

    pieces: dict[str, list] = {}
    for batch in strategy.experimental_distribute_dataset(dataset):
        out = step(batch)
        for k, v in out.items():
            pieces.setdefault(k, []).extend(x.numpy() for x in strategy.experimental_local_results(v))
    merged = {k: np.concatenate(v) for k, v in pieces.items()}
    keep = merged.pop("example_weight") > 0
    order = merged.pop(ROW)[keep]
    result = {k: np.empty_like(v[keep]) for k, v in merged.items()}
    for k, v in merged.items():
        result[k][order] = v[keep]
    return result


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def decode(spec: TaskSpec, split: Split, outputs: dict[str, np.ndarray]) -> Any:
    """Predictions in the task's terms: class labels (+ probabilities), word tags, or
    {question id: answer text}."""
    if spec.kind == "classification":
        probabilities = softmax(outputs["logits"])
        return {"labels": [spec.labels[i] for i in probabilities.argmax(-1)],
                "probabilities": probabilities}
    if spec.kind == "tagging":
        return decode_tags(split.encoded.meta, outputs["logits"].argmax(-1), spec.labels)
    answers, _ = decode_spans(split.examples, split.encoded.meta, outputs["start_logits"],
                              outputs["end_logits"], n_best_size=spec.n_best_size,
                              max_answer_length=spec.max_answer_length)
    return answers


def references(spec: TaskSpec, examples: Sequence) -> Any:
    if spec.kind == "classification":
        return [e.label for e in examples]
    if spec.kind == "tagging":
        return [list(e.tags) for e in examples]
    return {e.guid: [text for text, _ in e.answers] for e in examples}


def score(spec: TaskSpec, split: Split, predictions: Any) -> dict[str, float]:
    """The official metric(s) of the task on a labelled split."""
    refs = references(spec, split.examples)
    if spec.kind == "classification":
        predictions = predictions["labels"]
    return metrics.score(spec.kind, refs, predictions)


def evaluate_split(strategy, model, spec: TaskSpec, split: Split, batch_size: int
                   ) -> tuple[dict[str, float], Any]:
    """(metrics, predictions) of the model on a labelled split."""
    outputs = predict_outputs(strategy, model, split.encoded.features, batch_size)
    predictions = decode(spec, split, outputs)
    return score(spec, split, predictions), predictions


# ------------------------------------------------------------------------------ writing

def _classification_lines(spec: TaskSpec, split: Split, predictions: dict) -> str:
    if spec.task_format in ("jsonl", "clue"):
        lines = []
        for e, label, p in zip(split.examples, predictions["labels"], predictions["probabilities"]):
            lines.append(json.dumps({"id": e.guid, "label": label,
                                     "probabilities": {n: round(float(x), 6)
                                                       for n, x in zip(spec.labels, p)}},
                                    ensure_ascii=False))
        return "\n".join(lines) + "\n"
    sep = "," if spec.task_format == "csv" else "\t"
    pair = any(e.text_b is not None for e in split.examples)
    header = ["label", "text_a"] + (["text_b"] if pair else [])
    rows = [sep.join(header)]
    for e, label in zip(split.examples, predictions["labels"]):
        rows.append(sep.join([label, e.text_a] + ([e.text_b or ""] if pair else [])))
    return "\n".join(rows) + "\n"


def write_predictions(path: str, spec: TaskSpec, split: Split, predictions: Any) -> None:
    """Predictions in the task's own format, atomically: classification as the input's layout
    (TSV/CSV with the predicted label, or JSON lines with probabilities), tagging as CoNLL
    `word tag` lines, spans as the official submission JSON {question id: answer}."""
    if spec.kind == "classification":
        text = _classification_lines(spec, split, predictions)
    elif spec.kind == "tagging":
        blocks = ["\n".join(f"{w} {t}" for w, t in zip(e.words, tags))
                  for e, tags in zip(split.examples, predictions)]
        text = "\n\n".join(blocks) + "\n"
    else:
        metrics.mrc.write_predictions(path, predictions)
        return
    atomic_write_text(path, text)


# ------------------------------------------------------------------------------ commands

def check_arguments(args) -> str | None:
    """`--batch_size` and `--output` of evaluate/predict, checked before any model is loaded;
    the output path to write (None when not asked for)."""
    from tfcompact.errors import UserError
    from tfcompact.files import check_output_file, is_remote

    if args.batch_size < 1:
        raise UserError(f"--batch_size {args.batch_size}: expected at least 1")
    if not args.output or is_remote(args.output):
        return args.output
    return check_output_file(args.output, "--output", inputs=[args.input],
                             overwrite=args.overwrite)


def load_for_prediction(model_dir: str, checkpoint: str | None = None):
    """(task model, TaskSpec, tokenizer) of a fine-tuned model directory."""
    from tfcompact.errors import ConfigError
    from tfcompact.modeldir import load_task_model
    from tfcompact.text.tokenizer import FullTokenizer

    model, spec, info = load_task_model(model_dir, checkpoint)
    if info.vocab_path is None:
        raise ConfigError(f"{model_dir}: no vocab.txt in the model directory")
    return model, spec, FullTokenizer(info.vocab_path, do_lower_case=spec.do_lower_case)


def predict_file(model, spec: TaskSpec, tokenizer, path: str, output: str,
                 batch_size: int = 32) -> int:
    """Predictions for every example of `path`, written to `output`; the example count."""
    split = read_split(spec, path, tokenizer, labelled=False, check=False)
    outputs = predict_outputs(tf.distribute.get_strategy(), model, split.encoded.features,
                              batch_size)
    write_predictions(output, spec, split, decode(spec, split, outputs))
    return len(split.examples)


def evaluate_file(model, spec: TaskSpec, tokenizer, path: str, batch_size: int = 32,
                  output: str | None = None) -> dict:
    """The official scores of the model on a labelled file (predictions written if asked)."""
    split = read_split(spec, path, tokenizer, labelled=True)
    scores, predictions = evaluate_split(tf.distribute.get_strategy(), model, spec, split,
                                         batch_size)
    if output:
        write_predictions(output, spec, split, predictions)
    return scores
