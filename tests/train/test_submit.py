"""`tfcompact submit`: the exact gcloud argument lists, the install on the TPU VM, dry runs that
touch nothing, names validated before they reach gcloud, preflight."""
import os
import shlex
import subprocess

import pytest

from train_helpers import write_yaml
from tfcompact.errors import ConfigError, DataError, UserError
from tfcompact.train import tpu_software as sw
from tfcompact.train.experiment import experiment_from_dict, load_experiment, tpu_configs_dir
from tfcompact.train.submit import (SubmitSpec, build_commands, install_script, install_steps,
                                    submit, wheel_name)

RAW = {
    "name": "albert_job",
    "model": {"preset": "albert_base_zh"},
    "data": {"train": "gs://b/data/train", "max_seq_length": 512},
    "train": {"model_dir": "gs://b/models/albert", "batch_size": 1024},
}


def _spec(**kw):
    base = dict(tpu_name="my-tpu", zone="europe-west4-a", project="my-proj",
                accelerator_type="v3-8", runtime_version="tpu-ubuntu2204-base",
                staging_dir="stage", source_dir="/src", python="python3")
    base.update(kw)
    return SubmitSpec(**base)


def test_command_lists_are_exact():
    cmds = build_commands(experiment_from_dict(RAW), _spec(delete_on_finish=True))
    where = ["--zone=europe-west4-a", "--project=my-proj"]
    tpu = ["gcloud", "compute", "tpus", "tpu-vm"]
    wheel = f"tfcompact-{__import__('tfcompact').__version__}-py3-none-any.whl"
    assert wheel_name() == wheel
    assert list(cmds) == ["build", "create", "mkdir", "copy", "install", "train", "delete"]
    assert cmds["build"] == ["python3", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", "stage",
                             "/src"]
    assert cmds["create"] == tpu + ["create", "my-tpu", "--accelerator-type=v3-8",
                                    "--version=tpu-ubuntu2204-base"] + where
    assert cmds["mkdir"] == tpu + ["ssh", "my-tpu", "--worker=all",
                                   "--command=mkdir -p tfcompact_job"] + where
    assert cmds["copy"] == tpu + ["scp", f"stage/{wheel}", "stage/albert_job.yaml",
                                  "stage/tpu_requirements.txt", "my-tpu:tfcompact_job/",
                                  "--worker=all"] + where
    assert cmds["install"] == tpu + ["ssh", "my-tpu", "--worker=all",
                                     f"--command={install_script()}"] + where
    assert cmds["train"] == tpu + [
        "ssh", "my-tpu", "--worker=all",
        "--command=python3 -m tfcompact.cli pretrain --config tfcompact_job/albert_job.yaml "
        "--tpu local"] + where
    assert cmds["delete"] == tpu + ["delete", "my-tpu", "--quiet"] + where
    assert "delete" not in build_commands(experiment_from_dict(RAW), _spec())


def test_install_pins_the_tpu_build_and_keeps_the_cpu_build_out():
    steps = dict(install_steps())
    assert list(steps) == ["python", "remove-cpu-tensorflow", "requirements", "tensorflow",
                           "tfcompact", "libtpu", "check"]
    assert "uninstall --yes --quiet tensorflow tensorflow-cpu" in steps["remove-cpu-tensorflow"]
    # tensorflow-text and the wheel declare the CPU `tensorflow`: never resolved on the VM.
    assert steps["tensorflow"].endswith(
        "install --quiet --no-deps tensorflow-tpu==2.20.0 tensorflow-text==2.20.1")
    assert "--no-deps" in steps["tfcompact"] and "--no-deps" in steps["libtpu"]
    assert "libtpu==0.0.14 -f https://storage.googleapis.com/libtpu-tf-releases/index.html" \
        in steps["libtpu"]
    assert steps["requirements"].endswith("-r tfcompact_job/tpu_requirements.txt")
    assert steps["check"].endswith("doctor --expect_tensorflow 2.20.0")
    # The pinned file holds no TensorFlow distribution, libtpu or tfcompact itself, and every
    # line is an exact pin.
    pins = sw.pinned_requirements()
    names = {p.split("==")[0].lower().replace("_", "-") for p in pins}
    assert all("==" in p for p in pins) and len(names) == len(pins)
    assert not names & {"tensorflow", "tensorflow-tpu", "tensorflow-text", "libtpu", "tfcompact"}
    assert {"keras", "numpy", "protobuf", "jieba", "rjieba", "snownlp", "google-crc32c",
            "tensorboard", "tensorflow-datasets", "pyyaml"} <= names


