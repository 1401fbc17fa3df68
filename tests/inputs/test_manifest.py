"""manifest.json: build -> write -> read, one-line errors per field, the vocab.txt rule, the
feature spec the writer and the readers share, and no TensorFlow on import."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from pipelines import writer
from tfcompact.errors import DataError
from tfcompact.inputs import manifest as mf

SPECIAL = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
VOCAB_TEXT = "".join(t + "\n" for t in [*SPECIAL, "人", "民", "日", "报"]).encode("utf-8")


def _records(n: int, schema: str) -> bytes:
    """`n` framed examples of `schema` (seq 8, 2 predictions), as the converter writes them."""
    extra = ({"word_ids": [-1, 0, 0, 1, -1]} if schema == mf.SCHEMA_UNMASKED else
             {"masked_lm_positions": [1], "masked_lm_ids": [5], "max_predictions_per_seq": 2})
    one = writer.instance_to_example_bytes([2, 5, 6, 7, 3], [0] * 5, 1, 8, **extra)
    return writer.frame_records([one] * n)


def make_data(directory, schema=mf.SCHEMA_MASKED, counts=(3, 2), vocab=True) -> dict:
    """Shards, vocab.txt and manifest.json as create-data leaves them; returns the manifest."""
    os.makedirs(directory, exist_ok=True)
    shards = []
    for i, n in enumerate(counts):
        name = writer.shard_name(i, len(counts))
        data = _records(n, schema)
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
        shards.append(mf.shard_entry(name, n, hashlib.sha256(data).hexdigest(), len(data)))
    if vocab:
        with open(os.path.join(directory, mf.VOCAB_NAME), "wb") as f:
            f.write(VOCAB_TEXT)
    manifest = mf.build_manifest(
        schema=schema, max_seq_length=8, max_predictions_per_seq=2, vocab_size=9,
        vocab_md5=hashlib.md5(VOCAB_TEXT).hexdigest(), do_lower_case=True, special_ids=SPECIAL,
        masking="wwm" if schema == mf.SCHEMA_MASKED else "none", pair_task="sop",
        dupe_factor=1, seed=5, segmenter={"name": "jieba", "version": "0.42.1"}, shards=shards,
        inputs=["/corpus/a.txt"], created_by="tests/inputs/test_manifest.py")
    mf.write_manifest(directory, manifest)
    return manifest


def _one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text, text
    return text


def test_importing_the_manifest_module_does_not_import_tensorflow():
    code = "import tfcompact.inputs.manifest, sys; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_build_write_read_round_trip(tmp_path):
    built = make_data(tmp_path)
    assert built["num_instances"] == 5 and built["format_version"] == mf.FORMAT_VERSION
    assert mf.read_manifest(str(tmp_path)) == built
    raw = (tmp_path / mf.MANIFEST_NAME).read_bytes()
    assert raw == mf.manifest_bytes(built) and raw.endswith(b"}\n")
    assert list(json.loads(raw)) == list(mf.REQUIRED_KEYS)  # the written order
    # A glob of the shards, as data.train may be given, reads the same manifest.
    assert mf.read_data_manifest(str(tmp_path / "data-*.tfrecord"), "data.train") == built
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


@pytest.mark.parametrize("key", list(mf.REQUIRED_KEYS))
def test_every_required_key_missing_is_one_line_naming_file_and_key(tmp_path, key):
    manifest = make_data(tmp_path)
    del manifest[key]
    (tmp_path / mf.MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(DataError) as e:
        mf.read_manifest(str(tmp_path))
    assert _one_line(e) == f"{tmp_path / mf.MANIFEST_NAME}: missing field '{key}'"
    with pytest.raises(DataError, match=f"missing field '{key}'"):
        mf.write_manifest(str(tmp_path / "out"), manifest)


def _wrong_type(kind: type):
    return {int: "1", str: 1, bool: 1, dict: [], list: {}}[kind]


@pytest.mark.parametrize("key", list(mf.REQUIRED_KEYS))
def test_wrong_types(tmp_path, key):
    manifest = make_data(tmp_path)
    kind = mf.REQUIRED_KEYS[key]
    manifest[key] = _wrong_type(kind)
    (tmp_path / mf.MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(DataError) as e:
        mf.read_manifest(str(tmp_path))
    assert f"{mf.MANIFEST_NAME}: field '{key}' should be {kind.__name__}" in _one_line(e)


def test_a_boolean_is_not_an_integer_field(tmp_path):
    manifest = make_data(tmp_path)
    with pytest.raises(DataError, match="'seed' should be int, got bool"):
        mf.validate_manifest({**manifest, "seed": True}, "m.json")


def test_version_and_schema_mismatch(tmp_path):
    manifest = make_data(tmp_path)
    with pytest.raises(DataError) as e:
        mf.validate_manifest({**manifest, "format_version": 2}, "d/manifest.json")
    assert _one_line(e) == ("d/manifest.json: field 'format_version' is 2, this reader "
                            "understands 1")
    with pytest.raises(DataError, match="'schema' is 'tokens', expected one of bert_masked"):
        mf.validate_manifest({**manifest, "schema": "tokens"}, "d/manifest.json")


def test_shard_size_check_names_the_file(tmp_path):
    manifest = make_data(tmp_path)
    shard = tmp_path / manifest["shards"][1]["file"]
    size = shard.stat().st_size
    with open(shard, "ab") as f:
        f.write(b"x")
    with pytest.raises(DataError) as e:
        mf.read_manifest(str(tmp_path))
    assert _one_line(e).startswith(f"{shard}: {size + 1} bytes, manifest.json records {size} "
                                   "(damaged")
    shard.unlink()
    with pytest.raises(DataError, match=f"shard '{shard.name}' is listed but"):
        mf.read_manifest(str(tmp_path))


def test_missing_or_unparsable_manifest(tmp_path):
    with pytest.raises(DataError) as e:
        mf.read_data_manifest(str(tmp_path), "data.eval")
    assert _one_line(e).startswith(f"data.eval: {tmp_path}: no manifest.json in {tmp_path}")
    (tmp_path / mf.MANIFEST_NAME).write_text('{"format_version": 1,\n "schema": }')
    with pytest.raises(DataError, match="manifest.json: line 2: not valid JSON"):
        mf.load_manifest(str(tmp_path))


def test_write_refuses_an_invalid_manifest_and_leaves_nothing(tmp_path):
    with pytest.raises(DataError, match="missing field 'format_version'"):
        mf.write_manifest(str(tmp_path), {"schema": "bert_masked"})
    assert not os.listdir(tmp_path)


def test_vocab_beside_is_the_md5_checked_vocab_of_the_data(tmp_path):
    manifest = make_data(tmp_path)
    vocab = str(tmp_path / mf.VOCAB_NAME)
    shard = str(tmp_path / manifest["shards"][0]["file"])
    assert mf.vocab_beside(str(tmp_path), manifest) == vocab
    assert mf.vocab_beside(shard, manifest) == vocab
    assert mf.vocab_beside(str(tmp_path / "data-*.tfrecord"), manifest) == vocab
    assert mf.vocab_beside(str(tmp_path), {**manifest, "vocab_md5": "0" * 32}) is None
    assert mf.vocab_beside(str(tmp_path), {**manifest, "vocab_md5": ""}) is None  # nothing to check
    with open(vocab, "ab") as f:
        f.write("国\n".encode())
    assert mf.vocab_beside(str(tmp_path), manifest) is None  # changed since
    os.remove(vocab)
    assert mf.vocab_beside(str(tmp_path), manifest) is None


@pytest.mark.parametrize("schema", mf.SCHEMAS)
def test_writer_and_readers_follow_the_feature_spec(tmp_path, schema):
    """The converter's bytes hold exactly the spec's features, and the readers' parsing spec
    (derived from the same table) reads them at the spec's lengths."""
    import tensorflow as tf

    from tfcompact.inputs.pretraining import feature_spec

    manifest = make_data(tmp_path, schema)
    shapes = mf.feature_shapes(manifest)
    record = next(writer.iter_tfrecord_bytes(tmp_path / manifest["shards"][0]["file"]))
    example = tf.train.Example.FromString(record)
    assert sorted(example.features.feature) == sorted(shapes)
    parsed = tf.io.parse_single_example(record, feature_spec(manifest))
    for name, (dtype, length) in shapes.items():
        assert parsed[name].dtype.name == dtype and parsed[name].shape == [length], name
