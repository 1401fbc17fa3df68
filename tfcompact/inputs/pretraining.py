"""Training readers: pretraining TFRecords -> batched int32 features with static shapes.

Order of the input pipeline (one host, `pretraining_dataset`):

    epochs e = e0, e0+1, ...          (Dataset.counter; a single pass when not repeating)
      shard files (seeded shuffle per epoch) -> interleave TFRecords -> [record shard]
      -> shuffle buffer (seed derived from (seed, e))
    -> skip (resume) -> batch(drop_remainder) -> enumerate batches
    -> parse_example + cast (+ dynamic masking keyed by each record's global position g in
       this host's stream) -> prefetch

Exact resume: with a `seed` every epoch's order is a pure function of (seed, epoch), and the
dynamic mask of an element a pure function of (seed, host, g). The number of records a host
reads per epoch is known from the manifest, so `skip_batches=N` starts directly at epoch
N*batch_size // records_per_epoch and skips only the remainder, as serialized strings, before
any parsing or masking: the result equals the continuation of an uninterrupted run.
Batches run across epoch boundaries (no examples are dropped at the end of an epoch).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import random
from typing import Mapping

import tensorflow as tf

from tfcompact.errors import ConfigError, DataError
from tfcompact.inputs.dynamic_masking import DynamicMaskingConfig, element_keys, mask_examples
from tfcompact.inputs.manifest import (
    DAMAGED, MANIFEST_NAME, SCHEMA_MASKED, SCHEMA_UNMASKED, check_shard_sizes, feature_shapes,
    read_manifest, shard_mismatch, validate_manifest, vocab_beside)

DEFAULT_SHUFFLE_BUFFER = 10_000
DEFAULT_CYCLE_LENGTH = 8


def verify_shards(data_dir_or_glob: str, manifest: Mapping | None = None) -> None:
    """The full check (`pretrain --verify_data`, or after TensorFlow reports a DataLossError):
    reads every shard and compares its sha256 with the manifest's. Raises DataError naming the
    first damaged file and what was expected and found. A shard the manifest gives no sha256
    for is read through TFRecord's own CRC checks instead."""
    manifest, files, _ = _resolve_files(data_dir_or_glob, manifest)
    by_name = {s["file"]: s for s in manifest["shards"]}
    for path in files:
        shard = by_name[os.path.basename(path)]
        if not shard.get("sha256"):
            _check_records(path)
            continue
        digest = hashlib.sha256()
        try:
            with tf.io.gfile.GFile(path, "rb") as f:
                for block in iter(lambda: f.read(8 << 20), b""):
                    digest.update(block)
        except tf.errors.OpError as e:
            raise DataError(f"{path}: cannot read ({e.message.splitlines()[0]})") from None
        problem = shard_mismatch(path, shard, sha256=digest.hexdigest())
        if problem:
            raise DataError(f"{problem} ({DAMAGED})")


def _check_records(path: str) -> None:
    """Read a TFRecord file through TensorFlow's length and CRC checks."""
    try:
        for _ in tf.data.TFRecordDataset(path).batch(4096):
            pass
    except (tf.errors.DataLossError, tf.errors.OutOfRangeError) as e:
        first = e.message.splitlines()[0]
        raise DataError(f"{path}: damaged TFRecord file ({first}); {MANIFEST_NAME} records no "
                        "sha256 for it; convert the corpus again") from None


def data_loss_error(data_dir_or_glob: str, error: Exception,
                    manifest: Mapping | None = None) -> DataError:
    """The DataError to report when reading the data raised `error` (e.g. tf.errors.DataLossError
    during training): the damaged shard found by `verify_shards`, or, if every shard matches
    the manifest, TensorFlow's own first line."""
    try:
        verify_shards(data_dir_or_glob, manifest)
    except DataError as found:
        return found
    first = (getattr(error, "message", None) or str(error)).splitlines()[0]
    return DataError(f"{data_dir_or_glob}: reading the data failed ({first}) although every shard "
                     f"matches {MANIFEST_NAME}")


def feature_spec(manifest: Mapping) -> dict[str, tf.io.FixedLenFeature]:
    """tf.io parsing spec of one example of the manifest's schema."""
    return {name: tf.io.FixedLenFeature([length], tf.as_dtype(dtype))
            for name, (dtype, length) in feature_shapes(manifest).items()}


