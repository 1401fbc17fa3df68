"""Multi-seed summaries: max, mean and the sample standard deviation (n - 1), by hand."""
import pytest

from tfcompact.errors import DataError
from tfcompact.metrics import seeds

RUNS = [{"accuracy": 0.90, "macro_f1": 0.80, "per_class": {"a": {}}},
        {"accuracy": 0.94, "macro_f1": 0.84},
        {"accuracy": 0.92, "macro_f1": 0.86}]


def test_summary_by_hand():
    summary = seeds.summarise_seeds(RUNS)
    assert set(summary) == {"accuracy", "macro_f1"}  # the per-class table is left out
    acc = summary["accuracy"]
    assert acc["max"] == 0.94
    assert acc["mean"] == pytest.approx(0.92, abs=1e-15)
    # deviations -0.02, 0.02, 0: sum of squares 0.0008 over n - 1 = 2 -> sqrt(0.0004) = 0.02.
    assert acc["std"] == pytest.approx(0.02, abs=1e-15)
    assert acc["n"] == 3
    assert acc["values"] == [0.90, 0.94, 0.92]


def test_one_seed_has_no_spread():
    summary = seeds.summarise_seeds([{"f1": 0.5}])
    assert summary["f1"] == {"max": 0.5, "mean": 0.5, "std": 0.0, "n": 1, "values": [0.5]}


def test_a_metric_missing_from_a_run_counts_its_runs_only():
    summary = seeds.summarise_seeds([{"em": 0.5, "f1": 0.7}, {"f1": 0.9}])
    assert summary["em"]["n"] == 1
    assert summary["f1"]["n"] == 2


def test_errors():
    with pytest.raises(DataError, match="no seed results"):
        seeds.summarise_seeds([])
    with pytest.raises(DataError, match="accuracy.*NaN"):
        seeds.summarise_seeds([{"accuracy": float("nan")}])


def test_table_per_split_in_percent():
    summary = seeds.summarise_seeds(RUNS)
    table = seeds.format_seed_table({"dev": summary, "test": summary}, metrics=["accuracy"])
    lines = table.splitlines()
    assert lines[0].split()[:6] == ["split", "metric", "max", "mean", "std", "n"]
    assert lines[1].split() == ["dev", "accuracy", "94.00", "92.00", "2.00", "3", "94.00",
                                "(92.00)"]
    assert lines[2].split()[0] == "test"
    assert len(lines) == 3


def test_table_of_one_split():
    table = seeds.format_seed_table(seeds.summarise_seeds(RUNS), digits=1)
    lines = table.splitlines()
    assert lines[0].split()[0] == "metric"
    # macro_f1: max 0.86, mean 0.8333...; deviations -5/150, 1/150, 4/150: squares 42/22500,
    # over n - 1 = 2 -> std sqrt(21/22500) = 0.03055 -> "3.1"
    assert lines[2].split() == ["macro_f1", "86.0", "83.3", "3.1", "3", "86.0", "(83.3)"]
