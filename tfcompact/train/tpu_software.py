"""The software a Cloud TPU VM runs for tfcompact, in one place: the VM image for each TPU
generation, the TensorFlow TPU build and the libtpu made for it, and the pinned packages that
are installed beside them (`tpu_requirements.txt` next to this file).

Sources:
- VM images: Cloud TPU documentation, "TPU software versions" (cloud.google.com/tpu/docs/runtimes):
  the framework-neutral images are `tpu-ubuntu2204-base` for v4 and older, `v2-alpha-tpuv5-lite`
  for v5e, `v2-alpha-tpuv5` for v5p and `v2-alpha-tpuv6e` for v6e (Trillium). The TensorFlow
  images (`tpu-vm-tf-X.Y.Z[-pod]-pjrt`) carry a preinstalled TensorFlow older than the TPU line
  we run, so every generation uses its base image and the job installs TensorFlow itself.
  All of these images are Ubuntu 22.04 with Python 3.10.
- TensorFlow: `tensorflow-tpu` 2.20.0 is the newest TensorFlow with a TPU build (there is no
  2.21 TPU build). Its metadata asks for `libtpu~=0.0.14`; the libtpu built for it is 0.0.14,
  published on Cloud TPU's TensorFlow libtpu index (the find-links URL below), not on the
  package index, whose newer libtpu releases belong to JAX and abort `import tensorflow`
  ("ConfigureDistributedTpuOp_DoWork not available in this library").
- tensorflow-text: the release matching TensorFlow's minor version (2.20.x). It declares a
  dependency on `tensorflow` (the CPU build), so it is installed without dependencies on TPU
  VMs, next to `tensorflow-tpu`, which provides the same `tensorflow` module.

This module imports nothing heavy: `submit` and `doctor` use it before TensorFlow loads.
"""
from __future__ import annotations

import dataclasses
import os
import re

# The TensorFlow line that has TPU builds, and the pieces that must match it.
TENSORFLOW_TPU = "tensorflow-tpu==2.20.0"
TENSORFLOW_TEXT = "tensorflow-text==2.20.1"
LIBTPU = "libtpu==0.0.14"
LIBTPU_FIND_LINKS = "https://storage.googleapis.com/libtpu-tf-releases/index.html"
TPU_TENSORFLOW_VERSION = TENSORFLOW_TPU.split("==")[1]
# Python versions that tensorflow-tpu 2.20.0 ships wheels for (cp39..cp313) and tfcompact
# supports (>= 3.10); the TPU images above have 3.10.
TPU_PYTHON_VERSIONS = ((3, 10), (3, 11), (3, 12), (3, 13))

# Every other runtime package, pinned to the versions the stand-in TPU VM check
# (tools/tpu_standin.py) installed and ran; one requirement per line, comments allowed.
REQUIREMENTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "tpu_requirements.txt")


@dataclasses.dataclass(frozen=True)
class TpuGeneration:
    """One TPU generation: how its accelerator types are named and which VM image it boots."""

    family: str            # accelerator-type prefix: v3 in v3-8, v5litepod in v5litepod-8
    runtime_version: str   # `gcloud compute tpus tpu-vm create --version`
    counts: str            # what the number in the accelerator type counts: "cores" | "chips"
    cores_per_chip: int    # TensorCores per chip (a replica is a chip on v4/v5p, a core on v2/v3)
    chips_per_host: int
    hbm_gib_per_replica: int  # high-bandwidth memory one replica (core or chip) owns


# Accelerator-type naming, chips per host and HBM from Cloud TPU's "TPU versions" pages
# (v2/v3/v4/v5p types count TensorCores, v5e/v6e types count chips; HBM per chip: v2 16 GiB,
# v3 32 GiB (two cores each), v4 32 GiB, v5p 95 GiB, v5e 16 GiB, v6e 32 GiB).
GENERATIONS: dict[str, TpuGeneration] = {g.family: g for g in (
    TpuGeneration("v2", "tpu-ubuntu2204-base", "cores", 2, 4, 8),
    TpuGeneration("v3", "tpu-ubuntu2204-base", "cores", 2, 4, 16),
    TpuGeneration("v4", "tpu-ubuntu2204-base", "cores", 2, 4, 32),
    TpuGeneration("v5p", "v2-alpha-tpuv5", "cores", 2, 4, 95),
    TpuGeneration("v5litepod", "v2-alpha-tpuv5-lite", "chips", 1, 8, 16),
    TpuGeneration("v6e", "v2-alpha-tpuv6e", "chips", 1, 8, 32),
)}

_ACCELERATOR = re.compile(r"^(v2|v3|v4|v5p|v5litepod|v6e)-(\d+)$")


def parse_accelerator_type(accelerator_type: str) -> tuple[TpuGeneration, int]:
    """(generation, the number in the name) of e.g. v3-8, v4-32, v5litepod-8, v6e-16."""
    from tfcompact.errors import UserError

    m = _ACCELERATOR.match(accelerator_type or "")
    if not m or int(m.group(2)) < 1:
        raise UserError(f"accelerator type {accelerator_type!r}: expected e.g. v3-8, v4-32, "
                        f"v5litepod-8 (FAMILY-N with FAMILY one of {', '.join(GENERATIONS)})")
    return GENERATIONS[m.group(1)], int(m.group(2))


def runtime_version_for(accelerator_type: str) -> str:
    """The VM image for an accelerator type (see the module docstring for the source)."""
    return parse_accelerator_type(accelerator_type)[0].runtime_version


def tpu_topology(accelerator_type: str) -> tuple[int, int]:
    """(replicas, hosts) of an accelerator type.

    v2/v3: one replica per TensorCore, 8 cores (4 chips) per host. v4/v5p: the number counts
    TensorCores but the two cores of a chip act as one device (megacore), so one replica per
    chip, 4 chips per host. v5e/v6e: the number counts single-core chips, up to 8 per host."""
    gen, n = parse_accelerator_type(accelerator_type)
    if gen.counts == "cores":
        chips = max(1, n // gen.cores_per_chip)
        replicas = n if gen.family in ("v2", "v3") else chips
    else:
        chips = n
        replicas = n
    return replicas, max(1, -(-chips // gen.chips_per_host))


def pinned_requirements() -> list[str]:
    """The lines of tpu_requirements.txt that are requirements (no comments or blanks)."""
    with open(REQUIREMENTS_FILE, encoding="utf-8") as f:
        lines = [line.split("#", 1)[0].strip() for line in f]
    return [line for line in lines if line]
