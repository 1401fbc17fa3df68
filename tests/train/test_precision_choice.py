"""train.precision against the hardware (auto, explicit bfloat16 without native support), and
the run's precision, model FLOPs and utilisation in its log, TensorBoard-bound history and
summary.json."""
import json

import keras
import pytest
from train_helpers import make_masked_data, tiny_experiment

from tfcompact.train import precision as P
from tfcompact.train.experiment import experiment_from_dict
from tfcompact.train.pretrain import RunOptions, run_pretraining

# Shortened /proc/cpuinfo of a Zen 4 core (has AVX512-BF16) and of an older Xeon (has not).
ZEN4 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\n"
        "flags\t\t: fpu sse sse2 avx2 avx512f avx512bw avx512_vnni avx512_bf16 fma\n\n"
        "processor\t: 1\nflags\t\t: fpu sse sse2 avx2 avx512f avx512_bf16\n")
SKYLAKE = "processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: fpu sse sse2 avx2 avx512f fma\n"
SAPPHIRE = "processor\t: 0\nflags\t\t: avx512f amx_tile amx_int8 amx_bf16 avx512_fp16\n"


def _cpuinfo(tmp_path, text):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return str(path)


def test_cpu_flags_are_read_from_the_first_flags_line(tmp_path):
    flags = P.cpu_flags(_cpuinfo(tmp_path, ZEN4))
    assert "avx512_bf16" in flags and "avx512_vnni" in flags and "AuthenticAMD" not in flags
    assert P.cpu_flags(str(tmp_path / "missing")) is None


@pytest.mark.parametrize("text, native, named", [
    (ZEN4, True, "AVX512-BF16"), (SAPPHIRE, True, "AMX-BF16"), (SKYLAKE, False, "neither")])
def test_cpu_bfloat16_support_follows_the_flags(tmp_path, text, native, named):
    ok, why = P.cpu_bf16(P.cpu_flags(_cpuinfo(tmp_path, text)))
    assert ok is native and named in why


def test_auto_picks_bfloat16_only_where_it_is_native(tmp_path):
    zen4, skylake = _cpuinfo(tmp_path, ZEN4), str(tmp_path / "skylake")
    open(skylake, "w").write(SKYLAKE)
    assert P.resolve_precision("auto", False, zen4).policy == "mixed_bfloat16"
    assert P.resolve_precision("auto", False, skylake).policy == "float32"
    assert P.resolve_precision("auto", True, skylake).policy == "mixed_bfloat16"  # TPU
    # explicit choices are kept; emulated bfloat16 gets a warning, float32 a hint
    slow = P.resolve_precision("mixed_bfloat16", False, skylake)
    assert slow.policy == "mixed_bfloat16" and "slower than float32" in slow.warning
    hint = P.resolve_precision("float32", False, zen4)
    assert hint.policy == "float32" and hint.warning is None and "auto" in hint.reason
    line = P.resolve_precision("auto", False, zen4).describe()
    assert line.startswith("precision mixed_bfloat16") and "float32 master weights" in line
    assert "AVX512-BF16" in line


def test_a_bfloat16_run_reports_precision_flops_and_utilisation(tmp_path):
    data = make_masked_data(str(tmp_path / "data"), num_instances=64)
    raw = tiny_experiment(data, str(tmp_path / "m"), total_steps=6, steps_per_loop=3,
                          checkpoint_every=6)
    raw["train"]["precision"] = "mixed_bfloat16"
    lines = []
    before = keras.mixed_precision.global_policy().name
    summary = run_pretraining(experiment_from_dict(raw), RunOptions(log=lines.append))
    assert summary["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == before
    assert any(line.startswith("precision mixed_bfloat16") for line in lines)
    on_disk = json.load(open(tmp_path / "m" / "summary.json"))
    assert on_disk["precision"] == "mixed_bfloat16"
    # tiny ALBERT (tiny_experiment): hidden 32, embedding 16, FFN 64, 2 layers, 32 tokens,
    # 5 predictions, batch 8, vocab from the data; matmuls counted by hand
    vocab = raw_vocab = data_vocab(data)
    b, s, h, e, f, p = 8, 32, 32, 16, 64, 5
    tokens = b * s
    block = 2 * tokens * (4 * h * h + 2 * h * f) + 2 * 2 * b * s * s * h
    forward = (2 * tokens * e * h + 2 * block + 2 * b * p * (h * e + e * vocab)
               + 2 * b * (h * h + h * 2))
    assert on_disk["model_flops_per_step"] == pytest.approx(3 * forward, rel=1e-9), raw_vocab
    assert on_disk["device_kind"] == "CPU" and on_disk["peak_flops"] > 0
    assert 0 < on_disk["utilisation"] < 1
    for h_ in on_disk["history"]:  # achieved FLOP/s agrees with the measured examples/s
        assert h_["model_tflops_per_second"] * 1e12 == pytest.approx(
            3 * forward * h_["examples_per_second"] / b, rel=1e-6)
        assert h_["utilisation"] == pytest.approx(
            h_["model_tflops_per_second"] * 1e12 / on_disk["peak_flops"], rel=1e-6)
    assert any("util " in line and "GFLOP/s" in line for line in lines)


def data_vocab(data_dir) -> int:
    """The vocabulary size the data was made with (its manifest)."""
    with open(f"{data_dir}/manifest.json", encoding="utf-8") as f:
        return int(json.load(f)["vocab_size"])
