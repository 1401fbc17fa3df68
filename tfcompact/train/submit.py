"""Submit a pretraining experiment to a Cloud TPU VM with gcloud.

The job is a fixed list of commands, each an argument list run without a shell:
  1. build a wheel of this package (pip wheel --no-deps);
  2. `gcloud compute tpus tpu-vm create` the TPU VM;
  3. copy the wheel and the resolved experiment YAML to every worker (scp --worker=all);
  4. install the wheel (+ the pure-Python dependencies the TPU image lacks) on every worker;
  5. run `tfcompact pretrain --config <yaml> --tpu local` on every worker (--worker=all); its
     output is streamed back through ssh;
  6. delete the TPU VM when asked (also after a failure).
Only the `--command` strings of steps 4-5 are interpreted by a shell, on the TPU VM, and every
piece of them is quoted with shlex.quote. `--dry_run` prints the commands instead.
Preflight runs first: gs:// paths, batch divisible by the accelerator's replicas, enough input
shards for its hosts, and (when the manifest is readable from here) data matching the model.
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import sys
from typing import Callable, Sequence

import tfcompact
from tfcompact.errors import DataError, UserError
from tfcompact.train.experiment import Experiment, dump_experiment
from tfcompact.train.preflight import Placement, check_batch, check_data, check_paths
from tfcompact.train.strategy import tpu_topology

REMOTE_DIR = "tfcompact_job"
# The TPU VM TensorFlow images ship TF itself; these are what tfcompact adds (pure Python).
REMOTE_DEPENDENCIES = ("absl-py", "jieba", "pyyaml", "snownlp==0.12.3")


@dataclasses.dataclass
class SubmitSpec:
    """Where and how to run."""

    tpu_name: str
    zone: str
    project: str
    accelerator_type: str
    runtime_version: str
    delete_on_finish: bool = False
    staging_dir: str = "tfcompact_submit"
    # The submitting machine may lack read access to the bucket (the TPU VM has its own).
    skip_data_check: bool = False
    source_dir: str = "."
    python: str = sys.executable or "python3"


def wheel_name() -> str:
    return f"tfcompact-{tfcompact.__version__}-py3-none-any.whl"


def _gcloud(spec: SubmitSpec, verb: str, *args: str) -> list[str]:
    return ["gcloud", "compute", "tpus", "tpu-vm", verb, *args, f"--zone={spec.zone}",
            f"--project={spec.project}"]


def build_commands(exp: Experiment, spec: SubmitSpec) -> dict[str, list[str]]:
    """The job's commands by step name, in order (see the module docstring)."""
    config_name = f"{exp.name or 'experiment'}.yaml"
    local_config = os.path.join(spec.staging_dir, config_name)
    wheel = os.path.join(spec.staging_dir, wheel_name())
    remote_wheel = f"{REMOTE_DIR}/{wheel_name()}"
    install = " && ".join([
        f"python3 -m pip install --no-deps --force-reinstall {shlex.quote(remote_wheel)}",
        "python3 -m pip install " + " ".join(shlex.quote(d) for d in REMOTE_DEPENDENCIES),
    ])
    train = " ".join(shlex.quote(a) for a in [
        "python3", "-m", "tfcompact.cli", "pretrain", "--config", f"{REMOTE_DIR}/{config_name}",
        "--tpu", "local"])
    commands = {
        "build": [spec.python, "-m", "pip", "wheel", "--no-deps", "--wheel-dir",
                  spec.staging_dir, spec.source_dir],
        "create": _gcloud(spec, "create", spec.tpu_name,
                          f"--accelerator-type={spec.accelerator_type}",
                          f"--version={spec.runtime_version}"),
        "mkdir": _gcloud(spec, "ssh", spec.tpu_name, "--worker=all",
                         f"--command=mkdir -p {REMOTE_DIR}"),
        "copy": _gcloud(spec, "scp", wheel, local_config, f"{spec.tpu_name}:{REMOTE_DIR}/",
                        "--worker=all"),
        "install": _gcloud(spec, "ssh", spec.tpu_name, "--worker=all", f"--command={install}"),
        "train": _gcloud(spec, "ssh", spec.tpu_name, "--worker=all", f"--command={train}"),
    }
    if spec.delete_on_finish:
        commands["delete"] = _gcloud(spec, "delete", spec.tpu_name, "--quiet")
    return commands


def tpu_preflight(exp: Experiment, spec: SubmitSpec, *, require_data: bool,
                  log: Callable[[str], None] = print) -> None:
    """Preflight for the accelerator type; data checks need read access to the manifests."""
    replicas, hosts = tpu_topology(spec.accelerator_type)
    placement = Placement(on_tpu=True, num_replicas=replicas, num_hosts=hosts)
    check_paths(exp, placement)
    check_batch(exp, placement)
    from tfcompact.train.preflight import read_data_manifest
    from tfcompact.train.pretrain import resolve_model_config

    try:
        manifests = {"data.train": read_data_manifest(exp.data.train, "data.train")}
        if exp.data.eval and exp.train.eval_steps:
            manifests["data.eval"] = read_data_manifest(exp.data.eval, "data.eval")
    except DataError as e:
        if require_data:
            raise
        log(f"note: data manifests not checked from here ({str(e).splitlines()[0]})")
        return
    except Exception as e:  # gs:// without credentials raises TF OpErrors
        if not _is_tf_error(e):
            raise
        first = str(e).strip().splitlines()[0]
        if require_data:
            raise DataError(f"data.train {exp.data.train}: cannot read the manifest from here "
                            f"({first}); check access or pass --skip_data_check") from None
        log(f"note: data manifests not checked from here ({first})")
        return
    _, config, _, _ = resolve_model_config(exp.model, manifests["data.train"], exp.source)
    check_data(exp, placement, config, manifests)


def _is_tf_error(e: BaseException) -> bool:
    import tensorflow as tf

    return isinstance(e, tf.errors.OpError)


def submit(exp: Experiment, spec: SubmitSpec, *, dry_run: bool,
           run: Callable[[Sequence[str]], int] | None = None,
           log: Callable[[str], None] = print) -> int:
    """Preflight, then print (dry run) or run the commands; the exit status."""
    tpu_preflight(exp, spec, require_data=not (dry_run or spec.skip_data_check), log=log)
    commands = build_commands(exp, spec)
    if dry_run:
        log(f"# experiment written to {os.path.join(spec.staging_dir, (exp.name or 'experiment') + '.yaml')} "
            f"when submitted; {spec.accelerator_type}: {tpu_topology(spec.accelerator_type)[0]} "
            f"replicas, {tpu_topology(spec.accelerator_type)[1]} host(s)")
        for name, cmd in commands.items():
            log(shlex.join(cmd))
        return 0
    run = run or (lambda cmd: subprocess.run(list(cmd), check=False).returncode)
    os.makedirs(spec.staging_dir, exist_ok=True)
    dump_experiment(exp, os.path.join(spec.staging_dir, f"{exp.name or 'experiment'}.yaml"))
    created = False
    status = 0
    try:
        for name, cmd in commands.items():
            if name == "delete":
                continue
            log(f"[{name}] {shlex.join(cmd)}")
            status = run(cmd)
            if status != 0:
                raise UserError(f"step '{name}' failed with exit status {status}: "
                                f"{shlex.join(cmd)}")
            if name == "create":
                created = True
    finally:
        if spec.delete_on_finish and created:
            log(f"[delete] {shlex.join(commands['delete'])}")
            run(commands["delete"])
    return status
