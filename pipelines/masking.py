"""Masked-LM targets: whole-word masking (WWM), ALBERT n-gram masking and plain token masking.

A sequence arrives as token ids plus a "starts a new whole word" flag per token (from
`FullTokenizer.encode_with_words`). For Chinese, the 2nd..nth characters of a segmented word
are continuations *for masking only*: the ids written, and hence the labels, are the plain
character ids, never `##` ids (the defect of albert_zh's converter).

Rules (google-research/bert `create_masked_lm_predictions`, ALBERT's n-gram variant):
- number of predictions = min(max_predictions_per_seq, max(1, round(len(tokens) * 0.15)));
  it counts *pieces*; a unit (word or n-gram) that would overflow it is skipped whole, never
  cut, so no label of a chosen word is ever dropped.
- units are visited in a random order; one 80/10/10 draw per whole word: all its pieces
  become [MASK] (80 %), stay (10 %), or each becomes a random ordinary token (10 %).
- n-gram masking: each candidate start word draws n in 1..3 with p(n) ∝ 1/n (6/11, 3/11,
  2/11), restricted to the words left in the sequence; an n-gram that overflows the budget
  shrinks to n-1 words; n-grams overlapping an earlier choice are skipped.
Randomness comes only from the `numpy.random.Generator` passed in (no global RNG).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

MASKING_MODES = ("wwm", "ngram", "token", "none")


@dataclass(frozen=True)
class MaskingConfig:
    """What to mask: mode in wwm|ngram|token, rates, caps and the ids involved."""

    mode: str
    max_predictions_per_seq: int
    mask_id: int
    replacement_ids: np.ndarray = field(repr=False)
    masked_lm_prob: float = 0.15
    max_ngram: int = 3
    mask_rate: float = 0.8  # of chosen words: -> [MASK]
    keep_rate: float = 0.1  # of chosen words: unchanged (the rest: random tokens)

    def __post_init__(self):
        if self.mode not in ("wwm", "ngram", "token"):
            raise ValueError(f"masking mode {self.mode!r} is not one of wwm, ngram, token")
        if len(self.replacement_ids) == 0:
            raise ValueError("replacement_ids is empty")


def word_units(word_starts: Sequence[bool], maskable: Sequence[bool]) -> list[list[int]]:
    """Group maskable positions into whole words: a new unit starts at each start flag."""
    units: list[list[int]] = []
    cur: list[int] | None = None
    for i, (s, m) in enumerate(zip(word_starts, maskable)):
        if not m:
            cur = None
            continue
        if s or cur is None:
            cur = [i]
            units.append(cur)
        else:
            cur.append(i)
    return units


def num_predictions(num_tokens: int, cfg: MaskingConfig) -> int:
    """BERT's budget: min(cap, max(1, round(len(tokens) * masked_lm_prob)))."""
    return min(cfg.max_predictions_per_seq, max(1, int(round(num_tokens * cfg.masked_lm_prob))))


def ngram_probabilities(max_ngram: int = 3) -> np.ndarray:
    """p(n) ∝ 1/n for n = 1..max_ngram (ALBERT): 6/11, 3/11, 2/11 for 3."""
    p = 1.0 / np.arange(1, max_ngram + 1)
    return p / p.sum()


def choose_ngram_spans(
    unit_lengths: Sequence[int], budget: int, rng: np.random.Generator, max_ngram: int = 3
) -> list[tuple[int, int]]:
    """ALBERT n-gram selection over whole words: list of (first word, n words) spans.

    `unit_lengths[w]` is the number of pieces of word w; the spans' pieces total <= budget.
    """
    num_units = len(unit_lengths)
    if num_units == 0 or budget <= 0:
        return []
    pvals = ngram_probabilities(max_ngram)
    order = rng.permutation(num_units)
    draws = rng.random(num_units)
    covered = np.zeros(num_units, dtype=bool)
    lengths = list(unit_lengths)
    spans: list[tuple[int, int]] = []
    count = 0
    for start, r in zip(order.tolist(), draws.tolist()):
        if count >= budget:
            break
        if covered[start]:
            continue
        avail = min(max_ngram, num_units - start)
        cdf = np.cumsum(pvals[:avail]) / pvals[:avail].sum()
        n = min(int(np.searchsorted(cdf, r, side="right")) + 1, avail)
        size = sum(lengths[start:start + n])
        while count + size > budget and n > 1:
            n -= 1
            size = sum(lengths[start:start + n])
        if count + size > budget:
            continue
        if covered[start:start + n].any():
            continue
        covered[start:start + n] = True
        spans.append((start, n))
        count += size
    return spans


