"""Beam pipeline on the DirectRunner: byte-identical to the local converter."""
import json
import os

import pytest

pytest.importorskip("apache_beam")

from pipelines import beam_pipeline  # noqa: E402
from pipelines.create_data import ConvertConfig, run_conversion  # noqa: E402
from tests.text.data_fixtures import bert_vocab_path, peoples_daily_text  # noqa: E402
from tfcompact.errors import DataError  # noqa: E402


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory):
    return peoples_daily_text(tmp_path_factory.mktemp("pd"), 60_000)


def _cfg(inputs, out, **kw):
    base = dict(inputs=inputs, vocab_path=bert_vocab_path(), output_dir=str(out),
                max_seq_length=64, max_predictions_per_seq=10, dupe_factor=2, num_shards=2,
                seed=7, window_chars=2500)
    base.update(kw)
    return ConvertConfig(**base)


def _output(out):
    """manifest.json bytes and every shard's bytes, as a reader would find them."""
    with open(os.path.join(out, "manifest.json"), "rb") as f:
        manifest_bytes = f.read()
    m = json.loads(manifest_bytes)
    shards = {}
    for s in m["shards"]:
        with open(os.path.join(out, s["file"]), "rb") as f:
            shards[s["file"]] = f.read()
    return manifest_bytes, shards


@pytest.mark.parametrize("masking,pair_task", [("wwm", "sop"), ("none", "nsp")])
def test_direct_runner_equals_local_converter(tmp_path, corpus_path, masking, pair_task):
    local = run_conversion(_cfg([corpus_path], tmp_path / "local", masking=masking,
                                pair_task=pair_task), num_workers=1, progress=False)
    beam = beam_pipeline.run_beam_conversion(_cfg([corpus_path], tmp_path / "beam",
                                                  masking=masking, pair_task=pair_task))
    assert beam == local
    assert local["num_instances"] > 20
    # About 20,000 characters in 2 shards and windows of 2,500: several windows per shard,
    # most of several documents (window boundaries, order and seeds all matter).
    local_manifest, local_shards = _output(tmp_path / "local")
    beam_manifest, beam_shards = _output(tmp_path / "beam")
    assert beam_manifest == local_manifest
    assert sorted(beam_shards) == sorted(local_shards)
    for name in local_shards:
        assert beam_shards[name] == local_shards[name], name
    # Nothing but the shards, the manifest and the vocabulary is left behind.
    assert sorted(os.listdir(tmp_path / "beam")) == sorted(["manifest.json", "vocab.txt", *local_shards])
    with open(tmp_path / "beam" / "vocab.txt", "rb") as f, open(bert_vocab_path(), "rb") as g:
        assert f.read() == g.read()


def test_more_shards_than_documents_and_cli(tmp_path):
    text = tmp_path / "small.txt"
    text.write_text("第一篇文章的第一句。第二句话。\n\n第二篇文章只有一句。\n", encoding="utf-8")
    out = tmp_path / "beam"
    code = beam_pipeline.main([
        "--input", str(text), "--vocab", bert_vocab_path(), "--output_dir", str(out),
        "--max_seq_length", "32", "--max_predictions_per_seq", "5", "--num_shards", "4",
        "--dupe_factor", "1", "--masking", "token", "--pair_task", "none",
        "--runner", "DirectRunner"])
    assert code == 0
    local = run_conversion(_cfg([str(text)], tmp_path / "local", max_seq_length=32,
                                max_predictions_per_seq=5, num_shards=4, dupe_factor=1,
                                masking="token", pair_task="none", seed=12345,
                                window_chars=create_default_window()),
                           progress=False)
    assert _output(out) == _output(tmp_path / "local")
    assert [s["num_instances"] for s in local["shards"]].count(0) >= 2  # empty shards written
    # A second run into the same directory is refused with a one-line error.
    assert beam_pipeline.main(["--input", str(text), "--vocab", bert_vocab_path(),
                               "--output_dir", str(out)]) == 1
    with pytest.raises(DataError, match="not empty"):
        beam_pipeline.check_output_dir(str(out))


def create_default_window():
    from pipelines.create_data import DEFAULT_WINDOW_CHARS
    return DEFAULT_WINDOW_CHARS


def test_invalid_utf8_fails_cleanly_then_skip_matches_local(tmp_path, capsys):
    text = tmp_path / "bad.txt"
    text.write_bytes("第一句。\n".encode() + b"\xff\xfe\n" + "\n第二篇文章。\n".encode())
    out = tmp_path / "beam"
    args = ["--input", str(text), "--vocab", bert_vocab_path(), "--output_dir", str(out),
            "--num_shards", "2", "--dupe_factor", "1", "--max_seq_length", "32",
            "--max_predictions_per_seq", "5", "--masking", "token", "--pair_task", "none"]
    assert beam_pipeline.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "bad.txt:2: invalid UTF-8 at byte offset 13" in err
    assert os.listdir(out) == []  # nothing half-written; the same directory can be reused
    assert beam_pipeline.main(args + ["--errors", "skip"]) == 0
    run_conversion(_cfg([str(text)], tmp_path / "local", num_shards=2, dupe_factor=1,
                        max_seq_length=32, max_predictions_per_seq=5, masking="token",
                        pair_task="none", seed=12345, errors="skip",
                        window_chars=create_default_window()), progress=False)
    assert _output(out) == _output(tmp_path / "local")
