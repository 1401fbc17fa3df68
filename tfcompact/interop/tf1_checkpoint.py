"""Read and write TF1-style name-based checkpoints (`model.ckpt.index` + `model.ckpt.data-*`).

TF1 code (google-research/bert, albert, electra, mobilebert) and HuggingFace's
`load_tf_weights_in_*` look variables up by their slash-separated graph names. Keras 3 forbids
`/` in names, so we never build a graph with those names: we write the tensors directly with
the `SaveV2` kernel under the exact name strings of the name table, and read them back with
`tf.train.load_checkpoint`. Every failure becomes a one-line `CheckpointError`.
"""
from __future__ import annotations

import glob
import os
import re
from typing import Iterable, Mapping

import numpy as np
import tensorflow as tf

from tfcompact.errors import CheckpointError

CHECKPOINT_BASENAME = "model.ckpt"

# Path components that mark optimizer state in TF1 checkpoints (BERT's AdamWeightDecayOptimizer,
# ALBERT's LAMB, ELECTRA's AdamWeightDecay, tf.train optimizers) rather than model weights.
OPTIMIZER_COMPONENTS = frozenset({
    "adam_m", "adam_v", "lamb_m", "lamb_v", "Adam", "Adam_1", "Momentum",
    "AdamWeightDecayOptimizer", "AdamWeightDecayOptimizer_1", "LAMB", "LAMB_1",
})
NON_MODEL_NAMES = frozenset({"global_step", "beta1_power", "beta2_power", "temperature",
                             "_CHECKPOINTABLE_OBJECT_GRAPH"})
_DATA_FILE = re.compile(r"\.data-(\d{5})-of-(\d{5})$")


def is_optimizer_or_bookkeeping(name: str) -> bool:
    """True for optimizer slots (adam_m/adam_v/lamb_*) and bookkeeping such as `global_step`."""
    if name in NON_MODEL_NAMES:
        return True
    return any(part in OPTIMIZER_COMPONENTS for part in name.split("/"))


def resolve_checkpoint_prefix(path: str) -> str:
    """Turn a prefix, a `*.index`/`*.data-*` file, or a directory with a `checkpoint` file into
    the checkpoint prefix, checking that the index and every data shard exist."""
    if not path:
        raise CheckpointError("--checkpoint is empty; expected a TF1 checkpoint prefix such as "
                              "dir/model.ckpt")
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            found = sorted(glob.glob(os.path.join(path, "*.index")))
            if len(found) == 1:
                latest = found[0][: -len(".index")]
            else:
                raise CheckpointError(
                    f"{path}: directory has no `checkpoint` file and "
                    f"{'several' if found else 'no'} *.index files; pass the checkpoint prefix")
        path = latest
    if path.endswith(".index"):
        path = path[: -len(".index")]
    m = _DATA_FILE.search(path)
    if m:
        path = path[: m.start()]
    index = path + ".index"
    if not tf.io.gfile.exists(index):
        raise CheckpointError(f"{path}: checkpoint index {index} not found "
                              "(expected PREFIX.index and PREFIX.data-*)")
    shards = tf.io.gfile.glob(glob.escape(path) + ".data-*-of-*")
    if not shards:
        raise CheckpointError(f"{path}: checkpoint data file {path}.data-00000-of-NNNNN not found")
    total = int(_DATA_FILE.search(shards[0]).group(2))
    missing = [f"{path}.data-{i:05d}-of-{total:05d}" for i in range(total)
               if f"{path}.data-{i:05d}-of-{total:05d}" not in set(shards)]
    if missing:
        raise CheckpointError(f"{path}: checkpoint data shard(s) missing: {', '.join(missing)}")
    return path


def checkpoint_files(prefix: str) -> list[str]:
    """The files of the checkpoint at `prefix`: its index and data shards (the inputs a command
    reads, so that no output may replace them)."""
    return [prefix + ".index"] + sorted(tf.io.gfile.glob(glob.escape(prefix) + ".data-*-of-*"))


def _reader(prefix: str):
    try:
        return tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(f"{prefix}: not a readable TF checkpoint ({_first_line(e)})") from e


def _first_line(e: BaseException) -> str:
    msg = getattr(e, "message", None) or str(e)
    return msg.strip().splitlines()[0] if msg.strip() else type(e).__name__


def list_tf1_variables(prefix: str) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in the checkpoint (object-graph bookkeeping excluded)."""
    shapes = _reader(prefix).get_variable_to_shape_map()
    return {n: tuple(s) for n, s in sorted(shapes.items()) if n != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def read_tf1_variables(prefix: str, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Read tensors by name as numpy arrays; truncated or corrupt data raises CheckpointError."""
    reader = _reader(prefix)
    if names is None:
        names = [n for n in reader.get_variable_to_shape_map() if n != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    out: dict[str, np.ndarray] = {}
    for name in names:
        try:
            out[name] = np.asarray(reader.get_tensor(name))
        except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as e:
            # a short data file raises IndexError("Read less bytes than requested"), a bad
            # checksum DataLossError
            raise CheckpointError(
                f"{prefix}: cannot read variable {name} (truncated or corrupt data file?): "
                f"{_first_line(e)}") from e
    return out


def write_checkpoint_state(directory: str, basename: str = CHECKPOINT_BASENAME) -> None:
    """Write the text `checkpoint` file that makes `tf.train.latest_checkpoint(directory)` work."""
    with open(os.path.join(directory, "checkpoint"), "w", encoding="utf-8") as f:
        f.write(f'model_checkpoint_path: "{basename}"\n'
                f'all_model_checkpoint_paths: "{basename}"\n')


def write_tf1_checkpoint(directory: str, tensors: Mapping[str, np.ndarray],
                         basename: str = CHECKPOINT_BASENAME) -> str:
    """Write `tensors` (TF1 name -> array) as `directory/basename.{index,data-00000-of-00001}`
    plus the `checkpoint` file; returns the prefix. Names are stored verbatim."""
    if not tensors:
        raise CheckpointError(f"{directory}: refusing to write an empty checkpoint")
    prefix = os.path.join(directory, basename)
    names = list(tensors)
    values = [tf.convert_to_tensor(np.asarray(tensors[n])) for n in names]
    try:
        tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                          tensors=values)
    except tf.errors.OpError as e:
        raise CheckpointError(f"{prefix}: cannot write checkpoint ({_first_line(e)})") from e
    write_checkpoint_state(directory, basename)
    return prefix
