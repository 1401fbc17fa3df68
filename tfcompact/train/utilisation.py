"""Model FLOPs per training step and the peak FLOP/s of a device, for utilisation logging.

utilisation = (train_flops_per_step x steps / seconds) / (peak per device x devices).

What is counted ("model FLOPs", the convention of the PaLM paper, Chowdhery et al. 2022,
appendix B): the matrix multiplications of the model as tfcompact builds it, 2·m·n·k for an
[m, k]·[k, n] product: every dense layer (Q/K/V, attention output, FFN, bottlenecks, pooler,
embedding projections), the attention products QKᵀ and A·V, and the heads (MLM transform and
vocabulary projection at the masked positions only, NSP/SOP on the pooled [CLS], ELECTRA's
RTD head on every position). Not counted: embedding lookups and gathers, softmax, LayerNorm,
activations, bias adds, residual adds, dropout, the losses and the optimizer update (all
elementwise or memory-bound), and no recomputation. A training step is 3 x the forward pass
(the backward pass costs twice the forward: one product for the input gradient, one for the
weight gradient), as PaLM's 6N-per-token count assumes.

The peaks are dense matrix-multiply FLOP/s per device as TensorFlow sees a device (a TPU v2/v3
core, a v4/v5p chip, a v5e/v6e chip, one GPU), from the makers' documents cited at the table;
a CPU is measured once by a short matmul probe and the figure cached per machine.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import time
from typing import Any, Optional

from tfcompact.architectures import get_architecture
from tfcompact.configs import AlbertConfig, Config, ElectraConfig, MobileBertConfig
from tfcompact.errors import ConfigError
from tfcompact.text import user_cache

# ---------------------------------------------------------------------------------------------
# Model FLOPs
# ---------------------------------------------------------------------------------------------


def _mm(m: float, n: float, k: float) -> float:
    """FLOPs of an [m, k]·[k, n] product (one multiply and one add per term)."""
    return 2.0 * m * n * k


def _attention(batch: int, seq: int, qk_in: int, v_in: int, width: int) -> float:
    """Self-attention at `width` = heads·head size: Q, K from qk_in, V from v_in, then QKᵀ and
    A·V ([B·N, S, d]·[B·N, d, S] and back: 2·B·S·S·width each)."""
    tokens = batch * seq
    return (2 * _mm(tokens, width, qk_in) + _mm(tokens, width, v_in)
            + 2 * _mm(batch * seq, seq, width))


def _bert_block(batch: int, seq: int, hidden: int, intermediate: int) -> float:
    """A BERT / ALBERT / ELECTRA block: attention, output projection H→H, FFN H→I→H."""
    tokens = batch * seq
    return (_attention(batch, seq, hidden, hidden, hidden) + _mm(tokens, hidden, hidden)
            + 2 * _mm(tokens, intermediate, hidden))


def _mobilebert_block(c: MobileBertConfig, batch: int, seq: int) -> float:
    """A MobileBERT block: bottleneck input H→B (and the shared key/query bottleneck H→B),
    attention at width B, output B→B, F feed-forward nets B→I→B, output bottleneck B→H."""
    tokens, hidden, inner = batch * seq, c.hidden_size, c.true_hidden_size
    bottleneck_attention = c.use_bottleneck and c.use_bottleneck_attention
    shared_qk = c.use_bottleneck and c.key_query_shared_bottleneck and not bottleneck_attention
    flops = 0.0
    if c.use_bottleneck:
        flops += _mm(tokens, inner, hidden) * (2 if shared_qk else 1) + _mm(tokens, hidden, inner)
    if bottleneck_attention:
        qk_in, v_in = inner, inner
    elif shared_qk:
        qk_in, v_in = inner, hidden
    else:
        qk_in, v_in = hidden, hidden
    flops += _attention(batch, seq, qk_in, v_in, inner) + _mm(tokens, inner, inner)
    return flops + c.num_feedforward_networks * 2 * _mm(tokens, c.intermediate_size, inner)


def _mlm_head(predictions: int, width_in: int, transform: int, vocab: int) -> float:
    """Masked-LM head at the gathered positions: transform width_in→transform, tied decoder."""
    return _mm(predictions, transform, width_in) + _mm(predictions, vocab, transform)


def _sentence_heads(c: Config, batch: int, pooler: bool, sentence_head: str) -> float:
    """The tanh pooler on [CLS] (H→H) and the two-way NSP/SOP classifier (H→2)."""
    flops = _mm(batch, c.hidden_size, c.hidden_size) if pooler else 0.0
    return flops + (_mm(batch, 2, c.hidden_size) if sentence_head != "none" else 0.0)


def _bert_like(c: Config, batch: int, seq: int, preds: int, sentence_head: str) -> float:
    """BERT and TinyBERT: L blocks, pooler, MLM head (transform H→H, decoder H→V), NSP."""
    body = c.num_hidden_layers * _bert_block(batch, seq, c.hidden_size, c.intermediate_size)
    return (body + _mlm_head(batch * preds, c.hidden_size, c.hidden_size, c.vocab_size)
            + _sentence_heads(c, batch, True, sentence_head))


def _albert(c: AlbertConfig, batch: int, seq: int, preds: int, sentence_head: str) -> float:
    """ALBERT: the E→H projection, L layers of inner_group_num shared blocks each (every
    application counts), pooler, MLM head and SOP. Google layout: MLM transform H→E, decoder
    E→V; brightmart: word_embeddings_2 E→H on every token, transform H→H, decoder H→E→V."""
    tokens, e, h, v = batch * seq, c.embedding_size, c.hidden_size, c.vocab_size
    blocks = c.num_hidden_layers * c.inner_group_num
    flops = blocks * _bert_block(batch, seq, h, c.intermediate_size)
    p = batch * preds
    if c.layout == "brightmart":
        flops += _mm(tokens, h, e) + _mm(p, h, h) + _mm(p, e, h) + _mm(p, v, e)
    else:
        flops += (_mm(tokens, h, e) if e != h else 0.0) + _mlm_head(p, h, e, v)
    return flops + _sentence_heads(c, batch, True, sentence_head)


def _electra_body(c: ElectraConfig, batch: int, seq: int) -> float:
    """An ELECTRA body on every token: embeddings_project E→H (if E≠H), then L blocks."""
    tokens, e, h = batch * seq, c.embedding_size, c.hidden_size
    project = _mm(tokens, h, e) if e != h else 0.0
    return project + c.num_hidden_layers * _bert_block(batch, seq, h, c.intermediate_size)


def _electra(c: ElectraConfig, batch: int, seq: int, preds: int, sentence_head: str) -> float:
    """ELECTRA: the generator body on every token and its MLM head at the masked positions
    (transform H_gen→E, decoder E→V), then the discriminator body on every token and its RTD
    head (H→H, H→1 per token). No pooler, no sentence head."""
    g = c.generator_config()
    tokens = batch * seq
    generator = _electra_body(g, batch, seq) + _mlm_head(
        batch * preds, g.hidden_size, c.embedding_size, c.vocab_size)
    rtd_head = _mm(tokens, c.hidden_size, c.hidden_size) + _mm(tokens, 1, c.hidden_size)
    return generator + _electra_body(c, batch, seq) + rtd_head


def _mobilebert(c: MobileBertConfig, batch: int, seq: int, preds: int, sentence_head: str) -> float:
    """MobileBERT: embedding_transformation (3E or E → H, when trigram input or E≠H), L
    bottleneck blocks, the pooler only with classifier_activation, MLM head (transform H→H,
    decoder H→V as concat(word_embeddings, extra_output_weights)), NSP."""
    tokens, e, h = batch * seq, c.embedding_size, c.hidden_size
    flops = 0.0
    if c.trigram_input or e != h:
        flops += _mm(tokens, h, e * (3 if c.trigram_input else 1))
    flops += c.num_hidden_layers * _mobilebert_block(c, batch, seq)
    flops += _mlm_head(batch * preds, h, h, c.vocab_size)
    return flops + _sentence_heads(c, batch, c.classifier_activation, sentence_head)


def forward_flops(arch: str, config: Config, *, batch: int, seq_length: int,
                  num_predictions: int, sentence_head: Optional[str] = None) -> float:
    """FLOPs of one forward pass of `arch`'s pretraining model (see the module docstring for
    what counts) for `batch` sequences of `seq_length` tokens with `num_predictions` masked
    positions each. `sentence_head` ("nsp", "sop", "none") defaults to the architecture's."""
    record = get_architecture(arch, "forward_flops")
    if not isinstance(config, record.config_class):
        raise ConfigError(f"forward_flops: architecture {arch!r} needs a "
                          f"{record.config_class.__name__}, got {type(config).__name__}")
    for name, value in (("batch", batch), ("seq_length", seq_length),
                        ("num_predictions", num_predictions)):
        if not isinstance(value, int) or value < (0 if name == "num_predictions" else 1):
            raise ConfigError(f"forward_flops: {name} must be a positive integer, got {value!r}")
    head = sentence_head or record.sentence_head
    if isinstance(config, ElectraConfig):
        count = _electra
    elif isinstance(config, MobileBertConfig):
        count = _mobilebert
    elif isinstance(config, AlbertConfig):
        count = _albert
    else:
        count = _bert_like
    return float(count(config, batch, seq_length, num_predictions, head))


