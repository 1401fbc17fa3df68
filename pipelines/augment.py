"""Whole-word data augmentation for task distillation (`tfcompact augment`).

TinyBERT augments a task's training set by replacing, in N copies of every example, each word
with probability p by one of the top-K words a pretrained BERT's masked-LM head proposes for it
masked in its original context (defaults p = 0.4, N = 30, K = 15). In Chinese every ideograph is
its own WordPiece token, so done token by token that replaces single characters. Here the units
are the segmenter's words:

- a candidate word is a segmenter word made only of CJK ideographs (each one token), at most
  `MAX_WORD_CHARS` long; all its n characters are masked at once ([MASK] x n) in the original
  text (each text of an example on its own: text_a, text_b, question, context; a window of
  `max_seq_length` tokens around the word) and the MLM head runs once on that sequence;
- replacements are n-character strings decoded from the n per-position distributions by beam
  search on the product of the probabilities (positions independent given the context): only
  single-ideograph tokens (no special tokens, no ``##`` pieces, nothing else), never the
  original word, and for n >= 2 only words of the segmenter's dictionary (jieba's word list)
  when `dictionary_words` is on;
- a replacement has the length of the word it replaces, so every character offset holds:
  classification labels are kept, tagging replaces only words whose characters are all tagged
  O (and are one CoNLL token each), span examples replace words in the question and in the
  context outside every answer, whose offsets stay valid;
- the candidates of each (example, word) are computed once; the copies sample from them (each
  word replaced with probability p, uniformly among its candidates); a copy equal to the
  original or to an earlier copy is dropped and counted;
- the random generator of example i comes from (seed, i) alone and the MLM scores are rounded
  before ranking, so the output depends neither on `batch_size` nor on `num_workers`.

Examples stream through in chunks; segmentation and tokenisation run in a process pool, the MLM
in the main process on batches of a fixed shape [batch_size, max_seq_length] (one traced
function). The output holds each original example followed by its copies, in a format the
task readers read back: JSON lines (classification), CoNLL (tagging), SQuAD v1 JSON (span).
"""
from __future__ import annotations

import collections
import dataclasses
import io
import json
import multiprocessing as mp
import sys
import time
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from tfcompact.errors import ConfigError, UserError
from tfcompact.tasks import SpanExample, TaggedExample, TextExample, check_kind
from tfcompact.text.tokenizer import is_cjk_char

MAX_WORD_CHARS = 4  # longest word masked (4: the four-character idioms); the static mask slots
CHUNK_EXAMPLES = 1024  # examples whose candidates are held at once
SLICE_EXAMPLES = 32  # examples a worker prepares per task
SCORE_DECIMALS = 4  # log-probabilities are rounded to this before ranking (batch-independent)
SEGMENTERS = ("rjieba", "jieba")  # both segment with jieba's word list (the dictionary filter's)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """The augmentation's settings (the `tfcompact augment` flags)."""

    num_copies: int = 30
    replace_prob: float = 0.4
    top_k: int = 15
    seed: int = 12345
    max_seq_length: int = 128
    batch_size: int = 64
    num_workers: int = 1
    segmenter: Optional[str] = None  # None: rjieba, or jieba when rjieba cannot be imported
    dictionary_words: bool = True
    do_lower_case: bool = True

    def check(self) -> "AugmentConfig":
        """One-line ConfigError naming the flag of the first impossible value."""
        rules = [("num_copies", self.num_copies >= 1, "at least 1"),
                 ("replace_prob", 0.0 < self.replace_prob <= 1.0, "a probability in (0, 1]"),
                 ("top_k", self.top_k >= 1, "at least 1"),
                 ("max_seq_length", self.max_seq_length >= MAX_WORD_CHARS + 2,
                  f"at least {MAX_WORD_CHARS + 2}"),
                 ("batch_size", self.batch_size >= 1, "at least 1"),
                 ("num_workers", self.num_workers >= 1, "at least 1"),
                 ("segmenter", self.segmenter is None or self.segmenter in SEGMENTERS,
                  f"one of {', '.join(SEGMENTERS)}")]
        for flag, ok, expected in rules:
            if not ok:
                raise ConfigError(f"--{flag} {getattr(self, flag)!r}: expected {expected}")
        return self

    @property
    def per_position(self) -> int:
        """Tokens kept per masked position, also the beam width."""
        return max(2 * self.top_k, 16)


