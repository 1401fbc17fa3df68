"""Results over several seeds, summarised as the seed projects report them (Chinese-BERT-wwm,
CLUE, Chinese-ELECTRA print "max (mean)" over runs that differ only in the random seed).

For each metric: the maximum, the mean, the sample standard deviation (divisor n - 1; 0.0 for
a single run, which has no spread), the number of runs n and the values in run order.
Metric values are fractions in [0, 1] (see `tfcompact.metrics`); the table prints percents.
"""
from __future__ import annotations

import math
import statistics
from typing import Mapping, Sequence

from tfcompact.errors import DataError


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summarise_seeds(results: Sequence[Mapping[str, object]]) -> dict[str, dict]:
    """metric -> {"max", "mean", "std", "n", "values"} over the runs' results (one dict of
    metric -> number per seed). Entries that are not numbers (per-class tables, ...) are left
    out; a metric missing from some runs is summarised over the runs that have it."""
    if not results:
        raise DataError("no seed results to summarise")
    values: dict[str, list[float]] = {}
    for run in results:
        for metric, value in run.items():
            if _is_number(value):
                values.setdefault(metric, []).append(float(value))
    summary = {}
    for metric, vs in values.items():
        if any(math.isnan(v) for v in vs):
            raise DataError(f"metric {metric}: a seed's result is NaN")
        summary[metric] = {"max": max(vs), "mean": statistics.fmean(vs),
                           "std": statistics.stdev(vs) if len(vs) > 1 else 0.0,
                           "n": len(vs), "values": vs}
    return summary


def format_seed_table(summaries: Mapping[str, Mapping[str, Mapping]],
                      metrics: Sequence[str] = (), scale: float = 100.0,
                      digits: int = 2) -> str:
    """A text table of max / mean / std per split and metric, plus the "max (mean)" form the
    papers print. `summaries` is split -> `summarise_seeds(...)`, or one split's
    `summarise_seeds(...)` itself (no split column); `metrics` picks and orders the rows
    (default: every metric); values are multiplied by `scale` (percent)."""
    one_split = _is_summary(summaries)
    header = ("split", "metric", "max", "mean", "std", "n", "max (mean)")
    rows = []
    for split, summary in ({"": summaries} if one_split else summaries).items():
        for metric in (metrics or summary):
            if metric not in summary:
                continue
            s = summary[metric]
            high, mean = f"{scale * s['max']:.{digits}f}", f"{scale * s['mean']:.{digits}f}"
            rows.append((split, metric, high, mean, f"{scale * s['std']:.{digits}f}",
                         str(s["n"]), f"{high} ({mean})"))
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = []
    for row in [header] + rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:])]
        lines.append("  ".join(cells[1:] if one_split else cells).rstrip())
    return "\n".join(lines)


def _is_summary(table: Mapping) -> bool:
    """True for one split's summary (metric -> statistics), False for split -> summary."""
    return any(isinstance(v, Mapping) and _is_number(v.get("mean")) for v in table.values())
