"""Fine-tuning objectives: softmax cross-entropy for classification, tagging and span models.

Formulas follow the original fine-tuning code: BERT ``run_classifier.py`` (mean over examples
of -log p(label)), a token-level mean over the labelled pieces for tagging, and
``run_squad.py`` (start and end cross-entropy over the sequence positions, averaged:
(start + end) / 2). Every example is weighted by ``example_weight`` (0 for the padding
examples that fill an evaluation's last batch), so padding changes neither the loss nor the
metrics. Everything is computed in float32 whatever the model's compute dtype.

As `pretraining_objective`, each replica returns its share of the global-batch mean: the
denominators (weighted examples, weighted tokens) are summed over the replicas, so summing the
replicas' values gives the mean over the global batch (the loop needs
``loss_is_replica_share=True``). Outside a replica context the values are plain means.
"""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from tfcompact.objectives.pretraining import as_float32, replica_denominator
from tfcompact.tasks import check_kind

# The metrics each kind's loss function returns besides the loss (the loop adds "loss").
TASK_METRICS = {
    "classification": ("accuracy",),
    "tagging": ("token_accuracy",),
    "span": ("start_loss", "end_loss", "start_accuracy", "end_accuracy"),
}


def weighted_mean(values, weights, *, cross_replica: bool = False) -> tf.Tensor:
    """sum(weights * values) / sum(weights), the denominator summed over replicas when
    `cross_replica`; 0 when every weight is 0."""
    weights = as_float32(weights)
    total = tf.reduce_sum(weights * as_float32(values))
    return tf.math.divide_no_nan(total, replica_denominator(tf.reduce_sum(weights), cross_replica))


def cross_entropy(logits, labels) -> tf.Tensor:
    """-log softmax(logits)[label] in float32; logits [..., C], labels [...]."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=as_float32(logits))


def correct(logits, labels) -> tf.Tensor:
    """1.0 where the argmax of `logits` is the label, else 0.0."""
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return as_float32(tf.equal(predictions, tf.cast(labels, tf.int32)))


def _example_weight(batch: Mapping, like) -> tf.Tensor:
    if "example_weight" in batch:
        return tf.reshape(as_float32(batch["example_weight"]), [-1])
    return tf.ones(tf.shape(like)[:1], tf.float32)


def classification_loss(outputs: Mapping, batch: Mapping, *, cross_replica: bool = False,
                        ) -> tuple[tf.Tensor, dict]:
    """Mean cross-entropy of ``label_ids`` [B] under ``logits`` [B, C], and accuracy."""
    logits, labels = outputs["logits"], tf.reshape(batch["label_ids"], [-1])
    weights = _example_weight(batch, labels)
    loss = weighted_mean(cross_entropy(logits, labels), weights, cross_replica=cross_replica)
    return loss, {"accuracy": weighted_mean(correct(logits, labels), weights,
                                            cross_replica=cross_replica)}


def tagging_loss(outputs: Mapping, batch: Mapping, *, cross_replica: bool = False,
                 ) -> tuple[tf.Tensor, dict]:
    """Cross-entropy of ``label_ids`` [B, S] under ``logits`` [B, S, C], averaged over the
    labelled pieces (``label_weights`` × ``example_weight``), and token accuracy."""
    logits, labels = outputs["logits"], batch["label_ids"]
    weights = as_float32(batch["label_weights"]) * _example_weight(batch, labels)[:, None]
    loss = weighted_mean(cross_entropy(logits, labels), weights, cross_replica=cross_replica)
    return loss, {"token_accuracy": weighted_mean(correct(logits, labels), weights,
                                                  cross_replica=cross_replica)}


def span_loss(outputs: Mapping, batch: Mapping, *, cross_replica: bool = False,
              ) -> tuple[tf.Tensor, dict]:
    """(start cross-entropy + end cross-entropy) / 2 over the sequence positions, each a mean
    over examples, with the terms and the start/end accuracies."""
    metrics, terms = {}, []
    for end in ("start", "end"):
        logits = outputs[f"{end}_logits"]
        positions = tf.reshape(batch[f"{end}_positions"], [-1])
        weights = _example_weight(batch, positions)
        term = weighted_mean(cross_entropy(logits, positions), weights,
                             cross_replica=cross_replica)
        metrics[f"{end}_loss"] = term
        metrics[f"{end}_accuracy"] = weighted_mean(correct(logits, positions), weights,
                                                   cross_replica=cross_replica)
        terms.append(term)
    return (terms[0] + terms[1]) / 2.0, metrics


TASK_LOSSES = {"classification": classification_loss, "tagging": tagging_loss,
               "span": span_loss}


def task_loss(kind: str, outputs: Mapping, batch: Mapping, *, cross_replica: bool = False,
              ) -> tuple[tf.Tensor, dict]:
    """The loss of a `kind` task model's outputs on a batch of task features, and its metrics
    (TASK_METRICS[kind]), float32 scalars."""
    return TASK_LOSSES[check_kind(kind)](outputs, batch, cross_replica=cross_replica)


def task_objective(kind: str, num_labels: int = 0):
    """The train loop's loss function for a `kind` task: each replica returns its share of
    the global mean (run the loop with ``loss_is_replica_share=True``). `num_labels` is
    accepted for symmetry with the model builder; the logits carry it."""
    loss_of = TASK_LOSSES[check_kind(kind)]

    def loss_fn(outputs, batch, teacher_outputs, step):
        return loss_of(outputs, batch, cross_replica=True)

    return loss_fn
