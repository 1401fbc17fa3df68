"""WordPiece ids with the character span of each piece in the original text.

Span extraction needs both directions between pieces and characters: a SQuAD answer is a
character span of the raw context, and the predicted answer must be cut out of the raw context
(Latin/digit runs and spacing exactly as written), not rebuilt from pieces.

`FullTokenizer.normalize` maps some characters to several (… -> ..., İ -> i) or to none
(controls, combining marks when lower-casing). Normalising a text is additive in length: the
normalised text is as long as the sum of its characters' normalised lengths (Python's
contextual final-sigma rule and NFD's reordering of combining marks change characters, never
lengths), so each position of the normalised text belongs to exactly one original character.
Basic tokens are then found in the normalised text exactly as `tokenize_to_ids` finds them, so
the ids are the same.

A piece spans the original characters its normalised characters came from, plus any combining
marks right after it that normalisation dropped (é written e + U+0301 stays whole). Pieces that
split one original character (… -> three dots, a Hangul syllable decomposed into jamo) share
its span. An [UNK] word spans the whole word.
"""
from __future__ import annotations

import itertools
import unicodedata

from tfcompact.text.tokenizer import CONTINUATION_PREFIX, FullTokenizer

# Normalised length of a character, per do_lower_case (the normalisation depends on nothing else).
_NORM_LEN: dict[tuple[bool, str], int] = {}
_CACHE_LIMIT = 100_000


def _norm_len(tokenizer: FullTokenizer, ch: str) -> int:
    key = (tokenizer.do_lower_case, ch)
    n = _NORM_LEN.get(key)
    if n is None:
        n = len(tokenizer.normalize(ch))
        if len(_NORM_LEN) < _CACHE_LIMIT:
            _NORM_LEN[key] = n
    return n


def normalized_owner(tokenizer: FullTokenizer, text: str, norm: str) -> tuple[list[int], list[int]]:
    """(owner, end_of): owner[p] is the index of the character of `text` that position p of
    `norm` (= tokenizer.normalize(text)) came from; end_of[i] is the exclusive end of a piece
    whose last character is text[i]: i + 1, extended over following combining marks that
    normalisation dropped."""
    end_of = list(range(1, len(text) + 1))
    if norm == text:
        return list(range(len(text))), end_of
    lengths = [_norm_len(tokenizer, ch) for ch in text]
    if sum(lengths) != len(norm):  # would mean normalisation is not additive in length
        raise AssertionError(f"normalised length {len(norm)} != per-character sum "
                             f"{sum(lengths)} for {text!r}")
    for i in range(len(text) - 2, -1, -1):
        if lengths[i + 1] == 0 and unicodedata.category(text[i + 1])[0] == "M":
            end_of[i] = end_of[i + 1]
    owner = list(itertools.chain.from_iterable(itertools.repeat(i, n) for i, n in enumerate(lengths)))
    return owner, end_of


def piece_lengths(tokenizer: FullTokenizer, pieces: tuple[int, ...]) -> list[int]:
    """Normalised characters each WordPiece piece of one word covers (`##` not counted)."""
    tokens = tokenizer.vocab.tokens
    out = []
    for k, piece in enumerate(pieces):
        token = tokens[piece]
        out.append(len(token) - (len(CONTINUATION_PREFIX) if k else 0))
    return out


def tokenize_with_offsets(tokenizer: FullTokenizer, text: str) -> tuple[list[int], list[int], list[int]]:
    """(ids, starts, ends): the ids of `tokenizer.tokenize_to_ids(text)` and each piece's
    character span [start, end) in `text` (see the module docstring for the rules)."""
    norm = tokenizer.normalize(text)
    owner, end_of = normalized_owner(tokenizer, text, norm)
    ids: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    for match in tokenizer._token_re.finditer(norm):
        word = match.group()
        pieces = tokenizer.wordpiece_ids(word)
        a, b = match.span()
        ids.extend(pieces)
        if len(pieces) == 1:  # one piece or [UNK]: the whole word
            starts.append(owner[a])
            ends.append(end_of[owner[b - 1]])
            continue
        lengths = piece_lengths(tokenizer, pieces)
        if sum(lengths) != len(word):
            raise AssertionError(f"pieces {pieces} do not cover the word {word!r}")
        for p, q in itertools.pairwise(itertools.accumulate(lengths, initial=a)):
            starts.append(owner[p])
            ends.append(end_of[owner[q - 1]])
    return ids, starts, ends
