"""Every case of the export / import-tf1 / check-tflite bad-input catalogue
(`tools/bad_inputs/export.py`), run in-process through `tfcompact.cli.main`: exit status 1, the
last stderr line is the command's one-line error naming the file or field, no traceback, and
every file that existed before is byte-identical afterwards with nothing added (no temporary
directories beside the output). `tools/bad_input_catalogue.py --area export` runs the same cases
as subprocesses (which also shows TensorFlow's C++ log lines and anything printed at exit)."""
import os
import pathlib
import sys

import pytest

TOOLS = pathlib.Path(__file__).resolve().parents[2] / "tools"
sys.path.insert(0, str(TOOLS))

from bad_input_catalogue import check_in_process, snapshot  # noqa: E402
from bad_inputs import export as catalogue  # noqa: E402
from conftest import make_model_dir  # noqa: E402  (tests/interop/conftest.py, imported at collection)


@pytest.fixture(scope="module")
def base():
    """The real model directory and exports the cases start from (built once, under umask 022
    so that `test_outputs_follow_the_umask` knows the modes to expect)."""
    old = os.umask(0o022)
    try:
        return catalogue.base()
    finally:
        os.umask(old)


@pytest.mark.parametrize("case", catalogue.CASES, ids=[c.name for c in catalogue.CASES])
def test_bad_input(case, base, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    check_in_process(case, tmp_path, capsys)


def test_catalogue_names_are_unique():
    names = [c.name for c in catalogue.CASES]
    assert len(names) == len(set(names))
    assert len(names) >= 80


# ------------------------------------------------------------------------------------------
# what the catalogue cannot set up for a subprocess: a full disk, Ctrl-C, two models; and the
# good paths next to the bad ones (modes, --overwrite of an earlier output, no vocab.txt)

def run(capsys, *argv):
    from tfcompact.cli import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, [line for line in out.err.splitlines() if line.strip()]


@pytest.mark.parametrize("fmt", ["tf1", "savedmodel"])
def test_full_disk(base, tmp_path, capsys, fmt):
    """Every file write beyond 64 KiB fails with EFBIG (Python ignores SIGXFSZ): one line naming
    the output, nothing left behind, and the model directory untouched."""
    import resource
    import shutil

    model = tmp_path / "model"
    shutil.copytree(base / "model", model)
    before = snapshot(tmp_path)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, hard))
    try:
        code, _, err = run(capsys, "export", "--model_dir", model, "--format", fmt, "--output", tmp_path / "out")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert code == 1, err
    assert err[-1].startswith("tfcompact export: error: ") and str(tmp_path / "out") in err[-1], err
    assert ".tmp-" not in err[-1]
    assert snapshot(tmp_path) == before


def test_interrupted_export_leaves_nothing(base, tmp_path, capsys, monkeypatch):
    from tfcompact.interop import convert

    real_write = convert.write_tf1_checkpoint

    def write_then_interrupt(directory, tensors):
        real_write(directory, tensors)
        raise KeyboardInterrupt

    monkeypatch.setattr(convert, "write_tf1_checkpoint", write_then_interrupt)
    code, _, err = run(capsys, "export", "--model_dir", base / "model", "--format", "tf1",
                       "--output", tmp_path / "new" / "out")
    assert code == 130 and err[-1] == "tfcompact export: interrupted"
    assert os.listdir(tmp_path) == []


def test_tflite_and_savedmodel_of_different_models(base, tmp_path, capsys):
    d, _, _ = make_model_dir(tmp_path, "bert")  # hidden 64, the catalogue's ALBERT has 32
    os.remove(os.path.join(d, "vocab.txt"))  # the encoder alone is enough (and quicker)
    assert run(capsys, "export", "--model_dir", d, "--format", "savedmodel", "--output", tmp_path / "sm")[0] == 0
    code, _, err = run(capsys, "check-tflite", "--tflite", base / "lite" / "model.tflite",
                       "--savedmodel", tmp_path / "sm" / "encoder")
    assert code == 1, err
    assert "are not the same model" in err[-1] and "in TFLite" in err[-1], err[-1]


def test_outputs_follow_the_umask(base):
    """base() ran every export and the import under umask 022: directories 0755, files
    0644, never mkdtemp's 0700 / mkstemp's 0600."""
    import stat

    for name in ("tf1", "sm", "lite", "imported"):
        top = base / name
        for dirpath, dirnames, filenames in os.walk(top):
            assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o755, dirpath
            for f in filenames:
                assert stat.S_IMODE(os.stat(os.path.join(dirpath, f)).st_mode) == 0o644, (dirpath, f)


def test_overwrite_replaces_an_earlier_output(base, tmp_path, capsys):
    import json
    import shutil

    from tfcompact.interop.output_dir import MARKER

    shutil.copytree(base / "tf1", tmp_path / "tf1")
    (tmp_path / "tf1" / "vocab.txt").write_text("stale\n")  # a file of ours, changed: replaced
    code, out, err = run(capsys, "export", "--model_dir", base / "model", "--format", "tf1",
                         "--output", tmp_path / "tf1", "--overwrite",
                         "--checkpoint", base / "model" / "checkpoints" / "ckpt-2.index")
    assert code == 0, err
    assert (tmp_path / "tf1" / "vocab.txt").read_bytes() == (base / "model" / "vocab.txt").read_bytes()
    assert json.loads((tmp_path / "tf1" / MARKER).read_text())["kind"] == "export --format tf1"
    shutil.copytree(base / "imported", tmp_path / "imported")
    code, out, err = run(capsys, "import-tf1", "--arch", "albert", "--checkpoint", base / "tf1",
                         "--config", base / "tf1" / "albert_config.json", "--output",
                         tmp_path / "imported", "--overwrite")
    assert code == 0, err
    assert sorted(os.listdir(tmp_path)) == ["imported", "tf1"]


def test_savedmodel_without_vocab_writes_the_encoder_and_says_so(base, tmp_path, capsys):
    import shutil

    from tfcompact.interop.output_dir import MARKER

    shutil.copytree(base / "model", tmp_path / "model")
    os.remove(tmp_path / "model" / "vocab.txt")
    code, out, err = run(capsys, "export", "--model_dir", tmp_path / "model", "--format", "savedmodel",
                         "--output", tmp_path / "sm")
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "sm")) == [MARKER, "encoder"]
    assert "encoder only; no preprocessing model, because" in out and "has no vocab.txt" in out
    assert "preprocessing" not in out.split("no preprocessing model")[0]
