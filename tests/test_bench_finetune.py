"""Smoke test of tools/bench_finetune.py at the test size: it runs our fine-tuning step and
prints figures; beside HF transformers only when torch and transformers are importable."""
import contextlib
import importlib.util
import io
import json
import pathlib

import numpy as np
import pytest

TOOL = pathlib.Path(__file__).resolve().parents[1] / "tools" / "bench_finetune.py"

# BERT at tfcompact.configs.tiny_config's size (vocab 300, hidden 64, 2 layers, FFN 128,
# 64 positions, 2 segment types) with a 2-class head, counted by hand:
#   embeddings 300*64 + 64*64 + 2*64 + LayerNorm 2*64                     = 23552
#   per layer  Q,K,V,O 4*(64*64+64) + LN 128 + FFN (64*128+128)+(128*64+64) + LN 128 = 33472
#   pooler 64*64+64 = 4160; classifier 64*2+2 = 130
TEST_BERT_PARAMS = 23552 + 2 * 33472 + 4160 + 130


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_finetune", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hf_importable() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


@pytest.fixture(scope="module")
def run(bench, tmp_path_factory):
    """One run at the test size (beside HF when importable): (printed text, JSON rows)."""
    out = tmp_path_factory.mktemp("bench") / "rows.json"
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert bench.main(["--presets", "test:bert", "--batch_size", "4", "--seq_length", "16",
                           "--steps", "1", "--rounds", "2", "--json", str(out)]
                          + ([] if _hf_importable() else ["--no_hf"])) == 0
    return text.getvalue(), json.loads(out.read_text())


def test_pair_batch_is_cls_a_sep_b_sep(bench):
    batch = bench.pair_batch(21128, batch=3, seq=12, num_labels=3)
    for ids, segments in zip(batch["input_ids"], batch["segment_ids"]):
        seps = np.flatnonzero(ids == 102)
        assert ids[0] == 101 and len(seps) == 2 and seps[-1] == 11
        # segment 0 up to and including the first [SEP], segment 1 after it
        assert list(segments) == [0] * (seps[0] + 1) + [1] * (11 - seps[0])
    assert batch["input_mask"].sum() == 36
    assert set(batch["label_ids"]) <= {0, 1, 2} and list(batch["example_weight"]) == [1, 1, 1]


def test_rows_by_size_and_name(bench):
    assert [r[1] for r in bench.select_rows(["tiny"])] == ["albert_tiny_zh", "tinybert_4l_312_zh"]
    assert [r[1] for r in bench.select_rows(["bert_base_zh,test:albert"])] == \
        ["bert_base_zh", "test:albert"]
    assert bench.hf_task_class("electra") == "ElectraForSequenceClassification"
    assert bench.hf_task_class("tinybert") == "BertForSequenceClassification"


def test_ours_prints_figures(run):
    text, rows = run
    fields = next(l for l in text.splitlines() if l.startswith("test:bert")).split()
    assert fields[1] == "tfcompact" and float(fields[4]) > 0  # examples/s
    ours = rows[0]["ours"]
    assert ours["params"] == TEST_BERT_PARAMS
    assert ours["step_s"] > 0 and np.isfinite(ours["loss"])


def test_beside_hf(run):
    if not _hf_importable():
        pytest.skip("torch/transformers not importable (the interop extra)")
    text, rows = run
    row = rows[0]
    assert row["hf"]["params"] == row["ours"]["params"] == TEST_BERT_PARAMS  # the same model
    assert row["ratio"] == pytest.approx(row["ours"]["step_s"] / row["hf"]["step_s"])
    assert row["cpu_ratio"] == pytest.approx(row["ours"]["cpu_step_s"] / row["hf"]["cpu_step_s"])
    assert "HF torch" in text and "target ours/HF step time <= 0.5" in text
