"""Training reader: shapes, sharding, determinism, exact resume, manifest errors."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfcompact.inputs import pretraining as readers
from tfcompact.inputs.manifest import (MANIFEST_NAME, SCHEMA_MASKED, build_manifest,
                                       read_manifest, vocab_beside, write_manifest)
from tfcompact.inputs.dynamic_masking import DynamicMaskingConfig
from tfcompact.errors import ConfigError, DataError

SEQ = 16
PREDS = 4
SPECIAL = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
VOCAB = 200


def _int_feature(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _example(uid: int, schema: str, rng: np.random.Generator) -> bytes:
    """One example whose identity `uid` is stored in input_ids[1] (uid + 10) and the label."""
    n = int(rng.integers(6, SEQ + 1))
    ids = np.zeros(SEQ, np.int64)
    ids[0], ids[n - 1] = 2, 3
    ids[1:n - 1] = rng.integers(10, VOCAB, n - 2)
    ids[1] = uid + 10
    mask = (np.arange(SEQ) < n).astype(np.int64)
    feats = {
        "input_ids": _int_feature(ids),
        "input_mask": _int_feature(mask),
        "segment_ids": _int_feature(np.zeros(SEQ)),
        "next_sentence_labels": _int_feature([uid % 2]),
    }
    if schema == "bert_masked":
        feats["masked_lm_positions"] = _int_feature([1, 2, 0, 0])
        feats["masked_lm_ids"] = _int_feature([ids[1], ids[2], 0, 0])
        feats["masked_lm_weights"] = tf.train.Feature(
            float_list=tf.train.FloatList(value=[1.0, 1.0, 0.0, 0.0]))
    else:
        word_ids = np.full(SEQ, -1, np.int64)
        word, pos = 0, 1
        while pos < n - 1:
            for _ in range(int(rng.integers(1, 4))):
                if pos < n - 1:
                    word_ids[pos] = word
                    pos += 1
            word += 1
        feats["word_ids"] = _int_feature(word_ids)
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString(
        deterministic=True)


def write_data(directory, counts, schema="bert_masked", seed=0):
    """Shards with `counts` examples each (uids 0..sum-1 in order) plus a manifest."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    shards, uid = [], 0
    for i, count in enumerate(counts):
        name = f"data-{i:05d}-of-{len(counts):05d}.tfrecord"
        with tf.io.TFRecordWriter(os.path.join(directory, name)) as w:
            for _ in range(count):
                w.write(_example(uid, schema, rng))
                uid += 1
        shards.append({"file": name, "num_instances": count, "sha256": ""})
    manifest = build_manifest(
        schema=schema, max_seq_length=SEQ, max_predictions_per_seq=PREDS, vocab_size=VOCAB,
        vocab_md5="", do_lower_case=True, special_ids=SPECIAL,
        masking="wwm" if schema == SCHEMA_MASKED else "none", pair_task="nsp", dupe_factor=1,
        seed=0, segmenter={"name": "test", "version": "0"}, shards=shards, inputs=[],
        created_by="test")
    write_manifest(directory, manifest)
    return manifest


def uids(batches):
    return [int(u) - 10 for b in batches for u in b["input_ids"][:, 1]]


def take(ds, n):
    return [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]


def test_shapes_dtypes_static_and_values(tmp_path):
    write_data(tmp_path, [5, 6], "bert_masked")
    ds = readers.pretraining_dataset(str(tmp_path), 4, is_training=False)
    spec = ds.element_spec
    expected = {"input_ids": [4, SEQ], "input_mask": [4, SEQ], "segment_ids": [4, SEQ],
                "masked_lm_positions": [4, PREDS], "masked_lm_ids": [4, PREDS],
                "masked_lm_weights": [4, PREDS], "next_sentence_labels": [4]}
    assert sorted(spec) == sorted(expected)
    for name, shape in expected.items():
        assert spec[name].shape.as_list() == shape, name
        want = tf.float32 if name == "masked_lm_weights" else tf.int32
        assert spec[name].dtype == want, name
    batches = take(ds, 10)
    # 11 examples, batch 4, one ordered pass, remainder dropped.
    assert uids(batches) == list(range(8))
    assert [int(x) for b in batches for x in b["next_sentence_labels"]] == [u % 2 for u in range(8)]
    first = batches[0]
    np.testing.assert_array_equal(first["masked_lm_ids"][:, :2], first["input_ids"][:, 1:3])
    np.testing.assert_array_equal(first["masked_lm_weights"][0], [1, 1, 0, 0])


