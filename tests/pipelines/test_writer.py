"""Serialisation: our wire bytes == protobuf's deterministic bytes; TFRecords readable by TF."""
import os

import numpy as np
import tensorflow as tf

from pipelines import writer


def _proto_bytes(features):
    ex = tf.train.Example()
    for k, v in features.items():
        if k == "masked_lm_weights":
            ex.features.feature[k].float_list.value.extend(v)
        else:
            ex.features.feature[k].int64_list.value.extend(v)
    return ex.SerializeToString(deterministic=True)


def test_masked_instance_bytes_equal_protobuf():
    got = writer.instance_to_example_bytes([101, 800, 21127, 16384, 102], [0, 0, 1, 1, 1], 1, 8,
                                           masked_lm_positions=[2, 3], masked_lm_ids=[21127, 16384],
                                           max_predictions_per_seq=3)
    expected = _proto_bytes({
        "input_ids": [101, 800, 21127, 16384, 102, 0, 0, 0], "input_mask": [1] * 5 + [0] * 3,
        "segment_ids": [0, 0, 1, 1, 1, 0, 0, 0], "masked_lm_positions": [2, 3, 0],
        "masked_lm_ids": [21127, 16384, 0], "masked_lm_weights": [1.0, 1.0, 0.0],
        "next_sentence_labels": [1]})
    assert got == expected


def test_unmasked_instance_bytes_equal_protobuf():
    got = writer.instance_to_example_bytes([101, 800, 801, 102], [0, 0, 0, 0], 0, 6, word_ids=[-1, 0, 0, -1])
    expected = _proto_bytes({
        "input_ids": [101, 800, 801, 102, 0, 0], "input_mask": [1, 1, 1, 1, 0, 0],
        "segment_ids": [0] * 6, "word_ids": [-1, 0, 0, -1, -1, -1], "next_sentence_labels": [0]})
    assert got == expected


def test_batch_serialisation_equals_single():
    rng = np.random.default_rng(0)
    n, S, P = 20, 16, 4
    tokens = rng.integers(0, 21128, size=(n, S))
    lengths = rng.integers(4, S + 1, size=n)
    tokens[np.arange(S)[None, :] >= lengths[:, None]] = 0
    segs = (np.arange(S)[None, :] >= (lengths // 2)[:, None]) & (np.arange(S)[None, :] < lengths[:, None])
    labels = rng.integers(0, 2, size=n)
    positions = [np.sort(rng.choice(np.arange(1, L), size=min(P, L - 1), replace=False)) for L in lengths]
    lm = [tokens[r, positions[r]] for r in range(n)]
    counts = np.array([len(p) for p in positions])
    pos_mat = np.zeros((n, P), dtype=np.int64)
    lm_mat = np.zeros((n, P), dtype=np.int64)
    for r in range(n):
        pos_mat[r, :counts[r]] = positions[r]
        lm_mat[r, :counts[r]] = lm[r]
    got = writer.batch_to_example_bytes(tokens, segs.astype(np.int64), lengths, labels,
                                        masked_lm_positions=pos_mat, masked_lm_ids=lm_mat, num_predictions=counts)
    for r in range(n):
        L = lengths[r]
        assert got[r] == writer.instance_to_example_bytes(
            tokens[r, :L].tolist(), segs[r, :L].astype(int).tolist(), labels[r], S,
            masked_lm_positions=positions[r].tolist(), masked_lm_ids=lm[r].tolist(), max_predictions_per_seq=P)
    wids = np.where(np.arange(S)[None, :] < lengths[:, None], np.arange(S)[None, :] // 2, -1)
    got = writer.batch_to_example_bytes(tokens, segs.astype(np.int64), lengths, labels, word_ids=wids)
    for r in range(n):
        L = lengths[r]
        assert got[r] == writer.instance_to_example_bytes(
            tokens[r, :L].tolist(), segs[r, :L].astype(int).tolist(), labels[r], S, word_ids=wids[r, :L].tolist())


def test_tfrecord_framing_read_by_tensorflow(tmp_path, monkeypatch):
    records = [os.urandom(n) for n in (0, 1, 7, 300, 5000)]
    path = str(tmp_path / "x.tfrecord")
    with open(path, "wb") as f:
        f.write(writer.frame_records(records))
    assert [r.numpy() for r in tf.data.TFRecordDataset(path)] == records
    # The numpy CRC-32C (used when google_crc32c is absent) gives the same file.
    monkeypatch.setattr(writer, "_google_crc32c", None)
    assert writer.frame_records(records) == open(path, "rb").read()
    assert writer.crc32c_batch([b"123456789"]).tolist() == [0xE3069283]  # the CRC-32C check value


def test_varint_rows_by_hand():
    """Protobuf varints: 7 bits a byte, low group first, high bit = more; negative int64 take
    10 bytes (two's complement)."""
    data, off = writer.varint_rows(np.array([[0, 1, 127], [128, 300, 16384]]))
    assert data[off[0]:off[1]] == bytes([0, 1, 127])
    assert data[off[1]:off[2]] == bytes([0x80, 0x01, 0xAC, 0x02, 0x80, 0x80, 0x01])
    data, off = writer.varint_rows(np.array([[-1, 5]]))
    assert data == bytes([0xFF] * 9 + [0x01, 0x05]) and off == [0, 11]
