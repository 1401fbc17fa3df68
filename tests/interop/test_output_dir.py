"""Outputs appear all at once or not at all, never touch an input, and --overwrite replaces only
an earlier output of the same command."""
import json
import os
import stat

import pytest

from tfcompact.errors import UserError
from tfcompact.interop.output_dir import MARKER, atomic_output_dir, check_output_dir

KIND = "export --format tf1"


def write(tmp, name="f.txt", text="x"):
    os.makedirs(os.path.dirname(os.path.join(tmp, name)), exist_ok=True)
    with open(os.path.join(tmp, name), "w") as f:
        f.write(text)


def make_output(out, kind=KIND, files=("f.txt",)):
    with atomic_output_dir(str(out), kind=kind) as tmp:
        for f in files:
            write(tmp, f)


def test_success_renames_and_marks(tmp_path):
    out = tmp_path / "a" / "out"
    with atomic_output_dir(str(out), kind=KIND) as tmp:
        assert not out.exists()
        write(tmp, "sub/f.txt")
    assert sorted(os.listdir(out)) == [MARKER, "sub"]
    assert os.listdir(tmp_path / "a") == ["out"]
    marker = json.loads((out / MARKER).read_text())
    assert marker["kind"] == KIND and marker["files"] == ["sub/", "sub/f.txt"]


def test_failure_leaves_nothing_not_even_new_parents(tmp_path):
    out = tmp_path / "new" / "deeper" / "out"
    with pytest.raises(RuntimeError):
        with atomic_output_dir(str(out), kind=KIND) as tmp:
            write(tmp, "half.txt")
            raise RuntimeError("disk full")
    assert os.listdir(tmp_path) == []


def test_oserror_is_one_line_naming_the_final_path(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UserError, match=r"out/missing/x: No such file or directory; nothing was written"):
        with atomic_output_dir(str(out), kind=KIND) as tmp:
            open(os.path.join(tmp, "missing", "x"), "w")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_modes_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        out = tmp_path / "new" / "out"
        make_output(out, files=("f.txt", "d/g.txt"))
    finally:
        os.umask(old)
    for path in (tmp_path / "new", out, out / "d"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o777 & ~umask, path
    for path in (out / "f.txt", out / MARKER, out / "d" / "g.txt"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask, path


def test_overwrite_replaces_an_earlier_output_of_the_same_kind(tmp_path):
    out = tmp_path / "out"
    make_output(out, files=("old.txt",))
    with pytest.raises(UserError, match="pass --overwrite"):
        make_output(out, files=("new.txt",))
    assert sorted(os.listdir(out)) == [MARKER, "old.txt"]
    with atomic_output_dir(str(out), kind=KIND, overwrite=True) as tmp:
        write(tmp, "new.txt")
    assert sorted(os.listdir(out)) == [MARKER, "new.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_overwrite_refuses_what_it_did_not_write(tmp_path):
    photos = tmp_path / "photos"
    write(str(photos), "holiday.jpg")
    with pytest.raises(UserError, match=f"not written by tfcompact \\(no {MARKER}\\)"):
        check_output_dir(str(photos), kind=KIND, overwrite=True)
    other = tmp_path / "sm"
    make_output(other, kind="export --format savedmodel")
    with pytest.raises(UserError, match="holds the output of `tfcompact export --format savedmodel`"):
        check_output_dir(str(other), kind=KIND, overwrite=True)
    added = tmp_path / "added"
    make_output(added)
    write(str(added), "notes/mine.txt")
    with pytest.raises(UserError, match=r"did not write \(notes/, notes/mine.txt\)"):
        check_output_dir(str(added), kind=KIND, overwrite=True)
    (added / MARKER).write_text("{garbage")
    with pytest.raises(UserError, match="no .tfcompact-output.json"):
        check_output_dir(str(added), kind=KIND, overwrite=True)


def test_an_existing_empty_directory_is_used(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    make_output(out)
    assert sorted(os.listdir(out)) == [MARKER, "f.txt"]


@pytest.mark.parametrize("output,relation", [
    ("model", "is"), (".", "contains"), ("model/checkpoints", "lies inside"),
    ("model/new/out", "lies inside"), ("link", "is"), ("link/x", "lies inside"),
    ("model/../model", "is")])
def test_output_never_touches_an_input(tmp_path, monkeypatch, output, relation):
    monkeypatch.chdir(tmp_path)
    write("model", "checkpoints/ckpt-1.index")
    os.symlink("model", "link")
    with pytest.raises(UserError, match=f"--output {output} {relation} the --model_dir model;"):
        check_output_dir(output, kind=KIND, inputs=[("--model_dir", "model")], overwrite=True)
    # an input given as a file: the output may not be or contain it
    with pytest.raises(UserError, match="contains the --vocab model/vocab.txt"):
        check_output_dir("model", kind=KIND, inputs=[("--vocab", "model/vocab.txt")], overwrite=True)
    check_output_dir("elsewhere", kind=KIND, inputs=[("--model_dir", "model")])


def test_swap_failure_puts_the_old_output_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    make_output(out, files=("old.txt",))
    real_rename = os.rename

    def failing_rename(src, dst):
        if ".tmp-" in os.path.basename(str(src)):
            raise OSError(28, "No space left on device", str(src))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(UserError, match="No space left on device; nothing was written"):
        with atomic_output_dir(str(out), kind=KIND, overwrite=True) as tmp:
            write(tmp, "new.txt")
    monkeypatch.undo()
    assert sorted(os.listdir(out)) == [MARKER, "old.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_bad_locations(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        check_output_dir(str(tmp_path / "file"), kind=KIND)
    with pytest.raises(UserError, match=r"file/out: .*/file is a file, not a directory"):
        check_output_dir(str(tmp_path / "file" / "out"), kind=KIND)
    with pytest.raises(UserError, match="gsutil"):
        check_output_dir("gs://bucket/x", kind=KIND)
    with pytest.raises(UserError, match="--output is empty"):
        check_output_dir("", kind=KIND, overwrite=True)
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    check_output_dir(str(tmp_path / "dangling"), kind=KIND)  # written at the link's target


def test_read_only_location(tmp_path):
    if os.geteuid() == 0:
        target = "/sys/tfcompact-out"  # root writes anywhere permission bits forbid, not in sysfs
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = str(ro / "out")
    with pytest.raises(UserError, match=f"--output {target}: cannot create a directory in"):
        check_output_dir(target, kind=KIND)