def test_glob_input_and_unlisted_file(tmp_path):
    write_data(tmp_path, [3, 3, 3])
    ds = readers.pretraining_dataset(str(tmp_path / "data-0000[02]-*"), 3, is_training=False)
    assert uids(take(ds, 5)) == [0, 1, 2, 6, 7, 8]
    tf.io.write_file(str(tmp_path / "data-extra.tfrecord"), b"")
    with pytest.raises(DataError, match="data-extra.tfrecord"):
        readers.pretraining_dataset(str(tmp_path / "data-*"), 3, is_training=False)
    with pytest.raises(DataError, match="no file matches"):
        readers.pretraining_dataset(str(tmp_path / "nothing-*"), 3, is_training=False)


@pytest.mark.parametrize("counts", [[4, 4, 4, 4], [16]], ids=["by_files", "by_records"])
@pytest.mark.parametrize("is_training", [False, True])
def test_two_input_contexts_disjoint_and_complete(tmp_path, counts, is_training):
    # 4 files for 2 pipelines: shard by files; 1 file: shard by records.
    write_data(tmp_path, counts)
    seen = []
    for pid in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pid,
                                         num_replicas_in_sync=2)
        ds = readers.pretraining_dataset(str(tmp_path), 1, is_training=is_training,
                                         input_context=ctx, seed=3, repeat=False)
        seen.append(uids(take(ds, 100)))
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(16))


def test_record_sharding_with_few_files(tmp_path):
    write_data(tmp_path, [7, 8])  # 2 files, 3 pipelines -> shard by records
    seen = []
    for pid in range(3):
        ctx = tf.distribute.InputContext(num_input_pipelines=3, input_pipeline_id=pid)
        ds = readers.pretraining_dataset(str(tmp_path), 1, is_training=True, input_context=ctx,
                                         seed=5, repeat=False)
        got = uids(take(ds, 100))
        assert len(got) == readers.records_per_pipeline(
            read_manifest(str(tmp_path)), 3, pid) == 5
        seen.append(got)
    assert sorted(sum(seen, [])) == list(range(15))


def test_every_epoch_is_a_permutation_and_epochs_differ(tmp_path):
    write_data(tmp_path, [6, 5, 7])
    ds = readers.pretraining_dataset(str(tmp_path), 1, is_training=True, seed=11,
                                     shuffle_buffer=8)
    order = uids(take(ds, 54))
    epochs = [order[i * 18:(i + 1) * 18] for i in range(3)]
    for e in epochs:
        assert sorted(e) == list(range(18))
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2]
    assert epochs[0] != list(range(18))  # shuffled


def test_deterministic_with_seed(tmp_path):
    write_data(tmp_path, [9, 9, 9], "unmasked")

    def run(seed):
        ds = readers.pretraining_dataset(str(tmp_path), 4, is_training=True, seed=seed,
                                         shuffle_buffer=10)
        return take(ds, 8)  # 32 examples: crosses an epoch boundary (27 records)

    a, b, c = run(1), run(1), run(2)
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert uids(a) != uids(c)


@pytest.mark.parametrize("schema", ["bert_masked", "unmasked"])
def test_skip_batches_equals_continuation(tmp_path, schema):
    write_data(tmp_path, [7, 6], schema)  # 13 records/epoch, batch 3: batches straddle epochs

    def make(skip):
        return readers.pretraining_dataset(str(tmp_path), 3, is_training=True, seed=7,
                                           shuffle_buffer=5, skip_batches=skip)

    full = take(make(0), 20)
    for skip in (4, 13):  # 12 records into epoch 0; 39 records = exactly 3 epochs
        resumed = take(make(skip), 20 - skip)
        assert len(resumed) == 20 - skip
        for x, y in zip(full[skip:], resumed):
            assert sorted(x) == sorted(y)
            for k in x:
                np.testing.assert_array_equal(x[k], y[k], err_msg=f"skip={skip} {k}")


