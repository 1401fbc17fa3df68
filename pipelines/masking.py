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


def static_mask_batch(
    tokens: np.ndarray,
    word_starts: np.ndarray,
    maskable: np.ndarray,
    lengths: np.ndarray,
    rng: np.random.Generator,
    cfg: MaskingConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Whole-word (or token) masking of a batch [n, S] at once, same rules as `mask_sequence`.

    Words are visited in a random order per row; the greedy "take the word if it still fits
    the piece budget, else skip it" runs as a few whole-batch steps (`_greedy_take`). Returns (masked
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
    word = np.cumsum(starts, axis=1, dtype=np.int64)  # 1 + word index per position
    word -= 1
    word[~maskable] = S  # S = "no word" slot
    # Flat index of (row, word) in [n, S + 1] tables: 1-D gathers instead of 2-D fancy indexing.
    flat = (np.arange(0, n * (S + 1), S + 1)[:, None] + word).ravel()
    wlen = np.bincount(flat, minlength=n * (S + 1)).reshape(n, S + 1)[:, :S]
    num_words = starts.sum(axis=1)
    budget = np.minimum(cfg.max_predictions_per_seq,
                        np.maximum(1, np.round(lengths * cfg.masked_lm_prob).astype(np.int64)))
    keys = rng.random((n, S))
    order = _random_order(keys, np.arange(S)[None, :] >= num_words[:, None])
    chosen = _greedy_take(order, wlen, num_words, budget)
    action = rng.random((n, S + 1))  # one draw per word
    repl_idx = rng.integers(0, len(cfg.replacement_ids), size=(n, S))
    pos_chosen = chosen.ravel()[flat].reshape(n, S)
    pos_chosen &= maskable
    act = action.ravel()[flat].reshape(n, S)
    out = tokens.copy()
    out[pos_chosen & (act < cfg.mask_rate)] = cfg.mask_id
    rand = pos_chosen & (act >= cfg.mask_rate + cfg.keep_rate)
    out[rand] = cfg.replacement_ids[repl_idx[rand]]
    positions, labels, counts = _gather_predictions(pos_chosen, tokens, cfg.max_predictions_per_seq)
    return out, positions, labels, counts


def _random_order(keys: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per row, the columns sorted by `keys` (uniform doubles from `Generator.random`), the
    `last` columns after all others, ties in column order: `argsort(keys, kind="stable")`
    with `keys[last] = 2`. The doubles are multiples of 2**-53, so (key * 2**53, column) packs
    exactly into one unique int64 and an unstable sort gives the same order, faster."""
    n, S = keys.shape
    bits = max(1, (S - 1).bit_length())
    if 53 + bits > 62:
        keys = np.where(last, 2.0, keys)
        return np.argsort(keys, axis=1, kind="stable")
    k = (keys * 9007199254740992.0).astype(np.int64)
    k[last] = 1 << 53
    k <<= bits
    k |= np.arange(S, dtype=np.int64)[None, :]
    return np.argsort(k, axis=1)


def _greedy_take(order: np.ndarray, wlen: np.ndarray, num_words: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """chosen bool [n, S + 1]: visiting the words of each row in `order`, take a word if its
    pieces still fit the row's budget, else skip it (the rule of `mask_sequence`).

    Without a Python loop over ranks: the words before the first one that overflows are a
    prefix (cumulative sum of sizes); after it only words no bigger than the remaining budget
    can be taken, found by a few "first such word after the last taken" steps (each one lowers
    the remaining budget, and rows rarely need more than two)."""
    n, S = order.shape
    rank = np.arange(S)[None, :]
    valid = rank < num_words[:, None]
    size = np.where(valid, np.take_along_axis(wlen, order, axis=1), 0)
    csum = np.cumsum(size, axis=1)
    take = valid & (csum <= budget[:, None])
    last = np.count_nonzero(take, axis=1) - 1  # the prefix's last rank
    count = np.where(last >= 0, csum[np.arange(n), np.maximum(last, 0)], 0)
    rem = budget - count
    live = np.flatnonzero((rem > 0) & (last + 1 < num_words))
    while live.size:
        cand = valid[live] & (rank > last[live, None]) & (size[live] <= rem[live, None]) & (size[live] > 0)
        found = cand.any(axis=1)
        live = live[found]
        k = cand[found].argmax(axis=1)
        take[live, k] = True
        rem[live] -= size[live, k]
        last[live] = k
        live = live[rem[live] > 0]
    chosen = np.zeros((n, S + 1), dtype=bool)
    r_idx, k_idx = np.nonzero(take)
    chosen[r_idx, order[r_idx, k_idx]] = True
    return chosen


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
