"""Shared test set-up: run from a source checkout or an installed package alike."""
import os
import pathlib
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The XLA tests ask whether steps compile (settled before LLVM runs); the CPU backend at -O0
# without LLVM's expensive passes compiles them about a third faster. XLA reads this once per
# process, so it is set here, before anything compiles; a value set by the user is kept.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                                   "--xla_llvm_disable_expensive_passes=true")

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _tensorflow_tpu_without_cpu_build() -> bool:
    from importlib import metadata

    def has(dist):
        try:
            metadata.version(dist)
            return True
        except metadata.PackageNotFoundError:
            return False

    return has("tensorflow-tpu") and not has("tensorflow")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "host_xla: compiles with XLA for the CPU (jit_compile=True); the "
                   "tensorflow-tpu wheel cannot, so these skip where it is the TensorFlow")


def pytest_collection_modifyitems(config, items):
    """On the stand-in TPU stack (tools/tpu_standin.py --pytest) the tensorflow-tpu wheel has no
    XLA backend for the host ("could not find registered transfer manager for platform Host"):
    host-XLA tests run with the regular wheel (CI's main run) and are skipped there, by name."""
    if not _tensorflow_tpu_without_cpu_build():
        return
    import pytest

    reason = "tensorflow-tpu wheel: no XLA backend for the host CPU (runs with tensorflow)"
    for item in items:
        if "host_xla" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