def test_dynamic_masking_output_keys(tmp_path):
    write_data(tmp_path, [12], "unmasked")
    ds = readers.pretraining_dataset(str(tmp_path), 4, is_training=True, seed=0)
    spec = ds.element_spec
    assert "word_ids" not in spec
    assert spec["masked_lm_positions"].shape.as_list() == [4, PREDS]
    assert spec["masked_lm_weights"].dtype == tf.float32
    batch = take(ds, 1)[0]
    assert batch["masked_lm_weights"].sum() >= 4  # at least one word per row
    with pytest.raises(ConfigError, match="unmasked"):
        other = tmp_path / "masked"
        write_data(other, [4], "bert_masked")
        readers.pretraining_dataset(str(other), 2, is_training=True,
                                    dynamic_masking=DynamicMaskingConfig(
                                        vocab_size=VOCAB, mask_id=4, max_predictions_per_seq=4))


@pytest.mark.parametrize("schema,predictions", [
    ("bert_masked", None), ("unmasked", None), ("unmasked", 7)])
def test_element_spec_without_a_dataset(tmp_path, schema, predictions):
    """`pretraining_element_spec` is the dataset's element_spec, for data read as written and
    for unmasked data masked on the fly (also with another number of predictions)."""
    manifest = write_data(tmp_path, [5, 6], schema)
    masking = None
    if predictions is not None:
        masking = DynamicMaskingConfig.from_manifest(manifest,
                                                     max_predictions_per_seq=predictions)
    for batch in (1, 3):
        spec = readers.pretraining_element_spec(manifest, batch, dynamic_masking=masking)
        ds = readers.pretraining_dataset(str(tmp_path), batch, is_training=True,
                                         manifest=manifest, dynamic_masking=masking)
        assert spec == ds.element_spec
        assert spec["masked_lm_ids"].shape.as_list() == [batch, predictions or PREDS]


def test_element_spec_refuses_masking_masked_data(tmp_path):
    manifest = write_data(tmp_path, [4], "bert_masked")
    with pytest.raises(ConfigError, match="dynamic masking needs the 'unmasked' schema"):
        readers.pretraining_element_spec(manifest, 2, DynamicMaskingConfig(
            vocab_size=VOCAB, mask_id=4, max_predictions_per_seq=4))


def test_a_given_manifest_is_not_read_again(tmp_path):
    """The trainer reads manifest.json once; the reader works from the manifest it is given."""
    write_data(tmp_path, [4, 4], "unmasked")
    manifest = read_manifest(str(tmp_path))
    os.remove(tmp_path / MANIFEST_NAME)
    for data in (str(tmp_path), str(tmp_path / "data-*")):
        ds = readers.pretraining_dataset(data, 2, is_training=False, manifest=manifest)
        assert len(uids(take(ds, 4))) == 8


def _corrupt(tmp_path, edit):
    manifest = write_data(tmp_path, [2, 2])
    edit(manifest)
    with open(tmp_path / MANIFEST_NAME, "w") as f:  # by hand: the module refuses to write it
        json.dump(manifest, f)


@pytest.mark.parametrize("edit,match", [
    (lambda m: m.pop("max_seq_length"), "missing field 'max_seq_length'"),
    (lambda m: m.pop("shards"), "missing field 'shards'"),
    (lambda m: m.update(schema="tokens"), "field 'schema'"),
    (lambda m: m.update(format_version=2), "format_version"),
    (lambda m: m.update(num_instances=5), "add up to 4"),
    (lambda m: m["special_ids"].pop("[MASK]"), r"\[MASK\]"),
    (lambda m: m.update(max_seq_length="16"), "'max_seq_length' should be int"),
    (lambda m: m["shards"].append({"file": "data-00009-of-00009.tfrecord",
                                   "num_instances": 0}), "data-00009-of-00009.tfrecord"),
    (lambda m: m["shards"][0].pop("num_instances"), r"shards\[0\]"),
    (lambda m: m["shards"][0].update(bytes=-1), r"shards\[0\].*'bytes'"),
])
def test_bad_manifest(tmp_path, edit, match):
    _corrupt(tmp_path, edit)
    with pytest.raises(DataError, match=match) as info:
        read_manifest(str(tmp_path))
    assert "manifest.json" in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_or_invalid_manifest(tmp_path):
    with pytest.raises(DataError, match="no manifest"):
        read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text('{"format_version": 1,\n "schema": }')
    with pytest.raises(DataError, match="line 2"):
        read_manifest(str(tmp_path))


