"""Model FLOPs, device peaks and utilisation (tfcompact.train.utilisation).

The FLOP formula is checked against the model itself: each tiny pretraining model is traced
once with tf.function at static shapes and every matrix product in the graph (MatMul,
BatchMatMul, Einsum) is counted as 2 x (output elements) x (contracted size) from its static
shapes. The formula counts exactly these products and nothing else, so the two must agree
exactly (up to float rounding). One tiny BERT is also counted by hand from its definition.
"""
from __future__ import annotations

import json
import math
import os
import re

import pytest
import tensorflow as tf

from tfcompact.architectures import ARCHITECTURES
from tfcompact.configs import get_preset, tiny_config
from tfcompact.models import build_pretraining_model
from tfcompact.text import user_cache
from tfcompact.train import utilisation as u

B, S, P = 2, 16, 3
_MATMULS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")


def _dims(tensor) -> list[int]:
    shape = tensor.shape
    assert shape.is_fully_defined(), f"{tensor.name}: shape {shape} not static"
    return shape.as_list()


def _einsum_flops(op) -> float:
    equation = op.get_attr("equation").decode().replace(" ", "")
    inputs, output = equation.split("->")
    sizes = {}
    for labels, tensor in zip(inputs.split(","), op.inputs):
        sizes.update(zip(labels, _dims(tensor)))
    contracted = math.prod(sizes[c] for c in set(inputs.replace(",", "")) - set(output))
    return 2.0 * math.prod(_dims(op.outputs[0])) * contracted


def _op_flops(op) -> float:
    if op.type == "Einsum":
        return _einsum_flops(op)
    a = _dims(op.inputs[0])
    if op.type == "MatMul":
        k = a[0] if op.get_attr("transpose_a") else a[1]
    else:
        k = a[-2] if op.get_attr("adj_x") else a[-1]
    return 2.0 * math.prod(_dims(op.outputs[0])) * k


def graph_matmul_flops(graph) -> tuple[float, int]:
    """(sum of 2·m·n·k over the graph's matrix products, how many), nested functions included."""
    total, count = 0.0, 0
    for op in graph.get_operations():
        if op.type in _MATMULS or op.type == "Einsum":
            total += _op_flops(op)
            count += 1
        elif op.type in ("PartitionedCall", "StatefulPartitionedCall"):
            inner = graph._get_function(op.get_attr("f").name).graph
            sub_total, sub_count = graph_matmul_flops(inner)
            total, count = total + sub_total, count + sub_count
    return total, count


def traced_forward_flops(arch: str, config, sentence_head: str | None = None) -> float:
    model = build_pretraining_model(arch, config, sentence_head=sentence_head, seed=1)
    spec = {name: tf.TensorSpec((B, P if name.startswith("masked") else S), tf.int32)
            for name in ("input_ids", "input_mask", "segment_ids", "masked_lm_positions",
                         "masked_lm_ids")}
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
    total, count = graph_matmul_flops(graph)
    assert count > 0
    return total


CASES = [(arch, tiny_config(arch), None) for arch in ARCHITECTURES] + [
    ("bert", tiny_config("bert"), "none"),
    ("albert", tiny_config("albert", layout="brightmart"), None),
    ("albert", tiny_config("albert", num_hidden_groups=2, inner_group_num=2), None),
    ("albert", tiny_config("albert", embedding_size=64, ln_type="preln"), None),
    ("electra", tiny_config("electra_base_zh"), None),  # E = H: no embeddings_project
    ("mobilebert", tiny_config("mobilebert_base_f2_zh"), None),  # bottleneck attention, F=2
    ("mobilebert", tiny_config("mobilebert", use_bottleneck=False, trigram_input=False,
                               embedding_size=32, classifier_activation=True), None),
    ("mobilebert", tiny_config("mobilebert", key_query_shared_bottleneck=False,
                               use_bottleneck_attention=False), None),
]


@pytest.mark.parametrize("arch,config,head", CASES,
                         ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(CASES)])
def test_forward_flops_equal_the_traced_graph(arch, config, head):
    expected = traced_forward_flops(arch, config, head)
    got = u.forward_flops(arch, config, batch=B, seq_length=S, num_predictions=P,
                          sentence_head=head)
    assert got == pytest.approx(expected, rel=1e-12)


