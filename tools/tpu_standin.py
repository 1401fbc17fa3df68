#!/usr/bin/env python3
"""A stand-in TPU VM on this machine: install tfcompact exactly as `tfcompact submit` installs it
on a Cloud TPU VM, then run the README job with that environment.

    python tools/tpu_standin.py                 # install + README job + the no-TPU check
    python tools/tpu_standin.py --pytest        # ... + the test suite on the TPU stack
    python tools/tpu_standin.py --print_lock    # re-resolve tfcompact/train/tpu_requirements.txt

What it does, in a fresh virtual environment under --workdir:
  1. builds the wheel and stages it with the pinned requirements, as submit's build/copy steps;
  2. runs submit's install steps (`tfcompact.train.submit.install_steps`) one by one with bash,
     exactly as sent to the VM, except "libtpu": there is no TPU here, and the only libtpu
     builds on the package index belong to JAX and abort `import tensorflow`. Without libtpu
     the tensorflow-tpu wheel imports and runs on the CPU, so everything else is the real thing;
     the last install step is `tfcompact doctor --expect_tensorflow`;
  3. runs the README's main job (`tfcompact quickstart`: corpus -> TFRecords -> pretraining of
     cpu_smoke -> exports) on the CPU;
  4. runs submit's train command (`pretrain --config <staged yaml> --tpu local`) and checks it
     fails with the one-line "no TPU on this machine" error;
  5. with --pytest, runs the test suite in that environment (tests that need XLA on the host
     skip themselves there: the tensorflow-tpu wheel cannot JIT-compile for the CPU).
Prints one line per step with its time and a PASS/FAIL table; exits non-zero on any failure.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tfcompact.train import tpu_software as sw  # noqa: E402  (TensorFlow-free)
from tfcompact.train.submit import REMOTE_DIR, REQUIREMENTS_NAME, install_steps, wheel_name  # noqa: E402

# Upper bounds that keep the lock installable on Python 3.10 (the TPU images' Python): the next
# releases of these publish wheels for Python >= 3.11 only (found by --print_lock's check).
PY310_CAPS = ("keras<3.13", "numpy<2.3", "array_record<0.8.2", "etils<1.15", "markdown<3.11.1",
              "pillow<12.4", "pyarrow<26")
# What the lock must cover besides TensorFlow's own dependencies: tfcompact's requirements (read
# from setup.py's metadata of the installed package) and its `fast` extra (rjieba).
LOCK_EXTRAS = ("fast",)
EXCLUDED = {"tensorflow", "tensorflow-tpu", "tensorflow-text", "libtpu", "tfcompact"}


def _name(requirement: str) -> str:
    import re

    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def run_step(name: str, cmd, cwd: str, results: list, env=None, expect_fail: bool = False,
             log_path: str | None = None) -> subprocess.CompletedProcess:
    t = time.time()
    shell = isinstance(cmd, str)
    proc = subprocess.run(["bash", "-c", cmd] if shell else cmd, cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    dt = time.time() - t
    if log_path:
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(f"\n===== {name}: {cmd}\n{proc.stdout}")
    ok = (proc.returncode != 0) if expect_fail else (proc.returncode == 0)
    results.append((name, proc.returncode, dt, ok))
    print(f"[{'PASS' if ok else 'FAIL'}] {name} ({dt:.0f}s, exit {proc.returncode})", flush=True)
    if not ok:
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        print(f"       last lines:\n{tail}", flush=True)
    return proc


def standin(args: argparse.Namespace) -> int:
    work = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="tfcompact-standin-"))
    os.makedirs(work, exist_ok=True)
    stage = os.path.join(work, REMOTE_DIR)
    venv = os.path.join(work, "venv")
    log_path = os.path.join(work, "standin.log")
    python = os.path.join(venv, "bin", "python")
    results: list = []
    print(f"stand-in TPU VM in {work} (full output: {log_path})", flush=True)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)

    if os.path.isdir(venv):
        shutil.rmtree(venv)
    os.makedirs(stage, exist_ok=True)
    steps = [("build wheel (submit: build)",
              [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", stage,
               ROOT]),
             ("fresh virtual environment", [args.python, "-m", "venv", venv])]
    for name, cmd in steps:
        if run_step(name, cmd, work, results, env, log_path=log_path).returncode != 0:
            return report(results)
    shutil.copyfile(sw.REQUIREMENTS_FILE, os.path.join(stage, REQUIREMENTS_NAME))
    # cpu_smoke staged as submit stages an experiment (its data paths are the quickstart's).
    shutil.copyfile(os.path.join(ROOT, "tfcompact", "data", "cpu_smoke.yaml"),
                    os.path.join(stage, "cpu_smoke.yaml"))

    for name, cmd in install_steps(remote_dir=REMOTE_DIR, python=python, wheel=wheel_name()):
        if name == "libtpu":
            print(f"[SKIP] install: libtpu (no TPU here; on a TPU VM: {cmd})", flush=True)
            continue
        if run_step(f"install: {name}", cmd, work, results, env,
                    log_path=log_path).returncode != 0:
            return report(results)

    job = [python, "-m", "tfcompact.cli", "quickstart"]
    if args.steps:
        job += ["--steps", str(args.steps)]
    run_step("README job: tfcompact quickstart", job, work, results, env, log_path=log_path)
    summary = os.path.join(work, "quickstart_output", "model", "summary.json")
    if os.path.exists(summary):
        with open(summary, encoding="utf-8") as f:
            s = json.load(f)
        print(f"       {s['status']} at step {s['step']}: loss {s['train'].get('loss', 0):.3f}, "
              f"mlm_accuracy {s['train'].get('mlm_accuracy', 0):.3f}, eval mlm_accuracy "
              f"{s['eval'].get('mlm_accuracy', float('nan')):.3f}", flush=True)

    train = [python, "-m", "tfcompact.cli", "pretrain", "--config",
             f"{REMOTE_DIR}/cpu_smoke.yaml", "--tpu", "local"]
    proc = run_step("submit's train command with --tpu local fails clearly", train, work,
                    results, env, expect_fail=True, log_path=log_path)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    print(f"       last line: {last}", flush=True)
    if "no TPU on this machine" not in last or proc.returncode != 1:
        results[-1] = (results[-1][0], proc.returncode, results[-1][2], False)
        print("[FAIL] expected exit 1 and 'no TPU on this machine' as the last line", flush=True)

    if args.pytest:
        run_step("install: pytest (tests only)", [python, "-m", "pip", "install", "--quiet",
                                                 "pytest>=8"], work, results, env,
                 log_path=log_path)
        proc = run_step("test suite on the TPU stack",
                        [python, "-m", "pytest", os.path.join(ROOT, "tests"), "-q",
                         "-p", "no:cacheprovider", *args.pytest_args], ROOT, results,
                        env, log_path=log_path)
        lines = proc.stdout.strip().splitlines()
        print(f"       {lines[-1] if lines else ''}", flush=True)
    code = report(results)
    if not args.keep and code == 0 and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return code


def report(results: list) -> int:
    print("\nstep                                                        exit   seconds  verdict")
    for name, code, dt, ok in results:
        print(f"{name:<60}{code:>5}{dt:>10.0f}  {'PASS' if ok else 'FAIL'}")
    failed = sum(1 for r in results if not r[3])
    print(f"stand-in TPU VM: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def print_lock(args: argparse.Namespace) -> int:
    """Resolve the pinned requirements again and check every pin has a Python 3.10 wheel."""
    from importlib import metadata as md

    top = set()
    for tf_dist in (sw.TENSORFLOW_TPU, sw.TENSORFLOW_TEXT):
        report_path = os.path.join(tempfile.mkdtemp(), "r.json")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run",
                        "--ignore-installed", "--no-deps", "--report", report_path, tf_dist],
                       check=True)
        with open(report_path, encoding="utf-8") as f:
            requires = json.load(f)["install"][0]["metadata"].get("requires_dist", [])
        top.update(r for r in requires if "extra ==" not in r)
    for r in md.requires("tfcompact") or []:
        if "extra ==" not in r or any(f'extra == "{e}"' in r for e in LOCK_EXTRAS):
            top.add(r.split(";")[0].strip())
    top = sorted(r for r in top if _name(r) not in EXCLUDED)
    report_path = os.path.join(tempfile.mkdtemp(), "lock.json")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run",
                    "--ignore-installed", "--report", report_path, *top, *PY310_CAPS], check=True)
    with open(report_path, encoding="utf-8") as f:
        installed = json.load(f)["install"]
    pins = sorted(f"{i['metadata']['name'].lower()}=={i['metadata']['version']}"
                  for i in installed if _name(i["metadata"]["name"]) not in EXCLUDED)
    wheels = [f"{i['metadata']['name'].lower()}=={i['metadata']['version']}" for i in installed
              if i["download_info"]["url"].endswith(".whl")
              and _name(i["metadata"]["name"]) not in EXCLUDED]
    bad = []
    for pin in wheels:
        for _ in range(2):  # one retry: a registry hiccup is not a missing wheel
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run",
                 "--ignore-installed", "--no-deps", "--python-version", "3.10",
                 "--implementation", "cp", "--only-binary=:all:", "--target", tempfile.mkdtemp(),
                 *[f"--platform={p}" for p in ("manylinux2014_x86_64", "manylinux_2_17_x86_64",
                                               "manylinux_2_27_x86_64", "manylinux_2_28_x86_64",
                                               "manylinux_2_34_x86_64", "linux_x86_64")], pin],
                capture_output=True, text=True)
            if proc.returncode == 0:
                break
        if proc.returncode != 0:
            errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
            bad.append(f"{pin} ({errors[-1] if errors else 'pip exit ' + str(proc.returncode)})")
    print("\n".join(pins))
    if bad:
        print(f"# no Python 3.10 wheel for: {', '.join(bad)} (add an upper bound to PY310_CAPS)",
              file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where the venv and job outputs go (default: a new "
                                          "temporary directory, removed after a clean pass)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for the virtual environment (the VM has python3)")
    parser.add_argument("--steps", type=int, default=None,
                        help="quickstart training steps (default: the README job's)")
    parser.add_argument("--pytest", action="store_true",
                        help="also run the test suite in the stand-in environment")
    parser.add_argument("--pytest_args", nargs=argparse.REMAINDER, default=[],
                        help="extra pytest arguments (after everything else)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--print_lock", action="store_true",
                        help="print a freshly resolved tpu_requirements.txt body and exit")
    args = parser.parse_args(argv)
    if args.print_lock:
        return print_lock(args)
    return standin(args)


if __name__ == "__main__":
    sys.exit(main())
