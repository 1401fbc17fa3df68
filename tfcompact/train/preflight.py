"""Checks run before anything is built, so a misconfigured TPU job fails in seconds, not hours.

Each failure is one line naming the field or file at fault: TPU paths that are not `gs://`
(a TPU worker cannot read the VM's local disk: "File system scheme '[local]' not implemented"),
a global batch that does not split over the replicas, fewer input shards than hosts, data
whose manifest does not match the model (vocabulary, sequence length, predictions per sequence),
a batch that cannot fit in memory, and a model directory that cannot be written or whose
checkpoints were written by a different model.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

import tensorflow as tf

from tfcompact import modeldir
from tfcompact.errors import ConfigError, DataError, UserError
from tfcompact.inputs.manifest import MANIFEST_NAME
from tfcompact.interop.tf1_names import count_parameters
from tfcompact.train.experiment import Experiment


def count_shards(data_path: str, manifest: Mapping[str, Any]) -> int:
    """Number of input files the hosts can split between them."""
    if any(ch in data_path for ch in "*?["):
        return len(tf.io.gfile.glob(data_path))
    return len(manifest.get("shards", []))


@dataclasses.dataclass
class Placement:
    """Where the job runs, as far as preflight needs to know."""

    on_tpu: bool
    num_replicas: int
    num_hosts: int


def check_paths(exp: Experiment, placement: Placement) -> None:
    """On TPU every path the workers read or write must be on Cloud Storage."""
    if not placement.on_tpu:
        return
    paths = [("train.model_dir", exp.train.model_dir), ("data.train", exp.data.train),
             ("data.eval", exp.data.eval), ("train.init_checkpoint", exp.train.init_checkpoint)]
    if exp.distillation is not None:
        paths.append(("distillation.teacher.checkpoint", exp.distillation.teacher.checkpoint))
    for field, path in paths:
        if path and not str(path).startswith("gs://"):
            raise ConfigError(f"{exp.source}: {field} = {path!r}: on a TPU every path must be "
                              f"gs:// (TPU workers cannot read local files)")


def check_batch(exp: Experiment, placement: Placement) -> None:
    """The global batch must split evenly over the micro-batches and the replicas."""
    b, n = exp.train.batch_size, placement.num_replicas
    if b % n:
        raise ConfigError(f"{exp.source}: train.batch_size = {b} is the GLOBAL batch and must be "
                          f"divisible by the {n} replicas (e.g. {max(n, b - b % n)})")
    a = exp.train.gradient_accumulation_steps
    if a > 1 and b % (a * n):
        raise ConfigError(f"{exp.source}: train.batch_size = {b} must be divisible by "
                          f"train.gradient_accumulation_steps x replicas = {a} x {n} = {a * n} "
                          f"(each optimizer step takes {a} equal micro-batches on every replica)")


def check_data(exp: Experiment, placement: Placement, model_config: Any,
               manifests: Mapping[str, Mapping[str, Any]]) -> None:
    """Manifests (by field name: "data.train", "data.eval") agree with the model and the hosts."""
    for field, manifest in manifests.items():
        path = exp.data.train if field == "data.train" else exp.data.eval
        where = f"{field} ({path}/{MANIFEST_NAME})"
        if manifest.get("vocab_size") != model_config.vocab_size:
            raise DataError(f"{where}: vocab_size {manifest.get('vocab_size')} does not match the "
                            f"model's vocab_size {model_config.vocab_size}")
        if manifest.get("max_seq_length") != exp.data.max_seq_length:
            raise DataError(f"{where}: max_seq_length {manifest.get('max_seq_length')} does not "
                            f"match data.max_seq_length {exp.data.max_seq_length}")
        if (manifest.get("schema") == "bert_masked"
                and manifest.get("max_predictions_per_seq") != exp.data.max_predictions_per_seq):
            raise DataError(f"{where}: max_predictions_per_seq "
                            f"{manifest.get('max_predictions_per_seq')} does not match "
                            f"data.max_predictions_per_seq {exp.data.max_predictions_per_seq}")
        if manifest.get("schema") == "unmasked" and not exp.data.dynamic_masking:
            raise DataError(f"{where}: schema 'unmasked' needs data.dynamic_masking: true")
        if manifest.get("schema") == "bert_masked" and exp.data.dynamic_masking:
            raise DataError(f"{where}: data.dynamic_masking needs 'unmasked' data; this data is "
                            f"already masked (schema 'bert_masked')")
        if exp.data.max_seq_length > model_config.max_position_embeddings:
            raise ConfigError(f"{exp.source}: data.max_seq_length {exp.data.max_seq_length} "
                              f"exceeds the model's max_position_embeddings "
                              f"{model_config.max_position_embeddings}")
        shards = count_shards(path, manifest)
        if shards < placement.num_hosts:
            raise DataError(f"{where}: {shards} shard(s) for {placement.num_hosts} hosts; each "
                            f"host reads its own files: write at least {placement.num_hosts} "
                            f"shards (create-data --num_shards)")


GIB = 1 << 30


def estimate_memory(exp: Experiment, arch: str, model_config: Any, num_replicas: int,
                    teacher: tuple[str, Any] | None = None) -> dict[str, float]:
    """Rough bytes one replica needs: weights + gradients + two optimizer slots (float32) and
    the activations kept for the backward pass of one micro-batch. Per token and layer that is
    about 11 x hidden + 3 x intermediate values plus 3 x heads x length attention values (inputs
    of every matmul, softmax, LayerNorm, GELU and dropout); the MLM head adds
    predictions x vocab logits three times (logits, softmax, gradient). An order of magnitude,
    meant to catch a batch that cannot possibly fit, not to tune one."""
    params = count_parameters((arch, model_config))
    weights = 16.0 * params
    if teacher is not None:
        weights += 4.0 * count_parameters(teacher)
    c = model_config
    length, preds = exp.data.max_seq_length, exp.data.max_predictions_per_seq
    ffn = c.intermediate_size * getattr(c, "num_feedforward_networks", 1)
    per_token = 11 * c.hidden_size + 3 * ffn + 3 * c.num_attention_heads * length
    if arch == "electra":
        per_token *= 1.5  # the generator beside the discriminator
    value_bytes = 3.0 if exp.train.precision == "mixed_bfloat16" else 4.0
    micro = exp.train.batch_size // max(1, exp.train.gradient_accumulation_steps * num_replicas)
    activations = micro * value_bytes * (length * c.num_hidden_layers * per_token
                                         + 3 * preds * c.vocab_size)
    return {"params": float(params), "weights": weights, "activations": activations,
            "total": weights + activations, "micro_batch": float(micro)}


def check_memory(exp: Experiment, arch: str, model_config: Any, num_replicas: int,
                 available_bytes: float, where: str,
                 teacher: tuple[str, Any] | None = None) -> None:
    """Refuse a batch whose estimated memory (`estimate_memory`) exceeds what `where` offers per
    replica: running it would end in an out-of-memory kill (or a segfault), not an error."""
    est = estimate_memory(exp, arch, model_config, num_replicas, teacher)
    if est["total"] <= available_bytes:
        return
    raise ConfigError(
        f"{exp.source}: train.batch_size = {exp.train.batch_size} cannot fit: about "
        f"{est['total'] / GIB:.1f} GiB per replica (weights + optimizer "
        f"{est['weights'] / GIB:.1f} GiB, activations {est['activations'] / GIB:.1f} GiB for "
        f"{int(est['micro_batch'])} examples of length {exp.data.max_seq_length}) but {where} has "
        f"{available_bytes / GIB:.1f} GiB; lower train.batch_size or raise "
        f"train.gradient_accumulation_steps")


def available_host_memory() -> float | None:
    """MemAvailable of this machine in bytes (None where /proc/meminfo does not exist)."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def preflight(exp: Experiment, placement: Placement, model_config: Any,
              manifests: Mapping[str, Mapping[str, Any]]) -> None:
    """All checks, cheapest first."""
    check_paths(exp, placement)
    check_batch(exp, placement)
    check_data(exp, placement, model_config, manifests)


