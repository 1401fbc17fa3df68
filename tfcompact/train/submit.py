"""Submit a pretraining experiment to a Cloud TPU VM with gcloud.

The job is a fixed list of commands, each an argument list run without a shell:
  1. build a wheel of this package (pip wheel --no-deps);
  2. `gcloud compute tpus tpu-vm create` the TPU VM with the base image of its generation;
  3. copy the wheel, the resolved experiment YAML and the pinned requirements to every worker;
  4. install on every worker (`install_steps`): check the VM's Python, remove a CPU TensorFlow,
     install the pinned requirements, then `tensorflow-tpu`, `tensorflow-text` and the wheel
     without dependencies (so pip cannot pull the CPU `tensorflow` back in), the libtpu built
     for that TensorFlow, and finally `tfcompact doctor --expect_tensorflow` to verify;
  5. run `tfcompact pretrain --config <yaml> --tpu local` on every worker (--worker=all); its
     output is streamed back through ssh;
  6. delete the TPU VM when asked (also after a failure).
Only the `--command` strings of steps 4-5 are interpreted by a shell, on the TPU VM, and every
piece of them is quoted with shlex.quote. Names that reach gcloud are validated first.
`--dry_run` prints a bash script that does the same (paste it to run the job by hand) and
touches nothing: no file is written and no cloud API is called.
The versions installed come from `tfcompact.train.tpu_software`, the one table of them.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import Callable, Sequence

import tfcompact
from tfcompact.errors import DataError, UserError
from tfcompact.train import tpu_software as sw
from tfcompact.train.experiment import Experiment, dump_experiment
from tfcompact.train.preflight import Placement, check_batch, check_paths

REMOTE_DIR = "tfcompact_job"
REQUIREMENTS_NAME = "tpu_requirements.txt"

# Cloud TPU node names follow RFC 1035 labels: a lowercase letter, then lowercase letters,
# digits or hyphens, not ending in a hyphen, at most 63 characters.
_TPU_NAME = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
_ZONE = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
# Project IDs: 6-30 lowercase letters, digits, hyphens, starting with a letter (optionally
# domain-scoped, "example.com:my-project").
_PROJECT = re.compile(r"^(?:[a-z0-9.-]+:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$")
_FILE_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclasses.dataclass
class SubmitSpec:
    """Where and how to run."""

    tpu_name: str
    zone: str
    project: str
    accelerator_type: str
    runtime_version: str | None = None  # None: the generation's image from tpu_software
    delete_on_finish: bool = False
    staging_dir: str = "tfcompact_submit"
    # The submitting machine may lack read access to the bucket (the TPU VM has its own).
    skip_data_check: bool = False
    source_dir: str = "."
    python: str = sys.executable or "python3"

    def validate(self) -> None:
        """One-line errors for names that would otherwise reach gcloud as flags or paths."""
        checks = [("--tpu_name", self.tpu_name, _TPU_NAME,
                   "a lowercase letter, then up to 62 lowercase letters, digits or hyphens, "
                   "not ending in a hyphen"),
                  ("--zone", self.zone, _ZONE, "a zone such as europe-west4-a"),
                  ("--project", self.project, _PROJECT,
                   "a project ID: 6-30 lowercase letters, digits or hyphens")]
        if self.runtime_version is not None:
            checks.append(("--runtime_version", self.runtime_version,
                           re.compile(r"^[a-z0-9][-a-z0-9.]{0,99}$"),
                           "an image name such as tpu-ubuntu2204-base"))
        for flag, value, pattern, expected in checks:
            if not pattern.match(value or ""):
                raise UserError(f"{flag} {value!r}: expected {expected}")
        sw.parse_accelerator_type(self.accelerator_type)

    @property
    def image(self) -> str:
        return self.runtime_version or sw.runtime_version_for(self.accelerator_type)


def wheel_name() -> str:
    return f"tfcompact-{tfcompact.__version__}-py3-none-any.whl"


def config_file_name(exp: Experiment) -> str:
    """The staged experiment's file name; the experiment name must be a plain file stem."""
    stem = exp.name or "experiment"
    if not _FILE_STEM.match(stem) or ".." in stem:
        raise UserError(f"{exp.source}: name {stem!r}: expected letters, digits, '.', '_' or "
                        f"'-' (it names the staged file), starting with a letter or digit")
    return f"{stem}.yaml"


