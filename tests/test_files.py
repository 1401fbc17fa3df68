"""tfcompact/files.py: the one atomic write and file read, local and remote (TensorFlow's
in-memory `ram://` file system stands in for gs://: the same gfile code path)."""
import os

import pytest
import tensorflow as tf

from tfcompact import files
from tfcompact.errors import UserError


def test_local_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    files.atomic_write_text(path, "新的内容\n")
    assert path.read_text(encoding="utf-8") == "新的内容\n"
    assert os.listdir(tmp_path) == ["out.json"]


def test_failure_inside_the_block_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with files.atomic_writer(path) as f:
            f.write(b"half")
            raise RuntimeError("boom")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_unwritable_target_is_one_line_naming_it(tmp_path):
    target = tmp_path / "missing_dir" / "out.txt"
    with pytest.raises(UserError) as e:
        files.atomic_write_text(target, "x")
    assert str(e.value).startswith(f"{target}: cannot write (")
    assert "\n" not in str(e.value)


def test_remote_write_and_read_go_through_tensorflow():
    path = "ram://tfcompact-files-test/dir/out.txt"
    files.atomic_write_text(path, "遠端\n")
    assert files.read_bytes(path).decode("utf-8") == "遠端\n"
    assert [n for n in tf.io.gfile.listdir("ram://tfcompact-files-test/dir")] == ["out.txt"]
    with pytest.raises(FileNotFoundError):
        files.read_bytes("ram://tfcompact-files-test/dir/none.txt")


def test_read_bytes_local_and_missing(tmp_path):
    (tmp_path / "a").write_bytes(b"\x00\x01")
    assert files.read_bytes(tmp_path / "a") == b"\x00\x01"
    with pytest.raises(FileNotFoundError):
        files.read_bytes(tmp_path / "b")


def test_input_relation(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("x")
    os.link(data / "in.txt", tmp_path / "hard.txt")
    assert files.input_relation(str(data / "in.txt"), str(data / "in.txt")) == "is"
    assert files.input_relation(str(tmp_path / "hard.txt"), str(data / "in.txt")) == "is"
    assert files.input_relation(str(data), str(data / "in.txt")) == "contains"
    assert files.input_relation(str(data / "out"), str(data)) == "lies inside"
    assert files.input_relation(str(tmp_path / "other"), str(data)) is None
    assert files.input_relation(str(tmp_path / "x"), "gs://bucket/data") is None


def test_temporary_names_are_recognised():
    name = os.path.basename(files.temp_name("/tmp/shard-00001.tfrecord"))
    assert files.is_temp_name(name)
    assert files.strip_temp_suffix(name) == "shard-00001.tfrecord"
    assert not files.is_temp_name("shard-00001.tfrecord")
