"""TFRecord output of the corpus converter: tf.train.Example bytes and TFRecord framing (the
manifest beside the shards is `tfcompact.inputs.manifest`).

The converter's worker processes must stay small (importing TensorFlow costs about 590 MB of
RSS per process, more than the converter's whole memory budget), so this module writes both
layers itself:

- `instance_to_example_bytes` encodes a `tf.train.Example` directly in protobuf wire format,
  with map entries in sorted key order: exactly the bytes of
  `example.SerializeToString(deterministic=True)` (tests check this against the real proto),
  so shards are byte-identical between runs whatever the protobuf version.
- `frame_records` adds TFRecord framing (length, masked CRC-32C of the length, data, masked
  CRC-32C of the data). CRC-32C comes from `google_crc32c` when installed, otherwise from a
  numpy routine that advances the CRCs of a whole batch of records one byte column at a time.
"""
from __future__ import annotations

import hashlib
import os
import struct
from typing import Iterable, Mapping, Sequence

import numpy as np

from tfcompact.inputs.manifest import FEATURES

try:  # optional C implementation (pip install google-crc32c)
    import google_crc32c as _google_crc32c
except ImportError:  # pragma: no cover - depends on the environment
    _google_crc32c = None

# The feature names and dtypes come from the manifest's feature spec, the one list of them.
FLOAT_FEATURES = frozenset(name for spec in FEATURES.values() for name, dtype, _ in spec
                           if dtype == "float32")


def shard_name(index: int, num_shards: int) -> str:
    """`data-00003-of-00008.tfrecord`."""
    return f"data-{index:05d}-of-{num_shards:05d}.tfrecord"


# ---------------------------------------------------------------------------------------------
# Protobuf wire format
# ---------------------------------------------------------------------------------------------
def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 -> two's complement, 10 bytes
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varint_table() -> dict:
    """{value: varint bytes} for -1..65535 (built without calling `_varint` 65k times: 3x faster
    process start-up for this module)."""
    table = {i: bytes((i,)) for i in range(128)}
    table.update({i: bytes(((i & 0x7F) | 0x80, i >> 7)) for i in range(128, 1 << 14)})
    table.update({i: bytes(((i & 0x7F) | 0x80, ((i >> 7) & 0x7F) | 0x80, i >> 14)) for i in range(1 << 14, 1 << 16)})
    table[-1] = _varint(-1)
    return table


_VARINT_TABLE = _varint_table()


def _packed_varints(values: Sequence[int]) -> bytes:
    """Concatenated varints (the payload of a packed repeated int64 field)."""
    if isinstance(values, np.ndarray):
        values = values.tolist()
    try:
        return b"".join(map(_VARINT_TABLE.__getitem__, values))
    except KeyError:
        return b"".join([_varint(int(v)) for v in values])


_TAG_BYTES = {t: bytes((t,)) for t in (0x0A, 0x12, 0x1A)}


def _small_varints(values: Sequence[int]) -> bytes:
    """Packed varints of values that are usually 0..127 (one byte each)."""
    try:
        if max(values, default=0) < 128 and min(values, default=0) >= 0:
            return bytes(values)
    except TypeError:
        pass
    return _packed_varints(values)


