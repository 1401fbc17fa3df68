"""Entity-level scores for token tagging (NER), as seqeval computes them in its default,
conlleval-compatible mode (seqeval/metrics/sequence_labeling.py, `get_entities` and
`precision_recall_fscore_support`), so that numbers match the papers that report seqeval F1.

A tag is read as seqeval reads it: its first character is the position (B, I, E, S or O) and
its entity type is what follows the first "-" after that character ("B-PER" -> B, PER;
"O" -> O, "_"). Walking a sentence, an entity

- ends before a tag when the previous tag was E or S; when the previous tag was B or I and
  this one is B, S or O; or when the previous tag was inside an entity and the type changes;
- starts at a tag that is B or S; that is I or E after O, E or S (an I- without a B- starts
  an entity, as conlleval does); or that is not O and changes the type.

Sentences are joined with an "O" between them, so no entity crosses a sentence end.
An entity is counted correct only when its type, start and end all match (a partial overlap
is wrong twice: a false positive and a false negative). Micro precision = correct /
predicted entities, recall = correct / reference entities (0 when the count is 0), F1 =
2PR / (P + R) (0 when both are 0); the same per entity type. Token accuracy compares tags
one by one. Values are fractions in [0, 1] (see `tfcompact.metrics`).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from tfcompact.errors import DataError

OUTSIDE = "O"
_NO_TYPE = "_"


def split_tag(tag: str) -> tuple[str, str]:
    """(position letter, entity type) of a tag, as seqeval reads it ("_" for no type)."""
    if not isinstance(tag, str) or not tag:
        raise DataError(f"tag {tag!r}: expected a non-empty tag such as O, B-PER or I-PER")
    rest = tag[1:]
    return tag[0], rest.split("-", 1)[-1] or _NO_TYPE


def _entity_ends(prev: str, position: str, prev_type: str, type_: str) -> bool:
    if prev in ("E", "S"):
        return True
    if prev in ("B", "I") and position in ("B", "S", "O"):
        return True
    return prev not in ("O", ".") and prev_type != type_


def _entity_starts(prev: str, position: str, prev_type: str, type_: str) -> bool:
    if position in ("B", "S"):
        return True
    if position in ("I", "E") and prev in ("E", "S", "O"):
        return True
    return position not in ("O", ".") and prev_type != type_


def extract_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entities of one tag sequence as (type, start, end), `end` exclusive, in order.
    Works for BIO and BIOES alike."""
    entities = []
    prev, prev_type, begin = OUTSIDE, "", 0
    for i, tag in enumerate(list(tags) + [OUTSIDE]):
        position, type_ = split_tag(tag)
        if _entity_ends(prev, position, prev_type, type_):
            entities.append((prev_type, begin, i))
        if _entity_starts(prev, position, prev_type, type_):
            begin = i
        prev, prev_type = position, type_
    return entities


def _joined(sentences: Sequence[Sequence[str]]) -> list[str]:
    """All sentences in one sequence with an O after each, as seqeval scores them."""
    return [tag for sentence in sentences for tag in list(sentence) + [OUTSIDE]]


def _check_sentences(references, predictions) -> None:
    if len(references) != len(predictions):
        raise DataError(f"{len(references)} reference sentences but {len(predictions)} "
                        f"predicted: expected one tag sequence per sentence")
    for i, (ref, pred) in enumerate(zip(references, predictions)):
        if len(ref) != len(pred):
            raise DataError(f"sentence {i}: {len(ref)} reference tags but {len(pred)} "
                            f"predicted: expected one tag per word")
    if not any(len(ref) for ref in references):
        raise DataError("no tags to score")


def _prf(correct: int, predicted: int, true: int) -> dict:
    precision = correct / predicted if predicted else 0.0
    recall = correct / true if true else 0.0
    denominator = precision + recall
    f1 = 2.0 * precision * recall / denominator if denominator else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": true}


def token_accuracy(references: Sequence[Sequence[str]],
                   predictions: Sequence[Sequence[str]]) -> float:
    """The fraction of words whose predicted tag equals the reference tag."""
    _check_sentences(references, predictions)
    pairs = [(r, p) for ref, pred in zip(references, predictions) for r, p in zip(ref, pred)]
    return sum(r == p for r, p in pairs) / len(pairs)


def entity_scores(references: Sequence[Sequence[str]],
                  predictions: Sequence[Sequence[str]]) -> dict:
    """Micro {"precision", "recall", "f1"} over all entities, token "accuracy", and
    "per_type": type -> {"precision", "recall", "f1", "support"} (sorted by type)."""
    _check_sentences(references, predictions)
    true, predicted = defaultdict(set), defaultdict(set)
    for type_, start, end in extract_entities(_joined(references)):
        true[type_].add((start, end))
    for type_, start, end in extract_entities(_joined(predictions)):
        predicted[type_].add((start, end))
    per_type = {}
    for type_ in sorted(set(true) | set(predicted)):
        per_type[type_] = _prf(len(true[type_] & predicted[type_]),
                               len(predicted[type_]), len(true[type_]))
    correct = sum(len(true[t] & predicted[t]) for t in per_type)
    micro = _prf(correct, sum(len(s) for s in predicted.values()),
                 sum(len(s) for s in true.values()))
    return {"precision": micro["precision"], "recall": micro["recall"], "f1": micro["f1"],
            "accuracy": token_accuracy(references, predictions), "per_type": per_type}
