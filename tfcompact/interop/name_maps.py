"""TF1 checkpoint name <-> Keras variable path tables, one per architecture, as data.

A table is a list of `NameEntry(tf1_name, keras_path, transform, tf1_shape, keras_shape)` in
TF1 checkpoint order. The TF1 names (and shapes) come from
`tfcompact.interop.tf1_names.tf1_variable_shapes`, exactly as the original releases wrote them;
the Keras path of a variable is its TF1 name (the layers build their variables inside name
scopes that mirror the TF1 scopes); the transform says how the array changes on the way:

- `identity`: same array.
- `transpose`: a 2-D array stored [out, in] in TF1 and [in, out] in Keras (or the reverse):
  `cls/seq_relationship/output_weights` [2, H] vs a Dense kernel, MobileBERT's
  `cls/predictions/extra_output_weights` [V, H-E] when the model keeps it as [H-E, V].
- `reshape`: same values in another shape (einsum-style 3-D attention kernels vs TF1's 2-D).

`name_table` checks the table against the model both ways (every model variable named once,
every table path a model variable, shapes compatible), so a drift in either side fails loudly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import tensorflow as tf

from tfcompact.errors import CheckpointError, ConfigError
from tfcompact.interop.tf1_checkpoint import is_optimizer_or_bookkeeping
from tfcompact.interop.tf1_names import tf1_variable_shapes

TRANSFORMS = ("identity", "transpose", "reshape")

# TF1 names whose arrays are [out, in] where a Keras model may keep [in, out].
TRANSPOSABLE_SUFFIXES = ("cls/seq_relationship/output_weights", "cls/predictions/extra_output_weights")


@dataclass(frozen=True)
class NameEntry:
    """One row of a name table: how one TF1 variable maps onto one Keras variable."""
    tf1_name: str
    keras_path: str
    transform: str
    tf1_shape: tuple[int, ...]
    keras_shape: tuple[int, ...]

    def to_tf1(self, value: np.ndarray) -> np.ndarray:
        """Keras array -> TF1 array."""
        if self.transform == "transpose":
            return np.ascontiguousarray(np.transpose(value))
        if self.transform == "reshape":
            return np.reshape(value, self.tf1_shape)
        return value

    def to_keras(self, value: np.ndarray) -> np.ndarray:
        """TF1 array -> Keras array."""
        if self.transform == "transpose":
            return np.ascontiguousarray(np.transpose(value))
        if self.transform == "reshape":
            return np.reshape(value, self.keras_shape)
        return value


def _transform_for(tf1_name: str, tf1_shape: tuple, keras_shape: tuple) -> str | None:
    if tuple(tf1_shape) == tuple(keras_shape):
        return "identity"
    if (len(tf1_shape) == 2 and tuple(keras_shape) == tuple(reversed(tf1_shape))
            and tf1_name.endswith(TRANSPOSABLE_SUFFIXES)):
        return "transpose"
    if (tf1_name.endswith(("/kernel", "/bias")) and len(tf1_shape) != len(keras_shape)
            and int(np.prod(tf1_shape)) == int(np.prod(keras_shape))):
        return "reshape"
    return None


def model_variables(model) -> dict[str, tf.Variable]:
    """Keras variable path -> variable, each variable once (shared ones appear once)."""
    out: dict[str, tf.Variable] = {}
    for v in model.weights:
        if v.path.endswith("seed_generator_state"):
            continue  # RNG state of ELECTRA's sampler: not a weight
        out.setdefault(v.path, v)
    return out


def model_sentence_head(model) -> str:
    """"nsp" when the model has cls/seq_relationship variables, else "none"."""
    return "nsp" if any(p.endswith("seq_relationship/output_weights") for p in model_variables(model)) \
        else "none"


def model_is_pretraining(model) -> bool:
    return any("/predictions/output_bias" in p or p.endswith("predictions/output_bias")
               for p in model_variables(model))


def name_table(arch: str, config, model=None, *, pretraining: bool | None = None,
               sentence_head: str | None = None) -> list[NameEntry]:
    """The name table of `model` (an `arch` model built from `config`), checked both ways.

    Without `model` the Keras shapes are taken equal to the TF1 shapes (identity transforms).
    """
    variables = model_variables(model) if model is not None else None
    if pretraining is None:
        pretraining = model_is_pretraining(model) if model is not None else True
    if sentence_head is None:
        sentence_head = model_sentence_head(model) if model is not None else "default"
    shapes = tf1_variable_shapes(arch, config, pretraining=pretraining, sentence_head=sentence_head)
    table: list[NameEntry] = []
    problems: list[str] = []
    for tf1_name, tf1_shape in shapes.items():
        path = tf1_name
        if variables is None:
            table.append(NameEntry(tf1_name, path, "identity", tuple(tf1_shape), tuple(tf1_shape)))
            continue
        if path not in variables:
            problems.append(f"no Keras variable {path} for {tf1_name}")
            continue
        keras_shape = tuple(variables[path].shape)
        transform = _transform_for(tf1_name, tuple(tf1_shape), keras_shape)
        if transform is None:
            problems.append(f"{tf1_name} {list(tf1_shape)} vs Keras {path} {list(keras_shape)}")
            continue
        table.append(NameEntry(tf1_name, path, transform, tuple(tf1_shape), keras_shape))
    if variables is not None:
        named = {e.keras_path for e in table}
        # Every model variable has a TF1 name (training-only variables such as distillation
        # projections live outside the model, in the run's checkpoints).
        extra = [p for p in variables if p not in named]
        if extra:
            problems.append("Keras variables with no TF1 name: " + ", ".join(extra[:20])
                            + (f" (+{len(extra) - 20} more)" if len(extra) > 20 else ""))
    if problems:
        raise ConfigError(f"{arch} name table does not fit the model: " + "; ".join(problems[:20]))
    return table


def keras_to_tf1(model, table: list[NameEntry]) -> dict[str, np.ndarray]:
    """TF1 name -> array for every table entry, in table (checkpoint) order."""
    variables = model_variables(model)
    return {e.tf1_name: e.to_tf1(np.asarray(variables[e.keras_path].numpy())) for e in table}


def tf1_to_keras(model, table: list[NameEntry], values: Mapping[str, np.ndarray]) -> None:
    """Assign TF1 arrays to the model's variables (shapes already checked by the caller)."""
    variables = model_variables(model)
    for e in table:
        var = variables[e.keras_path]
        value = e.to_keras(np.asarray(values[e.tf1_name]))
        if tuple(value.shape) != tuple(var.shape):
            raise CheckpointError(f"{e.tf1_name}: shape {list(value.shape)} cannot fill {e.keras_path} "
                                  f"{list(var.shape)}")
        var.assign(value.astype(var.dtype))


