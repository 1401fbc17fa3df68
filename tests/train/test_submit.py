"""`tfcompact submit`: the exact gcloud argument lists, dry run output, preflight."""
import os
import sys

import pytest

from train_helpers import write_yaml
from tfcompact.errors import ConfigError, DataError
from tfcompact.train.experiment import experiment_from_dict
from tfcompact.train.submit import SubmitSpec, build_commands, submit, wheel_name

RAW = {
    "name": "albert_job",
    "model": {"preset": "albert_base_zh"},
    "data": {"train": "gs://b/data/train", "max_seq_length": 512},
    "train": {"model_dir": "gs://b/models/albert", "batch_size": 1024},
}


def _spec(**kw):
    base = dict(tpu_name="my-tpu", zone="europe-west4-a", project="proj",
                accelerator_type="v3-8", runtime_version="tpu-vm-tf-2.16.1-pjrt",
                staging_dir="stage", source_dir="/src", python="python3")
    base.update(kw)
    return SubmitSpec(**base)


def test_command_lists_are_exact():
    cmds = build_commands(experiment_from_dict(RAW), _spec(delete_on_finish=True))
    where = ["--zone=europe-west4-a", "--project=proj"]
    tpu = ["gcloud", "compute", "tpus", "tpu-vm"]
    wheel = f"tfcompact-{__import__('tfcompact').__version__}-py3-none-any.whl"
    assert wheel_name() == wheel
    assert list(cmds) == ["build", "create", "mkdir", "copy", "install", "train", "delete"]
    assert cmds["build"] == ["python3", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", "stage",
                             "/src"]
    assert cmds["create"] == tpu + ["create", "my-tpu", "--accelerator-type=v3-8",
                                    "--version=tpu-vm-tf-2.16.1-pjrt"] + where
    assert cmds["mkdir"] == tpu + ["ssh", "my-tpu", "--worker=all",
                                   "--command=mkdir -p tfcompact_job"] + where
    assert cmds["copy"] == tpu + ["scp", f"stage/{wheel}", "stage/albert_job.yaml",
                                  "my-tpu:tfcompact_job/", "--worker=all"] + where
    assert cmds["install"] == tpu + [
        "ssh", "my-tpu", "--worker=all",
        f"--command=python3 -m pip install --no-deps --force-reinstall tfcompact_job/{wheel} && "
        "python3 -m pip install absl-py jieba pyyaml snownlp==0.12.3"] + where
    assert cmds["train"] == tpu + [
        "ssh", "my-tpu", "--worker=all",
        "--command=python3 -m tfcompact.cli pretrain --config tfcompact_job/albert_job.yaml "
        "--tpu local"] + where
    assert cmds["delete"] == tpu + ["delete", "my-tpu", "--quiet"] + where
    assert "delete" not in build_commands(experiment_from_dict(RAW), _spec())


def test_remote_command_pieces_are_shell_quoted():
    raw = dict(RAW, name="job; rm -rf ~")
    cmds = build_commands(experiment_from_dict(raw), _spec())
    assert "--config 'tfcompact_job/job; rm -rf ~.yaml'" in cmds["train"][-3]


def test_dry_run_prints_and_runs_nothing(tmp_path):
    lines, ran = [], []
    status = submit(experiment_from_dict(RAW), _spec(staging_dir=str(tmp_path / "s")),
                    dry_run=True, run=ran.append, log=lines.append)
    assert status == 0 and ran == []
    assert not os.path.exists(tmp_path / "s")
    assert lines[0].startswith("note: data manifests not checked from here")
    assert "v3-8: 8 replicas, 1 host(s)" in lines[1]
    assert lines[3] == ("gcloud compute tpus tpu-vm create my-tpu --accelerator-type=v3-8 "
                        "--version=tpu-vm-tf-2.16.1-pjrt --zone=europe-west4-a --project=proj")


def test_submission_runs_steps_in_order_and_deletes_after_failure(tmp_path):
    ran = []

    def fake_run(cmd):  # stands in for subprocess: records the argument lists
        ran.append(list(cmd))
        return 1 if cmd[4:5] == ["ssh"] and "pretrain" in cmd[-3] else 0

    exp = experiment_from_dict(RAW)
    spec = _spec(staging_dir=str(tmp_path / "s"), delete_on_finish=True)
    with pytest.raises(DataError, match="cannot read the manifest from here"):
        submit(exp, spec, dry_run=False, run=fake_run, log=lambda s: None)
    assert ran == []
    spec.skip_data_check = True
    with pytest.raises(Exception, match="step 'train' failed with exit status 1"):
        submit(exp, spec, dry_run=False, run=fake_run, log=lambda s: None)
    names = [c[4] if c[0] == "gcloud" else "pip" for c in ran]
    assert names == ["pip", "create", "ssh", "scp", "ssh", "ssh", "delete"]
    assert os.path.exists(tmp_path / "s" / "albert_job.yaml")


def test_preflight_rejects_local_paths_and_bad_batches():
    with pytest.raises(ConfigError, match="data.train = '/local/data'.*gs://"):
        submit(experiment_from_dict(dict(RAW, data={"train": "/local/data"})), _spec(),
               dry_run=True, log=lambda s: None)
    raw = dict(RAW, train={"model_dir": "gs://b/m", "batch_size": 1000})
    with pytest.raises(ConfigError, match="divisible by the 256 replicas"):
        submit(experiment_from_dict(raw), _spec(accelerator_type="v3-256"), dry_run=True,
               log=lambda s: None)


def test_cli_dry_run(tmp_path, capsys):
    from tfcompact.cli import main

    path = write_yaml(str(tmp_path / "job.yaml"), RAW)
    assert main(["submit", "--config", path, "--tpu_name", "t", "--zone", "z", "--project", "p",
                 "--dry_run", "--delete_on_finish", "--staging_dir", "st"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "gcloud compute tpus tpu-vm delete t --quiet --zone=z --project=p"
    assert main(["submit", "--config", path, "--tpu_name", "t", "--dry_run"]) == 2
    assert "--zone and --project are required" in capsys.readouterr().err
