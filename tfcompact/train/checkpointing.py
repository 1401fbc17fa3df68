"""Checkpoints of a training run, resume, and warm start.

`<model_dir>/checkpoints` holds `tf.train.Checkpoint(model, optimizer, step, nonfinite_in_a_row)`
written by `tf.train.CheckpointManager`: the model weights, the optimizer's slots and iteration
counter, and the global step, which is also the input position (batches consumed: the reader
skips exactly that many on restart). A save writes the `ckpt-N` files first and then replaces
the `checkpoint` state file atomically, so a run killed during a save restarts from the
previous checkpoint. Warm start (`init_checkpoint`) reads only the model weights of another
model directory (one written by training or by `tfcompact import-tf1`).

Nothing on disk is trusted at resume: every checkpoint found (in the state file or as
`ckpt-N.*` files, so a lost or garbled state file does not hide them) is verified newest first
by reading every tensor (TensorFlow checks each tensor's CRC32C) and checking the model's
weights are finite; a damaged one is skipped with a warning naming it, and the run resumes from
the newest intact one. Checkpoints that exist but are all damaged stop the run: it never
silently restarts from step 0. Leftover `ckpt-N_temp*` directories of an interrupted save are
removed. A save is refused when the weights are not finite, so a checkpoint is always "good".
"""
from __future__ import annotations

import os
import re

import numpy as np
import tensorflow as tf

from tfcompact import modeldir
from tfcompact.errors import CheckpointError


def _first_line(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e)
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


_CKPT = re.compile(r"^ckpt-(\d+)(?:\.index|\.data-\d+-of-\d+)$")
_TEMP = re.compile(r"^ckpt-\d+_temp")


def _found_prefixes(directory: str) -> list[str]:
    """Checkpoint prefixes named by the state file or present as ckpt-N files, newest first."""
    prefixes = set()
    try:
        state = tf.train.get_checkpoint_state(directory)
        if state is not None:
            prefixes.update(state.all_model_checkpoint_paths)
            if state.model_checkpoint_path:
                prefixes.add(state.model_checkpoint_path)
    except Exception:  # a garbled state file: the ckpt-N files below still name the checkpoints
        pass
    for name in tf.io.gfile.listdir(directory):
        m = _CKPT.match(name)
        if m:
            prefixes.add(os.path.join(directory, f"ckpt-{m.group(1)}"))
    # Every checkpoint of a run lives in `directory`: name each by its file name there (the
    # state file may hold paths relative to the working directory, or stale absolute ones
    # from before the model directory was moved).
    prefixes = {os.path.join(directory, os.path.basename(p.rstrip("/"))) for p in prefixes}

    def number(p: str) -> int:
        m = re.search(r"ckpt-(\d+)$", p)
        return int(m.group(1)) if m else -1

    return sorted(prefixes, key=number, reverse=True)


def verify_checkpoint(prefix: str) -> str | None:
    """Why the checkpoint at `prefix` cannot be trusted, or None when it is intact: its files
    exist, every tensor reads back (CRC32C checked) and the model's float weights are finite."""
    if not tf.io.gfile.exists(prefix + ".index"):
        return "its .index file is missing"
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name, dtype in reader.get_variable_to_dtype_map().items():
            value = reader.get_tensor(name)
            if name.startswith("model/") and dtype.is_floating and \
                    not np.all(np.isfinite(value)):
                return f"variable {name} holds NaN/Inf"
    except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as e:
        return _first_line(e)  # (a truncated data file raises IndexError from the reader)
    return None


