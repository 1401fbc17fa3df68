"""What a run reports: the progress line, TensorBoard scalars and `summary.json`.

Only the chief writes files (`tfcompact.train.strategy.is_chief`); TensorBoard events are
written with TensorFlow alone (`tf.summary.scalar` needs the tensorboard package, this writes
the same event: a float32 tensor tagged for the "scalars" plugin).
"""
from __future__ import annotations

import json
import math
import os
from typing import Mapping

import tensorflow as tf

from tfcompact.files import atomic_write_text

SUMMARY_FILE = "summary.json"
TENSORBOARD_DIR = "tensorboard"

# Metrics shown in the progress line, in this order (all are written to TensorBoard).
SHOWN_METRICS = ("loss", "mlm_loss", "mlm_accuracy", "sop_accuracy", "nsp_accuracy", "rtd_loss",
                 "rtd_accuracy", "rtd_auc", "attention_loss", "hidden_loss",
                 "feature_map_transfer_loss", "attention_transfer_loss",
                 # fine-tuning (the task objectives' running metrics)
                 "accuracy", "token_accuracy", "start_accuracy", "end_accuracy")


def write_scalar(tag: str, value: float, step: int) -> None:
    """One TensorBoard scalar event under the default writer."""
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step,
                     metadata=metadata.SerializeToString())


class Scalars:
    """TensorBoard writers `<model_dir>/tensorboard/{train,eval}`; a no-op off the chief."""

    def __init__(self, model_dir: str, chief: bool):
        self.writers = {}
        if chief:
            root = os.path.join(model_dir, TENSORBOARD_DIR)
            self.writers = {kind: tf.summary.create_file_writer(os.path.join(root, kind))
                            for kind in ("train", "eval")}

    def write(self, kind: str, step: int, metrics: Mapping[str, float]) -> None:
        writer = self.writers.get(kind)
        if writer is None:
            return
        with writer.as_default(step=step):
            for key, value in metrics.items():
                write_scalar(key, value, step)
        writer.flush()


def format_duration(seconds: float) -> str:
    """`1h02m03s`, `4m05s`, or `?` before an estimate exists."""
    if not math.isfinite(seconds):
        return "?"
    h, rem = divmod(int(round(seconds)), 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def format_metrics(metrics: Mapping[str, float], keys=SHOWN_METRICS) -> str:
    """`loss 1.2345 | mlm_accuracy 0.1234 | ...` for the keys present."""
    return " | ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics)


def progress_line(step: int, total: int, metrics: Mapping[str, float], eta: float) -> str:
    """The line printed after each loop of steps."""
    speed = f"{metrics['examples_per_second']:.0f} ex/s"
    if "model_tflops_per_second" in metrics:
        speed += f" | {1e3 * metrics['model_tflops_per_second']:.4g} GFLOP/s"
    if "utilisation" in metrics:
        speed += f" | util {100 * metrics['utilisation']:.1f}%"
    return (f"step {step}/{total} | {format_metrics(metrics)} | lr {metrics['learning_rate']:.3g}"
            f" | grad_norm {metrics['gradient_norm']:.3g} | {speed} | ETA {format_duration(eta)}")


def write_summary(model_dir: str, summary: Mapping) -> None:
    """`<model_dir>/summary.json`, atomically."""
    atomic_write_text(os.path.join(model_dir, SUMMARY_FILE),
                      json.dumps(summary, indent=2, default=float) + "\n")
