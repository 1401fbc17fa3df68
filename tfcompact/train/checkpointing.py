"""Checkpoints of a training run, resume, and warm start.

`<model_dir>/checkpoints` holds `tf.train.Checkpoint(model, optimizer, step, nonfinite_in_a_row)`
written by `tf.train.CheckpointManager`: the model weights, the optimizer's slots and iteration
counter, and the global step, which is also the input position (batches consumed: the reader
skips exactly that many on restart). A save writes the `ckpt-N` files first and then replaces
the `checkpoint` state file atomically, so a run killed during a save restarts from the
previous checkpoint. Warm start (`init_checkpoint`) reads only the model weights of another
model directory (one written by training or by `tfcompact import-tf1`).
"""
from __future__ import annotations

import os

import tensorflow as tf

from tfcompact.errors import CheckpointError

CHECKPOINT_SUBDIR = "checkpoints"


def _first_line(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e)
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


class RunCheckpoints:
    """The CheckpointManager of one run plus resume logic."""

    def __init__(self, model_dir: str, *, model, optimizer, step: tf.Variable,
                 nonfinite_in_a_row: tf.Variable, keep: int, write_dir: str | None = None):
        """`write_dir`: where a non-chief worker writes its (discarded) copies; every worker
        resumes from `model_dir`, the chief's checkpoints."""
        self.read_directory = os.path.join(model_dir, CHECKPOINT_SUBDIR)
        self.directory = os.path.join(write_dir or model_dir, CHECKPOINT_SUBDIR)
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step,
                                              nonfinite_in_a_row=nonfinite_in_a_row)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory,
                                                  max_to_keep=keep, step_counter=step)
        self.step = step

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def restore_latest(self) -> str | None:
        """Restore everything from the newest checkpoint; None when the run starts fresh."""
        prefix = tf.train.latest_checkpoint(self.read_directory)
        if prefix is None:
            return None
        try:
            status = self.checkpoint.restore(prefix)
            status.assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError, ValueError) as e:
            raise CheckpointError(f"{prefix}: cannot resume from this checkpoint "
                                  f"({_first_line(e)}); it was written for a different model or "
                                  f"optimizer: use a new model_dir") from None
        return prefix

    def save(self) -> str:
        """Write `ckpt-<step>` (no-op when that step is already saved)."""
        step = int(self.step.numpy())
        latest = self.manager.latest_checkpoint
        if latest is not None and latest.endswith(f"ckpt-{step}"):
            return latest
        return self.manager.save(checkpoint_number=step)


def warm_start(model, init_checkpoint: str) -> str:
    """Load only the model weights of another model directory (or a checkpoint prefix in one)."""
    from tfcompact import modeldir

    path = init_checkpoint
    prefix = None
    if tf.io.gfile.exists(os.path.join(path, modeldir.CONFIG_FILE)):
        ckpt_dir = os.path.join(path, modeldir.CHECKPOINT_DIR)
        prefix = tf.train.latest_checkpoint(ckpt_dir) if tf.io.gfile.isdir(ckpt_dir) else None
        if prefix is None:
            raise CheckpointError(f"init_checkpoint {path}: model directory has no checkpoint "
                                  f"under {ckpt_dir}")
    elif tf.io.gfile.exists(path + ".index"):
        prefix = path
    else:
        raise CheckpointError(f"init_checkpoint {path}: expected a tfcompact model directory "
                              f"(with {modeldir.CONFIG_FILE}) or a checkpoint prefix in one; for a "
                              f"released TF1 checkpoint run `tfcompact import-tf1` first")
    try:
        modeldir.checkpoint_model_variable_count(prefix, "model")
    except CheckpointError:
        raise CheckpointError(f"init_checkpoint {prefix}: not a tfcompact training checkpoint "
                              f"(no 'model' object); import TF1 checkpoints with "
                              f"`tfcompact import-tf1`") from None
    try:
        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.expect_partial()  # heads the source lacks (e.g. a new SOP head) stay initialised
        status.assert_nontrivial_match()
    except (tf.errors.OpError, AssertionError, ValueError) as e:
        raise CheckpointError(f"init_checkpoint {prefix}: does not match the model being "
                              f"trained ({_first_line(e)})") from None
    return prefix