def train_flops_per_step(arch: str, config: Config, *, batch: int, seq_length: int,
                         num_predictions: int, sentence_head: Optional[str] = None) -> float:
    """Model FLOPs of one training step: 3 x the forward pass (backward = 2 x forward).
    `batch` is the global batch for a global figure, the per-replica batch for one replica."""
    return 3.0 * forward_flops(arch, config, batch=batch, seq_length=seq_length,
                               num_predictions=num_predictions, sentence_head=sentence_head)


def distillation_flops_per_step(arch: str, config: Config, teacher_arch: str,
                                teacher_config: Config, *, batch: int, seq_length: int,
                                num_predictions: int, sentence_head: Optional[str] = None,
                                teacher_sentence_head: Optional[str] = None) -> float:
    """A distillation step: the student trains (3 x its forward), the frozen teacher only
    runs forward (1 x), both on the same batch."""
    sizes = dict(batch=batch, seq_length=seq_length, num_predictions=num_predictions)
    student = train_flops_per_step(arch, config, sentence_head=sentence_head, **sizes)
    return student + forward_flops(teacher_arch, teacher_config,
                                   sentence_head=teacher_sentence_head, **sizes)


# ---------------------------------------------------------------------------------------------
# Peak FLOP/s per device
# ---------------------------------------------------------------------------------------------