def _resolve_files(data_dir_or_glob: str, manifest: Mapping | None) -> tuple[dict, list, list]:
    """(manifest, shard paths, per-shard instance counts) in manifest order."""
    if tf.io.gfile.isdir(data_dir_or_glob):
        data_dir = data_dir_or_glob
        if manifest is None:
            manifest = read_manifest(data_dir)
        else:
            validate_manifest(manifest, "manifest argument")
            check_shard_sizes(data_dir, manifest, "manifest argument")
        files = [os.path.join(data_dir, s["file"]) for s in manifest["shards"]]
        counts = [s["num_instances"] for s in manifest["shards"]]
        return dict(manifest), files, counts
    files = sorted(tf.io.gfile.glob(data_dir_or_glob))
    if not files:
        raise DataError(f"{data_dir_or_glob}: no such directory and no file matches")
    if manifest is None:
        manifest = read_manifest(os.path.dirname(data_dir_or_glob) or ".")
    else:
        validate_manifest(manifest, "manifest argument")
    by_name = {s["file"]: s["num_instances"] for s in manifest["shards"]}
    counts = []
    for path in files:
        name = os.path.basename(path)
        if name not in by_name:
            raise DataError(f"{path}: matched by {data_dir_or_glob} but not listed in the "
                            "manifest's 'shards'")
        counts.append(by_name[name])
    return dict(manifest), files, counts


def _check_masking(manifest: Mapping, dynamic_masking: DynamicMaskingConfig | None,
                   where: str) -> None:
    if manifest["schema"] != SCHEMA_UNMASKED and dynamic_masking is not None:
        raise ConfigError(f"{where}: dynamic masking needs the '{SCHEMA_UNMASKED}' schema; "
                          f"this data is '{manifest['schema']}' (already masked)")


def pretraining_element_spec(manifest: Mapping, per_replica_batch_size: int,
                             dynamic_masking: DynamicMaskingConfig | None = None
                             ) -> dict[str, tf.TensorSpec]:
    """The `element_spec` of `pretraining_dataset(...)` on data of `manifest` with batch
    `per_replica_batch_size`, without building a dataset: the masked schema's features as
    int32 (float32 weights), `next_sentence_labels` [batch]. Unmasked data comes out masked,
    with `dynamic_masking.max_predictions_per_seq` (default: the manifest's) predictions."""
    _check_masking(manifest, dynamic_masking, "manifest")
    if manifest["schema"] == SCHEMA_UNMASKED:
        predictions = (dynamic_masking.max_predictions_per_seq if dynamic_masking is not None
                       else manifest["max_predictions_per_seq"])
        manifest = {**manifest, "schema": SCHEMA_MASKED, "max_predictions_per_seq": predictions}
    batch = per_replica_batch_size
    return {name: tf.TensorSpec([batch] if name == "next_sentence_labels" else [batch, length],
                                tf.float32 if dtype == "float32" else tf.int32)
            for name, (dtype, length) in feature_shapes(manifest).items()}


def _derived_seed(seed: int, salt: int, epoch: tf.Tensor) -> tf.Tensor:
    """An int64 tf.data seed that differs per (seed, salt, epoch)."""
    return tf.cast(element_keys(seed * 8 + salt, epoch), tf.int64)


def pretraining_dataset(
    data_dir_or_glob: str,
    batch_size: int,
    *,
    is_training: bool,
    manifest: Mapping | None = None,
    input_context: tf.distribute.InputContext | None = None,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    seed: int | None = None,
    dynamic_masking: DynamicMaskingConfig | None = None,
    repeat: bool = True,
    skip_batches: int = 0,
    cycle_length: int = DEFAULT_CYCLE_LENGTH,
) -> tf.data.Dataset:
    """Batched pretraining features for one input pipeline (host).

    Yields dicts of int32 `input_ids`, `input_mask`, `segment_ids`, `masked_lm_positions`,
    `masked_lm_ids`, `next_sentence_labels` ([batch]) and float32 `masked_lm_weights`, static
    shapes, `drop_remainder=True`. `batch_size` is this pipeline's batch (under
    `distribute_datasets_from_function`: `input_context.get_per_replica_batch_size(global)`).
    The "unmasked" schema is masked on the fly (`dynamic_masking`, default from the manifest:
    whole-word, 15 % of words, and the data directory's vocab.txt if it matches the manifest's
    vocab_md5); the "bert_masked" schema is read as written.

    Sharding: with `input_context`, pipeline i of n reads files i, i+n, ... when there are at
    least n files, else every record whose index is i mod n. `is_training=False` gives one
    deterministic pass in file order (no shuffle, `repeat` ignored). With `seed` the order and
    masks are deterministic; `skip_batches=N` then resumes exactly after N consumed batches.
    """
    if batch_size <= 0:
        raise ConfigError(f"batch_size must be > 0, got {batch_size}")
    if skip_batches < 0:
        raise ConfigError(f"skip_batches must be >= 0, got {skip_batches}")
    manifest, files, counts = _resolve_files(data_dir_or_glob, manifest)
    _check_masking(manifest, dynamic_masking, data_dir_or_glob)
    if manifest["schema"] == SCHEMA_UNMASKED and dynamic_masking is None:
        dynamic_masking = DynamicMaskingConfig.from_manifest(
            manifest, vocab_beside(files[0], manifest))

    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    shard_by_files = len(files) >= num_pipelines
    host_files = files[pipeline_id::num_pipelines] if shard_by_files else files
    records_per_epoch = _records_per_pipeline(counts, num_pipelines, pipeline_id)
    if records_per_epoch == 0:
        raise DataError(f"{data_dir_or_glob}: input pipeline {pipeline_id} of {num_pipelines} "
                        "has no records (per the manifest)")
    plan = _HostReads(
        files=host_files, num_pipelines=num_pipelines, pipeline_id=pipeline_id,
        shard_by_files=shard_by_files, seed=seed, is_training=is_training,
        shuffle_buffer=shuffle_buffer,
        # Record sharding needs every host to see the same record order before `shard`.
        shuffle_files=is_training and len(host_files) > 1 and (shard_by_files or seed is not None),
        cycle=max(1, min(cycle_length, len(host_files))) if is_training else 1,
        deterministic=seed is not None or not is_training or not shard_by_files)

    first_epoch, skip_in_epoch = divmod(skip_batches * batch_size, records_per_epoch)
    if is_training and repeat:
        epochs = tf.data.Dataset.counter(first_epoch)
    else:
        epochs = tf.data.Dataset.range(first_epoch, 1)
    ds = epochs.flat_map(plan.epoch_records)
    if skip_in_epoch:
        ds = ds.skip(skip_in_epoch)
    # Batches are consecutive runs of the stream, so batch k holds positions k*B .. k*B+B-1
    # (enumerating batches instead of records saves a per-record op).
    ds = ds.batch(batch_size, drop_remainder=True).enumerate(start=skip_batches)
    # Evaluation masks are the same every run even without a seed.
    mask_seed = ((seed or 0) if seed is not None or not is_training
                 else random.SystemRandom().randrange(1 << 31))
    parse = _parse_batch_fn(manifest, batch_size, dynamic_masking, mask_seed, plan)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=plan.deterministic)
    options = tf.data.Options()
    options.deterministic = plan.deterministic
    # Sharding is done here explicitly; a strategy must not auto-shard again.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass(frozen=True)
