"""`manifest.json`: the contract between the corpus converters and the training readers.

A conversion leaves a folder of TFRecord shards, the vocabulary as `vocab.txt` and, written
last, `manifest.json`: schema, static lengths, vocabulary size and md5, special ids, masking
settings, and every shard's name, instance count, size and sha256. This module is the one
place that knows its name, its keys and their types, the TFRecord features each schema holds,
and how to build, write, read and check it. It imports no TensorFlow (the converter's workers
must stay small); only a remote path (`gs://...`) is read through `tf.io.gfile`.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Mapping, Sequence

from tfcompact.errors import DataError
from tfcompact.files import atomic_write_text, is_remote, read_bytes

MANIFEST_NAME = "manifest.json"
VOCAB_NAME = "vocab.txt"  # the vocabulary of the data, beside the shards
FORMAT_VERSION = 1
SCHEMA_MASKED = "bert_masked"    # google-research/bert's features, masked once by the converter
SCHEMA_UNMASKED = "unmasked"     # `word_ids` instead of predictions: masked while training
SCHEMAS = (SCHEMA_MASKED, SCHEMA_UNMASKED)
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
DAMAGED = "damaged or changed after create-data wrote it: convert the corpus again"

# The one list of required keys, in the order they are written, with their JSON types.
REQUIRED_KEYS: dict[str, type] = {
    "format_version": int,
    "schema": str,
    "max_seq_length": int,
    # For the unmasked schema: the cap dynamic masking uses at training time.
    "max_predictions_per_seq": int,
    "vocab_size": int,
    "vocab_md5": str,
    "do_lower_case": bool,
    "special_ids": dict,
    "masking": str,
    "pair_task": str,
    "dupe_factor": int,
    "seed": int,
    "segmenter": dict,
    "num_instances": int,
    "shards": list,
    "inputs": list,
    "created_by": str,
}

# The TFRecord features of each schema: (name, dtype, length), the length being the manifest
# field that gives it or a number. The writer encodes and the readers parse exactly these.
FEATURES: dict[str, tuple[tuple[str, str, str | int], ...]] = {
    SCHEMA_MASKED: (
        ("input_ids", "int64", "max_seq_length"),
        ("input_mask", "int64", "max_seq_length"),
        ("segment_ids", "int64", "max_seq_length"),
        ("masked_lm_positions", "int64", "max_predictions_per_seq"),
        ("masked_lm_ids", "int64", "max_predictions_per_seq"),
        ("masked_lm_weights", "float32", "max_predictions_per_seq"),
        ("next_sentence_labels", "int64", 1),
    ),
    SCHEMA_UNMASKED: (
        ("input_ids", "int64", "max_seq_length"),
        ("input_mask", "int64", "max_seq_length"),
        ("segment_ids", "int64", "max_seq_length"),
        ("word_ids", "int64", "max_seq_length"),
        ("next_sentence_labels", "int64", 1),
    ),
}


def feature_shapes(manifest: Mapping) -> dict[str, tuple[str, int]]:
    """{feature name: (dtype, length)} of one example of the manifest's schema."""
    return {name: (dtype, length if isinstance(length, int) else int(manifest[length]))
            for name, dtype, length in FEATURES[manifest["schema"]]}


def shard_entry(file: str, num_instances: int, sha256: str, size: int) -> dict:
    """One element of the manifest's `shards`: the file name, its number of instances, and the
    sha256 and size in bytes of the file (what readers check the file against)."""
    return {"file": file, "num_instances": num_instances, "sha256": sha256, "bytes": size}


def build_manifest(*, schema: str, max_seq_length: int, max_predictions_per_seq: int,
                   vocab_size: int, vocab_md5: str, do_lower_case: bool,
                   special_ids: Mapping[str, int], masking: str, pair_task: str,
                   dupe_factor: int, seed: int, segmenter: Mapping, shards: Sequence[Mapping],
                   inputs: Sequence[str], created_by: str | None = None) -> dict:
    """A validated manifest, keys in the written order; `num_instances` is the shards' sum."""
    if created_by is None:
        from tfcompact import __version__

        created_by = f"tfcompact {__version__}"
    manifest = {
        "format_version": FORMAT_VERSION, "schema": schema, "max_seq_length": max_seq_length,
        "max_predictions_per_seq": max_predictions_per_seq, "vocab_size": vocab_size,
        "vocab_md5": vocab_md5, "do_lower_case": do_lower_case, "special_ids": dict(special_ids),
        "masking": masking, "pair_task": pair_task, "dupe_factor": dupe_factor, "seed": seed,
        "segmenter": dict(segmenter), "num_instances": sum(s["num_instances"] for s in shards),
        "shards": [dict(s) for s in shards], "inputs": list(inputs), "created_by": created_by,
    }
    return validate_manifest(manifest, "the manifest being built")