_T = 1e12
# Dense (no structured sparsity) matrix-multiply peak per device as TensorFlow sees it.
# Keys of each entry: "bf16", "fp16", "tf32" (float32 matmuls on tensor cores, which TensorFlow
# does by default on Ampere and newer GPUs) and "fp32".
# TPUs, from the Cloud TPU documentation "TPU v2/v3/v4/v5e/v5p/v6e" pages (peak compute per
# chip, bf16): v2 45 TFLOPS and v3 123 TFLOPS per chip of two TensorCores, and TensorFlow
# shows each core as a device, so half of that per device; v4 275 and v5p 459 TFLOPS per chip
# of two TensorCores that act as one device (megacore: one device, one replica, per chip, as
# `tpu_software.tpu_topology` counts them; JAX's TPU chip table lists megacore for v4 and v5p);
# v5e 197 and v6e 918 TFLOPS per chip of one TensorCore. fp32 = bf16: "by default, TPUs
# perform matrix multiplication operations with bfloat16 values and accumulations with IEEE
# float32" (Cloud TPU documentation, "Improve your model's performance with bfloat16").
# GPUs, from NVIDIA's data sheets (tensor-core figures without sparsity; V100/T4 have no bf16,
# their fp16 figure is the tensor-core rate with fp32 accumulation): V100 SXM2 / PCIe, T4, A10,
# A100 (SXM and PCIe: same compute), L4, H100 SXM5 / PCIe; GeForce RTX 3090 and 4090 from the
# NVIDIA Ampere GA102 and Ada Lovelace whitepapers (fp16/bf16 with fp32 accumulation).
PEAK_FLOPS: dict[str, dict[str, float]] = {
    "TPU v2": {"bf16": 22.5 * _T, "fp32": 22.5 * _T},
    "TPU v3": {"bf16": 61.5 * _T, "fp32": 61.5 * _T},
    "TPU v4": {"bf16": 275 * _T, "fp32": 275 * _T},
    "TPU v5e": {"bf16": 197 * _T, "fp32": 197 * _T},
    "TPU v5p": {"bf16": 459 * _T, "fp32": 459 * _T},
    "TPU v6e": {"bf16": 918 * _T, "fp32": 918 * _T},
    "V100 SXM2": {"fp16": 125 * _T, "fp32": 15.7 * _T},
    "V100 PCIe": {"fp16": 112 * _T, "fp32": 14 * _T},
    "T4": {"fp16": 65 * _T, "fp32": 8.1 * _T},
    "A10": {"bf16": 125 * _T, "fp16": 125 * _T, "tf32": 62.5 * _T, "fp32": 31.2 * _T},
    "A100": {"bf16": 312 * _T, "fp16": 312 * _T, "tf32": 156 * _T, "fp32": 19.5 * _T},
    "L4": {"bf16": 121 * _T, "fp16": 121 * _T, "tf32": 60 * _T, "fp32": 30.3 * _T},
    "H100 SXM": {"bf16": 989 * _T, "fp16": 989 * _T, "tf32": 494 * _T, "fp32": 67 * _T},
    "H100 PCIe": {"bf16": 756 * _T, "fp16": 756 * _T, "tf32": 378 * _T, "fp32": 51 * _T},
    "RTX 3090": {"bf16": 71 * _T, "fp16": 71 * _T, "tf32": 35.6 * _T, "fp32": 35.6 * _T},
    "RTX 4090": {"bf16": 165.2 * _T, "fp16": 165.2 * _T, "tf32": 82.6 * _T, "fp32": 82.6 * _T},
}