def _len_field(tag: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field: tag byte, varint length, payload."""
    n = len(payload)
    return _TAG_BYTES[tag] + (_VARINT_TABLE[n] if n < 65536 else _varint(n)) + payload


def _feature_bytes(name: str, values) -> bytes:
    """One `feature` map entry of tf.train.Features: key + Feature(int64_list|float_list)."""
    if name in FLOAT_FEATURES:
        data = np.asarray(values, dtype="<f4").tobytes()
        inner = _len_field(0x0A, data) if data else b""
        feature = _len_field(0x12, inner)  # Feature.float_list = 2
    else:
        data = _packed_varints(values)
        inner = _len_field(0x0A, data) if data else b""
        feature = _len_field(0x1A, inner)  # Feature.int64_list = 3
    entry = _len_field(0x0A, name.encode()) + _len_field(0x12, feature)
    return _len_field(0x0A, entry)


def example_bytes(features: Mapping[str, Sequence]) -> bytes:
    """Serialise {name: int or float values} as a tf.train.Example (deterministic bytes)."""
    body = b"".join(_feature_bytes(k, features[k]) for k in sorted(features))
    return _len_field(0x0A, body)  # Example.features = 1


_NAME_FIELDS: dict[bytes, bytes] = {}


def _name_field(name: bytes) -> bytes:
    field = _NAME_FIELDS.get(name)
    if field is None:
        field = _NAME_FIELDS[name] = _len_field(0x0A, name)
    return field


def _int_entry(name: bytes, packed: bytes) -> bytes:
    inner = _len_field(0x0A, packed) if packed else b""
    return _len_field(0x0A, _name_field(name) + _len_field(0x12, _len_field(0x1A, inner)))


def _float_entry(name: bytes, data: bytes) -> bytes:
    inner = _len_field(0x0A, data) if data else b""
    return _len_field(0x0A, _name_field(name) + _len_field(0x12, _len_field(0x12, inner)))


_ONE_F32 = struct.pack("<f", 1.0)
_ZERO_F32 = struct.pack("<f", 0.0)


def instance_to_example_bytes(
    input_ids: Sequence[int],
    segment_ids: Sequence[int],
    next_sentence_label: int,
    max_seq_length: int,
    *,
    masked_lm_positions: Sequence[int] | None = None,
    masked_lm_ids: Sequence[int] | None = None,
    max_predictions_per_seq: int | None = None,
    word_ids: Sequence[int] | None = None,
) -> bytes:
    """One instance as Example bytes, padded to static lengths.

    With `masked_lm_positions`/`masked_lm_ids` (and `max_predictions_per_seq`): the
    "bert_masked" schema of google-research/bert. With `word_ids`: the "unmasked" schema
    (word index per token, -1 for [CLS]/[SEP]/padding) for dynamic masking at training time.
    Same bytes as `example_bytes` on the padded features (fast paths for small values).
    """
    n = len(input_ids)
    if n > max_seq_length:
        raise ValueError(f"instance has {n} tokens > max_seq_length {max_seq_length}")
    if len(segment_ids) != n:
        raise ValueError("segment_ids and input_ids differ in length")
    pad = max_seq_length - n
    zeros = b"\x00" * pad
    entries = {
        "input_ids": _int_entry(b"input_ids", _packed_varints(input_ids) + zeros),
        "input_mask": _int_entry(b"input_mask", b"\x01" * n + zeros),
        "segment_ids": _int_entry(b"segment_ids", _small_varints(segment_ids) + zeros),
        "next_sentence_labels": _int_entry(b"next_sentence_labels", _varint(int(next_sentence_label))),
    }
    if word_ids is not None:
        if len(word_ids) != n:
            raise ValueError("word_ids and input_ids differ in length")
        entries["word_ids"] = _int_entry(b"word_ids", _packed_varints(word_ids) + _VARINT_TABLE[-1] * pad)
    else:
        if masked_lm_positions is None or masked_lm_ids is None or max_predictions_per_seq is None:
            raise ValueError("masked schema needs masked_lm_positions, masked_lm_ids, max_predictions_per_seq")
        p = len(masked_lm_positions)
        if p > max_predictions_per_seq or len(masked_lm_ids) != p:
            raise ValueError(f"{p} predictions for max_predictions_per_seq {max_predictions_per_seq}")
        ppad = b"\x00" * (max_predictions_per_seq - p)
        entries["masked_lm_positions"] = _int_entry(b"masked_lm_positions", _small_varints(masked_lm_positions) + ppad)
        entries["masked_lm_ids"] = _int_entry(b"masked_lm_ids", _packed_varints(masked_lm_ids) + ppad)
        entries["masked_lm_weights"] = _float_entry(
            b"masked_lm_weights", _ONE_F32 * p + _ZERO_F32 * (max_predictions_per_seq - p))
    body = b"".join([entries[k] for k in sorted(entries)])
    return _len_field(0x0A, body)


# ---------------------------------------------------------------------------------------------
# TFRecord framing with CRC-32C
# ---------------------------------------------------------------------------------------------
def _crc32c_table() -> np.ndarray:
    poly = 0x82F63B78
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table[i] = c
    return table


_CRC_TABLE = _crc32c_table()


def crc32c_batch(records: Sequence[bytes]) -> np.ndarray:
    """CRC-32C (Castagnoli) of each record, uint32 [len(records)]."""
    if _google_crc32c is not None:
        return np.array([_google_crc32c.value(r) for r in records], dtype=np.uint32)
    n = len(records)
    if n == 0:
        return np.zeros(0, dtype=np.uint32)
    lengths = np.array([len(r) for r in records], dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")  # longest first: active rows are a prefix
    sorted_len = lengths[order]
    width = int(sorted_len[0])
    columns = np.zeros((width, n), dtype=np.uint8)  # byte j of the i-th longest record at [j, i]
    for row, idx in enumerate(order):
        r = records[idx]
        if r:
            columns[: len(r), row] = np.frombuffer(r, dtype=np.uint8)
    # active[j] = number of records longer than j
    active = np.searchsorted(-sorted_len, -np.arange(width), side="left")
    crc = np.full(n, 0xFFFFFFFF, dtype=np.uint32)
    table = _CRC_TABLE
    for j in range(width):
        k = int(active[j])
        c = crc[:k]
        crc[:k] = table[(c ^ columns[j, :k]) & 0xFF] ^ (c >> 8)
    crc ^= np.uint32(0xFFFFFFFF)
    out = np.empty(n, dtype=np.uint32)
    out[order] = crc
    return out


def _masked(crc: np.ndarray) -> np.ndarray:
    crc = crc.astype(np.uint64)
    return ((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF).astype(np.uint32)


def frame_records(records: Sequence[bytes]) -> bytes:
    """TFRecord file bytes for `records` (readable by tf.data.TFRecordDataset)."""
    if not records:
        return b""
    headers = [struct.pack("<Q", len(r)) for r in records]
    header_crcs = _masked(crc32c_batch(headers))
    data_crcs = _masked(crc32c_batch(records))
    parts = []
    for h, hc, r, dc in zip(headers, header_crcs.tolist(), records, data_crcs.tolist()):
        parts.append(h)
        parts.append(struct.pack("<I", hc))
        parts.append(r)
        parts.append(struct.pack("<I", dc))
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------
def sha256_of_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def iter_tfrecord_bytes(path: str | os.PathLike) -> Iterable[bytes]:
    """Read back the records of an uncompressed TFRecord file (no CRC check; for tools/tests)."""
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if not header:
                return
            (length,) = struct.unpack("<Q", header[:8])
            data = f.read(length)
            f.read(4)
            yield data


# ---------------------------------------------------------------------------------------------
# Batched serialisation (the converter's hot path)
# ---------------------------------------------------------------------------------------------
class _EntryHeaders:
    """Cached wire-format prefix of an int64 feature entry, keyed by (name, payload length)."""

    def __init__(self):
        self._cache: dict = {}

    def int_entry(self, name: bytes, payload: bytes) -> bytes:
        key = (name, len(payload))
        head = self._cache.get(key)
        if head is None:
            marker = b"\x00"  # build with a placeholder payload, keep everything before it
            full = _int_entry(name, marker * len(payload)) if payload else _int_entry(name, b"")
            head = self._cache[key] = full[: len(full) - len(payload)]
        return head + payload


_HEADERS = _EntryHeaders()


def _varint_matrix(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 array of the packed varints of all values, row-major; byte count per value [n, m]).

    Each value's K possible bytes are computed as columns of a [values, K] matrix (K from the
    largest value: 2 or 3 for vocab ids), then a boolean mask keeps the first `nb` of each."""
    m = np.ascontiguousarray(matrix, dtype=np.int64)
    v = m.ravel()
    if v.size == 0:
        return np.zeros(0, np.uint8), np.zeros(m.shape, np.int64)
    if int(v.min()) < 0:  # negative int64: 10 bytes of two's complement
        v = v.view(np.uint64)
        vmax = (1 << 64) - 1
    else:
        vmax = int(v.max())
    K = 1
    while K < 10 and vmax >= (1 << (7 * K)):
        K += 1
    if K == 1:
        return v.astype(np.uint8), np.ones(m.shape, np.int64)
    one = v.dtype.type(1)
    cols = np.empty((v.size, K), dtype=np.uint8)
    keep = np.empty((v.size, K), dtype=bool)
    keep[:, 0] = True
    nb = np.ones(v.size, dtype=np.int64)
    for k in range(K):
        byte = ((v >> v.dtype.type(7 * k)) & v.dtype.type(0x7F)).astype(np.uint8)
        if k < K - 1:
            more = v >= (one << v.dtype.type(7 * (k + 1)))  # another byte follows
            keep[:, k + 1] = more
            nb += more
            byte |= more.view(np.uint8) << 7
        cols[:, k] = byte
    return cols.ravel()[keep.ravel()], nb.reshape(m.shape)


def varint_rows(matrix: np.ndarray) -> tuple[bytes, list[int]]:
    """Packed varints of each row of an int64 matrix, vectorised: (all bytes, row offsets)."""
    data, nb = _varint_matrix(matrix)
    row_len = nb.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(row_len)]).tolist()
    return data.tobytes(), offsets


