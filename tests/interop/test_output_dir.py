"""Outputs appear all at once or not at all."""
import os

import pytest

from tfcompact.errors import UserError
from tfcompact.interop.output_dir import atomic_output_dir


def test_success_renames(tmp_path):
    out = tmp_path / "a" / "out"
    with atomic_output_dir(str(out)) as tmp:
        assert not out.exists()
        open(os.path.join(tmp, "f.txt"), "w").write("x")
    assert os.listdir(out) == ["f.txt"]
    assert os.listdir(tmp_path / "a") == ["out"]


def test_failure_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_output_dir(str(out)) as tmp:
            open(os.path.join(tmp, "half.txt"), "w").write("x")
            raise RuntimeError("disk full")
    assert os.listdir(tmp_path) == []


def test_existing_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(UserError, match="--overwrite"):
        with atomic_output_dir(str(out)):
            pass
    assert os.listdir(out) == ["old.txt"]
    with atomic_output_dir(str(out), overwrite=True) as tmp:
        open(os.path.join(tmp, "new.txt"), "w").write("x")
    assert os.listdir(out) == ["new.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        with atomic_output_dir(str(tmp_path / "file")):
            pass
    with pytest.raises(UserError, match="gsutil"):
        with atomic_output_dir("gs://bucket/x"):
            pass
