"""Documents -> pretraining instances, as google-research/bert's `create_instances_from_document`.

An `EncodedDocument` holds a document's WordPiece ids, a "starts a whole word" flag per id and
the sentence boundaries, as numpy arrays (a document is tokenized and segmented once, then
reused by every `dupe_factor` pass). Sentences are packed into chunks up to a target length
(max_seq_length - 3, or with probability `short_seq_prob` a random shorter one), each chunk
is cut at a random sentence boundary into segments A and B:

- `nsp`: B is the actual continuation (label 0) or, with p = 0.5, text from another document
  starting at a random sentence (label 1; the unused sentences of the chunk are put back).
- `sop` (ALBERT): B is the continuation; with p = 0.5 A and B are swapped (label 1).
- `none`: one segment per instance, `[CLS] A [SEP]`, label 0.
A chunk of a single sentence is cut at a random word start to make A and B. Truncation to
the length limit drops tokens from the longer segment, front or back at random (BERT).

Instances are token *ranges* into documents (cheap to make); `assemble_batch` turns a list of
them into padded [n, max_seq_length] arrays for vectorised masking and serialisation.
Everything random comes from the `numpy.random.Generator` passed in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

PAIR_TASKS = ("nsp", "sop", "none")


@dataclass
class EncodedDocument:
    """ids int32 [T], starts bool [T] (True where a whole word begins), bounds int64
    [num_sentences + 1] (token offset where each sentence starts, then T)."""

    ids: np.ndarray
    starts: np.ndarray
    bounds: np.ndarray

    @classmethod
    def from_sentences(cls, sentences: Sequence[tuple], max_sentence_tokens: Optional[int] = None
                       ) -> "EncodedDocument":
        """Build from [(ids, starts)] per sentence; sentences longer than
        `max_sentence_tokens` are cut (at word starts where possible); empty ones dropped."""
        flat_ids: list = []
        flat_st: list = []
        lengths: list = []
        for ids, st in sentences:
            n = len(ids)
            if n == 0:
                continue
            if max_sentence_tokens and n > max_sentence_tokens:
                for lo, hi in _cut_points(st, max_sentence_tokens):
                    flat_ids.extend(ids[lo:hi])
                    flat_st.extend(st[lo:hi])
                    lengths.append(hi - lo)
            else:
                flat_ids.extend(ids)
                flat_st.extend(st)
                lengths.append(n)
        bounds = np.zeros(len(lengths) + 1, dtype=np.int64)
        if lengths:
            np.cumsum(lengths, out=bounds[1:])
        starts = np.array(flat_st, dtype=bool)
        starts[bounds[:-1]] = True  # every (piece of a) sentence starts a word
        return cls(np.array(flat_ids, dtype=np.int32), starts, bounds)

    @property
    def num_sentences(self) -> int:
        return len(self.bounds) - 1

    @property
    def num_tokens(self) -> int:
        return int(self.bounds[-1])


def _cut_points(starts: np.ndarray, max_tokens: int) -> list[tuple[int, int]]:
    out = []
    i, n = 0, len(starts)
    while n - i > max_tokens:
        cut = i + max_tokens
        j = cut
        while j > i + 1 and not starts[j]:
            j -= 1
        if j > i + 1:
            cut = j
        out.append((i, cut))
        i = cut
    out.append((i, n))
    return out


@dataclass(slots=True)
class Instance:
    """[CLS] A [SEP] (B [SEP]): A = a_doc.ids[a0:a1], B = b_doc.ids[b0:b1] (b_doc None: no B)."""

    a_doc: EncodedDocument
    a0: int
    a1: int
    b_doc: Optional[EncodedDocument]
    b0: int
    b1: int
    label: int  # NSP: 1 = random next; SOP: 1 = swapped; none: 0

    @property
    def length(self) -> int:
        return (self.a1 - self.a0) + (self.b1 - self.b0) + (3 if self.b_doc is not None else 2)


def _truncate(a: list, b: list, max_num_tokens: int, rng: np.random.Generator) -> None:
    """BERT's truncate_seq_pair on ranges [lo, hi] (in place): while too long, drop one token
    from the longer segment (B on ties), from its front or back with p = 0.5 each. The number
    taken from each segment follows from the lengths; the front/back split is binomial."""
    la, lb = a[1] - a[0], b[1] - b[0]
    excess = la + lb - max_num_tokens
    if excess <= 0:
        return
    ta = tb = 0
    if la > lb:
        ta = min(excess, la - lb)
    elif lb > la:
        tb = min(excess, lb - la)
    rest = excess - ta - tb
    tb += (rest + 1) // 2
    ta += rest // 2
    fa = int(rng.binomial(ta, 0.5)) if ta else 0
    fb = int(rng.binomial(tb, 0.5)) if tb else 0
    a[0] += fa
    a[1] -= ta - fa
    b[0] += fb
    b[1] -= tb - fb


def _random_word_cut(doc: EncodedDocument, lo: int, hi: int, rng: np.random.Generator) -> Optional[int]:
    if hi - lo < 2:
        return None
    cuts = np.flatnonzero(doc.starts[lo + 1:hi]) + lo + 1
    if len(cuts) == 0:
        return int(rng.integers(lo + 1, hi))
    return int(cuts[int(rng.integers(0, len(cuts)))])


def create_instances_from_document(
    document: EncodedDocument,
    rng: np.random.Generator,
    *,
    max_seq_length: int,
    short_seq_prob: float,
    pair_task: str,
    random_document: Callable[[np.random.Generator], Optional[EncodedDocument]] | None = None,
) -> list[Instance]:
    """Pack one document into instances (see module docstring). Deterministic given `rng`'s
    seed. `random_document(rng)` gives another document for NSP's random next (None: there is
    none, the actual next is used)."""
    if pair_task not in PAIR_TASKS:
        raise ValueError(f"pair_task {pair_task!r} is not one of {PAIR_TASKS}")
    paired = pair_task != "none"
    max_num_tokens = max_seq_length - (3 if paired else 2)
    target_seq_length = max_num_tokens
    if rng.random() < short_seq_prob:
        target_seq_length = int(rng.integers(2, max_num_tokens + 1))

    bounds = document.bounds.tolist()
    n = len(bounds) - 1
    out: list[Instance] = []
    first = 0  # first sentence of the current chunk
    i = 0
    while i < n:
        length = bounds[i + 1] - bounds[first]
        if i == n - 1 or length >= target_seq_length:
            chunk = i + 1 - first
            if not paired:
                lo = bounds[first]
                hi = min(bounds[i + 1], lo + max_num_tokens)
                out.append(Instance(document, lo, hi, None, 0, 0, 0))
            else:
                a_end = first + (int(rng.integers(1, chunk)) if chunk >= 2 else 1)
                a = [bounds[first], bounds[a_end]]
                label = 0
                other = None
                if pair_task == "nsp" and (chunk == 1 or rng.random() < 0.5) and random_document is not None:
                    other = random_document(rng)
                    if other is not None and other.num_sentences == 0:
                        other = None
                if other is not None:
                    label = 1
                    target_b_length = target_seq_length - (a[1] - a[0])
                    ob = other.bounds
                    start = int(rng.integers(0, other.num_sentences))
                    j = start
                    while j < other.num_sentences and ob[j + 1] - ob[start] < target_b_length:
                        j += 1
                    b = [int(ob[start]), int(ob[min(j + 1, other.num_sentences)])]
                    b_doc = other
                    # The chunk's unused sentences go back into the document.
                    i = a_end - 1
                else:
                    b_doc = document
                    b = [bounds[a_end], bounds[i + 1]]
                    if b[0] == b[1]:
                        cut = _random_word_cut(document, a[0], a[1], rng)
                        if cut is None:
                            first = i + 1
                            i += 1
                            continue
                        b = [cut, a[1]]
                        a = [a[0], cut]
                    if pair_task == "sop" and rng.random() < 0.5:
                        a, b = b, a
                        label = 1
                _truncate(a, b, max_num_tokens, rng)
                if a[1] > a[0] and b[1] > b[0]:
                    out.append(Instance(document, a[0], a[1], b_doc, b[0], b[1], label))
            first = i + 1
        i += 1
    return out


def assemble_batch(batch: Sequence[Instance], max_seq_length: int, cls_id: int, sep_id: int):
    """Instances -> padded arrays: tokens int64 [n, S], word_starts bool [n, S],
    maskable bool [n, S] (False for [CLS]/[SEP]/padding), segment_ids int64 [n, S],
    lengths int64 [n], labels int64 [n]. Vectorised: one gather from the documents' arrays."""
    n = len(batch)
    S = max_seq_length
    docs: dict[int, tuple] = {}
    for inst in batch:
        for d in (inst.a_doc, inst.b_doc):
            if d is not None and id(d) not in docs:
                docs[id(d)] = (d, 0)
    base = 0
    for key, (d, _) in list(docs.items()):
        docs[key] = (d, base)
        base += d.num_tokens
    all_ids = np.concatenate([d.ids for d, _ in docs.values()] + [np.zeros(1, np.int32)]).astype(np.int64)
    all_starts = np.concatenate([d.starts for d, _ in docs.values()] + [np.zeros(1, bool)])
    rows = np.array([
        (docs[id(i.a_doc)][1] + i.a0, i.a1 - i.a0,
         (docs[id(i.b_doc)][1] + i.b0) if i.b_doc is not None else 0,
         (i.b1 - i.b0) if i.b_doc is not None else -1, i.label)
        for i in batch], dtype=np.int64).reshape(n, 5)
    a0, la, b0, lb, labels = (rows[:, k:k + 1] for k in range(5))
    has_b = lb >= 0
    lb = np.maximum(lb, 0)
    col = np.arange(S)[None, :]
    in_a = (col >= 1) & (col < 1 + la)
    in_b = has_b & (col >= 2 + la) & (col < 2 + la + lb)
    sep = (col == 1 + la) | (has_b & (col == 2 + la + lb))
    src = np.where(in_a, a0 + col - 1, np.where(in_b, b0 + col - 2 - la, base))
    tokens = all_ids[src]
    tokens[:, 0] = cls_id
    tokens[sep] = sep_id
    starts = all_starts[src] | (col == 1) | (has_b & (col == 2 + la))
    maskable = in_a | in_b
    starts &= maskable
    segs = ((has_b & (col >= 2 + la) & (col <= 2 + la + lb))).astype(np.int64)
    lengths = (2 + la + np.where(has_b, lb + 1, 0))[:, 0]
    return tokens, starts, maskable, segs, lengths, labels[:, 0].copy()


def word_ids_batch(starts: np.ndarray, maskable: np.ndarray) -> np.ndarray:
    """0-based whole-word index per token (increasing along the row), -1 where not maskable."""
    w = np.cumsum(starts & maskable, axis=1) - 1
    return np.where(maskable, w, -1)
