"""Span-extraction scores (CMRC 2018, DRCD) computed the way the official scorer
`cmrc2018_evaluate.py` computes them (its Python 3 version, v6; DRCD is scored with the same
script), so a number printed here is the number the leaderboards print.

The scorer's rules, all reproduced here:

- Normalisation: lower-case (`str.lower`), strip surrounding whitespace, then drop every
  character of its punctuation list `SCORER_PUNCTUATION`. The list is short and uneven:
  ASCII ``. , ; ? ! ( ) " '`` are *not* in it (so "北京." and "北京" differ), while
  ``- : _ / + =`` and the common full-width marks are. The list also names
  "……", a two-character string that never equals one character: an ellipsis is kept.
  Whitespace inside the answer is kept.
- EM: 1 when the normalised prediction equals some normalised reference (the strings,
  whitespace included), else 0.
- F1: both texts are cut by `mixed_segmentation`: every character in U+4E00..U+9FA5 is a
  segment of its own; the characters between them form runs that NLTK's `word_tokenize`
  splits (whitespace, and punctuation such as ``$ % ( ) , ? !`` or a final ``.`` split off;
  ``1,000``, ``3.5`` and ``iphone12`` stay whole). F1 comes from the longest common
  *contiguous* run of segments (`lcs_length`): precision = lcs / prediction segments,
  recall = lcs / reference segments; 0 when nothing is shared.
- Both take the best reference; a question without a prediction scores 0 and is counted
  (`skipped`); the averages run over every question of the references.

One difference, by design: the scorer's `word_tokenize` first splits a run into sentences
with NLTK's trained Punkt model; this module tokenises each run as one line (NLTK's
``preserve_line=True``). The two differ only for a run with a sentence-ending period followed
by more Latin text inside one answer ("end. more": the scorer may split off the period as a
segment of its own), which Chinese answers practically never contain.

Convention: `evaluate` returns EM and F1 as fractions in [0, 1]; the scorer prints
``100 * sum / total`` with three decimals, which ``100 * value`` gives to the printed digits.
"""
from __future__ import annotations

import json
import os
import re
from typing import Mapping, Sequence

from tfcompact.errors import DataError
from tfcompact.files import atomic_write_text

# The scorer's `sp_char` list, as single characters (its two-character "……" cannot match).
SCORER_PUNCTUATION = frozenset("-:_*^/\\~`+=，。：？！“”；’《》·、「」（）－～『』")
# The scorer's test for a Chinese character: one segment each.
CJK_FIRST, CJK_LAST = "\u4e00", "\u9fa5"

# ---------------------------------------------------------------- NLTK word_tokenize rules
# The rules NLTK's word tokenizer (the improved Treebank tokenizer) applies, in its order:
# each is a regular-expression rewrite that puts spaces around the pieces to keep apart; the
# text is then split on whitespace. Written for this project from that tokenizer's
# documented behaviour; tests/metrics/test_mrc_metrics.py compares it with NLTK when
# NLTK is installed.
_CLITIC_START = r"(?:re|ve|ll|m|t|s|d|n)\b"
_CLOSERS = "\\]\\)}>\"'»”’"
_QUOTE_RULES = (
    (r"([«“‘„]|`+)", r" \1 "),  # opening quotes, runs of backticks
    (r'^"', "``"),  # a double quote opening the text
    (r"(``)", r" \1 "),
    (r"([ (\[{<])(\"|'')", r"\1 `` "),  # a double quote after a space or an opening bracket
    (rf"(?i)(?<!\w)(')(?!{_CLITIC_START})(?=\w)", r"\1 "),  # an opening single quote
)
_PUNCTUATION_RULES = (
    (rf"([^.])(\.)([{_CLOSERS} ]*)\s*$", r"\1 \2 \3 "),  # the final period (before closers)
    (r"([:,])([^\d])", r" \1 \2"),  # a comma or colon not inside a number
    (r"([:,])$", r" \1 "),
    (r"\.{2,}", r" \g<0> "),  # runs of periods
    (r"[;@#$%&]", r" \g<0> "),
    (r"[\u2012-\u2015]", r" \g<0> "),  # figure, en and em dashes, horizontal bar
    (r"([^.])(\.)([\])}>\"']*)\s*$", r"\1 \2\3 "),
    (r"[?!]", r" \g<0> "),
    (r"([^'])' ", r"\1 ' "),  # a closing single quote
    (r"[*]", r" \g<0> "),
    (r"[\]\[(){}<>]", r" \g<0> "),  # brackets
    (r"--", r" -- "),
)
_CLOSING_RULES = (
    (r"([»”’])", r" \1 "),
    (r"''", " '' "),
    (r'"', " '' "),
    (r"\s+", " "),
    (r"([^' ])('[sS]|'[mM]|'[dD]|') ", r"\1 \2 "),  # 's 'm 'd and a bare closing quote
    (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r"\1 \2 "),
)
# Words NLTK cuts in two ("cannot" -> "can not"), then " 'tis" and " 'twas".
_SPLIT_WORDS = ("can|not", "d|'ye", "gim|me", "gon|na", "got|ta", "lem|me", "more|'n")
_CONTRACTION_RULES = tuple(
    (rf"(?i)\b({w.split('|')[0]})({w.split('|')[1]})\b", r" \1 \2 ") for w in _SPLIT_WORDS
) + ((r"(?i)\b(wan)(na)(?=\s)", r" \1 \2 "),
     (r"(?i) ('t)(is)\b", r" \1 \2 "), (r"(?i) ('t)(was)\b", r" \1 \2 "))