# TensorFlow's GPU names (get_device_details' "device_name", e.g. "NVIDIA A100-SXM4-40GB",
# "Tesla V100-PCIE-16GB") → table key; the first match wins, so the specific ones come first.
_GPU_NAMES = (
    (r"H100.*PCIE", "H100 PCIe"), (r"H100", "H100 SXM"),
    (r"V100.*PCIE", "V100 PCIe"), (r"V100", "V100 SXM2"),
    (r"A100", "A100"), (r"\bA10\b", "A10"), (r"\bL4\b", "L4"), (r"\bT4\b", "T4"),
    (r"RTX 3090", "RTX 3090"), (r"RTX 4090", "RTX 4090"),
)
# Accelerator-type families (v3-8, v5litepod-16...) and TPU device names → table key.
_TPU_FAMILIES = {"v2": "TPU v2", "v3": "TPU v3", "v4": "TPU v4", "v5litepod": "TPU v5e",
                 "v5e": "TPU v5e", "v5lite": "TPU v5e", "v5p": "TPU v5p", "v6e": "TPU v6e",
                 "v6lite": "TPU v6e"}
_PRECISIONS = {"float32": "fp32", "fp32": "fp32", "bfloat16": "bf16", "bf16": "bf16",
               "mixed_bfloat16": "bf16", "float16": "fp16", "fp16": "fp16",
               "mixed_float16": "fp16"}
