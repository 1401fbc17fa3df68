"""Classification scores as the Chinese benchmarks report them: accuracy (XNLI, ChnSentiCorp,
LCQMC, BQ, the CLUE classification tasks) and macro-F1, defined as scikit-learn's
`f1_score(average="macro", zero_division=0)` defines it:

- the classes are the sorted union of the labels seen in the references and the predictions
  (or the `labels` given, in their order, which may include classes never seen: F1 0);
- per class: precision = tp / predicted, recall = tp / true, F1 = 2 tp / (true + predicted),
  each 0 when its denominator is 0;
- macro-F1 is the unweighted mean of the per-class F1 (numpy's mean, as scikit-learn takes it).

Values are fractions in [0, 1] (see `tfcompact.metrics`).
"""
from __future__ import annotations

from collections import Counter
from typing import Hashable, Optional, Sequence

import numpy as np

from tfcompact.errors import DataError


def _check_pair(references: Sequence, predictions: Sequence) -> None:
    if len(references) != len(predictions):
        raise DataError(f"{len(references)} references but {len(predictions)} predictions: "
                        f"expected one prediction per example")
    if not references:
        raise DataError("no examples to score")


def _classes(references: Sequence, predictions: Sequence,
             labels: Optional[Sequence[Hashable]]) -> list:
    if labels is not None:
        return list(labels)
    seen = set(references) | set(predictions)
    try:
        return sorted(seen)
    except TypeError:
        kinds = sorted({type(x).__name__ for x in seen})
        raise DataError(f"labels mix types ({', '.join(kinds)}): expected all names or all "
                        f"ids") from None


def accuracy(references: Sequence[Hashable], predictions: Sequence[Hashable]) -> float:
    """The fraction of examples whose predicted label equals the reference."""
    _check_pair(references, predictions)
    return sum(r == p for r, p in zip(references, predictions)) / len(references)


def _divide(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def per_class_scores(references: Sequence[Hashable], predictions: Sequence[Hashable],
                     labels: Optional[Sequence[Hashable]] = None) -> dict:
    """class -> {"precision", "recall", "f1", "support"} (support: reference count), for every
    class of the references and predictions (or of `labels`), in sorted (or given) order."""
    _check_pair(references, predictions)
    true = Counter(references)
    predicted = Counter(predictions)
    hits = Counter(r for r, p in zip(references, predictions) if r == p)
    report = {}
    for label in _classes(references, predictions, labels):
        tp, t, p = hits[label], true[label], predicted[label]
        report[label] = {"precision": _divide(tp, p), "recall": _divide(tp, t),
                         "f1": _divide(2 * tp, t + p), "support": t}
    return report


def macro_f1(references: Sequence[Hashable], predictions: Sequence[Hashable],
             labels: Optional[Sequence[Hashable]] = None) -> float:
    """The unweighted mean of the per-class F1 (scikit-learn's macro average)."""
    return _mean_f1(per_class_scores(references, predictions, labels))


def _mean_f1(per_class: dict) -> float:
    if not per_class:
        raise DataError("macro-F1 needs at least one class")
    return float(np.mean(np.array([row["f1"] for row in per_class.values()], dtype=np.float64)))


def classification_scores(references: Sequence[Hashable], predictions: Sequence[Hashable],
                          labels: Optional[Sequence[Hashable]] = None) -> dict:
    """{"accuracy", "macro_f1", "per_class"}: what a classification task is judged by."""
    per_class = per_class_scores(references, predictions, labels)
    return {"accuracy": accuracy(references, predictions), "macro_f1": _mean_f1(per_class),
            "per_class": per_class}


def format_report(per_class: dict, digits: int = 2) -> str:
    """The per-class table as text: precision, recall and F1 in percent, and the support."""
    width = max([len(str(label)) for label in per_class] + [5])
    lines = [f"{'class':<{width}}  {'precision':>9}  {'recall':>9}  {'f1':>9}  {'support':>7}"]
    for label, row in per_class.items():
        lines.append(f"{str(label):<{width}}  {100 * row['precision']:>9.{digits}f}  "
                     f"{100 * row['recall']:>9.{digits}f}  {100 * row['f1']:>9.{digits}f}  "
                     f"{row['support']:>7d}")
    return "\n".join(lines)