def _example_from_entries(entries: list) -> bytes:
    body = b"".join(entries)
    n = len(body)
    return b"\x0a" + (_VARINT_TABLE[n] if n < 65536 else _varint(n)) + body


def batch_to_example_bytes(
    tokens: np.ndarray,
    segment_ids: np.ndarray,
    lengths: np.ndarray,
    labels: np.ndarray,
    *,
    masked_lm_positions: np.ndarray | None = None,
    masked_lm_ids: np.ndarray | None = None,
    num_predictions: np.ndarray | None = None,
    word_ids: np.ndarray | None = None,
) -> list[bytes]:
    """Rows of padded arrays -> Example bytes, identical to `instance_to_example_bytes` on each
    row. tokens/segment_ids/word_ids [n, S] and masked_lm_positions/masked_lm_ids [n, P] are
    already padded (with 0, 0, -1, 0, 0); `num_predictions` [n] counts the real predictions."""
    n, S = tokens.shape
    out = []
    ids_bytes, ids_off = varint_rows(tokens)
    seg_rows = segment_ids.astype(np.uint8).tobytes()
    lens = lengths.tolist()
    labs = labels.tolist()
    table = _VARINT_TABLE.__getitem__
    h = _HEADERS
    if word_ids is not None:
        wid_bytes, wid_off = varint_rows(word_ids)
    else:
        P = masked_lm_positions.shape[1]
        counts = np.asarray(num_predictions).tolist()
        pos_bytes, pos_off = varint_rows(masked_lm_positions)
        lm_bytes, lm_off = varint_rows(masked_lm_ids)
        weights_cache: dict = {}
    mask_cache: dict = {}
    label_cache: dict = {}
    for r in range(n):
        L = lens[r]
        mask_entry = mask_cache.get(L)
        if mask_entry is None:
            mask_entry = mask_cache[L] = h.int_entry(b"input_mask", b"\x01" * L + b"\x00" * (S - L))
        label_entry = label_cache.get(labs[r])
        if label_entry is None:
            label_entry = label_cache[labs[r]] = h.int_entry(b"next_sentence_labels", table(labs[r]))
        entries = [h.int_entry(b"input_ids", ids_bytes[ids_off[r]:ids_off[r + 1]]), mask_entry]
        if word_ids is None:
            c = counts[r]
            w = weights_cache.get(c)
            if w is None:
                w = weights_cache[c] = _float_entry(b"masked_lm_weights", _ONE_F32 * c + _ZERO_F32 * (P - c))
            entries += [
                h.int_entry(b"masked_lm_ids", lm_bytes[lm_off[r]:lm_off[r + 1]]),
                h.int_entry(b"masked_lm_positions", pos_bytes[pos_off[r]:pos_off[r + 1]]),
                w,
                label_entry,
                h.int_entry(b"segment_ids", seg_rows[r * S:(r + 1) * S]),
            ]
        else:
            entries += [
                label_entry,
                h.int_entry(b"segment_ids", seg_rows[r * S:(r + 1) * S]),
                h.int_entry(b"word_ids", wid_bytes[wid_off[r]:wid_off[r + 1]]),
            ]
        out.append(_example_from_entries(entries))
    return out