def _compiled(rules):
    return tuple((re.compile(pattern), replacement) for pattern, replacement in rules)


_BEFORE_PADDING = _compiled(_QUOTE_RULES + _PUNCTUATION_RULES)
_AFTER_PADDING = _compiled(_CLOSING_RULES + _CONTRACTION_RULES)


def word_tokenize(text: str) -> list[str]:
    """Split a non-Chinese run into words as NLTK's `word_tokenize(text, preserve_line=True)`
    does: the segments the CMRC scorer compares for runs of Latin letters, digits and signs."""
    for pattern, replacement in _BEFORE_PADDING:
        text = pattern.sub(replacement, text)
    text = f" {text} "
    for pattern, replacement in _AFTER_PADDING:
        text = pattern.sub(replacement, text)
    return text.split()


# ------------------------------------------------------------------------ the scorer's rules

def remove_punctuation(text: str) -> str:
    """The scorer's EM normalisation: lower-cased, stripped, its punctuation list removed."""
    return "".join(ch for ch in text.lower().strip() if ch not in SCORER_PUNCTUATION)


def mixed_segmentation(text: str) -> list[str]:
    """The scorer's F1 segments (punctuation removed): one per Chinese character, the runs
    between Chinese characters split by `word_tokenize`. Removed punctuation joins the text
    around it into one run ("iphone-12" -> "iphone12")."""
    segments: list[str] = []
    run: list[str] = []
    for ch in text.lower().strip():
        if ch in SCORER_PUNCTUATION:
            continue
        if CJK_FIRST <= ch <= CJK_LAST:
            if run:
                segments.extend(word_tokenize("".join(run)))
                run = []
            segments.append(ch)
        else:
            run.append(ch)
    if run:
        segments.extend(word_tokenize("".join(run)))
    return segments


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common contiguous run of segments (the scorer's `find_lcs`)."""
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                current[j + 1] = previous[j] + 1
                best = max(best, current[j + 1])
        previous = current
    return best


def span_f1(reference: str, prediction: str) -> float:
    """F1 of one prediction against one reference from their longest common segment run."""
    ref_segments = mixed_segmentation(reference)
    pred_segments = mixed_segmentation(prediction)
    common = lcs_length(ref_segments, pred_segments)
    if common == 0:
        return 0.0
    precision = 1.0 * common / len(pred_segments)
    recall = 1.0 * common / len(ref_segments)
    return (2 * precision * recall) / (precision + recall)


def exact_match(reference: str, prediction: str) -> int:
    """1 when the two are equal after `remove_punctuation`, else 0."""
    return int(remove_punctuation(reference) == remove_punctuation(prediction))


def question_scores(references: Sequence[str], prediction: str) -> tuple[int, float]:
    """(EM, F1) of one question: the best over its reference answers."""
    if not references:
        raise DataError("a question has no reference answer to score against")
    em = max(exact_match(ref, prediction) for ref in references)
    f1 = max(span_f1(ref, prediction) for ref in references)
    return em, f1


def evaluate(references: Mapping[str, Sequence[str]],
             predictions: Mapping[str, str]) -> dict:
    """EM and F1 (fractions in [0, 1]) over every question of `references` (question id ->
    answer texts, in the dataset's order), `total` questions and `skipped` ones without a
    prediction (scored 0). Predictions for unknown ids are ignored, as the scorer does."""
    em_sum, f1_sum, skipped = 0, 0, 0
    for qid, answers in references.items():
        if qid not in predictions:
            skipped += 1
            continue
        if not answers:
            raise DataError(f"question {qid}: no reference answer to score against")
        em, f1 = question_scores(answers, str(predictions[qid]))
        em_sum += em
        f1_sum += f1
    total = len(references)
    if total == 0:
        raise DataError("no questions to score: the references are empty")
    return {"em": em_sum / total, "f1": f1_sum / total, "total": total, "skipped": skipped}


# ------------------------------------------------------------------------------ files

def write_predictions(path: str | os.PathLike, predictions: Mapping[str, str]) -> None:
    """Write answers in the official submission format, ``{question id: answer text}`` as
    UTF-8 JSON with the characters themselves (not \\u escapes), all at once."""
    text = json.dumps({str(k): str(v) for k, v in predictions.items()},
                      ensure_ascii=False, indent=2)
    atomic_write_text(path, text + "\n")