_PROBE_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def table_key(device_kind: str) -> Optional[str]:
    """The PEAK_FLOPS key of a device kind ("TPU v4", "NVIDIA A100-SXM4-40GB", "Tesla T4"),
    or None when the table does not know it."""
    kind = (device_kind or "").strip()
    if kind in PEAK_FLOPS:
        return kind
    if kind.upper().startswith("TPU"):  # "TPU v4", "TPU v5 lite", "TPU_v3"
        return _TPU_FAMILIES.get(re.sub(r"[\s_-]", "", kind[3:]).lower())
    for pattern, key in _GPU_NAMES:
        if re.search(pattern, kind, re.IGNORECASE):
            return key
    return None


def _precision_key(precision: str) -> str:
    key = _PRECISIONS.get(precision)
    if key is None:
        raise ConfigError(f"precision: expected one of {', '.join(_PRECISIONS)}, got {precision!r}")
    return key


def _tf32_enabled() -> bool:
    import tensorflow as tf

    return bool(tf.config.experimental.tensor_float_32_execution_enabled())


def device_peak(device_kind: str, precision: str) -> tuple[Optional[float], str]:
    """(peak dense matmul FLOP/s of one device, where the figure comes from), or (None, why
    not). `precision` is a training precision ("float32", "mixed_bfloat16") or a dtype name.
    "CPU" is measured by `cpu_probe` (once per machine, cached); float32 on an Ampere or newer
    GPU uses the TF32 tensor-core peak when TensorFlow's TF32 execution is on (its default).
    The CPU figure is the whole machine's (every core), so count one device per host even when
    the CPU is split into several logical replicas (`cpu_replicas`)."""
    p = _precision_key(precision)
    if (device_kind or "").upper() == "CPU":
        return cpu_probe(_PROBE_DTYPES[p])
    key = table_key(device_kind)
    if key is None:
        return None, (f"device {device_kind!r} is not in the peak table "
                      f"({', '.join(PEAK_FLOPS)})")
    entry = PEAK_FLOPS[key]
    if p == "fp32" and "tf32" in entry and _tf32_enabled():
        return entry["tf32"], f"table: {key} tf32 (float32 matmuls on tensor cores)"
    if p not in entry:
        return None, f"{key} has no {p} matrix units in the peak table"
    return entry[p], f"table: {key} {p}"


# ---------------------------------------------------------------------------------------------
# CPU probe
# ---------------------------------------------------------------------------------------------

CPU_CACHE_NAME = "cpu_peak_flops.json"
_PROBE_SIZES = (2048, 1024, 512)
_PROBE_MIN_REPS, _PROBE_MAX_REPS = 3, 10
_PROBE_BUDGET_S = 1.5  # per dtype; float32 and bfloat16 together stay under ~5 s


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_probe_key() -> str:
    """This machine's cache key: CPU model, usable cores and TensorFlow version."""
    import tensorflow as tf

    return f"{_cpu_model()} | {_cpu_count()} cores | tensorflow {tf.__version__}"


def _time_matmul(n: int, dtype: str, reps: int) -> float:
    """Best seconds of `reps` [n, n]·[n, n] products in `dtype` (eager; TensorFlow's CPU
    kernels use every core)."""
    import tensorflow as tf

    a = tf.random.stateless_uniform((n, n), seed=(1, 2), dtype=tf.float32)
    a = tf.cast(a, dtype)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        c = tf.linalg.matmul(a, a)
        _ = c[0, 0].numpy()  # the product is finished when its first value is read
        best = min(best, time.perf_counter() - start)
    return best