def install_steps(remote_dir: str = REMOTE_DIR, python: str = "python3",
                  wheel: str | None = None) -> list[tuple[str, str]]:
    """(name, shell command) of the install on a TPU VM, in order.

    `tools/tpu_standin.py` runs exactly these on a CPU machine, leaving out only "libtpu"."""
    q = shlex.quote
    pip = f"{q(python)} -m pip"
    ok = ", ".join(f"{a}.{b}" for a, b in sw.TPU_PYTHON_VERSIONS)
    versions = repr(tuple(sw.TPU_PYTHON_VERSIONS))
    check_python = (
        "import sys; v = sys.version_info[:2]; "
        f"sys.exit(None if v in {versions} else 'tfcompact: this VM runs Python %d.%d; the "
        f"TensorFlow TPU build ({sw.TENSORFLOW_TPU}) needs Python {ok}' % v)")
    wheel_path = f"{remote_dir}/{wheel or wheel_name()}"
    return [
        ("python", f"{q(python)} -c {q(check_python)}"),
        # A CPU TensorFlow provides the same module as tensorflow-tpu and would shadow it.
        ("remove-cpu-tensorflow",
         f"{pip} uninstall --yes --quiet tensorflow tensorflow-cpu tensorflow-intel"),
        ("requirements", f"{pip} install --quiet -r {q(f'{remote_dir}/{REQUIREMENTS_NAME}')}"),
        # Without dependencies: tensorflow-text (and tfcompact) declare `tensorflow`, the CPU
        # build, and tensorflow-tpu declares an unpinned libtpu; both are handled here.
        ("tensorflow", f"{pip} install --quiet --no-deps {q(sw.TENSORFLOW_TPU)} "
                       f"{q(sw.TENSORFLOW_TEXT)}"),
        ("tfcompact", f"{pip} install --quiet --no-deps --force-reinstall {q(wheel_path)}"),
        ("libtpu", f"{pip} install --quiet --no-deps {q(sw.LIBTPU)} "
                   f"-f {q(sw.LIBTPU_FIND_LINKS)}"),
        ("check", f"{q(python)} -m tfcompact.cli doctor --expect_tensorflow "
                  f"{q(sw.TPU_TENSORFLOW_VERSION)}"),
    ]


def install_script(remote_dir: str = REMOTE_DIR, python: str = "python3") -> str:
    """The install steps as one shell command (stops at the first failing step)."""
    return " && ".join(cmd for _, cmd in install_steps(remote_dir, python))


def _gcloud(spec: SubmitSpec, verb: str, *args: str) -> list[str]:
    return ["gcloud", "compute", "tpus", "tpu-vm", verb, *args, f"--zone={spec.zone}",
            f"--project={spec.project}"]


def build_commands(exp: Experiment, spec: SubmitSpec) -> dict[str, list[str]]:
    """The job's commands by step name, in order (see the module docstring)."""
    spec.validate()
    config_name = config_file_name(exp)
    staged = [os.path.join(spec.staging_dir, name)
              for name in (wheel_name(), config_name, REQUIREMENTS_NAME)]
    train = " ".join(shlex.quote(a) for a in [
        "python3", "-m", "tfcompact.cli", "pretrain", "--config", f"{REMOTE_DIR}/{config_name}",
        "--tpu", "local"])
    commands = {
        "build": [spec.python, "-m", "pip", "wheel", "--no-deps", "--wheel-dir",
                  spec.staging_dir, spec.source_dir],
        "create": _gcloud(spec, "create", spec.tpu_name,
                          f"--accelerator-type={spec.accelerator_type}",
                          f"--version={spec.image}"),
        "mkdir": _gcloud(spec, "ssh", spec.tpu_name, "--worker=all",
                         f"--command=mkdir -p {REMOTE_DIR}"),
        "copy": _gcloud(spec, "scp", *staged, f"{spec.tpu_name}:{REMOTE_DIR}/", "--worker=all"),
        "install": _gcloud(spec, "ssh", spec.tpu_name, "--worker=all",
                           f"--command={install_script()}"),
        "train": _gcloud(spec, "ssh", spec.tpu_name, "--worker=all", f"--command={train}"),
    }
    if spec.delete_on_finish:
        commands["delete"] = _gcloud(spec, "delete", spec.tpu_name, "--quiet")
    return commands


