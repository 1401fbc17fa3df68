"""create-data and build-vocab against bad input: one line naming the file/line/field, exit 1,
inputs and earlier outputs byte-identical, nothing left behind; changed inputs reconverted,
damaged shards redone, a full disk and a read-only file system reported as such."""
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from pipelines import create_data
from tests.text.data_fixtures import ROOT, bert_vocab_path, peoples_daily_text, run_on_tmpfs
from tfcompact import cli

sys.path.insert(0, str(ROOT / "tools"))
from bad_input_catalogue import snapshot  # noqa: E402
from bad_inputs import data as catalogue  # noqa: E402

SMALL = ["--max_seq_length", "32", "--max_predictions_per_seq", "5", "--num_shards", "2",
         "--dupe_factor", "1", "--num_workers", "1", "--quiet"]


def _main(capsys, argv):
    """(exit status, non-blank stderr lines) of the command run in this process."""
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    return code, [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def _assert_one_line_error(code, err, command, *expect, status=1):
    assert code == status, err
    assert err, "no error printed"
    assert err[-1].startswith(f"tfcompact {command}: error: "), err
    for text in expect:
        assert text in err[-1], err


@pytest.mark.parametrize("case", catalogue.CASES, ids=[c.name for c in catalogue.CASES])
def test_catalogue_case(tmp_path, capsys, case):
    """Every case of tools/bad_inputs/data.py, in this process (the catalogue script runs the
    same cases through the installed command)."""
    argv = case.argv(tmp_path)
    before = snapshot(tmp_path)
    code, err = _main(capsys, argv)
    _assert_one_line_error(code, err, argv[0], case.expect, status=case.exit_code)
    assert snapshot(tmp_path) == before


def _convert(capsys, corpus, out, *extra):
    code, err = _main(capsys, ["create-data", "--input", str(corpus), "--vocab", bert_vocab_path(),
                               "--output_dir", str(out), *SMALL, *extra])
    assert code == 0, err
    return err


def _shards(out):
    m = json.loads((pathlib.Path(out) / "manifest.json").read_text())
    return {s["file"]: (pathlib.Path(out) / s["file"]).read_bytes() for s in m["shards"]}


@pytest.fixture
def corpus(tmp_path):
    return pathlib.Path(peoples_daily_text(tmp_path, 12_000))


def test_input_edited_in_place_same_size_is_converted_again(tmp_path, capsys, corpus):
    out = tmp_path / "out"
    _convert(capsys, corpus, out)
    old = _shards(out)
    mtimes = {n: os.stat(out / n).st_mtime_ns for n in old}
    _convert(capsys, corpus, out)  # unchanged: the finished conversion, untouched
    assert {n: os.stat(out / n).st_mtime_ns for n in old} == mtimes
    text = corpus.read_text(encoding="utf-8")
    edited = text.replace("中国", "国中")
    assert edited != text and len(edited.encode()) == len(text.encode())
    corpus.write_text(edited, encoding="utf-8")
    err = _convert(capsys, corpus, out)
    assert any(f"{corpus.name} changed since {out} was converted: converting again" in e for e in err)
    fresh = tmp_path / "fresh"
    _convert(capsys, corpus, fresh)
    assert _shards(out) == _shards(fresh) != old
    assert not (out / create_data.PREVIOUS_DIR).exists()


def test_vocab_edited_in_place_is_converted_again(tmp_path, capsys, corpus):
    vocab = tmp_path / "vocab.txt"
    shutil.copyfile(bert_vocab_path(), vocab)
    out = tmp_path / "out"
    argv = ["create-data", "--input", str(corpus), "--vocab", str(vocab), "--output_dir", str(out), *SMALL]
    assert _main(capsys, argv)[0] == 0
    lines = vocab.read_text(encoding="utf-8").split("\n")
    lines[1000], lines[1001] = lines[1001], lines[1000]  # two ids swapped, same size
    vocab.write_text("\n".join(lines), encoding="utf-8")
    code, err = _main(capsys, argv)
    assert code == 0 and any("vocab.txt changed since" in e for e in err)
    assert (out / "vocab.txt").read_bytes() == vocab.read_bytes()
    assert json.loads((out / "manifest.json").read_text())["vocab_md5"] == hashlib.md5(
        vocab.read_bytes()).hexdigest()


def test_failed_reconversion_puts_the_earlier_one_back(tmp_path, capsys, corpus):
    out = tmp_path / "out"
    _convert(capsys, corpus, out)
    before = snapshot(out)
    with open(corpus, "ab") as f:
        f.write(b"\n\xff\xfe broken\n")
    code, err = _main(capsys, ["create-data", "--input", str(corpus), "--vocab", bert_vocab_path(),
                               "--output_dir", str(out), *SMALL])
    _assert_one_line_error(code, err, "create-data", f"{corpus}:", "invalid UTF-8")
    assert snapshot(out) == before


def test_damaged_shard_of_a_finished_conversion_is_converted_again(tmp_path, capsys, corpus):
    out = tmp_path / "out"
    _convert(capsys, corpus, out)
    good = snapshot(out)
    shard = out / "data-00001-of-00002.tfrecord"
    size = shard.stat().st_size
    with open(shard, "r+b") as f:
        f.truncate(size // 2)
    err = _convert(capsys, corpus, out)
    assert any(f"{shard}: {size // 2} bytes, manifest.json records {size}: converting that shard again"
               in e for e in err)
    assert snapshot(out) == good  # deterministic: the same bytes as before the damage
    os.remove(shard)
    _convert(capsys, corpus, out)
    assert snapshot(out) == good


def test_input_changing_during_the_conversion_is_refused(tmp_path, capsys, corpus, monkeypatch):
    """Someone appends to the corpus while it is being converted (after the first shard)."""
    real = create_data.convert_shard

    def convert_then_append(cfg, files, parts, k, n):
        info = real(cfg, files, parts, k, n)
        with open(corpus, "a", encoding="utf-8") as f:
            f.write("\n新的一句话。\n")
        return info

    monkeypatch.setattr(create_data, "convert_shard", convert_then_append)
    code, err = _main(capsys, ["create-data", "--input", str(corpus), "--vocab", bert_vocab_path(),
                               "--output_dir", str(tmp_path / "out"), *SMALL])
    _assert_one_line_error(code, err, "create-data", f"{corpus}: changed during the conversion")
    assert not (tmp_path / "out").exists()


def test_ctrl_c_keeps_finished_shards_for_resuming(tmp_path, capsys, corpus, monkeypatch):
    real = create_data.convert_shard

    def interrupted_at_second(cfg, files, parts, k, n):
        if k == 1:
            raise KeyboardInterrupt
        return real(cfg, files, parts, k, n)

    monkeypatch.setattr(create_data, "convert_shard", interrupted_at_second)
    out = tmp_path / "out"
    code, err = _main(capsys, ["create-data", "--input", str(corpus), "--vocab", bert_vocab_path(),
                               "--output_dir", str(out), *SMALL])
    assert code == 130
    assert (out / "data-00000-of-00002.tfrecord").exists() and not (out / "manifest.json").exists()
    assert not [n for n in os.listdir(out) if ".tmp-" in n]
    monkeypatch.setattr(create_data, "convert_shard", real)
    _convert(capsys, corpus, out)
    fresh = tmp_path / "fresh"
    _convert(capsys, corpus, fresh)
    assert _shards(out) == _shards(fresh)


def test_worker_error_with_two_workers_leaves_nothing(tmp_path, capsys, corpus):
    with open(corpus, "ab") as f:
        f.write(b"\n\xff\xfe\n")
    out = tmp_path / "out"
    code, err = _main(capsys, ["create-data", "--input", str(corpus), "--vocab", bert_vocab_path(),
                               "--output_dir", str(out), *SMALL, "--num_workers", "2"])
    _assert_one_line_error(code, err, "create-data", f"{corpus}:", "invalid UTF-8")
    assert not out.exists()


def test_vocab_copied_beside_the_shards_and_found(tmp_path, capsys, corpus):
    """The README's stage-by-stage workflow: the data directory carries its vocabulary, where
    the readers (`vocab_beside`) and the trainer (`manifest_dir(data.train)/vocab.txt`) look."""
    from tfcompact.inputs.manifest import manifest_dir, read_manifest, vocab_beside

    out = tmp_path / "out"
    _convert(capsys, corpus, out, "--masking", "none")
    assert (out / "vocab.txt").read_bytes() == pathlib.Path(bert_vocab_path()).read_bytes()
    manifest = read_manifest(str(out))
    assert vocab_beside(str(out / manifest["shards"][0]["file"]), manifest) == str(out / "vocab.txt")
    assert vocab_beside(str(out), manifest) == str(out / "vocab.txt")
    assert os.path.isfile(os.path.join(manifest_dir(str(out / "*.tfrecord")), "vocab.txt"))
    assert all(s["bytes"] == (out / s["file"]).stat().st_size for s in manifest["shards"])


def test_allow_empty_writes_a_conversion_of_nothing(tmp_path, capsys):
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n  \n" * 10, encoding="utf-8")
    out = tmp_path / "out"
    _convert(capsys, blank, out, "--allow_empty")
    assert json.loads((out / "manifest.json").read_text())["num_instances"] == 0


def test_more_shards_than_documents_warns(tmp_path, capsys):
    text = tmp_path / "two.txt"
    text.write_text("第一篇文章的第一句。第二句话。\n\n第二篇文章有两句。这是第二句。\n", encoding="utf-8")
    err = _convert(capsys, text, tmp_path / "out", "--num_shards", "4")
    assert any("warning:" in e and "of 4 shards have no instances" in e for e in err)


def test_fifo_input_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    for argv in (["create-data", "--input", str(fifo), "--vocab", bert_vocab_path(),
                  "--output_dir", str(tmp_path / "out"), *SMALL],
                 ["build-vocab", "--input", str(fifo), "--vocab_size", "300",
                  "--output", str(tmp_path / "vocab.txt")]):
        r = subprocess.run([sys.executable, "-m", "tfcompact.cli", *argv], capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
        last = r.stderr.strip().splitlines()[-1]
        assert r.returncode == 1 and last.startswith(f"tfcompact {argv[0]}: error: --input {fifo}: not a regular file")
        assert sorted(os.listdir(tmp_path)) == ["pipe.txt"]


# ---------------------------------------------------------------------------------------------
# A full disk and a read-only file system (a real tmpfs in a private mount namespace).
# ---------------------------------------------------------------------------------------------
def test_full_disk_leaves_nothing_behind(tmp_path, corpus):
    r = run_on_tmpfs(tmp_path, "", ["create-data", "--input", str(corpus), "--vocab", bert_vocab_path(),
                                    "--output_dir", "$MNT/out", *SMALL], fill=True)
    _assert_one_line_error(r["rc"], r["stderr"], "create-data", "cannot write (No space left on device)")
    assert "/out" in r["stderr"][-1]
    assert r["after"] == r["before"] and list(r["before"]) == ["filler"]


def test_full_disk_during_a_reconversion_restores_the_earlier_one(tmp_path, corpus):
    """An earlier conversion on the disk, the corpus edited, the disk full: the old shards,
    manifest and vocab come back byte-identical."""
    text = tmp_path / "text.txt"
    text.write_bytes(corpus.read_bytes()[:6000].rsplit(b"\n", 1)[0] + b"\n")
    prepare = (f'"$PY" -m tfcompact.cli create-data --input {text} --vocab {bert_vocab_path()} '
               f'--output_dir "$MNT/out" {" ".join(SMALL)} && cat {corpus} >> {text}')  # then edited
    r = run_on_tmpfs(tmp_path, prepare, ["create-data", "--input", str(text), "--vocab", bert_vocab_path(),
                                         "--output_dir", "$MNT/out", *SMALL], size="1m", fill=True)
    _assert_one_line_error(r["rc"], r["stderr"], "create-data", "No space left on device")
    assert "out/manifest.json" in r["before"] and r["after"] == r["before"]


def test_read_only_output_dir(tmp_path, corpus):
    r = run_on_tmpfs(tmp_path, 'mkdir "$MNT/out"', ["create-data", "--input", str(corpus), "--vocab",
                                                    bert_vocab_path(), "--output_dir", "$MNT/out", *SMALL],
                     read_only=True)
    _assert_one_line_error(r["rc"], r["stderr"], "create-data", "cannot write in", "(read-only file system)")
    assert r["after"] == r["before"]


def test_wrong_vocabulary_warns_about_unk(tmp_path, capsys, corpus):
    """A vocabulary for other text (here: specials and ten characters) turns most of the corpus
    into [UNK]: converted, but the share is reported."""
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(t + "\n" for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"的一是在不了有和人这"]),
                     encoding="utf-8")
    code, err = _main(capsys, ["create-data", "--input", str(corpus), "--vocab", str(vocab),
                               "--output_dir", str(tmp_path / "out"), *SMALL])
    assert code == 0
    assert any(f"% of the tokens are [UNK] with {vocab}" in e for e in err), err
    code, err = _main(capsys, ["create-data", "--input", str(corpus), "--vocab", bert_vocab_path(),
                               "--output_dir", str(tmp_path / "out2"), *SMALL])
    assert code == 0 and not any("[UNK]" in e for e in err)


def test_second_create_data_into_the_same_directory_is_refused(tmp_path, capsys, corpus):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)  # as a running create-data holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        (out / ".tfcompact-create-data.json").write_text("{}")  # its files so far
        before = snapshot(tmp_path)
        code, err = _main(capsys, ["create-data", "--input", str(corpus), "--vocab", bert_vocab_path(),
                                   "--output_dir", str(out), *SMALL])
        _assert_one_line_error(code, err, "create-data", f"--output_dir {out}: another create-data is writing into it")
        assert snapshot(tmp_path) == before
    finally:
        os.close(fd)
    _convert(capsys, corpus, tmp_path / "free")  # and the lock is released after a run
    _convert(capsys, corpus, tmp_path / "free")