def measure_cpu_peak(dtype: str = "float32", budget_s: float = _PROBE_BUDGET_S) -> tuple[float, str]:
    """(best FLOP/s of square matmuls in `dtype`, how it was measured). The largest size of
    2048, 1024, 512 whose product is expected (from a 512³ warm-up) to take under budget/3
    seconds is timed as often as the budget allows (3 to 10 times) and the fastest kept: on a
    shared machine the fastest repetition is the one least slowed by the other jobs."""
    small = _PROBE_SIZES[-1]
    _time_matmul(small, dtype, 1)  # warm-up: kernel selection, thread pool start
    t_small = max(_time_matmul(small, dtype, 1), 1e-6)
    n, expected = small, t_small
    for size in _PROBE_SIZES:
        if t_small * (size / small) ** 3 <= budget_s / _PROBE_MIN_REPS:
            n, expected = size, t_small * (size / small) ** 3
            break
    reps = max(_PROBE_MIN_REPS, min(_PROBE_MAX_REPS, int(budget_s / expected)))
    seconds = _time_matmul(n, dtype, reps)
    return _mm(n, n, n) / seconds, f"{dtype} matmul {n}^3, best of {reps}"


def _read_cache() -> dict:
    data = user_cache.read_private(CPU_CACHE_NAME)
    if data is None:
        return {}
    try:
        table = json.loads(data.decode("utf-8"))
        if isinstance(table, dict):
            return table
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    user_cache.warn(f"cache {user_cache.cache_path(CPU_CACHE_NAME)} is damaged; measuring again")
    return {}


def cpu_probe(dtype: str = "float32") -> tuple[Optional[float], str]:
    """This CPU's matmul FLOP/s in `dtype`: from the user cache when this machine (CPU model,
    cores, TensorFlow version) was measured before, else measured now (~1-2 s) and cached."""
    key, path = cpu_probe_key(), user_cache.cache_path(CPU_CACHE_NAME)
    table = _read_cache()
    entry: Any = table.get(key, {}).get(dtype) if isinstance(table.get(key), dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("flops"), (int, float)) \
            and entry["flops"] > 0:
        return float(entry["flops"]), f"probe: CPU {entry.get('how', dtype)}, cached in {path}"
    try:
        flops, how = measure_cpu_peak(dtype)
    except Exception as e:  # e.g. no CPU kernel for this dtype in this TensorFlow build
        first_line = (str(e).splitlines() or [""])[0]
        return None, f"CPU {dtype} matmul probe failed: {type(e).__name__}: {first_line}"
    machine = table.get(key) if isinstance(table.get(key), dict) else {}
    table[key] = {**machine, dtype: {"flops": flops, "how": how}}
    user_cache.write_private(CPU_CACHE_NAME, (json.dumps(table, indent=1) + "\n").encode("utf-8"))
    return flops, f"probe: CPU {how}, measured now, cached in {path}"


# ---------------------------------------------------------------------------------------------
# Which device, and the ratio
# ---------------------------------------------------------------------------------------------

_METADATA_URL = ("http://metadata.google.internal/computeMetadata/v1/instance/attributes/"
                 "accelerator-type")


def _tpu_accelerator_type() -> Optional[str]:
    """The Cloud TPU VM's accelerator type ("v4-8"): $TPU_ACCELERATOR_TYPE, else the VM's
    metadata attribute `accelerator-type` (what libtpu itself reads), else None."""
    value = os.environ.get("TPU_ACCELERATOR_TYPE")
    if value:
        return value
    import urllib.request

    request = urllib.request.Request(_METADATA_URL, headers={"Metadata-Flavor": "Google"})
    try:
        with urllib.request.urlopen(request, timeout=1.0) as response:  # noqa: S310 (fixed URL)
            return response.read(64).decode("ascii", "replace").strip() or None
    except (OSError, ValueError):
        return None


def tpu_kind(accelerator_type: Optional[str]) -> str:
    """"TPU v4" from an accelerator type such as "v4-8" or "v5litepod-16"; "TPU" if unknown."""
    family = (accelerator_type or "").strip().lower().split("-")[0]
    return _TPU_FAMILIES.get(family, "TPU")


def _strategy_devices(strategy: Any) -> tuple[str, ...]:
    try:
        return tuple(strategy.extended.worker_devices)
    except (AttributeError, RuntimeError, NotImplementedError):
        return ()