def test_tiny_bert_by_hand():
    """H=64, L=2, 4 heads (d=16), I=128, V=300; B=2, S=16 (T=32 tokens), P=3 (6 predictions)."""
    config = tiny_config("bert")
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads,
            config.intermediate_size, config.vocab_size) == (64, 2, 4, 128, 300)
    qkv = 2 * 32 * 64 * (3 * 64)            # 786,432
    scores = 2 * (2 * 4) * 16 * 16 * 16     # QKᵀ over B·N = 8 heads: 65,536
    context = 2 * (2 * 4) * 16 * 16 * 16    # A·V: 65,536
    attention_output = 2 * 32 * 64 * 64     # 262,144
    ffn = 2 * 32 * 64 * 128 + 2 * 32 * 128 * 64  # 1,048,576
    layer = qkv + scores + context + attention_output + ffn  # 2,228,224
    pooler = 2 * 2 * 64 * 64                # 16,384
    mlm = 2 * 6 * 64 * 64 + 2 * 6 * 64 * 300  # transform + decoder: 49,152 + 230,400
    nsp = 2 * 2 * 64 * 2                    # 512
    assert 2 * layer + pooler + mlm + nsp == 4_752_896
    assert u.forward_flops("bert", config, batch=2, seq_length=16, num_predictions=3) == 4_752_896
    assert u.train_flops_per_step("bert", config, batch=2, seq_length=16,
                                  num_predictions=3) == 3 * 4_752_896


def test_distillation_step_is_three_student_passes_and_one_teacher_pass():
    student, teacher = tiny_config("tinybert"), tiny_config("bert", num_hidden_layers=4)
    sizes = dict(batch=2, seq_length=16, num_predictions=3)
    s = u.forward_flops("tinybert", student, **sizes)
    t = u.forward_flops("bert", teacher, **sizes)
    assert t > s
    assert u.distillation_flops_per_step("tinybert", student, "bert", teacher, **sizes) == 3 * s + t


def test_bad_arguments_are_config_errors():
    from tfcompact.errors import ConfigError

    with pytest.raises(ConfigError, match="needs a ElectraConfig"):
        u.forward_flops("electra", tiny_config("bert"), batch=2, seq_length=16, num_predictions=3)
    with pytest.raises(ConfigError, match="seq_length"):
        u.forward_flops("bert", tiny_config("bert"), batch=2, seq_length=0, num_predictions=3)
    with pytest.raises(ConfigError, match="unknown architecture"):
        u.forward_flops("gpt", tiny_config("bert"), batch=2, seq_length=16, num_predictions=3)


def test_peak_table_is_sane():
    assert {"TPU v2", "TPU v3", "TPU v4", "TPU v5e", "TPU v5p", "TPU v6e", "V100 SXM2", "T4",
            "A10", "A100", "L4", "H100 SXM", "RTX 3090", "RTX 4090"} <= set(u.PEAK_FLOPS)
    for key, entry in u.PEAK_FLOPS.items():
        assert entry and all(v > 0 for v in entry.values()), key
        assert "fp32" in entry, key
        for low in ("bf16", "fp16", "tf32"):
            if low in entry:
                assert entry[low] >= entry["fp32"], (key, low)
    # a v2/v3 device is half a chip (Cloud TPU: 45 and 123 TFLOPS per two-core chip)
    assert u.PEAK_FLOPS["TPU v3"]["bf16"] * 2 == pytest.approx(123e12)
    assert u.PEAK_FLOPS["TPU v4"]["bf16"] == pytest.approx(275e12)


@pytest.mark.parametrize("name,key", [
    ("TPU v4", "TPU v4"), ("TPU v5 lite", "TPU v5e"), ("NVIDIA A100-SXM4-40GB", "A100"),
    ("NVIDIA A100 80GB PCIe", "A100"), ("NVIDIA A10", "A10"), ("Tesla V100-PCIE-16GB", "V100 PCIe"),
    ("Tesla V100-SXM2-32GB", "V100 SXM2"), ("Tesla T4", "T4"), ("NVIDIA L4", "L4"),
    ("NVIDIA H100 80GB HBM3", "H100 SXM"), ("NVIDIA H100 PCIe", "H100 PCIe"),
    ("NVIDIA GeForce RTX 4090", "RTX 4090"), ("NVIDIA L40S", None), ("Radeon VII", None),
])
def test_device_names_map_to_table_keys(name, key):
    assert u.table_key(name) == key