def compare_with_checkpoint(table: list[NameEntry], shapes: Mapping[str, tuple]) -> list[str]:
    """Problems (missing names, unused names, shape mismatches) between a table and a
    checkpoint's name -> shape map; optimizer slots and global_step are ignored."""
    wanted = {e.tf1_name: e.tf1_shape for e in table}
    missing = [n for n in wanted if n not in shapes]
    unused = [n for n in shapes if n not in wanted and not is_optimizer_or_bookkeeping(n)]
    mismatched = [f"{n} checkpoint {list(shapes[n])} vs model {list(s)}"
                  for n, s in wanted.items() if n in shapes and tuple(shapes[n]) != tuple(s)]
    problems = []

    def fmt(label: str, items: list[str]) -> None:
        if items:
            shown = ", ".join(items[:8]) + (f" (+{len(items) - 8} more)" if len(items) > 8 else "")
            problems.append(f"{len(items)} {label}: {shown}")

    fmt("missing from checkpoint", missing)
    fmt("unused checkpoint variables", unused)
    fmt("shape mismatches", mismatched)
    return problems


# Slot names Keras optimizers give their per-variable state (first moment, second moment):
# tfcompact.optim (LAMB/AdamW) uses adam_m/adam_v, keras.optimizers.Adam(W) momentum/velocity.
FIRST_MOMENT_SLOTS = ("adam_m", "momentum", "m")
SECOND_MOMENT_SLOTS = ("adam_v", "velocity", "v")


def _checkpoint_full_names(prefix: str) -> dict[str, str]:
    """Variable full name (as created, e.g. 'lamb/embeddings_word_embeddings_adam_m') ->
    checkpoint key, read from the object graph of a tf.train.Checkpoint."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    reader = tf.train.load_checkpoint(prefix)
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    try:
        graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(f"{prefix}: not an object-based (tf.train.Checkpoint) checkpoint") from e
    out: dict[str, str] = {}
    for node in graph.nodes:
        for attr in node.attributes:
            if attr.name == "VARIABLE_VALUE":
                out.setdefault(attr.full_name, attr.checkpoint_key)
    return out


def optimizer_slots_as_tf1(model, table: list[NameEntry], prefix: str) -> dict[str, np.ndarray]:
    """`<tf1 name>/adam_m`, `<tf1 name>/adam_v` and `global_step` from the optimizer state of
    a training checkpoint, as the TF1 trainers wrote them.

    Keras names a slot `<optimizer>/<variable path with '/' -> '_'>_<slot>`; the optimizer's
    `iteration` counter becomes `global_step`. Every trainable table entry must have both slots.
    """
    full = _checkpoint_full_names(prefix)
    reader = tf.train.load_checkpoint(prefix)
    by_suffix: dict[str, str] = {}
    for name, key in full.items():
        # "<optimizer>[/<inner optimizer>]/<path with _>_<slot>": the last component names the slot
        by_suffix[name.rsplit("/", 1)[-1]] = key
    variables = model_variables(model)
    out: dict[str, np.ndarray] = {}
    missing: list[str] = []
    for e in table:
        if not variables[e.keras_path].trainable:
            continue
        flat = e.keras_path.replace("/", "_")
        for tf1_slot, candidates in (("adam_m", FIRST_MOMENT_SLOTS), ("adam_v", SECOND_MOMENT_SLOTS)):
            key = next((by_suffix[f"{flat}_{c}"] for c in candidates if f"{flat}_{c}" in by_suffix), None)
            if key is None:
                missing.append(f"{e.tf1_name}/{tf1_slot}")
                continue
            out[f"{e.tf1_name}/{tf1_slot}"] = e.to_tf1(np.asarray(reader.get_tensor(key)))
    if missing:
        raise CheckpointError(
            f"{prefix}: no optimizer slots for {len(missing)} variables (e.g. {', '.join(missing[:4])}); "
            "was this checkpoint written by `tfcompact pretrain` with an Adam/LAMB optimizer?")
    # The trainer's global step (tf.train.Checkpoint(..., step=...)) when present; else the
    # optimizer's iteration counter (equal to it without gradient accumulation).
    keys = set(full.values())
    step_key = "step/.ATTRIBUTES/VARIABLE_VALUE" if "step/.ATTRIBUTES/VARIABLE_VALUE" in keys else None
    step_key = step_key or next((k for n, k in full.items() if n.endswith("/iteration") or n == "iteration"),
                                None)
    if step_key is None:
        raise CheckpointError(f"{prefix}: no optimizer iteration counter to write as global_step")
    out["global_step"] = np.asarray(reader.get_tensor(step_key)).astype(np.int64)
    return out