def check_resume_config(model_dir: str, arch: str, config, sentence_head: str | None) -> None:
    """A model directory that already holds checkpoints is resumed only with the model that
    wrote them: a changed config (e.g. ALBERT layers 2 -> 3, which shares weights and would
    restore silently) is refused before anything is built or rewritten."""
    path = os.path.join(model_dir, modeldir.CONFIG_FILE)
    ckpt_dir = os.path.join(model_dir, modeldir.CHECKPOINT_DIR)
    if not (tf.io.gfile.exists(path) and tf.io.gfile.isdir(ckpt_dir)
            and tf.io.gfile.listdir(ckpt_dir)):
        return
    info = modeldir.read_model_dir(model_dir)
    if info.arch != arch:
        raise ConfigError(f"{path}: the checkpoints in {ckpt_dir} are of architecture "
                          f"{info.arch}, this run trains {arch}; use a new train.model_dir")
    old, new = info.config.to_dict(), config.to_dict()
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if (info.sentence_head or None) != (sentence_head or None):
        changed.append(f"sentence_head ({info.sentence_head} -> {sentence_head})")
    if changed:
        first = changed[0]
        detail = first if "(" in first else f"{first} {old.get(first)!r} -> {new.get(first)!r}"
        raise ConfigError(f"{path}: this run's model differs from the one that wrote the "
                          f"checkpoints in {ckpt_dir} ({detail}"
                          f"{f' and {len(changed) - 1} more' if len(changed) > 1 else ''}); "
                          f"resume with the same model or use a new train.model_dir")


def check_model_dir_writable(model_dir: str) -> None:
    """Fail in seconds, in one line, when the model directory cannot be written; creates
    nothing (the probe goes into the nearest existing ancestor and is removed)."""
    target = model_dir.rstrip("/") or "/"
    try:
        while not tf.io.gfile.exists(target) and os.path.dirname(target) != target:
            # a relative path climbs to the working directory ("out" -> ".")
            target = os.path.dirname(target) or "."
        if tf.io.gfile.exists(target) and not tf.io.gfile.isdir(target):
            raise UserError(f"train.model_dir {model_dir}: cannot write there ({target} is a "
                            f"file)")
        probe = os.path.join(target, f".tfcompact-write-test-{os.getpid()}")
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("ok")
        tf.io.gfile.remove(probe)
    except (tf.errors.OpError, OSError) as e:
        text = getattr(e, "message", None) or str(e)
        reason = text.strip().splitlines()[0] if text.strip() else type(e).__name__
        raise UserError(f"train.model_dir {model_dir}: cannot write there ({reason})") from None