def tpu_preflight(exp: Experiment, spec: SubmitSpec, *, check_manifests: bool,
                  require_data: bool, log: Callable[[str], None] = print) -> None:
    """Preflight for the accelerator type; data checks need read access to the manifests."""
    replicas, hosts = sw.tpu_topology(spec.accelerator_type)
    placement = Placement(on_tpu=True, num_replicas=replicas, num_hosts=hosts)
    check_paths(exp, placement)
    check_batch(exp, placement)
    if not check_manifests:
        return
    # TensorFlow only when the manifests are read: a dry run stays light.
    from tfcompact.train.plan import check_plan, make_plan, read_manifests

    try:
        manifests = read_manifests(exp)
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
    check_plan(make_plan(exp, manifests), placement)


def _is_tf_error(e: BaseException) -> bool:
    import tensorflow as tf

    return isinstance(e, tf.errors.OpError)


def dry_run_script(exp: Experiment, spec: SubmitSpec, commands: dict[str, list[str]]) -> list[str]:
    """A bash script, line by line, doing what `submit` does (staged files written inline)."""
    import yaml

    replicas, hosts = sw.tpu_topology(spec.accelerator_type)
    staged_yaml = os.path.join(spec.staging_dir, config_file_name(exp))
    lines = [
        "#!/usr/bin/env bash",
        f"# tfcompact submit (dry run): {spec.accelerator_type} = {replicas} replicas, "
        f"{hosts} host(s); image {spec.image}; {sw.TENSORFLOW_TPU}, {sw.LIBTPU}, "
        f"{sw.TENSORFLOW_TEXT}",
        "set -euo pipefail",
        shlex.join(["mkdir", "-p", spec.staging_dir]),
        f"cat > {shlex.quote(staged_yaml)} <<'TFCOMPACT_EXPERIMENT'",
        *yaml.safe_dump(exp.to_dict(), sort_keys=False, allow_unicode=True).splitlines(),
        "TFCOMPACT_EXPERIMENT",
        shlex.join(["cp", sw.REQUIREMENTS_FILE, os.path.join(spec.staging_dir,
                                                             REQUIREMENTS_NAME)]),
    ]
    for name, cmd in commands.items():
        if name == "delete":
            continue
        lines.append(shlex.join(cmd))
        if name == "create" and "delete" in commands:
            lines.append(f"trap {shlex.quote(shlex.join(commands['delete']))} EXIT")
    return lines


def stage_files(exp: Experiment, spec: SubmitSpec) -> None:
    """Write the resolved experiment and the pinned requirements into the staging directory."""
    os.makedirs(spec.staging_dir, exist_ok=True)
    dump_experiment(exp, os.path.join(spec.staging_dir, config_file_name(exp)))
    shutil.copyfile(sw.REQUIREMENTS_FILE, os.path.join(spec.staging_dir, REQUIREMENTS_NAME))


def submit(exp: Experiment, spec: SubmitSpec, *, dry_run: bool,
           run: Callable[[Sequence[str]], int] | None = None,
           log: Callable[[str], None] = print) -> int:
    """Preflight, then print (dry run) or run the commands; the exit status."""
    commands = build_commands(exp, spec)  # validates names first
    tpu_preflight(exp, spec, check_manifests=not dry_run,
                  require_data=not spec.skip_data_check, log=log)
    if dry_run:
        for line in dry_run_script(exp, spec, commands):
            log(line)
        return 0
    run = run or (lambda cmd: subprocess.run(list(cmd), check=False).returncode)
    stage_files(exp, spec)
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