def detect_device_kind(strategy: Any = None, accelerator_type: Optional[str] = None) -> str:
    """The kind of device one replica of `strategy` runs on: "TPU v3" (TPU: from
    `accelerator_type` such as the experiment's "v3-8", else the TPU VM's own accelerator type;
    "TPU" when unknown), the GPU's name from tf.config.experimental.get_device_details, or
    "CPU". TensorFlow exposes no TPU generation itself, hence the accelerator type."""
    import tensorflow as tf

    if strategy is not None and isinstance(strategy, tf.distribute.TPUStrategy):
        return tpu_kind(accelerator_type or _tpu_accelerator_type())
    devices = _strategy_devices(strategy) if strategy is not None else ()
    gpus = tf.config.list_physical_devices("GPU")
    uses_gpu = any("GPU" in d.upper() for d in devices) if devices else bool(gpus)
    if uses_gpu and gpus:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name")
        return str(name) if name else "GPU"
    return "CPU"


def utilisation(flops_per_step: float, steps: int, seconds: float, peak_per_device: float,
                num_devices: int) -> float:
    """Achieved model FLOP/s over the peak of all devices: flops_per_step·steps / seconds /
    (peak_per_device·num_devices). `flops_per_step` is the global step's (global batch);
    `num_devices` the replicas (TPU cores/chips, GPUs), or the hosts for CPU peaks."""
    if seconds <= 0 or peak_per_device <= 0 or num_devices < 1:
        raise ValueError(f"utilisation needs seconds > 0, a positive peak and at least one "
                         f"device; got seconds={seconds}, peak={peak_per_device}, "
                         f"devices={num_devices}")
    return flops_per_step * steps / seconds / (peak_per_device * num_devices)


# ---------------------------------------------------------------------------------------------
# A run's throughput: what the training loop logs each loop and writes to summary.json
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Throughput:
    """Model FLOPs of one global step and the peak FLOP/s of every device the run uses
    (None when the device's peak is unknown, with the reason in `source`)."""

    flops_per_step: float
    device_kind: str
    precision: str
    peak: Optional[float]  # all devices together
    source: str

    def describe(self) -> str:
        """The log line at the start of a run."""
        flops = f"model FLOPs {self.flops_per_step / 1e9:.1f} G/step (3 x forward, matmuls)"
        if self.peak is None:
            return f"{flops}; utilisation unknown: {self.source}"
        return (f"{flops}; peak {self.peak / 1e12:.3g} TFLOP/s on {self.device_kind} "
                f"{self.precision} ({self.source})")

    def metrics(self, steps: int, seconds: float) -> dict[str, float]:
        """Achieved model TFLOP/s and, with a known peak, utilisation for `steps` in `seconds`."""
        achieved = self.flops_per_step * steps / seconds
        out = {"model_tflops_per_second": achieved / 1e12}
        if self.peak:
            out["utilisation"] = achieved / self.peak
        return out

    def summary(self, steps: int, seconds: float) -> dict:
        """summary.json's fields: the FLOPs, the peak and its source, and the steady-state
        utilisation (None before a steady loop ran)."""
        steady = self.metrics(steps, seconds) if steps and seconds > 0 else {}
        return {"model_flops_per_step": self.flops_per_step, "device_kind": self.device_kind,
                "peak_flops": self.peak, "peak_source": self.source,
                "model_tflops_per_second": steady.get("model_tflops_per_second"),
                "utilisation": steady.get("utilisation")}


def run_throughput(flops_per_step: float, strategy: Any, precision: str, num_devices: int,
                   accelerator_type: Optional[str] = None) -> Throughput:
    """The Throughput of a run on `strategy`: its device kind and peak (table or CPU probe).
    `num_devices`: replicas on TPUs and GPUs, hosts on CPUs (the probe measures a whole host)."""
    kind = detect_device_kind(strategy, accelerator_type)
    peak, source = device_peak(kind, precision)
    return Throughput(flops_per_step, kind, precision,
                      peak * num_devices if peak is not None else None, source)
