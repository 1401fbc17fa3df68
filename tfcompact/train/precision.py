"""Which numeric precision a run trains in, and why: `train.precision` against the hardware.

`train.precision` is one of
- "float32": everything in float32;
- "mixed_bfloat16": Keras' mixed policy: matmuls and activations in bfloat16, the variables
  (master weights) and the optimizer's slots in float32; tfcompact keeps LayerNorm statistics
  (`layers.norms`), the attention softmax (`layers.attention`) and every loss
  (`objectives.pretraining`) in float32 under it;
- "auto": mixed_bfloat16 where the hardware multiplies bfloat16 natively (every TPU; NVIDIA
  GPUs of compute capability 8.0 and later; CPUs with AVX512-BF16 or AMX-BF16, which oneDNN
  uses for TensorFlow's matmuls), float32 elsewhere.

bfloat16 on a CPU without those instructions is emulated and slower than float32: an explicit
mixed_bfloat16 is honoured there (TPU configs run on laptops for a smoke test), with a warning.
"""
from __future__ import annotations

import dataclasses
import platform

import tensorflow as tf

AUTO, FLOAT32, MIXED_BF16 = "auto", "float32", "mixed_bfloat16"  # experiment.PRECISIONS

# /proc/cpuinfo flags of the x86 instructions that multiply bfloat16 (Linux kernel names).
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclasses.dataclass(frozen=True)
class Precision:
    """The policy a run trains under and the one-line reason, for the log and summary.json."""

    policy: str
    requested: str
    reason: str
    warning: str | None = None

    def describe(self) -> str:
        """The log line: what runs, what stays float32, and why."""
        if self.policy == MIXED_BF16:
            what = ("mixed_bfloat16 (bfloat16 matmuls and activations; float32 master weights, "
                    "optimizer slots, LayerNorm, softmax and losses)")
        else:
            what = "float32"
        return f"precision {what}: train.precision {self.requested}; {self.reason}"


def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags (Linux), None where they cannot be read."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        return None
    return frozenset()


def cpu_bf16(flags: frozenset[str] | None) -> tuple[bool, str]:
    """(native bfloat16?, why) for a CPU with these flags."""
    if flags is None:
        return False, f"the CPU's features are unknown here ({platform.system()})"
    found = [f for f in CPU_BF16_FLAGS if f in flags]
    if found:
        return True, f"this CPU has {' and '.join(f.upper().replace('_', '-') for f in found)}"
    return False, "this CPU has neither AVX512-BF16 nor AMX-BF16 (bfloat16 would be emulated)"


def gpu_bf16(device) -> tuple[bool, str]:
    """(native bfloat16?, why) for a physical GPU: compute capability 8.0 or later."""
    details = tf.config.experimental.get_device_details(device)
    name = details.get("device_name", "GPU")
    capability = details.get("compute_capability")
    if capability is None:
        return False, f"{name}: compute capability unknown"
    if tuple(capability) >= (8, 0):
        return True, f"{name} (compute capability {capability[0]}.{capability[1]}) has bfloat16"
    return False, (f"{name} (compute capability {capability[0]}.{capability[1]}) has no bfloat16 "
                   f"matmul units (8.0 or later needed)")


def hardware_bf16(on_tpu: bool, cpuinfo_path: str = "/proc/cpuinfo") -> tuple[bool, str]:
    """(does the hardware this process trains on multiply bfloat16 natively?, why)."""
    if on_tpu:
        return True, "TPU matrix units multiply in bfloat16"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return gpu_bf16(gpus[0])
    return cpu_bf16(cpu_flags(cpuinfo_path))


def resolve_precision(requested: str, on_tpu: bool,
                      cpuinfo_path: str = "/proc/cpuinfo") -> Precision:
    """The policy for `train.precision` = `requested` on this hardware, with the reason."""
    native, why = hardware_bf16(on_tpu, cpuinfo_path)
    if requested == AUTO:
        return Precision(MIXED_BF16 if native else FLOAT32, requested, why)
    if requested == MIXED_BF16 and not native:
        return Precision(MIXED_BF16, requested, why,
                         warning=f"train.precision mixed_bfloat16 on hardware without native "
                                 f"bfloat16: {why}; expect it slower than float32")
    if requested == FLOAT32 and native:
        return Precision(FLOAT32, requested, f"{why}: set train.precision auto or "
                                             f"mixed_bfloat16 to train faster")
    return Precision(requested, requested, why)