class RunCheckpoints:
    """The CheckpointManager of one run plus verified resume and guarded saves."""

    def __init__(self, model_dir: str, *, model, optimizer, step: tf.Variable,
                 nonfinite_in_a_row: tf.Variable, keep: int, write_dir: str | None = None,
                 log=print, auxiliary=None):
        """`write_dir`: where a non-chief worker writes its (discarded) copies; every worker
        resumes from `model_dir`, the chief's checkpoints."""
        self.read_directory = os.path.join(model_dir, modeldir.CHECKPOINT_DIR)
        self.directory = os.path.join(write_dir or model_dir, modeldir.CHECKPOINT_DIR)
        self.model = model
        # `auxiliary`: training-only variables (distillation projections), saved and resumed
        # with the run under their own key, so that exports (which read `model`) never see them.
        extra = {} if auxiliary is None else {"distillation": auxiliary.trackable()}
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step,
                                              nonfinite_in_a_row=nonfinite_in_a_row, **extra)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory,
                                                  max_to_keep=keep, step_counter=step)
        self.step = step
        self.log = log
        # The newest checkpoint known to be intact (restored or written by this run); the
        # manager's own "latest" may name a damaged one.
        self._intact_latest: str | None = None

    @property
    def latest(self) -> str | None:
        """The newest intact checkpoint of this run (restored or saved), if any."""
        return self._intact_latest

    def remove_interrupted_saves(self) -> list[str]:
        """Delete `ckpt-N_temp*` leftovers of a save that was killed midway (chief only)."""
        removed = []
        if not tf.io.gfile.isdir(self.directory):
            return removed
        for name in tf.io.gfile.listdir(self.directory):
            if _TEMP.match(name.rstrip("/")):
                path = os.path.join(self.directory, name.rstrip("/"))
                if tf.io.gfile.isdir(path):
                    tf.io.gfile.rmtree(path)
                else:
                    tf.io.gfile.remove(path)
                removed.append(path)
        return removed

    def restore_latest(self) -> str | None:
        """Restore everything from the newest intact checkpoint; None when there is none at all.

        Damaged checkpoints are skipped with a warning; if checkpoints exist but none is intact,
        or the intact one belongs to another model, a CheckpointError stops the run."""
        if not tf.io.gfile.isdir(self.read_directory):
            return None
        candidates = _found_prefixes(self.read_directory)
        if not candidates:
            return None
        damaged = []
        for prefix in candidates:
            problem = verify_checkpoint(prefix)
            if problem is not None:
                damaged.append(f"{prefix} ({problem})")
                self.log(f"warning: checkpoint {prefix} is damaged ({problem}); trying an older "
                         f"one")
                continue
            try:
                status = self.checkpoint.restore(prefix)
                status.assert_existing_objects_matched()
            except (tf.errors.OpError, AssertionError, ValueError) as e:
                raise CheckpointError(f"{prefix}: cannot resume from this checkpoint "
                                      f"({_first_line(e)}); it was written for a different "
                                      f"model or optimizer: use a new model_dir") from None
            self._intact_latest = prefix
            if damaged:
                self.log(f"warning: resumed from {prefix}, the newest intact checkpoint; "
                         f"skipped {len(damaged)} damaged: {', '.join(damaged)}")
            return prefix
        raise CheckpointError(f"{self.read_directory}: {len(candidates)} checkpoint(s), none "
                              f"intact (newest: {damaged[0]}); move the directory away to "
                              f"start over")

    def weights_finite(self) -> bool:
        return all(bool(tf.reduce_all(tf.math.is_finite(v)).numpy())
                   for v in self.model.weights if tf.as_dtype(v.dtype).is_floating)

    def save(self) -> str:
        """Write `ckpt-<step>` (no-op when that step is already saved); a save of non-finite
        weights or one the file system refuses raises a one-line error."""
        step = int(self.step.numpy())
        latest = self._intact_latest
        if latest is not None and latest.endswith(f"ckpt-{step}"):
            return latest
        if not self.weights_finite():
            raise NonFiniteWeightsError(
                f"step {step}: the model's weights hold NaN/Inf, not saved; last good "
                f"checkpoint {latest or 'none'}; lower optimizer.learning_rate or lengthen "
                f"warm-up")
        try:
            self._intact_latest = self.manager.save(checkpoint_number=step)
            return self._intact_latest
        except (tf.errors.OpError, OSError) as e:
            self.remove_interrupted_saves()
            raise CheckpointError(f"{self.directory}: cannot write checkpoint ckpt-{step} "
                                  f"({_first_line(e)})") from None


class NonFiniteWeightsError(CheckpointError):
    """The weights went NaN/Inf: training stops without saving them."""


def resolve_warm_start(path: str, field: str = "init_checkpoint") -> str:
    """The checkpoint prefix a warm start (or a teacher) reads: the newest checkpoint of a
    model directory, or a prefix given directly; a one-line error naming `field` otherwise."""
    if tf.io.gfile.exists(os.path.join(path, modeldir.CONFIG_FILE)):
        ckpt_dir = os.path.join(path, modeldir.CHECKPOINT_DIR)
        prefix = tf.train.latest_checkpoint(ckpt_dir) if tf.io.gfile.isdir(ckpt_dir) else None
        if prefix is None:
            raise CheckpointError(f"{field} {path}: model directory has no checkpoint "
                                  f"under {ckpt_dir}")
        return prefix
    if tf.io.gfile.exists(path + ".index"):
        return path
    raise CheckpointError(f"{field} {path}: expected a tfcompact model directory "
                          f"(with {modeldir.CONFIG_FILE}) or a checkpoint prefix in one; for a "
                          f"released TF1 checkpoint run `tfcompact import-tf1` first")


def warm_start(model, init_checkpoint: str, field: str = "init_checkpoint") -> str:
    """Load only the model weights of another model directory (or a checkpoint prefix in one);
    errors name `field` (the config key that gave the directory)."""
    prefix = resolve_warm_start(init_checkpoint, field)
    try:
        modeldir.checkpoint_model_variable_count(prefix, "model")
    except CheckpointError:
        raise CheckpointError(f"{field} {prefix}: not a tfcompact training checkpoint "
                              f"(no 'model' object); import TF1 checkpoints with "
                              f"`tfcompact import-tf1`") from None
    try:
        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.expect_partial()  # heads the source lacks (e.g. a new SOP head) stay initialised
        status.assert_nontrivial_match()
    except (tf.errors.OpError, AssertionError, ValueError) as e:
        raise CheckpointError(f"{field} {prefix}: does not match the model being "
                              f"trained ({_first_line(e)})") from None
    return prefix