def _check_types(manifest: Mapping, source: str) -> None:
    for key, kind in REQUIRED_KEYS.items():
        if key not in manifest:
            raise DataError(f"{source}: missing field '{key}'")
        value = manifest[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise DataError(f"{source}: field '{key}' should be {kind.__name__}, "
                            f"got {type(value).__name__}")


def _check_shards(manifest: Mapping, source: str) -> None:
    if not manifest["shards"]:
        raise DataError(f"{source}: field 'shards' is empty")
    total = 0
    for i, shard in enumerate(manifest["shards"]):
        if not isinstance(shard, dict) or not isinstance(shard.get("file"), str):
            raise DataError(f"{source}: shards[{i}] lacks a 'file' name")
        for key, default in (("num_instances", None), ("bytes", 0)):
            value = shard.get(key, default)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise DataError(f"{source}: shards[{i}] ({shard['file']}) field '{key}' should "
                                f"be a non-negative integer, got {value!r}")
        total += shard["num_instances"]
    if total != manifest["num_instances"]:
        raise DataError(f"{source}: field 'num_instances' is {manifest['num_instances']} but the "
                        f"shards add up to {total}")


def validate_manifest(manifest: Any, source: str) -> dict:
    """Checks a manifest's keys, types and values; a DataError names `source` and the field."""
    if not isinstance(manifest, dict):
        raise DataError(f"{source}: expected a JSON object, got {type(manifest).__name__}")
    _check_types(manifest, source)
    if manifest["format_version"] != FORMAT_VERSION:
        raise DataError(f"{source}: field 'format_version' is {manifest['format_version']}, "
                        f"this reader understands {FORMAT_VERSION}")
    if manifest["schema"] not in SCHEMAS:
        raise DataError(f"{source}: field 'schema' is {manifest['schema']!r}, expected one of "
                        f"{', '.join(SCHEMAS)}")
    for key in ("max_seq_length", "max_predictions_per_seq", "vocab_size"):
        if manifest[key] <= 0:
            raise DataError(f"{source}: field '{key}' must be > 0, got {manifest[key]}")
    for token in SPECIAL_TOKENS:
        if not isinstance(manifest["special_ids"].get(token), int):
            raise DataError(f"{source}: field 'special_ids' lacks an integer id for {token}")
    _check_shards(manifest, source)
    return manifest


def manifest_bytes(manifest: Mapping) -> bytes:
    """The file's bytes: UTF-8 JSON, required keys first in their order, indented."""
    ordered = {k: manifest[k] for k in REQUIRED_KEYS if k in manifest}
    ordered.update({k: v for k, v in manifest.items() if k not in ordered})
    return (json.dumps(ordered, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_manifest(output_dir: str | os.PathLike, manifest: Mapping) -> str:
    """Validate, then write `<output_dir>/manifest.json` atomically; returns its path."""
    path = os.path.join(os.fspath(output_dir), MANIFEST_NAME)
    validate_manifest(dict(manifest), path)
    atomic_write_text(path, manifest_bytes(manifest).decode("utf-8"))
    return path


# ---------------------------------------------------------------------------------------------
# Reading (local files without TensorFlow; remote ones through tf.io.gfile)
# ---------------------------------------------------------------------------------------------
def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def _exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def _size(path: str) -> int:
    """Size in bytes; FileNotFoundError when absent, OSError when it cannot be seen."""
    if not is_remote(path):
        return os.stat(path).st_size
    import tensorflow as tf

    try:
        return tf.io.gfile.stat(path).length
    except tf.errors.NotFoundError:
        raise FileNotFoundError(path) from None
    except tf.errors.OpError as e:
        raise OSError(e.message.splitlines()[0]) from None


def _reason(error: OSError) -> str:
    return (error.strerror or str(error)).splitlines()[0]


def load_manifest(data_dir: str) -> dict:
    """Reads and validates `<data_dir>/manifest.json` (the shard files are not looked at)."""
    path = os.path.join(data_dir, MANIFEST_NAME)
    try:
        text = read_bytes(path).decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no manifest; expected the output directory of "
                        "`tfcompact create-data`") from None
    except (OSError, UnicodeDecodeError) as e:
        why = _reason(e) if isinstance(e, OSError) else "not UTF-8"
        raise DataError(f"{path}: cannot read ({why})") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    return validate_manifest(manifest, path)


def read_manifest(data_dir: str) -> dict:
    """`load_manifest`, and every listed shard exists with the size the manifest records."""
    manifest = load_manifest(data_dir)
    check_shard_sizes(data_dir, manifest, os.path.join(data_dir, MANIFEST_NAME))
    return manifest


def shard_mismatch(path: str, shard: Mapping, *, size: int | None = None,
                   sha256: str | None = None) -> str | None:
    """`PATH: found X, manifest.json records Y` when a shard file's size or sha256 differs from
    its manifest entry; None when they match or the entry does not record that value (older
    manifests have no `bytes`)."""
    want = shard.get("bytes")
    if size is not None and isinstance(want, int) and not isinstance(want, bool) and size != want:
        return f"{path}: {size} bytes, {MANIFEST_NAME} records {want}"
    want = shard.get("sha256")
    if sha256 is not None and want and sha256 != want:
        return f"{path}: sha256 {sha256}, {MANIFEST_NAME} records {want}"
    return None


def check_shard_sizes(data_dir: str, manifest: Mapping, source: str) -> None:
    """The cheap check made whenever a manifest is read for training (one stat per shard):
    every listed shard exists and has the size in bytes the manifest records (manifests
    written before sizes were recorded are checked for existence only)."""
    for shard in manifest["shards"]:
        shard_path = os.path.join(data_dir, shard["file"])
        try:
            size = _size(shard_path)
        except FileNotFoundError:
            raise DataError(f"{source}: shard '{shard['file']}' is listed but {shard_path} "
                            "does not exist") from None
        except OSError as e:
            raise DataError(f"{shard_path}: cannot read ({_reason(e)})") from None
        problem = shard_mismatch(shard_path, shard, size=size)
        if problem:
            raise DataError(f"{problem} ({DAMAGED})")


def manifest_dir(data_path: str) -> str:
    """Directory holding `manifest.json` for a data directory or a shard glob inside it."""
    if any(ch in data_path for ch in "*?["):
        return os.path.dirname(data_path) or "."
    return data_path


def read_data_manifest(data_path: str, field: str) -> dict:
    """The validated manifest of a data directory or shard glob given as config `field`."""
    d = manifest_dir(data_path)
    if not _exists(os.path.join(d, MANIFEST_NAME)):
        raise DataError(f"{field}: {data_path}: no {MANIFEST_NAME} in {d}; expected a directory "
                        f"written by `tfcompact create-data`")
    return read_manifest(d)


def vocab_beside(data_dir_or_shard: str, manifest: Mapping) -> str | None:
    """The data's `vocab.txt` (in the data directory, or beside the shard or glob given) when
    its md5 is the manifest's `vocab_md5`; None when absent, different, or nothing to check
    against. create-data writes it there; readers draw random replacements from it."""
    want = manifest.get("vocab_md5")
    if is_remote(data_dir_or_shard):
        isdir = _gfile().isdir(data_dir_or_shard)
    else:
        isdir = os.path.isdir(data_dir_or_shard)
    directory = data_dir_or_shard if isdir else os.path.dirname(data_dir_or_shard)
    path = os.path.join(directory, VOCAB_NAME)
    if not want or not _exists(path):
        return None
    try:
        return path if hashlib.md5(read_bytes(path)).hexdigest() == want else None
    except OSError as e:
        raise DataError(f"{path}: cannot read the data's vocabulary ({_reason(e)})") from None