# ------------------------------------------------------------------------------ example fields

@dataclasses.dataclass(frozen=True)
class Field:
    """One text of an example that may change: `allowed[p]` says whether character p may be
    replaced; `owner[p]` is the CoNLL token of character p (tagging only, -1 between tokens)."""

    text: str
    allowed: tuple
    owner: tuple = ()


def _tagged_field(example: TaggedExample) -> Field:
    """A CoNLL sentence as one text: tokens joined directly where an ideograph meets the
    boundary, by a space otherwise (Latin words and numbers stay apart)."""
    parts, owner, allowed = [], [], []
    tags = example.tags or ("",) * len(example.words)
    for w, (word, tag) in enumerate(zip(example.words, tags)):
        if parts and not (is_cjk_char(ord(parts[-1][-1])) or is_cjk_char(ord(word[0]))):
            parts.append(" ")
            owner.append(-1)
            allowed.append(False)
        parts.append(word)
        owner += [w] * len(word)
        allowed += [len(word) == 1 and tag == "O"] * len(word)
    return Field("".join(parts), tuple(allowed), tuple(owner))


def example_fields(example) -> list[Field]:
    """The texts of an example augmentation may change, with what may change in each."""
    if isinstance(example, TextExample):
        texts = [example.text_a] + ([example.text_b] if example.text_b is not None else [])
        return [Field(t, (True,) * len(t)) for t in texts]
    if isinstance(example, TaggedExample):
        return [_tagged_field(example)]
    if isinstance(example, SpanExample):
        allowed = [True] * len(example.context)
        for text, start in example.answers:
            allowed[start:start + len(text)] = [False] * len(text)
        return [Field(example.question, (True,) * len(example.question)),
                Field(example.context, tuple(allowed))]
    raise TypeError(f"not a task example: {type(example).__name__}")


def rebuild(example, fields: Sequence[Field], texts: Sequence[str], k: int):
    """Copy k of `example` with its fields' texts replaced by `texts` (same lengths)."""
    guid = f"{example.guid}-aug{k}"
    if isinstance(example, TextExample):
        return dataclasses.replace(example, guid=guid, text_a=texts[0],
                                   text_b=texts[1] if len(texts) > 1 else None)
    if isinstance(example, TaggedExample):
        words = list(example.words)
        old, new, owner = fields[0].text, texts[0], fields[0].owner
        for p in range(len(old)):
            if old[p] != new[p]:
                words[owner[p]] = new[p]
        return dataclasses.replace(example, guid=guid, words=tuple(words))
    return dataclasses.replace(example, guid=guid, question=texts[0], context=texts[1])


# ------------------------------------------------------------------------------ worker side

_WORKER: dict = {}


def init_worker(vocab_path: str, do_lower_case: bool, segmenter: str) -> None:
    """Load the tokenizer and the segmenter's dictionary (once per process and settings)."""
    key = (vocab_path, do_lower_case, segmenter)
    if _WORKER.get("key") == key:
        return
    from tfcompact.text.segmenter import make_segmenter
    from tfcompact.text.tokenizer import FullTokenizer

    seg = make_segmenter(segmenter)
    seg.load()
    _WORKER.update(key=key, tokenizer=FullTokenizer(vocab_path, do_lower_case=do_lower_case),
                   cut=seg.cut)


def candidate_words(field: Field, cut: Callable[[str], list], starts: Sequence[int],
                    ends: Sequence[int]) -> list[tuple[int, int, int]]:
    """(character start, length, first token) of each segmenter word of `field` that may be
    replaced: ideographs only, each exactly one token, all allowed, at most MAX_WORD_CHARS."""
    one_char_token = {s: t for t, (s, e) in enumerate(zip(starts, ends)) if e == s + 1}
    out, pos = [], 0
    for word in cut(field.text):
        n = len(word)
        first = one_char_token.get(pos)
        if (1 <= n <= MAX_WORD_CHARS and first is not None
                and all(is_cjk_char(ord(ch)) for ch in word)
                and all(field.allowed[pos:pos + n])
                and all(one_char_token.get(pos + j) == first + j for j in range(n))):
            out.append((pos, n, first))
        pos += n
    return out


