"""Pretraining objectives: masked LM, NSP/SOP, ELECTRA replaced-token detection.

Formulas follow the original code: BERT/ALBERT `get_masked_lm_output` (weighted mean of the
per-position cross-entropy, denominator sum(weights) + 1e-5), `get_next_sentence_output`
(mean cross-entropy), ELECTRA `_get_discriminator_output` (sigmoid cross-entropy averaged over
non-padding tokens, denominator + 1e-6) and total = gen_weight * MLM + disc_weight * RTD.
Everything is computed in float32 whatever the model's compute dtype.

Replicas: by default each function returns the mean over the examples it is given. With
`cross_replica=True` every denominator (masked positions, tokens, examples) is summed over the
replicas of the current `tf.distribute` replica context, so each replica returns its share of
the global mean: summing the replicas' values (which the optimizers do with the gradients)
gives exactly the mean over the global batch even when replicas hold different numbers of
masked positions. With one replica both modes are identical.
"""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from tfcompact.architectures import ARCHITECTURES as PRETRAINING_ARCHITECTURES
from tfcompact.errors import ConfigError


def as_float32(x) -> tf.Tensor:
    return tf.cast(x, tf.float32)


def replica_denominator(total: tf.Tensor, cross_replica: bool) -> tf.Tensor:
    """`total`, summed over replicas when `cross_replica` and inside a replica context."""
    total = tf.stop_gradient(as_float32(total))
    if not cross_replica:
        return total
    context = tf.distribute.get_replica_context()
    if context is None:
        return total
    return context.all_reduce(tf.distribute.ReduceOp.SUM, total)


def _weighted_mean(values, weights, epsilon: float, cross_replica: bool) -> tf.Tensor:
    weights = as_float32(weights)
    return tf.reduce_sum(weights * as_float32(values)) / (
        replica_denominator(tf.reduce_sum(weights), cross_replica) + epsilon)