def test_python_check_runs_and_names_the_versions(monkeypatch):
    cmd = dict(install_steps(python="python3"))["python"]
    ok = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    monkeypatch.setattr(sw, "TPU_PYTHON_VERSIONS", ((2, 7),))
    bad = subprocess.run(["bash", "-c", dict(install_steps())["python"]], capture_output=True,
                         text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("tfcompact: this VM runs Python 3.")
    assert "needs Python 2.7" in bad.stderr


@pytest.mark.parametrize("config,image,replicas,hosts", [
    ("albert_tiny_zh_v3-8", "tpu-ubuntu2204-base", 8, 1),
    ("albert_base_zh_v4-32", "tpu-ubuntu2204-base", 16, 4),
    ("electra_small_zh_v5litepod-8", "v2-alpha-tpuv5-lite", 8, 1),
])
def test_dry_run_of_shipped_configs_is_a_bash_script_with_the_pinned_install(
        config, image, replicas, hosts, tmp_path):
    exp = load_experiment(tpu_configs_dir() / f"{config}.yaml")
    spec = _spec(accelerator_type=exp.tpu.accelerator_type, runtime_version=None,
                 staging_dir=str(tmp_path / "stage"))
    lines = []
    assert submit(exp, spec, dry_run=True, log=lines.append) == 0
    script = "\n".join(lines) + "\n"
    assert not (tmp_path / "stage").exists()  # a dry run writes nothing
    assert f"= {replicas} replicas, {hosts} host(s); image {image}" in lines[1]
    assert f"--version={image}" in script
    for pin in (sw.TENSORFLOW_TPU, sw.TENSORFLOW_TEXT, sw.LIBTPU):
        assert pin in script
    assert shlex.join(["cp", sw.REQUIREMENTS_FILE,
                       os.path.join(spec.staging_dir, "tpu_requirements.txt")]) in lines
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    # The inline experiment is the resolved config, byte for byte what submit would stage.
    start = lines.index(next(ln for ln in lines if ln.startswith("cat > ")))
    body = lines[start + 1:lines.index("TFCOMPACT_EXPERIMENT")]
    staged = tmp_path / "exp.yaml"
    staged.write_text("\n".join(body) + "\n", encoding="utf-8")
    assert load_experiment(staged).to_dict() == exp.to_dict()


def test_generation_images_follow_the_cloud_tpu_table():
    # Cloud TPU "TPU software versions": v4 and older -> tpu-ubuntu2204-base, v5e ->
    # v2-alpha-tpuv5-lite, v5p -> v2-alpha-tpuv5, v6e -> v2-alpha-tpuv6e.
    for acc, image in [("v2-8", "tpu-ubuntu2204-base"), ("v3-32", "tpu-ubuntu2204-base"),
                       ("v4-8", "tpu-ubuntu2204-base"), ("v5p-8", "v2-alpha-tpuv5"),
                       ("v5litepod-16", "v2-alpha-tpuv5-lite"), ("v6e-8", "v2-alpha-tpuv6e")]:
        assert sw.runtime_version_for(acc) == image
    assert sw.tpu_topology("v5litepod-16") == (16, 2)
    assert sw.tpu_topology("v5p-8") == (4, 1)
    assert sw.tpu_topology("v6e-8") == (8, 1)


def test_remote_command_pieces_are_shell_quoted():
    cmds = build_commands(experiment_from_dict(RAW), _spec(python="my python"))
    assert cmds["build"][0] == "my python"
    train = cmds["train"][-3]
    assert shlex.split(train.split("=", 1)[1])[-4:] == ["--config", "tfcompact_job/albert_job.yaml",
                                                        "--tpu", "local"]


@pytest.mark.parametrize("field,value,match", [
    ("tpu_name", "--impersonate-service-account=x", "--tpu_name"),
    ("tpu_name", "My_TPU", "--tpu_name"),
    ("tpu_name", "a" * 64, "--tpu_name"),
    ("zone", "--flag", "--zone"),
    ("zone", "europe-west4", "--zone"),
    ("project", "p; rm -rf ~", "--project"),
    ("runtime_version", "--verbosity=debug", "--runtime_version"),
    ("accelerator_type", "v3-eight", "accelerator type"),
])
def test_names_that_would_reach_gcloud_are_validated(field, value, match):
    with pytest.raises(UserError, match=match):
        build_commands(experiment_from_dict(RAW), _spec(**{field: value}))


@pytest.mark.parametrize("name", ["../../etc/evil", "job; rm -rf ~", ".hidden", "a/b"])
def test_experiment_name_cannot_escape_the_staging_directory(name, tmp_path):
    with pytest.raises(UserError, match="name"):
        submit(experiment_from_dict(dict(RAW, name=name)), _spec(staging_dir=str(tmp_path)),
               dry_run=True, log=lambda s: None)
    assert os.listdir(tmp_path) == []


def test_submission_runs_steps_in_order_and_deletes_after_failure(tmp_path):
    ran = []

    def recording_run(cmd):  # stands in for subprocess: gcloud cannot run here
        ran.append(list(cmd))
        return 1 if cmd[4:5] == ["ssh"] and "pretrain" in cmd[-3] else 0

    exp = experiment_from_dict(RAW)
    spec = _spec(staging_dir=str(tmp_path / "s"), delete_on_finish=True)
    with pytest.raises(DataError, match="cannot read the manifest from here"):
        submit(exp, spec, dry_run=False, run=recording_run, log=lambda s: None)
    assert ran == []
    spec.skip_data_check = True
    with pytest.raises(Exception, match="step 'train' failed with exit status 1"):
        submit(exp, spec, dry_run=False, run=recording_run, log=lambda s: None)
    names = [c[4] if c[0] == "gcloud" else "pip" for c in ran]
    assert names == ["pip", "create", "ssh", "scp", "ssh", "ssh", "delete"]
    assert os.path.exists(tmp_path / "s" / "albert_job.yaml")
    staged = (tmp_path / "s" / "tpu_requirements.txt").read_text(encoding="utf-8")
    with open(sw.REQUIREMENTS_FILE, encoding="utf-8") as f:
        assert staged == f.read()


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
    assert main(["submit", "--config", path, "--tpu_name", "t", "--zone", "europe-west4-a",
                 "--project", "my-proj", "--dry_run", "--delete_on_finish",
                 "--staging_dir", "st"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("gcloud compute tpus tpu-vm ssh t --worker=all "
                              "'--command=python3 -m tfcompact.cli pretrain")
    assert "trap 'gcloud compute tpus tpu-vm delete t --quiet --zone=europe-west4-a " \
           "--project=my-proj' EXIT" in out
    assert main(["submit", "--config", path, "--tpu_name", "t", "--dry_run"]) == 1
    assert "--zone and --project are required" in capsys.readouterr().err