def prepare_examples(examples: Sequence, settings: tuple) -> list[list[tuple[np.ndarray, list]]]:
    """Per example, per field: (token ids, candidate words). Runs in a worker; `settings` are
    init_worker's arguments (loaded here, not in a pool initializer, so that an error reaches
    the caller instead of making the pool restart workers forever)."""
    from tfcompact.text.offsets import tokenize_with_offsets

    init_worker(*settings)
    tokenizer, cut = _WORKER["tokenizer"], _WORKER["cut"]
    out = []
    for example in examples:
        prepared = []
        for field in example_fields(example):
            ids, starts, ends = tokenize_with_offsets(tokenizer, field.text)
            prepared.append((np.asarray(ids, np.int32), candidate_words(field, cut, starts, ends)))
        out.append(prepared)
    return out


def _slices(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Preparer:
    """Segments and tokenises examples in order, in a process pool (`num_workers` > 1, forked
    when TensorFlow is not loaded yet, else spawned) or in this process."""

    def __init__(self, cfg: AugmentConfig, vocab_path: str):
        self.args = (vocab_path, cfg.do_lower_case, cfg.segmenter)
        self.num_workers = cfg.num_workers
        self.pool = None
        if self.num_workers > 1:
            fork = "tensorflow" not in sys.modules and "fork" in mp.get_all_start_methods()
            if fork:
                init_worker(*self.args)  # the children start with the dictionary loaded
            ctx = mp.get_context("fork" if fork else "spawn")
            self.pool = ctx.Pool(self.num_workers)

    def __enter__(self) -> "Preparer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.pool is not None:
            if exc_type is None:
                self.pool.close()
            else:
                self.pool.terminate()
            self.pool.join()

    def prepared(self, examples: Iterable) -> Iterator[tuple]:
        """(example, its prepared fields) in input order; at most 2 slices a worker in flight."""
        slices = _slices(examples, SLICE_EXAMPLES)
        if self.pool is None:
            for s in slices:
                yield from zip(s, prepare_examples(s, self.args))
            return
        pending: collections.deque = collections.deque()
        for s in slices:
            pending.append((s, self.pool.apply_async(prepare_examples, (s, self.args))))
            if len(pending) >= 2 * self.num_workers:
                s0, result = pending.popleft()
                yield from zip(s0, result.get())
        while pending:
            s0, result = pending.popleft()
            yield from zip(s0, result.get())


# ------------------------------------------------------------------------------ dictionary

class Dictionary:
    """The segmenter's word list: which strings are words (frequency > 0) and which are
    prefixes of words (jieba's prefix dictionary holds both, prefixes with frequency 0)."""

    def __init__(self, freq: dict):
        self.freq = freq

    def is_word(self, s: str) -> bool:
        return self.freq.get(s, 0) > 0

    def is_prefix(self, s: str) -> bool:
        return s in self.freq


def jieba_dictionary() -> Dictionary:
    """jieba's prefix dictionary (rjieba segments with the same word list), loaded the way the
    project's segmenter loads it (never from jieba's shared /tmp cache)."""
    from tfcompact.text.segmenter import jieba_word_frequencies

    return Dictionary(jieba_word_frequencies())


# ------------------------------------------------------------------------------ MLM candidates

@dataclasses.dataclass(frozen=True)
class Query:
    """One candidate word to mask: the field's token ids, the word's first token, its length
    and its text (never proposed as its own replacement)."""

    ids: np.ndarray
    first: int
    n: int
    word: str


def mask_row(query: Query, max_seq_length: int, ids: dict) -> tuple[np.ndarray, np.ndarray]:
    """([CLS] window [SEP] with the word's tokens masked, padded; mask positions padded with 0):
    the window is the whole text when it fits, else max_seq_length - 2 tokens centred on the word."""
    body = max_seq_length - 2
    length = len(query.ids)
    start = 0
    if length > body:
        start = min(max(query.first - (body - query.n) // 2, 0), length - body)
    window = query.ids[start:start + body]
    row = np.full(max_seq_length, ids["pad"], np.int32)
    row[0] = ids["cls"]
    row[1:1 + len(window)] = window
    row[1 + len(window)] = ids["sep"]
    positions = np.zeros(MAX_WORD_CHARS, np.int32)
    positions[:query.n] = 1 + query.first - start + np.arange(query.n)
    row[positions[:query.n]] = ids["mask"]
    return row, positions


class MlmCandidates:
    """The replacement candidates of masked words from a pretraining model's MLM head."""

    def __init__(self, model, vocab, cfg: AugmentConfig, dictionary: Optional[Dictionary]):
        import tensorflow as tf

        self.cfg = cfg
        self.dictionary = dictionary
        self.tokens = list(vocab.tokens)
        self.ids = {"cls": vocab.cls_id, "sep": vocab.sep_id, "mask": vocab.mask_id,
                    "pad": vocab.pad_id}
        single = np.array([len(t) == 1 and is_cjk_char(ord(t)) for t in self.tokens])
        if not single.any():
            raise UserError(f"{vocab.path}: no single-ideograph tokens: not a Chinese vocabulary")
        self.per_position = min(cfg.per_position, int(single.sum()))
        allowed = tf.constant(single)
        k, b, s = self.per_position, cfg.batch_size, cfg.max_seq_length
        ints = [tf.TensorSpec([b, s], tf.int32)] * 2 + [tf.TensorSpec([b, MAX_WORD_CHARS], tf.int32)]

        @tf.function(input_signature=ints, reduce_retracing=False)
        def top_tokens(input_ids, input_mask, positions):
            out = model({"input_ids": input_ids, "input_mask": input_mask,
                         "segment_ids": tf.zeros_like(input_ids), "masked_lm_positions": positions,
                         "masked_lm_ids": tf.zeros_like(positions)}, training=False)
            logits = tf.cast(out["mlm_logits"], tf.float32)[..., :len(self.tokens)]
            log_probs = tf.nn.log_softmax(logits, axis=-1)
            log_probs = tf.where(allowed, log_probs, tf.constant(-np.inf, tf.float32))
            return tf.math.top_k(log_probs, k=k)

        self._top_tokens = top_tokens

    def candidates(self, queries: Sequence[Query]) -> list[list[str]]:
        """The top-K replacements of each query's word (batches of the fixed shape)."""
        out: list[list[str]] = []
        b = self.cfg.batch_size
        for lo in range(0, len(queries), b):
            batch = queries[lo:lo + b]
            rows = [mask_row(q, self.cfg.max_seq_length, self.ids) for q in batch]
            rows += [rows[0]] * (b - len(rows))  # the last batch padded to the traced shape
            input_ids = np.stack([r[0] for r in rows])
            positions = np.stack([r[1] for r in rows])
            values, indices = self._top_tokens(input_ids, (input_ids != self.ids["pad"]).astype(np.int32),
                                              positions)
            values = np.round(values.numpy().astype(np.float64), SCORE_DECIMALS)
            indices = indices.numpy()
            out += [self.decode(values[r, :q.n], indices[r, :q.n], q.word) for r, q in enumerate(batch)]
        return out

    def decode(self, values: np.ndarray, indices: np.ndarray, original: str) -> list[str]:
        """Beam search over the positions: the top-K n-ideograph strings by summed log-probability
        (ties: the better prefix, then the lower token id), the original excluded, dictionary
        words only for n >= 2."""
        n, width = len(original), self.per_position
        words = self.dictionary if n >= 2 else None
        prefixes, scores = [""], np.zeros(1)
        for j in range(n):
            last = j == n - 1
            total = scores[:, None] + values[j][None, :]
            beam = np.broadcast_to(np.arange(len(prefixes))[:, None], total.shape)
            token = np.broadcast_to(indices[j][None, :], total.shape)
            order = np.lexsort((token.ravel(), beam.ravel(), -total.ravel()))
            wanted = self.cfg.top_k if last else width
            keep, kept_scores = [], []
            for t, b, tok in zip(total.ravel()[order].tolist(), beam.ravel()[order].tolist(),
                                 token.ravel()[order].tolist()):
                if t == -np.inf:  # a token outside the allowed ones: all that follow are too
                    break
                s = prefixes[b] + self.tokens[tok]
                if last and (s == original or (words is not None and not words.is_word(s))):
                    continue
                if not last and words is not None and not words.is_prefix(s):
                    continue
                keep.append(s)
                kept_scores.append(t)
                if len(keep) == wanted:
                    break
            prefixes, scores = keep, np.asarray(kept_scores)
            if not prefixes:
                return []
        return prefixes


# ------------------------------------------------------------------------------ copies

def sample_copies(texts: Sequence[str], words: Sequence[Sequence[tuple]], cfg: AugmentConfig,
                  rng: np.random.Generator) -> tuple[list[tuple[int, list[str], int]], int]:
    """([(copy number k, texts, words replaced)], duplicates dropped): `words[f]` holds
    (character start, length, candidates) of field f; each word with candidates is replaced
    with probability replace_prob by a uniform pick among them."""
    seen = {tuple(texts)}
    copies, duplicates = [], 0
    for k in range(1, cfg.num_copies + 1):
        new = [list(t) for t in texts]
        replaced = 0
        for f, field_words in enumerate(words):
            for start, n, cands in field_words:
                if rng.random() < cfg.replace_prob:
                    new[f][start:start + n] = cands[int(rng.integers(len(cands)))]
                    replaced += 1
        joined = tuple("".join(t) for t in new)
        if joined in seen:
            duplicates += 1
            continue
        seen.add(joined)
        copies.append((k, list(joined), replaced))
    return copies, duplicates


def example_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of example `index`: from (seed, index) alone."""
    return np.random.default_rng([seed, index])


# ------------------------------------------------------------------------------ output

class OutputWriter:
    """Examples in a format the task readers read back: JSON lines (classification: text_a,
    text_b, label, id), CoNLL `token tag` lines (tagging), SQuAD v1 JSON (span; one paragraph
    per question)."""

    def __init__(self, kind: str, f: io.RawIOBase):
        self.kind = check_kind(kind)
        self.f = f
        self.count = 0
        if kind == "span":
            self.f.write(b'{"version": "v1.1", "data": [{"title": "augmented", "paragraphs": [\n')

    def write(self, example) -> None:
        if self.kind == "classification":
            row = {"id": example.guid, "text_a": example.text_a}
            if example.text_b is not None:
                row["text_b"] = example.text_b
            row["label"] = example.label
            text = json.dumps(row, ensure_ascii=False) + "\n"
        elif self.kind == "tagging":
            lines = [f"{w} {t}" for w, t in zip(example.words, example.tags)]
            text = ("\n" if self.count else "") + "\n".join(lines) + "\n"
        else:
            qa = {"id": example.guid, "question": example.question,
                  "answers": [{"text": t, "answer_start": s} for t, s in example.answers]}
            text = (",\n" if self.count else "") + json.dumps(
                {"context": example.context, "qas": [qa]}, ensure_ascii=False)
        self.f.write(text.encode("utf-8"))
        self.count += 1

    def close(self) -> None:
        if self.kind == "span":
            self.f.write(b"\n]}]}\n")


# ------------------------------------------------------------------------------ the run

def _chunk_candidates(chunk: list, mlm: MlmCandidates, counts: collections.Counter) -> list:
    """The candidates of every word of a chunk in order; a word of a text seen earlier in the
    chunk (a SQuAD context shared by several questions, a repeated question) is queried once:
    its masked context is the same."""
    queries, where, order = [], {}, []
    for example, prepared in chunk:
        for field, (ids, words) in zip(example_fields(example), prepared):
            for s, n, first in words:
                key = (field.text, s, n)
                if key not in where:
                    where[key] = len(queries)
                    queries.append(Query(ids, first, n, field.text[s:s + n]))
                order.append(where[key])
    counts["mlm queries"] += len(queries)
    found = mlm.candidates(queries)
    return [found[i] for i in order]


def _augment_chunk(chunk: list, first_index: int, mlm: MlmCandidates, cfg: AugmentConfig,
                   writer: OutputWriter, counts: collections.Counter) -> None:
    """Candidates for every word of a chunk (batched), then each example and its copies written."""
    found = iter(_chunk_candidates(chunk, mlm, counts))
    for offset, (example, prepared) in enumerate(chunk):
        fields = example_fields(example)
        words = [[(s, n, c) for (s, n, _), c in zip(field_words, found) if c]
                 for field, (_, field_words) in zip(fields, prepared)]
        copies, duplicates = sample_copies([f.text for f in fields], words, cfg,
                                           example_rng(cfg.seed, first_index + offset))
        writer.write(example)
        for k, texts, replaced in copies:
            writer.write(rebuild(example, fields, texts, k))
            counts["words replaced"] += replaced
        counts["examples"] += 1
        counts["copies written"] += len(copies)
        counts["duplicates dropped"] += duplicates
        counts["candidate words"] += sum(map(len, words))


def check_model_dir(cfg: AugmentConfig, model_dir: str) -> tuple[str, object]:
    """(vocabulary path, Vocab) of a pretraining model directory, checked against the settings
    before any work: its positions, its vocabulary, the segmenter being installed."""
    from tfcompact.errors import DataError
    from tfcompact.modeldir import VOCAB_FILE, read_model_dir
    from tfcompact.text.segmenter import make_segmenter
    from tfcompact.text.tokenizer import Vocab

    from tfcompact.tasks import TASK_FILE, is_task_dir

    if is_task_dir(model_dir):
        raise ConfigError(f"--model_dir {model_dir} is a fine-tuned model directory ({TASK_FILE}); "
                          f"augmentation needs a pretraining model directory (its MLM head)")
    info = read_model_dir(model_dir)
    positions = getattr(info.config, "max_position_embeddings", None)
    if positions is not None and cfg.max_seq_length > positions:
        raise ConfigError(f"--max_seq_length {cfg.max_seq_length}: the model in {model_dir} has "
                          f"{positions} positions")
    vocab_path = info.vocab_path or f"{model_dir}/{VOCAB_FILE}"
    vocab = Vocab.load(vocab_path)
    size = getattr(info.config, "vocab_size", None)
    if size is not None and len(vocab) > size:
        raise DataError(f"{vocab_path}: {len(vocab)} tokens, more than the model's vocab_size {size}")
    make_segmenter(cfg.segmenter)  # rjieba not installed: refused here, not in a worker
    return vocab_path, vocab


def augment_file(cfg: AugmentConfig, model_dir: str, input_path: str, output: str, kind: str,
                 task_format: str = "", text_fields=None, label_field: Optional[str] = None,
                 log: Callable[[str], None] = print) -> collections.Counter:
    """Augment the task file `input_path` into `output` (written to a temp name, then renamed);
    returns the counts (examples, copies written, words replaced, duplicates dropped, ...)."""
    from tfcompact.files import atomic_writer
    from tfcompact.inputs.task_readers import describe_counts, read_examples
    from tfcompact.modeldir import load_pretraining_model
    from tfcompact.text.segmenter import resolve_segmenter

    cfg.check()
    cfg = dataclasses.replace(cfg, segmenter=resolve_segmenter(cfg.segmenter))  # once, here
    start = time.perf_counter()
    vocab_path, vocab = check_model_dir(cfg, model_dir)
    reader_counts: collections.Counter = collections.Counter()
    examples = read_examples(kind, input_path, task_format, text_fields, label_field,
                             labelled=True, counts=reader_counts)
    counts: collections.Counter = collections.Counter()
    with Preparer(cfg, vocab_path) as preparer:
        dictionary = jieba_dictionary() if cfg.dictionary_words else None
        mlm = MlmCandidates(load_pretraining_model(model_dir), vocab, cfg, dictionary)
        with atomic_writer(output) as f:
            writer = OutputWriter(kind, f)
            for chunk in _slices(preparer.prepared(examples), CHUNK_EXAMPLES):
                _augment_chunk(chunk, counts["examples"], mlm, cfg, writer, counts)
                if len(chunk) == CHUNK_EXAMPLES:  # progress on long inputs
                    rate = counts["examples"] / (time.perf_counter() - start)
                    log(f"{counts['examples']} examples, {counts['copies written']} copies "
                        f"({rate:.1f} examples/s)")
            writer.close()
    counts["seconds"] = time.perf_counter() - start
    note = describe_counts(input_path, reader_counts)
    if note:
        log(note)
    return counts
