"""create-data end to end: schema, determinism across workers, resume after kill -9, bad input."""
import gzip
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from pipelines import writer
from pipelines.create_data import ConvertConfig, run_conversion
from tests.text.data_fixtures import ROOT, bert_vocab_path, peoples_daily_text
from tfcompact import cli

SEQ, PREDS = 64, 10


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory):
    return peoples_daily_text(tmp_path_factory.mktemp("pd"), 40_000)


def _cfg(inputs, out, **kw):
    base = dict(inputs=inputs, vocab_path=bert_vocab_path(), output_dir=str(out), max_seq_length=SEQ,
                max_predictions_per_seq=PREDS, dupe_factor=2, num_shards=4, seed=7)
    base.update(kw)
    return ConvertConfig(**base)


def _shard_bytes(out):
    m = json.load(open(os.path.join(out, "manifest.json")))
    return m, [open(os.path.join(out, s["file"]), "rb").read() for s in m["shards"]]


def _parse(out, schema):
    m = json.load(open(os.path.join(out, "manifest.json")))
    spec = {k: tf.io.FixedLenFeature([SEQ], tf.int64) for k in ("input_ids", "input_mask", "segment_ids")}
    spec["next_sentence_labels"] = tf.io.FixedLenFeature([1], tf.int64)
    if schema == "bert_masked":
        spec["masked_lm_positions"] = tf.io.FixedLenFeature([PREDS], tf.int64)
        spec["masked_lm_ids"] = tf.io.FixedLenFeature([PREDS], tf.int64)
        spec["masked_lm_weights"] = tf.io.FixedLenFeature([PREDS], tf.float32)
    else:
        spec["word_ids"] = tf.io.FixedLenFeature([SEQ], tf.int64)
    files = [os.path.join(out, s["file"]) for s in m["shards"]]
    ds = tf.data.TFRecordDataset(files).map(lambda x: tf.io.parse_single_example(x, spec))
    return m, [{k: v.numpy() for k, v in ex.items()} for ex in ds]


def test_masked_output_and_determinism_across_workers(tmp_path, corpus_path):
    m1 = run_conversion(_cfg([corpus_path], tmp_path / "w1"), num_workers=1, progress=False)
    m2 = run_conversion(_cfg([corpus_path], tmp_path / "w2"), num_workers=2, progress=False)
    assert _shard_bytes(tmp_path / "w1") == _shard_bytes(tmp_path / "w2")
    assert m1 == m2
    m, exs = _parse(tmp_path / "w1", "bert_masked")
    assert m["schema"] == "bert_masked" and m["num_instances"] == len(exs) > 50
    # No segmenter named: the default, rjieba, is recorded with its installed version.
    assert m["segmenter"] == {"name": "rjieba", "version": importlib.metadata.version("rjieba")}
    assert m["vocab_md5"] == "3b5b76c4aef48ecf8cb3abaafe960f09"
    for s in m["shards"]:
        assert writer.sha256_of_file(tmp_path / "w1" / s["file"]) == s["sha256"]
    vocab = [l.rstrip("\n") for l in open(bert_vocab_path(), encoding="utf-8")]
    n_pred = n_tok = 0
    for ex in exs:
        L = ex["input_mask"].sum()
        assert ex["input_ids"][0] == 101 and ex["input_ids"][L - 1] == 102 and (ex["input_ids"][L:] == 0).all()
        k = int(ex["masked_lm_weights"].sum())
        assert k >= 1
        for lab in ex["masked_lm_ids"][:k]:
            assert not (vocab[lab].startswith("##") and "\u4e00" <= vocab[lab][-1] <= "\u9fff")
        n_pred += k
        n_tok += L
    assert 0.12 < n_pred / n_tok < 0.16


def test_same_seed_twice_identical_and_other_seed_differs(tmp_path, corpus_path, capsys):
    run_conversion(_cfg([corpus_path], tmp_path / "a", masking="token"), progress=True)
    out = capsys.readouterr().out  # progress on stdout, errors and warnings on stderr
    assert "MB/s" in out and "ETA" in out and "shards 4/4" in out
    run_conversion(_cfg([corpus_path], tmp_path / "b", masking="token"), progress=False)
    run_conversion(_cfg([corpus_path], tmp_path / "c", masking="token", seed=8), progress=False)
    assert _shard_bytes(tmp_path / "a") == _shard_bytes(tmp_path / "b")
    assert _shard_bytes(tmp_path / "a")[1] != _shard_bytes(tmp_path / "c")[1]


def test_gzip_input_gives_the_same_bytes(tmp_path, corpus_path):
    gz = tmp_path / "c.txt.gz"
    gz.write_bytes(gzip.compress(open(corpus_path, "rb").read()))
    run_conversion(_cfg([corpus_path], tmp_path / "t", masking="ngram", pair_task="nsp"), progress=False)
    run_conversion(_cfg([str(gz)], tmp_path / "g", masking="ngram", pair_task="nsp"), progress=False)
    assert _shard_bytes(tmp_path / "t")[1] == _shard_bytes(tmp_path / "g")[1]


def test_unmasked_format(tmp_path, corpus_path):
    m = run_conversion(_cfg([corpus_path], tmp_path / "u", masking="none", pair_task="none",
                            segmenter="rjieba"), progress=False)
    m, exs = _parse(tmp_path / "u", "unmasked")
    assert m["schema"] == "unmasked" and m["segmenter"]["name"] == "rjieba"
    multi = 0
    for ex in exs:
        L = ex["input_mask"].sum()
        w = ex["word_ids"]
        assert w[0] == -1 and w[L - 1] == -1 and (w[L:] == -1).all()
        inner = w[1:L - 1]
        assert inner[0] == 0 and (np.diff(inner) >= 0).all() and (np.diff(inner) <= 1).all()
        multi += len(inner) - len(set(inner.tolist()))
        assert (ex["segment_ids"] == 0).all() and ex["next_sentence_labels"][0] == 0
    assert multi > 100  # multi-character words exist
    from tfcompact.inputs.manifest import read_manifest

    assert read_manifest(str(tmp_path / "u"))["num_instances"] == m["num_instances"]


