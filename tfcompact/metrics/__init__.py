"""Downstream task metrics, computed as the benchmarks' official scorers compute them, in pure
Python (no TensorFlow), so `finetune`, `evaluate` and the multi-seed summary report the
numbers the papers and leaderboards report:

- classification (`classification.py`): accuracy and macro-F1 as scikit-learn defines them;
- tagging (`tagging.py`): entity-level micro precision / recall / F1 as seqeval's default
  (conlleval-compatible) mode, per entity type, and token accuracy;
- span extraction (`mrc.py`): EM / F1 with the rules of the CMRC 2018 scorer
  (cmrc2018_evaluate.py, also DRCD's), and the official `{id: answer}` prediction file;
- several seeds (`seeds.py`): max / mean / std per metric and the table the papers print.

Convention, one for every kind: a score is a fraction in [0, 1] ("accuracy", "macro_f1",
"precision", "recall", "f1", "em"); counts ("support", "total", "skipped") are ints. Printing
multiplies by 100 (`format_scores`, the seed table): the CMRC scorer's printed EM/F1
(``100 * sum / total``, three decimals) are ``100 * value`` at the printed precision.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from tfcompact.errors import ConfigError
from tfcompact.metrics.classification import (accuracy, classification_scores, format_report,
                                              macro_f1, per_class_scores)
from tfcompact.metrics.mrc import evaluate as span_scores, write_predictions
from tfcompact.metrics.seeds import format_seed_table, summarise_seeds
from tfcompact.metrics.tagging import entity_scores, extract_entities, token_accuracy

# The task kinds of tfcompact/tasks.py (which this part may not import: it ranks higher).
KINDS = ("classification", "tagging", "span")
_OPTIONS = {"classification": ("labels",), "tagging": (), "span": ()}

__all__ = ["KINDS", "accuracy", "classification_scores", "entity_scores", "extract_entities",
           "format_report", "format_scores", "format_seed_table", "macro_f1",
           "per_class_scores", "score", "span_scores",
           "summarise_seeds", "token_accuracy", "write_predictions"]


def score(kind: str, references, predictions, **options) -> dict:
    """The scores a task of `kind` is judged by (fractions in [0, 1]):

    - "classification": label lists -> accuracy, macro_f1, per_class (option `labels`: the
      classes to average over, default the labels seen);
    - "tagging": lists of tag sequences -> precision, recall, f1 (entity-level, micro),
      accuracy (token), per_type;
    - "span": {question id: [reference answers]}, {question id: answer} -> em, f1, total,
      skipped.
    """
    if kind not in KINDS:
        raise ConfigError(f"metric kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(options) - set(_OPTIONS[kind]))
    if unknown:
        raise ConfigError(f"{kind} scores: unknown option {', '.join(unknown)} (expected "
                          f"{', '.join(_OPTIONS[kind]) or 'none'})")
    if kind == "classification":
        return classification_scores(references, predictions, options.get("labels"))
    if kind == "tagging":
        return entity_scores(references, predictions)
    return span_scores(references, predictions)


def format_scores(scores: Mapping[str, object], keys: Sequence[str] = (),
                  digits: int = 2) -> str:
    """One line "name value ..." of the scalar scores (fractions printed as percents, counts
    as they are); `keys` picks and orders them (default: every scalar)."""
    parts = []
    for key in (keys or scores):
        value = scores.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        text = str(value) if isinstance(value, int) else f"{100 * value:.{digits}f}"
        parts.append(f"{key} {text}")
    return "  ".join(parts)
