"""`tfcompact doctor` and the no-TPU error: what the machine has, one `problem:` line per thing
that would fail a job, and a non-zero exit when there is one."""
import importlib.metadata as md

import pytest

from train_helpers import make_masked_data, tiny_experiment, write_yaml
from tfcompact.cli import main
from tfcompact.train.doctor import TENSORFLOW_DISTRIBUTIONS, cpu_features, installed_version


def _tensorflow_version() -> str:
    """The installed TensorFlow (tensorflow, or tensorflow-tpu on the stand-in TPU stack)."""
    return next(v for d in TENSORFLOW_DISTRIBUTIONS if (v := installed_version(d)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_masked_data(str(tmp_path_factory.mktemp("data")), num_instances=16)


def test_healthy_machine_reports_versions_devices_and_data(data_dir, tmp_path, capsys):
    path = write_yaml(str(tmp_path / "exp.yaml"),
                      tiny_experiment(data_dir, str(tmp_path / "model")))
    assert main(["doctor", "--config", path]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[-1] == "doctor: ok"
    assert "problem:" not in out
    tf_line = next(ln for ln in lines if ln.startswith("tensorflow:"))
    assert _tensorflow_version() in tf_line
    assert md.version("tensorflow-text") in next(ln for ln in lines
                                                 if ln.startswith("tensorflow-text:"))
    assert md.version("keras") in next(ln for ln in lines if ln.startswith("keras:"))
    data_line = next(ln for ln in lines if ln.startswith("data.train:"))
    assert "16 instances in 2 shard(s), seq 32, 5 predictions" in data_line
    assert "does not exist yet" in next(ln for ln in lines if ln.startswith("train.model_dir:"))
    cpu_line = next(ln for ln in lines if ln.startswith("cpu:"))
    for name, present in cpu_features().items():
        assert f"{name} {'yes' if present else 'no'}" in cpu_line


def test_problems_are_listed_and_exit_non_zero(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    assert main(["doctor", "--expect_tensorflow", "1.15.0", "--data", str(tmp_path / "nothing"),
                 "--model_dir", str(tmp_path / "model")]) == 1
    lines = capsys.readouterr().out.splitlines()
    problems = [ln for ln in lines if ln.startswith("problem:")]
    assert len(problems) == 2
    assert f"TensorFlow {_tensorflow_version()} installed, 1.15.0 expected" in problems[0]
    assert "nothing: no manifest.json" in problems[1]
    assert "readable, writable" in next(ln for ln in lines if ln.startswith("train.model_dir:"))
    assert lines[-1].startswith("doctor: 2 problem(s); first: TensorFlow")


def test_no_tpu_here_is_one_clear_line(data_dir, tmp_path, capsys):
    assert main(["doctor", "--tpu", "local"]) == 1
    out = capsys.readouterr().out
    assert "problem: --tpu local: no TPU on this machine" in out
    path = write_yaml(str(tmp_path / "exp.yaml"),
                      tiny_experiment(data_dir, str(tmp_path / "model")))
    assert main(["pretrain", "--config", path, "--tpu", "local"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("tfcompact pretrain: error: --tpu local: no TPU on this machine (")
    assert "drop --tpu to train on this machine's CPU/GPUs" in err[-1]
    assert not (tmp_path / "model").exists()