def masked_lm_per_position_loss(logits, ids) -> tf.Tensor:
    """Cross-entropy of `ids` [B, P] under `logits` [B, P, V], float32 [B, P]."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(ids, tf.int32), logits=as_float32(logits))


def masked_lm_loss(logits, ids, weights, *, epsilon: float = 1e-5,
                   cross_replica: bool = False) -> tf.Tensor:
    """sum(weights * CE) / (sum(weights) + epsilon); padding predictions have weight 0."""
    return _weighted_mean(masked_lm_per_position_loss(logits, ids), weights, epsilon, cross_replica)


def masked_lm_accuracy(logits, ids, weights, *, epsilon: float = 1e-5,
                       cross_replica: bool = False) -> tf.Tensor:
    """Weighted fraction of masked positions whose argmax is the original token."""
    correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.cast(ids, tf.int32))
    return _weighted_mean(correct, weights, epsilon, cross_replica)


def _sentence_labels(labels) -> tf.Tensor:
    return tf.reshape(tf.cast(labels, tf.int32), [-1])


def sentence_loss(logits, labels, *, cross_replica: bool = False) -> tf.Tensor:
    """NSP (BERT) / SOP (ALBERT) loss: mean cross-entropy over examples. labels [B] or [B, 1]."""
    per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=_sentence_labels(labels), logits=as_float32(logits))
    return tf.reduce_sum(per_example) / replica_denominator(tf.size(per_example), cross_replica)


def sentence_accuracy(logits, labels, *, cross_replica: bool = False) -> tf.Tensor:
    """Fraction of examples whose NSP/SOP argmax equals the label."""
    correct = as_float32(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32),
                            _sentence_labels(labels)))
    return tf.reduce_sum(correct) / replica_denominator(tf.size(correct), cross_replica)


def electra_rtd_loss(logits, labels, input_mask, *, epsilon: float = 1e-6,
                     cross_replica: bool = False) -> tf.Tensor:
    """Replaced-token detection: sigmoid CE of labels (1 = replaced) averaged over non-pad tokens."""
    losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=as_float32(labels), logits=as_float32(logits))
    return _weighted_mean(losses, input_mask, epsilon, cross_replica)


def electra_rtd_accuracy(logits, labels, input_mask, *, cross_replica: bool = False) -> tf.Tensor:
    """Fraction of non-pad tokens where (logit > 0) equals the label."""
    predictions = tf.cast(as_float32(logits) > 0.0, tf.int32)
    correct = tf.equal(predictions, tf.cast(labels, tf.int32))
    return _weighted_mean(correct, input_mask, 0.0, cross_replica)


def electra_rtd_precision_recall(logits, labels, input_mask) -> tuple[tf.Tensor, tf.Tensor]:
    """Precision and recall of "replaced" over non-pad tokens (0 when undefined)."""
    mask = as_float32(input_mask)
    predicted = as_float32(as_float32(logits) > 0.0) * mask
    actual = as_float32(labels) * mask
    true_positive = tf.reduce_sum(predicted * actual)
    return (tf.math.divide_no_nan(true_positive, tf.reduce_sum(predicted)),
            tf.math.divide_no_nan(true_positive, tf.reduce_sum(actual)))


def rtd_auc_histogram(logits, labels, input_mask, num_bins: int = 200) -> tf.Tensor:
    """Counts for a streaming ROC AUC: float32 [2, num_bins], row 0 original tokens, row 1
    replaced tokens, binned by sigmoid(logit) into equal-width bins of [0, 1]; padding ignored.
    Histograms add up over steps and replicas (sum them), then use `auc_from_histogram`."""
    probs = tf.reshape(tf.sigmoid(as_float32(logits)), [-1])
    bins = tf.clip_by_value(tf.cast(tf.floor(probs * num_bins), tf.int32), 0, num_bins - 1)
    mask = tf.reshape(as_float32(input_mask), [-1])
    positive = tf.reshape(as_float32(labels), [-1]) * mask
    negative = (1.0 - tf.reshape(as_float32(labels), [-1])) * mask
    return tf.stack([
        tf.math.unsorted_segment_sum(negative, bins, num_bins),
        tf.math.unsorted_segment_sum(positive, bins, num_bins),
    ])


def auc_from_histogram(histogram) -> tf.Tensor:
    """ROC AUC from `rtd_auc_histogram` counts: P(score_pos > score_neg) + 0.5 P(same bin).
    Exact when positives and negatives never share a bin; 0.5 when a class is empty."""
    histogram = as_float32(histogram)
    negative, positive = histogram[0], histogram[1]
    positives_below = tf.cumsum(positive, exclusive=True)
    # For each negative in bin b: positives strictly above plus half the positives in bin b.
    positives_above = tf.reduce_sum(positive) - positives_below - positive
    pairs = tf.reduce_sum(negative * (positives_above + 0.5 * positive))
    total = tf.reduce_sum(negative) * tf.reduce_sum(positive)
    return tf.where(total > 0, pairs / tf.maximum(total, 1.0), 0.5)


def _get(name: str, outputs: Mapping, batch: Mapping):
    if name in outputs:
        return outputs[name]
    if name in batch:
        return batch[name]
    raise KeyError(f"pretraining objective needs {name!r} in the model outputs or the batch")


def electra_loss(outputs: Mapping, batch: Mapping, disc_weight: float = 50.0,
                 gen_weight: float = 1.0, *, cross_replica: bool = False,
                 ) -> tuple[tf.Tensor, dict]:
    """ELECTRA: gen_weight * generator MLM + disc_weight * RTD, with metrics of each term."""
    ids, weights = batch["masked_lm_ids"], batch["masked_lm_weights"]
    mlm_logits = outputs["mlm_logits"]
    input_mask = _get("input_mask", outputs, batch)
    rtd_logits, rtd_labels = outputs["rtd_logits"], outputs["rtd_labels"]
    mlm = masked_lm_loss(mlm_logits, ids, weights, epsilon=1e-6, cross_replica=cross_replica)
    rtd = electra_rtd_loss(rtd_logits, rtd_labels, input_mask, cross_replica=cross_replica)
    total = gen_weight * mlm + disc_weight * rtd
    metrics = {
        "total_loss": total,
        "mlm_loss": mlm,
        "mlm_accuracy": masked_lm_accuracy(mlm_logits, ids, weights, epsilon=1e-6,
                                           cross_replica=cross_replica),
        "rtd_loss": rtd,
        "rtd_accuracy": electra_rtd_accuracy(rtd_logits, rtd_labels, input_mask,
                                             cross_replica=cross_replica),
    }
    if "sampled_ids" in outputs:
        sampled_correct = tf.equal(tf.cast(outputs["sampled_ids"], tf.int32), tf.cast(ids, tf.int32))
        metrics["sampled_accuracy"] = _weighted_mean(sampled_correct, weights, 1e-6, cross_replica)
    if not cross_replica:
        # Ratios of sums: not additive over replicas, so only reported per replica.
        precision, recall = electra_rtd_precision_recall(rtd_logits, rtd_labels, input_mask)
        metrics["rtd_precision"] = precision
        metrics["rtd_recall"] = recall
        metrics["rtd_auc"] = auc_from_histogram(rtd_auc_histogram(rtd_logits, rtd_labels, input_mask))
    return total, metrics


def pretraining_loss(arch: str, outputs: Mapping, batch: Mapping, *,
                     disc_weight: float = 50.0, cross_replica: bool = False,
                     ) -> tuple[tf.Tensor, dict]:
    """Total pretraining loss of `arch` and a dict of float32 scalars, one per term.

    BERT/TinyBERT/MobileBERT: MLM (+ NSP when the model has `sentence_logits`); ALBERT: MLM +
    SOP; ELECTRA: `electra_loss`. Keys: total_loss, mlm_loss, mlm_accuracy, and nsp_/sop_ loss
    and accuracy, or ELECTRA's rtd_* and sampled_accuracy.
    """
    if arch not in PRETRAINING_ARCHITECTURES:
        raise ConfigError(f"arch: expected one of {', '.join(PRETRAINING_ARCHITECTURES)}, got {arch!r}")
    if arch == "electra":
        return electra_loss(outputs, batch, disc_weight=disc_weight, cross_replica=cross_replica)
    ids, weights = batch["masked_lm_ids"], batch["masked_lm_weights"]
    logits = outputs["mlm_logits"]
    mlm = masked_lm_loss(logits, ids, weights, cross_replica=cross_replica)
    metrics = {
        "mlm_loss": mlm,
        "mlm_accuracy": masked_lm_accuracy(logits, ids, weights, cross_replica=cross_replica),
    }
    total = mlm
    if "sentence_logits" in outputs and "next_sentence_labels" in batch:
        prefix = "sop" if arch == "albert" else "nsp"
        sentence_logits, labels = outputs["sentence_logits"], batch["next_sentence_labels"]
        sentence = sentence_loss(sentence_logits, labels, cross_replica=cross_replica)
        metrics[f"{prefix}_loss"] = sentence
        metrics[f"{prefix}_accuracy"] = sentence_accuracy(sentence_logits, labels,
                                                          cross_replica=cross_replica)
        total = total + sentence
    metrics["total_loss"] = total
    return total, metrics



def pretraining_objective(arch: str):
    """The train loop's loss function for `arch`'s pretraining objective: each replica returns
    its share of the global mean (the loop sums the shares over replicas)."""
    def loss_fn(outputs, batch, teacher_outputs, step):
        return pretraining_loss(arch, outputs, batch, cross_replica=True)

    return loss_fn