def mask_sequence(
    tokens: Sequence[int],
    word_starts: Sequence[bool],
    maskable: Sequence[bool],
    rng: np.random.Generator,
    cfg: MaskingConfig,
) -> tuple[list[int], list[int], list[int]]:
    """Mask one sequence. Returns (masked tokens, sorted positions, labels = original ids)."""
    n_tok = len(tokens)
    budget = num_predictions(n_tok, cfg)
    if cfg.mode == "token":
        units = [[i] for i, m in enumerate(maskable) if m]
    else:
        units = word_units(word_starts, maskable)
    if cfg.mode == "ngram":
        spans = choose_ngram_spans([len(u) for u in units], budget, rng, cfg.max_ngram)
        chosen = [units[w] for s, n in spans for w in range(s, s + n)]
    else:
        chosen = []
        count = 0
        for u in rng.permutation(len(units)).tolist():
            if count >= budget:
                break
            size = len(units[u])
            if count + size > budget:
                continue
            chosen.append(units[u])
            count += size
    out = list(tokens)
    if not chosen:
        return out, [], []
    # One 80/10/10 draw per whole word; random replacements drawn per piece.
    actions = rng.random(len(chosen)).tolist()
    n_pieces = sum(len(u) for u in chosen)
    replacements = cfg.replacement_ids[rng.integers(0, len(cfg.replacement_ids), size=n_pieces)].tolist()
    k = 0
    positions: list[int] = []
    for unit, a in zip(chosen, actions):
        for i in unit:
            if a < cfg.mask_rate:
                out[i] = cfg.mask_id
            elif a >= cfg.mask_rate + cfg.keep_rate:
                out[i] = replacements[k]
            k += 1
            positions.append(i)
    positions.sort()
    labels = [tokens[i] for i in positions]
    return out, positions, labels


def mask_batch(
    tokens: np.ndarray,
    word_starts: np.ndarray,
    maskable: np.ndarray,
    lengths: np.ndarray,
    rng: np.random.Generator,
    cfg: MaskingConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Whole-word (or token) masking of a batch [n, S] at once, same rules as `mask_sequence`.

    Words are visited in a random order per row; the greedy "take the word if it still fits
    the piece budget, else skip it" runs as one vectorised step per rank. Returns (masked
    tokens [n, S], positions [n, P] sorted per row, labels [n, P], counts [n]); entries past
    a row's count are 0. (n-gram masking runs `mask_sequence` row by row.)
    """
    if cfg.mode == "ngram":
        out = tokens.copy()
        chosen = np.zeros(tokens.shape, dtype=bool)
        for r in range(tokens.shape[0]):
            m, p, _ = mask_sequence(tokens[r, :lengths[r]].tolist(), word_starts[r, :lengths[r]].tolist(),
                                    maskable[r, :lengths[r]].tolist(), rng, cfg)
            out[r, :lengths[r]] = m
            chosen[r, p] = True
        return (out, *_gather_predictions(chosen, tokens, cfg.max_predictions_per_seq))
    n, S = tokens.shape
    starts = maskable if cfg.mode == "token" else (word_starts & maskable)
    word = np.cumsum(starts, axis=1) - 1  # word index per position (valid where maskable)
    word = np.where(maskable, word, S)  # S = "no word" slot
    rows = np.repeat(np.arange(n), S).reshape(n, S)
    wlen = np.bincount((rows * (S + 1) + word).ravel(), minlength=n * (S + 1)).reshape(n, S + 1)[:, :S]
    num_words = starts.sum(axis=1)
    budget = np.minimum(cfg.max_predictions_per_seq,
                        np.maximum(1, np.round(lengths * cfg.masked_lm_prob).astype(np.int64)))
    keys = rng.random((n, S))
    keys[np.arange(S)[None, :] >= num_words[:, None]] = 2.0  # non-words last
    order = np.argsort(keys, axis=1, kind="stable")
    chosen = np.zeros((n, S + 1), dtype=bool)
    count = np.zeros(n, dtype=np.int64)
    live = np.flatnonzero(num_words > 0)  # rows that may still take a word
    for k in range(int(num_words.max(initial=0))):
        if k % 8 == 0:
            live = live[(count[live] < budget[live]) & (k < num_words[live])]
            if live.size == 0:
                break
        w = order[live, k]
        size = wlen[live, w]
        take = (k < num_words[live]) & (count[live] + size <= budget[live])
        count[live] += np.where(take, size, 0)
        chosen[live, w] = take
    action = rng.random((n, S + 1))  # one draw per word
    repl = cfg.replacement_ids[rng.integers(0, len(cfg.replacement_ids), size=(n, S))]
    pos_chosen = chosen[rows, word] & maskable
    act = action[rows, word]
    out = np.where(pos_chosen & (act < cfg.mask_rate), cfg.mask_id, tokens)
    out = np.where(pos_chosen & (act >= cfg.mask_rate + cfg.keep_rate), repl, out)
    positions, labels, counts = _gather_predictions(pos_chosen, tokens, cfg.max_predictions_per_seq)
    return out, positions, labels, counts


def _gather_predictions(pos_chosen: np.ndarray, tokens: np.ndarray, P: int):
    """Chosen positions per row, in order, as padded [n, P] matrices (+ counts [n])."""
    n = pos_chosen.shape[0]
    r_idx, c_idx = np.nonzero(pos_chosen)  # row-major: sorted by row, then position
    counts = np.bincount(r_idx, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(r_idx)) - starts[r_idx]
    positions = np.zeros((n, P), dtype=np.int64)
    labels = np.zeros((n, P), dtype=np.int64)
    positions[r_idx, rank] = c_idx
    labels[r_idx, rank] = tokens[r_idx, c_idx]
    return positions, labels, counts