def _cli_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_resume_after_kill(tmp_path, corpus_path):
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "tfcompact.cli", "create-data", "--input", corpus_path,
            "--vocab", bert_vocab_path(), "--output_dir", str(out), "--max_seq_length", str(SEQ),
            "--max_predictions_per_seq", str(PREDS), "--dupe_factor", "2", "--num_shards", "24",
            "--seed", "7", "--quiet"]
    proc = subprocess.Popen(args + ["--num_workers", "1"], env=_cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    work = out / ".tfcompact-work"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if work.is_dir() and len([n for n in os.listdir(work) if n.endswith(".done.json")]) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "conversion finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists()
    done_before = {n for n in os.listdir(work) if n.endswith(".done.json")}
    mtimes = {n: os.path.getmtime(work / n) for n in done_before}
    r = subprocess.run(args + ["--num_workers", "2"], env=_cli_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for n in done_before:  # finished shards were skipped, not redone
        assert os.path.getmtime(work / n) == mtimes[n]
    assert not [n for n in os.listdir(out) if ".tmp-" in n]
    run_conversion(_cfg([corpus_path], tmp_path / "straight", num_shards=24), progress=False)
    assert _shard_bytes(out) == _shard_bytes(tmp_path / "straight")


def _run_cli(capsys, *args):
    code = cli.main(["create-data", "--quiet", "--num_workers", "1", *args])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_bad_inputs(tmp_path, capsys, corpus_path):
    vocab = bert_vocab_path()
    base = ["--vocab", vocab, "--max_seq_length", str(SEQ), "--max_predictions_per_seq", str(PREDS),
            "--dupe_factor", "1", "--num_shards", "2", "--segmenter", "rjieba"]
    # Invalid UTF-8: fail names file, line and byte offset, leaves nothing; skip converts.
    bad = tmp_path / "bad.txt"
    bad.write_bytes("好的。\n".encode() * 50 + b"\xff\xfe\n" + "后面。\n".encode() * 50)
    code, err = _run_cli(capsys, "--input", str(bad), "--output_dir", str(tmp_path / "o1"), *base)
    assert code == 1 and len(err) == 1 and "bad.txt:51: invalid UTF-8 at byte offset 500" in err[0]
    assert not (tmp_path / "o1").exists()  # the directory it created is gone again
    code, err = _run_cli(capsys, "--input", str(bad), "--output_dir", str(tmp_path / "o2"), "--errors", "skip", *base)
    assert code == 0 and json.load(open(tmp_path / "o2" / "manifest.json"))["num_instances"] > 0
    # Empty input.
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    code, err = _run_cli(capsys, "--input", str(empty), "--output_dir", str(tmp_path / "o3"), *base)
    assert code == 1 and len(err) == 1 and "empty" in err[0]
    # Vocab missing [MASK].
    v = tmp_path / "vocab.txt"
    v.write_text("".join(t + "\n" for t in open(vocab, encoding="utf-8").read().split("\n")
                         if t and t != "[MASK]"), encoding="utf-8")
    code, err = _run_cli(capsys, "--input", corpus_path, "--output_dir", str(tmp_path / "o4"),
                         *base[:0], "--vocab", str(v), *base[2:])
    assert code == 1 and len(err) == 1 and "vocab.txt" in err[0] and "[MASK]" in err[0]
    # Someone else's files in the output dir: refused, left untouched.
    other = tmp_path / "o5"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, err = _run_cli(capsys, "--input", corpus_path, "--output_dir", str(other), *base)
    assert code == 1 and len(err) == 1 and "notes.txt" in err[0]
    assert os.listdir(other) == ["notes.txt"]
    # A finished run with other settings in the same dir.
    code, _ = _run_cli(capsys, "--input", corpus_path, "--output_dir", str(tmp_path / "o6"), *base)
    assert code == 0
    code, err = _run_cli(capsys, "--input", corpus_path, "--output_dir", str(tmp_path / "o6"), *base,
                         "--seed", "99")
    assert code == 1 and len(err) == 1 and "seed" in err[0]
    # BOM + CRLF + a giant line convert fine.
    odd = tmp_path / "odd.txt"
    odd.write_bytes(b"\xef\xbb\xbf" + ("第一句。\r\n" * 20 + "\r\n" + "长" * 300_000 + "\r\n").encode())
    code, err = _run_cli(capsys, "--input", str(odd), "--output_dir", str(tmp_path / "o7"), *base)
    assert code == 0
    assert json.load(open(tmp_path / "o7" / "manifest.json"))["num_instances"] > 20


def test_input_files_split_across_hosts(tmp_path, corpus_path):
    text = open(corpus_path, encoding="utf-8").read()
    half = text.index("\n\n", len(text) // 2)
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text(text[:half], encoding="utf-8")
    b.write_text(text[half:], encoding="utf-8")
    ms = [run_conversion(_cfg([str(a), str(b)], tmp_path / f"h{i}", input_shard_index=i, num_input_shards=2,
                              masking="token"), progress=False) for i in range(2)]
    assert [m["inputs"] for m in ms] == [[str(a)], [str(b)]]
    assert all(m["num_instances"] > 0 for m in ms)