def test_shard_deleted_after_listing(tmp_path):
    write_data(tmp_path, [2, 2])
    os.remove(tmp_path / "data-00001-of-00002.tfrecord")
    with pytest.raises(DataError, match="data-00001-of-00002.tfrecord"):
        readers.pretraining_dataset(str(tmp_path), 2, is_training=True)


def test_reads_create_data_unmasked_output(tmp_path):
    """The converter's unmasked output through the reader: whole words, plain-id labels."""
    from pipelines.create_data import ConvertConfig, run_conversion
    from tests.text.data_fixtures import bert_vocab_path, peoples_daily_text

    text = peoples_daily_text(tmp_path, 20_000)
    out = str(tmp_path / "data")
    run_conversion(ConvertConfig(inputs=[text], vocab_path=bert_vocab_path(), output_dir=out,
                                 max_seq_length=64, max_predictions_per_seq=10, masking="none",
                                 pair_task="sop", dupe_factor=1, num_shards=2), progress=False)
    manifest = read_manifest(out)
    assert manifest["schema"] == "unmasked"
    masked = take(readers.pretraining_dataset(out, 8, is_training=False), 3)
    files = [os.path.join(out, s["file"]) for s in manifest["shards"]]
    raw = tf.io.parse_example(next(iter(tf.data.TFRecordDataset(files).batch(24))),
                              readers.feature_spec(manifest))
    ids, word_ids = raw["input_ids"].numpy(), raw["word_ids"].numpy()
    for i, batch in enumerate(masked):
        for row in range(8):
            r = i * 8 + row
            w = batch["masked_lm_weights"][row] > 0
            pos = batch["masked_lm_positions"][row][w]
            assert len(pos) >= 1 and (word_ids[r, pos] >= 0).all()
            np.testing.assert_array_equal(batch["masked_lm_ids"][row][w], ids[r, pos])
            for word in np.unique(word_ids[r, pos]):  # every piece of a chosen word labelled
                assert set(np.nonzero(word_ids[r] == word)[0]) <= set(pos.tolist())
            changed = np.nonzero(batch["input_ids"][row] != ids[r])[0]
            assert set(changed.tolist()) <= set(pos.tolist())


def test_evaluation_masks_fixed_without_seed(tmp_path):
    write_data(tmp_path, [10], "unmasked")
    a = take(readers.pretraining_dataset(str(tmp_path), 5, is_training=False), 5)
    b = take(readers.pretraining_dataset(str(tmp_path), 5, is_training=False), 5)
    assert len(a) == 2
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])


def test_vocab_next_to_shards_used_only_when_md5_matches(tmp_path):
    import hashlib

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused1]", "##x", "的", "是"]
    text = "".join(t + "\n" for t in tokens).encode("utf-8")
    (tmp_path / "vocab.txt").write_bytes(text)
    shard = str(tmp_path / "data-00000-of-00001.tfrecord")
    manifest = {"vocab_md5": hashlib.md5(text).hexdigest()}
    assert vocab_beside(shard, manifest) == str(tmp_path / "vocab.txt")
    assert vocab_beside(shard, {"vocab_md5": "0" * 32}) is None
    assert vocab_beside(str(tmp_path / "x" / "s.tfrecord"), manifest) is None
    cfg = DynamicMaskingConfig.from_manifest(
        {"vocab_size": 9, "max_predictions_per_seq": 2,
         "special_ids": {t: i for i, t in enumerate(tokens[:5])}},
        vocab_beside(shard, manifest))
    assert cfg.replacement_ids() == [7, 8]