class _HostReads:
    """What one input pipeline reads in an epoch, and in which order."""

    files: list
    num_pipelines: int
    pipeline_id: int
    shard_by_files: bool
    seed: int | None
    is_training: bool
    shuffle_buffer: int
    shuffle_files: bool
    cycle: int
    deterministic: bool

    def epoch_records(self, epoch: tf.Tensor) -> tf.data.Dataset:
        """The serialized records of epoch `epoch` (shuffled per epoch when training)."""
        seed = self.seed
        names = tf.data.Dataset.from_tensor_slices(self.files)
        if self.shuffle_files:
            names = names.shuffle(len(self.files),
                                  seed=None if seed is None else _derived_seed(seed, 1, epoch))
        if self.cycle == 1:
            records = names.flat_map(tf.data.TFRecordDataset)
        else:
            # Parallel reads pay off on object stores (gs://...); local files read faster than
            # the extra threads cost, so they are interleaved in the calling thread.
            remote = any("://" in f for f in self.files)
            parallel = {"num_parallel_calls": tf.data.AUTOTUNE,
                        "deterministic": self.deterministic} if remote else {}
            records = names.interleave(tf.data.TFRecordDataset, cycle_length=self.cycle,
                                       block_length=1, **parallel)
        if not self.shard_by_files:
            records = records.shard(self.num_pipelines, self.pipeline_id)
        if self.is_training and self.shuffle_buffer > 1:
            records = records.shuffle(
                self.shuffle_buffer, seed=None if seed is None else _derived_seed(seed, 2, epoch))
        return records


def _parse_batch_fn(manifest: Mapping, batch_size: int, masking: DynamicMaskingConfig | None,
                    mask_seed: int, plan: _HostReads):
    """(batch index, serialized [batch]) -> int32/float32 features, masked when `masking`."""
    spec = feature_spec(manifest)

    def parse(batch_index: tf.Tensor, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        raw = tf.io.parse_example(serialized, spec)
        features = {}
        for name, value in raw.items():
            if name == "next_sentence_labels":
                value = tf.reshape(value, [batch_size])
            features[name] = value if value.dtype == tf.float32 else tf.cast(value, tf.int32)
        if masking is not None:
            position = batch_index * batch_size + tf.range(batch_size, dtype=tf.int64)
            keys = element_keys(mask_seed, position * plan.num_pipelines + plan.pipeline_id)
            features = mask_examples(features, keys, masking)
        return features

    return parse


def _records_per_pipeline(counts: list, num_pipelines: int, pipeline_id: int) -> int:
    if len(counts) >= num_pipelines:
        return sum(counts[pipeline_id::num_pipelines])
    return len(range(pipeline_id, sum(counts), num_pipelines))


def records_per_pipeline(manifest: Mapping, num_pipelines: int = 1,
                         pipeline_id: int = 0) -> int:
    """Records one input pipeline reads per epoch (the trainer's steps-per-epoch arithmetic)."""
    return _records_per_pipeline([s["num_instances"] for s in manifest["shards"]],
                                 num_pipelines, pipeline_id)