def test_device_peak_from_the_table_and_unknown_devices():
    peak, source = u.device_peak("TPU v4", "mixed_bfloat16")
    assert peak == pytest.approx(275e12) and source == "table: TPU v4 bf16"
    peak, source = u.device_peak(u.tpu_kind("v3-32"), "float32")
    assert peak == pytest.approx(61.5e12) and "TPU v3" in source
    peak, source = u.device_peak("Tesla T4", "mixed_bfloat16")
    assert peak is None and "T4" in source and "bf16" in source
    peak, source = u.device_peak("Radeon VII", "float32")
    assert peak is None and "'Radeon VII'" in source and "not in the peak table" in source
    peak, source = u.device_peak(u.tpu_kind(None), "mixed_bfloat16")
    assert peak is None and "'TPU'" in source


def test_tpu_kinds_from_accelerator_types():
    assert u.tpu_kind("v2-8") == "TPU v2"
    assert u.tpu_kind("v5litepod-16") == "TPU v5e"
    assert u.tpu_kind("v5p-128") == "TPU v5p"
    assert u.tpu_kind("v6e-8") == "TPU v6e"
    assert u.tpu_kind("v9-8") == "TPU"


def test_this_machine_is_a_cpu():
    assert not tf.config.list_physical_devices("GPU")
    assert u.detect_device_kind(tf.distribute.get_strategy()) == "CPU"
    assert u.detect_device_kind(None) == "CPU"


def test_cpu_probe_measures_once_then_reads_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    peak, source = u.device_peak("CPU", "float32")
    assert peak is not None and 1e8 < peak < 1e14, source
    assert re.match(r"probe: CPU float32 matmul \d+\^3, best of \d+, measured now, cached in ", source)
    path = user_cache.cache_path(u.CPU_CACHE_NAME)
    assert path.startswith(str(tmp_path)) and os.path.exists(path)
    again, source2 = u.device_peak("CPU", "float32")
    assert again == peak
    assert "measured now" not in source2 and source2.endswith(f"cached in {path}")


def test_cpu_probe_reads_a_hand_written_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    table = {u.cpu_probe_key(): {"bfloat16": {"flops": 1.25e9, "how": "bfloat16 matmul 2048^3"}}}
    user_cache.write_private(u.CPU_CACHE_NAME, json.dumps(table).encode())
    assert u.device_peak("CPU", "mixed_bfloat16") == (
        1.25e9, f"probe: CPU bfloat16 matmul 2048^3, cached in {user_cache.cache_path(u.CPU_CACHE_NAME)}")


def test_utilisation_by_hand():
    # 3 TFLOP per step, 10 steps in 2 s = 15 TFLOP/s, on 8 TPU v3 cores of 61.5 TFLOP/s = 492
    assert u.utilisation(3e12, 10, 2.0, 61.5e12, 8) == pytest.approx(15 / 492)
    with pytest.raises(ValueError):
        u.utilisation(3e12, 10, 0.0, 61.5e12, 8)


def test_presets_at_bench_sizes_are_positive_and_ordered():
    """Sizes only: base models cost more than small ones at the same batch."""
    flops = {name: u.train_flops_per_step(get_preset(name).arch, get_preset(name).config,
                                          batch=32, seq_length=128, num_predictions=20)
             for name in ("albert_tiny_zh", "albert_base_zh", "bert_base_zh", "electra_small_zh",
                          "electra_base_zh")}
    assert flops["albert_tiny_zh"] < flops["albert_base_zh"]
    assert flops["electra_small_zh"] < flops["electra_base_zh"]
    # ALBERT base and BERT base share the encoder shape; ALBERT's decoder is E=128 wide, plus
    # its E→H projection, so the two differ only by the heads
    assert flops["albert_base_zh"] < flops["bert_base_zh"]