# ---------------------------------------------------------------------------------------------
# Damaged shards: the size check on every read, the sha256 check in verify_shards.
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A real create-data output (2 shards, manifest with sha256 and bytes per shard)."""
    from pipelines.create_data import ConvertConfig, run_conversion
    from tests.text.data_fixtures import bert_vocab_path, peoples_daily_text

    tmp = tmp_path_factory.mktemp("converted")
    out = str(tmp / "data")
    run_conversion(ConvertConfig(inputs=[peoples_daily_text(tmp, 20_000)], vocab_path=bert_vocab_path(),
                                 output_dir=out, max_seq_length=64, max_predictions_per_seq=10,
                                 dupe_factor=1, num_shards=2, segmenter="rjieba"), progress=False)
    return out


def _copy(src, tmp_path):
    import shutil

    dst = tmp_path / "data"
    shutil.copytree(src, dst)
    return dst


def _one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


def test_truncated_shard_named_on_every_read(tmp_path, converted):
    data = _copy(converted, tmp_path)
    manifest = read_manifest(str(data))
    shard = data / "data-00001-of-00002.tfrecord"
    size = manifest["shards"][1]["bytes"]
    assert size == shard.stat().st_size > 1000
    with open(shard, "r+b") as f:
        f.truncate(size - 100)
    want = f"data-00001-of-00002.tfrecord: {size - 100} bytes, manifest.json records {size}"
    with pytest.raises(DataError, match=want) as e:
        read_manifest(str(data))
    assert "damaged" in _one_line(e)
    with pytest.raises(DataError, match=want):  # with the manifest passed in, as the trainer does
        readers.pretraining_dataset(str(data), 4, is_training=True, manifest=manifest)
    with pytest.raises(DataError, match=want):
        readers.verify_shards(str(data))


def test_flipped_byte_found_by_verify_shards(tmp_path, converted):
    data = _copy(converted, tmp_path)
    manifest = read_manifest(str(data))
    readers.verify_shards(str(data))  # intact
    shard = data / "data-00000-of-00002.tfrecord"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    shard.write_bytes(bytes(raw))
    read_manifest(str(data))  # same size: the cheap check cannot see it
    ds = readers.pretraining_dataset(str(data), 4, is_training=False, repeat=False)
    with pytest.raises(tf.errors.DataLossError) as loss:  # what training would die of
        for _ in ds:
            pass
    want = (f"data-00000-of-00002.tfrecord: sha256 [0-9a-f]{{64}}, manifest.json records "
            f"{manifest['shards'][0]['sha256']}")
    with pytest.raises(DataError, match=want) as e:
        readers.verify_shards(str(data), manifest)
    _one_line(e)
    named = readers.data_loss_error(str(data), loss.value, manifest)
    assert isinstance(named, DataError) and str(named) == str(e.value)
    # A glob of the shards, as data.train may be given, is verified the same way.
    with pytest.raises(DataError, match="data-00000-of-00002.tfrecord: sha256"):
        readers.verify_shards(str(data / "*.tfrecord"))


def test_older_manifest_without_sizes_still_reads(tmp_path, converted):
    data = _copy(converted, tmp_path)
    manifest = json.loads((data / "manifest.json").read_text())
    for s in manifest["shards"]:
        del s["bytes"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    assert read_manifest(str(data))["num_instances"] == manifest["num_instances"]
    shard = data / "data-00001-of-00002.tfrecord"
    with open(shard, "r+b") as f:
        f.truncate(shard.stat().st_size - 7)
    read_manifest(str(data))  # no size recorded: only existence is checked
    with pytest.raises(DataError, match="data-00001-of-00002.tfrecord: sha256"):
        readers.verify_shards(str(data))


def test_verify_without_sha256_reads_record_checksums(tmp_path):
    write_data(tmp_path, [4, 4])  # manifest with sha256 "" (as hand-made or test data)
    readers.verify_shards(str(tmp_path))
    shard = tmp_path / "data-00001-of-00002.tfrecord"
    raw = bytearray(shard.read_bytes())
    raw[40] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="data-00001-of-00002.tfrecord: damaged TFRecord file") as e:
        readers.verify_shards(str(tmp_path))
    assert "no sha256" in _one_line(e)


def test_data_loss_error_when_every_shard_matches(tmp_path, converted):
    data = _copy(converted, tmp_path)
    error = readers.data_loss_error(str(data), tf.errors.DataLossError(None, None, "corrupted record\nmore"))
    assert isinstance(error, DataError)
    assert str(error) == (f"{data}: reading the data failed (corrupted record) although every "
                          "shard matches manifest.json")
