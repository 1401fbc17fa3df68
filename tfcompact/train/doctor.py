"""What this machine can run: package versions, devices, CPU features, data and model access.

`tfcompact doctor` prints one line per fact and one `problem:` line per thing that would make a
job fail (a CPU TensorFlow beside the TPU build, tensorflow-text built for another TensorFlow,
a TensorFlow other than the one expected, an unreadable data directory, ...). Versions are read
from package metadata before TensorFlow is imported, and the import itself is tried in a
child process first: a libtpu that does not match TensorFlow aborts the process that loads it,
and the report must still be printed.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata as md
import os
import platform
import subprocess
import sys
from typing import Callable

from tfcompact.train import tpu_software as sw

Log = Callable[[str], None]

# Distributions that provide the `tensorflow` module; more than one installed shadows the other.
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-tpu")
# /proc/cpuinfo flags that decide bfloat16 / int8 speed on CPUs.
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


@dataclasses.dataclass
class Report:
    """Facts and problems, printed in the order found."""

    log: Log
    problems: list[str] = dataclasses.field(default_factory=list)

    def fact(self, name: str, value: str) -> None:
        self.log(f"{name + ':':<18}{value}")

    def problem(self, message: str) -> None:
        self.problems.append(message)
        self.log(f"problem: {message}")


def installed_version(distribution: str) -> str | None:
    try:
        return md.version(distribution)
    except md.PackageNotFoundError:
        return None


def _minor(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


def check_packages(report: Report, expect_tensorflow: str | None) -> None:
    """Versions of the TensorFlow stack and whether they fit together."""
    import tfcompact

    report.fact("tfcompact", f"{tfcompact.__version__} ({os.path.dirname(tfcompact.__file__)})")
    report.fact("python", f"{platform.python_version()} ({platform.system()} "
                          f"{platform.machine()})")
    found = {d: v for d in TENSORFLOW_DISTRIBUTIONS if (v := installed_version(d))}
    if not found:
        report.problem("no TensorFlow installed (pip install tensorflow, or tensorflow-tpu on "
                       "a TPU VM)")
    report.fact("tensorflow", ", ".join(f"{v} ({d})" for d, v in found.items()) or "none")
    if len(found) > 1:
        report.problem(f"{' and '.join(found)} are all installed and provide the same module; "
                       f"keep one (TPU VM: pip uninstall "
                       f"{' '.join(d for d in found if d != 'tensorflow-tpu')})")
    tf_version = next(iter(found.values()), None)
    if expect_tensorflow and tf_version != expect_tensorflow:
        report.problem(f"TensorFlow {tf_version or 'missing'} installed, {expect_tensorflow} "
                       f"expected")
    for dist in ("keras", "tensorflow-text", "libtpu"):
        report.fact(dist, installed_version(dist) or "not installed")
    text = installed_version("tensorflow-text")
    if text is None:
        report.problem("tensorflow-text is not installed")
    elif tf_version and _minor(text) != _minor(tf_version):
        report.problem(f"tensorflow-text {text} is built for TensorFlow "
                       f"{'.'.join(map(str, _minor(text)))}, not {tf_version}; install "
                       f"tensorflow-text=={'.'.join(map(str, _minor(tf_version)))}.* "
                       f"(--no-deps beside tensorflow-tpu)")
    libtpu = installed_version("libtpu")
    if "tensorflow-tpu" in found and found["tensorflow-tpu"] == sw.TPU_TENSORFLOW_VERSION \
            and libtpu and libtpu != sw.LIBTPU.split("==")[1]:
        report.problem(f"libtpu {libtpu} does not match {sw.TENSORFLOW_TPU} (needs "
                       f"{sw.LIBTPU} from {sw.LIBTPU_FIND_LINKS})")


def check_import(report: Report) -> bool:
    """Import TensorFlow in a child process (an abort there is reported, not suffered)."""
    probe = ("import os; os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2'); "
             "import tensorflow as tf, tensorflow_text, keras; print(tf.__version__)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=600, check=False)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        report.problem(f"`import tensorflow, tensorflow_text, keras` failed with exit status "
                       f"{proc.returncode}: {lines[-1] if lines else 'no message'}")
        return False
    return True


def cpu_features() -> dict[str, bool]:
    """The CPU flags of interest, from /proc/cpuinfo (all False where it does not exist)."""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {name: name in flags for name in CPU_FEATURES}


def check_devices(report: Report, tpu: str | None) -> None:
    """Accelerators TensorFlow sees; with `tpu`, initialise the TPU system and describe it."""
    import tensorflow as tf

    report.fact("cpu", f"{os.cpu_count()} cores; " + ", ".join(
        f"{k} {'yes' if v else 'no'}" for k, v in cpu_features().items()))
    gpus = tf.config.list_physical_devices("GPU")
    report.fact("gpus", ", ".join(d.name for d in gpus) if gpus else "none")
    if not tpu:
        report.fact("tpu", "not checked (--tpu local on a TPU VM, or --tpu NAME)")
        return
    from tfcompact.errors import UserError
    from tfcompact.train.strategy import connect_tpu

    try:
        _, topology = connect_tpu(tpu)
    except UserError as e:
        report.problem(str(e))
        return
    cores = tf.config.list_logical_devices("TPU")
    report.fact("tpu", f"{len(cores)} cores over {topology.num_tasks} host(s), "
                       f"{topology.num_tpus_per_task} per host, mesh {list(topology.mesh_shape)}")


def check_path(report: Report, name: str, path: str, *, writable: bool) -> None:
    """A data or model directory: does it exist, can it be listed (and written)?"""
    import tensorflow as tf

    try:
        if not tf.io.gfile.exists(path):
            parent = os.path.dirname(path.rstrip("/")) or "."
            if writable and tf.io.gfile.exists(parent):
                report.fact(name, f"{path} (does not exist yet; {parent} exists)")
                return
            report.problem(f"{name} {path}: does not exist")
            return
        entries = tf.io.gfile.listdir(path)
        if writable:
            probe = os.path.join(path, f".tfcompact-doctor-{os.getpid()}")
            with tf.io.gfile.GFile(probe, "w") as f:
                f.write("ok")
            tf.io.gfile.remove(probe)
        report.fact(name, f"{path} ({len(entries)} entries, readable"
                          f"{', writable' if writable else ''})")
    except tf.errors.OpError as e:
        first = str(e).strip().splitlines()[0]
        report.problem(f"{name} {path}: not {'writable' if writable else 'readable'} ({first})")


def check_data(report: Report, name: str, path: str) -> None:
    """A data directory: its manifest validates and every listed shard exists."""
    from tfcompact.errors import UserError
    from tfcompact.inputs.manifest import read_data_manifest

    try:
        manifest = read_data_manifest(path, name)
    except UserError as e:
        report.problem(str(e))
        return
    except Exception as e:  # gs:// without credentials raises TF OpErrors
        report.problem(f"{name} {path}: not readable ({str(e).strip().splitlines()[0]})")
        return
    report.fact(name, f"{path}: {manifest['num_instances']} instances in "
                      f"{len(manifest['shards'])} shard(s), seq {manifest['max_seq_length']}, "
                      f"{manifest['max_predictions_per_seq']} predictions")


def run_doctor(*, tpu: str | None = None, data: list[tuple[str, str]] = (),
               model_dir: str | None = None, expect_tensorflow: str | None = None,
               log: Log = print) -> list[str]:
    """Print the report; the problems found (empty: this machine can run the job)."""
    report = Report(log)
    check_packages(report, expect_tensorflow)
    if check_import(report):
        check_devices(report, tpu)
        for name, path in data:
            check_data(report, name, path)
        if model_dir:
            check_path(report, "train.model_dir", model_dir, writable=True)
    return report.problems
