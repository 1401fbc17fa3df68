"""Fine-tuning inputs: task examples -> static-shape features, the tf.data pipeline over them,
and predictions mapped back to examples (answer text, word tags).

Features follow `tfcompact.tasks` (int32 ids, float32 weights, every row max_seq_length long,
padded with 0). Each kind also keeps per-feature metadata (`ClassificationMeta`, `TaggingMeta`,
`SpanMeta`) that ties feature rows back to examples:

- classification: ``[CLS] a [SEP] (b [SEP])``, a pair truncated longest first (one piece at a
  time from the longer text, from `b` on ties), as google-research/bert run_classifier does;
- tagging: every word keeps one prediction slot (a word without pieces, e.g. a space or a
  control character, becomes [UNK]); the label sits on its first piece; a sentence longer
  than max_seq_length - 2 pieces is cut into consecutive windows of whole words;
- span (SQuAD v1, run_squad's windows): ``[CLS] question [SEP] context window [SEP]``, the
  question cut to max_query_length pieces, the context's pieces cut into windows of
  max_seq_length - len(question) - 3 pieces every doc_stride pieces; the first answer's
  character span is mapped onto pieces exactly (`tfcompact.text.offsets`), a piece that
  contains an answer boundary belongs to the answer; an answer not wholly inside a window is
  labelled 0/0 ([CLS]). Predicted answers are cut from the original context by character
  offsets, so Latin/digit runs and spacing come out as written.
"""
from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import random
from collections.abc import Sequence

import numpy as np

from tfcompact.errors import ConfigError, DataError
from tfcompact.tasks import (ENCODER_FEATURES, SpanExample, TaggedExample, TaskSpec,
                             TextExample, check_kind)
from tfcompact.text.offsets import tokenize_with_offsets
from tfcompact.text.tokenizer import FullTokenizer


# ------------------------------------------------------------------------------ metadata

@dataclasses.dataclass
class ClassificationMeta:
    """example_index [N] int32: the example each feature row encodes (one row per example)."""

    example_index: np.ndarray


@dataclasses.dataclass
class TaggingMeta:
    """Rows -> words: example_index [N] int32; word_index [N, S] int32, the index (in its
    example) of the word whose first piece is at that position, -1 elsewhere; num_words [E]."""

    example_index: np.ndarray
    word_index: np.ndarray
    num_words: np.ndarray


@dataclasses.dataclass
class SpanMeta:
    """Rows -> context characters: example_index [N] int32; char_start / char_end [N, S] int32,
    the character span [start, end) of each context piece in the example's original context,
    -1 outside the context; token_is_max_context [N, S] bool (run_squad's rule: the window in
    which a piece has the most context on its shorter side scores it)."""

    example_index: np.ndarray
    char_start: np.ndarray
    char_end: np.ndarray
    token_is_max_context: np.ndarray


Meta = ClassificationMeta | TaggingMeta | SpanMeta


@dataclasses.dataclass
class EncodedTask:
    """Features ({name: [N, ...] numpy array}, keys `tasks.feature_names(kind)`) and the rows'
    metadata."""

    features: dict
    meta: Meta

    @property
    def num_features(self) -> int:
        return int(self.features["input_ids"].shape[0])


class _Rows:
    """Accumulates feature rows of ids and segment ids and pads them to max_seq_length."""

    def __init__(self, max_seq_length: int):
        self.max_seq_length = max_seq_length
        self.ids: list = []
        self.segments: list = []

    def add(self, ids: list, segments: list) -> None:
        if len(ids) > self.max_seq_length:  # a bug in a caller's length arithmetic
            raise AssertionError(f"row of {len(ids)} > max_seq_length {self.max_seq_length}")
        self.ids.append(ids)
        self.segments.append(segments)

    def encoder_features(self) -> dict:
        """input_ids, input_mask, segment_ids [N, S] int32 and example_weight [N] float32 (1)."""
        n, s = len(self.ids), self.max_seq_length
        out = {name: np.zeros((n, s), np.int32) for name in ENCODER_FEATURES}
        for r, (ids, segs) in enumerate(zip(self.ids, self.segments)):
            out["input_ids"][r, :len(ids)] = ids
            out["input_mask"][r, :len(ids)] = 1
            out["segment_ids"][r, :len(segs)] = segs
        out["example_weight"] = np.ones((n,), np.float32)
        return out


def _label_id(label: str | None, label_ids: dict, source: str, is_training: bool,
              what: str = "label") -> int:
    """The id of `label` among the task's labels; None (unlabelled) is 0 outside training."""
    if label is None:
        if is_training:
            raise DataError(f"{source}: no {what} (training examples need one)")
        return 0
    found = label_ids.get(label)
    if found is None:
        known = list(label_ids)
        shown = ", ".join(map(repr, known[:20])) + (", ..." if len(known) > 20 else "")
        raise DataError(f"{source}: {what} {label!r} is not one of the task's labels ({shown}); "
                        f"labels come from the training split")
    return found


# ------------------------------------------------------------------------------ classification

def truncate_seq_pair(tokens_a: list, tokens_b: list, max_length: int) -> None:
    """Cut a pair in place to `max_length` pieces in all, one piece at a time from the end of
    the longer list (of `tokens_b` on a tie), as run_classifier's _truncate_seq_pair."""
    while len(tokens_a) + len(tokens_b) > max_length:
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()


def encode_classification(examples: Sequence[TextExample], tokenizer: FullTokenizer,
                          spec: TaskSpec, is_training: bool) -> EncodedTask:
    """``[CLS] a [SEP] (b [SEP])`` rows, segment 0 for a, 1 for b, and label_ids []."""
    vocab = tokenizer.vocab
    label_ids = {label: i for i, label in enumerate(spec.labels)}
    rows = _Rows(spec.max_seq_length)
    labels = []
    for ex in examples:
        a = tokenizer.tokenize_to_ids(ex.text_a)
        b = None if ex.text_b is None else tokenizer.tokenize_to_ids(ex.text_b)
        if b is None:
            del a[spec.max_seq_length - 2:]
            rows.add([vocab.cls_id] + a + [vocab.sep_id], [0] * (len(a) + 2))
        else:
            truncate_seq_pair(a, b, spec.max_seq_length - 3)
            rows.add([vocab.cls_id] + a + [vocab.sep_id] + b + [vocab.sep_id],
                     [0] * (len(a) + 2) + [1] * (len(b) + 1))
        labels.append(_label_id(ex.label, label_ids, ex.source, is_training))
    features = rows.encoder_features()
    features["label_ids"] = np.asarray(labels, np.int32).reshape(-1)
    return EncodedTask(features, ClassificationMeta(np.arange(len(labels), dtype=np.int32)))


# ------------------------------------------------------------------------------ tagging

def word_windows(piece_counts: Sequence[int], room: int) -> list[tuple[int, int]]:
    """Consecutive windows [first, stop) of whole words with at most `room` pieces each (a
    single word longer than `room` is a window of its own, cut later); one empty window for a
    sentence without words."""
    windows, first, used = [], 0, 0
    for w, count in enumerate(piece_counts):
        if w > first and used + count > room:
            windows.append((first, w))
            first, used = w, 0
        used += count
    windows.append((first, len(piece_counts)))
    return windows


def _word_pieces(tokenizer: FullTokenizer, words: Sequence[str], cache: dict, room: int) -> list:
    """Each word's pieces ([UNK] for a word without any), at most `room` of them."""
    pieces = list(map(cache.get, words))
    if None in pieces:
        for k, (word, got) in enumerate(zip(words, pieces)):
            if got is None:
                got = tokenizer.tokenize_to_ids(word) or [tokenizer.vocab.unk_id]
                pieces[k] = cache[word] = got[:room]
    return pieces


def _tag_ids(example: TaggedExample, tag_ids: dict, is_training: bool) -> list:
    """The id of each word's tag (0 for an unlabelled example outside training)."""
    if example.tags is None:
        return [_label_id(None, tag_ids, example.source, is_training, "tag")] * len(example.words)
    if len(example.tags) != len(example.words):
        raise DataError(f"{example.source}: {len(example.words)} words but {len(example.tags)} "
                        "tags (expected one tag per word)")
    ids = list(map(tag_ids.get, example.tags))
    if None in ids:
        return [_label_id(t, tag_ids, example.source, is_training, "tag") for t in example.tags]
    return ids


def encode_tagging(examples: Sequence[TaggedExample], tokenizer: FullTokenizer,
                   spec: TaskSpec, is_training: bool) -> EncodedTask:
    """Rows of whole words, label_ids / label_weights on each word's first piece."""
    vocab, seq = tokenizer.vocab, spec.max_seq_length
    tag_ids = {tag: i for i, tag in enumerate(spec.labels)}
    rows = _Rows(seq)
    labels, word_index, example_index, num_words = [], [], [], []
    cache: dict = {}
    for e, ex in enumerate(examples):
        ids = _tag_ids(ex, tag_ids, is_training)
        pieces = _word_pieces(tokenizer, ex.words, cache, seq - 2)
        counts = list(map(len, pieces))
        bounds = list(itertools.accumulate(counts, initial=0))
        flat = list(itertools.chain.from_iterable(pieces))
        # Per piece: the word it starts (-1 for a continuation) and that word's tag id.
        piece_word = np.full(len(flat), -1, np.int32)
        piece_word[bounds[:-1]] = np.arange(len(pieces))
        piece_tag = np.zeros(len(flat), np.int32)
        piece_tag[bounds[:-1]] = ids
        num_words.append(len(pieces))
        for first, stop in word_windows(counts, seq - 2):
            a, b = bounds[first], bounds[stop]
            rows.add([vocab.cls_id] + flat[a:b] + [vocab.sep_id], [0] * (b - a + 2))
            word_row = np.full(seq, -1, np.int32)
            word_row[1:1 + b - a] = piece_word[a:b]
            label_row = np.zeros(seq, np.int32)
            label_row[1:1 + b - a] = piece_tag[a:b]
            word_index.append(word_row)
            labels.append(label_row)
            example_index.append(e)
    features = rows.encoder_features()
    word_index = np.asarray(word_index, np.int32).reshape(-1, seq)
    features["label_ids"] = np.asarray(labels, np.int32).reshape(-1, seq)
    features["label_weights"] = (word_index >= 0).astype(np.float32)
    meta = TaggingMeta(np.asarray(example_index, np.int32), word_index, np.asarray(num_words, np.int32))
    return EncodedTask(features, meta)


def decode_tags(meta: TaggingMeta, label_ids_pred: np.ndarray, labels: Sequence[str]) -> list[list[str]]:
    """Word-level tags per example from predicted label ids [N, S] (or logits [N, S, L]) of the
    feature rows in `meta`'s order (padding rows of an evaluation batch removed)."""
    pred = np.asarray(label_ids_pred)
    if pred.ndim == 3:
        pred = pred.argmax(-1)
    if pred.shape != meta.word_index.shape:
        raise ValueError(f"predictions of shape {pred.shape}, expected {meta.word_index.shape} "
                         "(one row per feature, padding rows removed)")
    out: list[list[str | None]] = [[None] * int(n) for n in meta.num_words]
    rows, cols = np.nonzero(meta.word_index >= 0)
    for r, c in zip(rows.tolist(), cols.tolist()):
        out[meta.example_index[r]][meta.word_index[r, c]] = labels[int(pred[r, c])]
    return out


# ------------------------------------------------------------------------------ span

def doc_windows(num_tokens: int, room: int, doc_stride: int) -> list[tuple[int, int]]:
    """(start, length) of the context windows: `room` pieces each, starting every `doc_stride`
    pieces until one reaches the end (run_squad's doc spans); one empty window for an empty
    context."""
    windows, start = [], 0
    while True:
        length = min(num_tokens - start, room)
        windows.append((start, length))
        if start + length >= num_tokens:
            return windows
        start += min(length, doc_stride)


def max_context_windows(windows: Sequence[tuple[int, int]], num_tokens: int) -> np.ndarray:
    """[num_tokens] int: the window in which each context piece has the most context, the one
    maximising min(pieces left, pieces right) + 0.01 * window length, the first on a tie
    (run_squad's _check_is_max_context); only that window's row scores the piece as a start."""
    best = np.full(num_tokens, -1, np.int64)
    best_score = np.full(num_tokens, -np.inf)
    for w, (start, length) in enumerate(windows):
        position = np.arange(start, start + length)
        score = np.minimum(position - start, start + length - 1 - position) + 0.01 * length
        better = score > best_score[start:start + length]
        best[start:start + length][better] = w
        best_score[start:start + length][better] = score[better]
    return best


def answer_pieces(example: SpanExample, starts: Sequence[int], ends: Sequence[int],
                  is_training: bool) -> tuple[int, int] | None:
    """First and last context piece of the first answer (inclusive), from its character span:
    the pieces that overlap it, so a piece containing an answer boundary is part of it. None
    when there is no usable answer (an error in training)."""
    if not example.answers:
        if is_training:
            raise DataError(f"{example.source}: no answer (training questions need one)")
        return None
    text, offset = example.answers[0]
    found = example.context[offset:offset + len(text)] if offset >= 0 else None
    first = bisect.bisect_right(ends, offset)  # first piece ending after the answer starts
    last = bisect.bisect_left(starts, offset + len(text)) - 1  # last piece starting inside it
    if found != text or not text or first > last:
        if is_training:
            problem = (f"is not at character {offset} of the context (found {found!r})"
                       if found != text else "covers no token of the context")
            raise DataError(f"{example.source}: answer {text!r} {problem}")
        return None
    return first, last


def encode_span(examples: Sequence[SpanExample], tokenizer: FullTokenizer, spec: TaskSpec,
                is_training: bool) -> EncodedTask:
    """``[CLS] q [SEP] window [SEP]`` rows, start/end positions of the first answer (0 when it
    is not wholly in the window; also outside training when the examples have answers, for a
    dev loss), and the SpanMeta of every row."""
    vocab, seq = tokenizer.vocab, spec.max_seq_length
    rows = _Rows(seq)
    positions, example_index, char_spans, max_context = [], [], [], []
    for e, ex in enumerate(examples):
        query = tokenizer.tokenize_to_ids(ex.question)[:spec.max_query_length]
        doc, starts, ends = tokenize_with_offsets(tokenizer, ex.context)
        room = seq - len(query) - 3
        if room <= 0:
            raise ConfigError(f"max_seq_length {seq} leaves no room for the context after a "
                              f"question of {len(query)} pieces (max_query_length "
                              f"{spec.max_query_length}); expected max_seq_length > "
                              f"max_query_length + 3")
        target = answer_pieces(ex, starts, ends, is_training)
        windows = doc_windows(len(doc), room, spec.doc_stride)
        owner = max_context_windows(windows, len(doc))
        offset = len(query) + 2  # row position of the window's first piece
        for w, (start, length) in enumerate(windows):
            rows.add([vocab.cls_id] + query + [vocab.sep_id] + doc[start:start + length] + [vocab.sep_id],
                     [0] * offset + [1] * (length + 1))
            inside = target is not None and start <= target[0] and target[1] < start + length
            positions.append((target[0] - start + offset, target[1] - start + offset) if inside else (0, 0))
            span = np.full((2, seq), -1, np.int32)
            span[0, offset:offset + length] = starts[start:start + length]
            span[1, offset:offset + length] = ends[start:start + length]
            char_spans.append(span)
            flags = np.zeros(seq, bool)
            flags[offset:offset + length] = owner[start:start + length] == w
            max_context.append(flags)
            example_index.append(e)
    features = rows.encoder_features()
    pos = np.asarray(positions, np.int32).reshape(-1, 2)
    features["start_positions"], features["end_positions"] = pos[:, 0].copy(), pos[:, 1].copy()
    spans = np.asarray(char_spans, np.int32).reshape(-1, 2, seq)
    meta = SpanMeta(np.asarray(example_index, np.int32), spans[:, 0].copy(), spans[:, 1].copy(),
                    np.asarray(max_context, bool).reshape(-1, seq))
    return EncodedTask(features, meta)


def _softmax(scores: list) -> list:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [x / total for x in exps]


def _row_candidates(meta: SpanMeta, row: int, start_logits: np.ndarray, end_logits: np.ndarray,
                    n_best_size: int, max_answer_length: int) -> list:
    """(score, start logit, end logit, char start, char end) of the valid spans among the
    top-n starts x top-n ends of one feature row."""
    char_start, char_end = meta.char_start[row], meta.char_end[row]
    out = []
    starts = np.argsort(-start_logits, kind="stable")[:n_best_size]
    ends = np.argsort(-end_logits, kind="stable")[:n_best_size]
    for s in starts.tolist():
        if char_start[s] < 0 or not meta.token_is_max_context[row, s]:
            continue
        for t in ends.tolist():
            if char_end[t] < 0 or t < s or t - s + 1 > max_answer_length:
                continue
            a, b = float(start_logits[s]), float(end_logits[t])
            out.append((a + b, a, b, int(char_start[s]), int(char_end[t])))
    return out


def decode_spans(examples: Sequence[SpanExample], meta: SpanMeta, start_logits: np.ndarray,
                 end_logits: np.ndarray, n_best_size: int = 20,
                 max_answer_length: int = 30) -> tuple[dict, dict]:
    """(predictions {guid: answer text}, nbest {guid: [{text, probability, start_logit,
    end_logit}, ...]}) from start/end logits [N, S] of the feature rows in `meta`'s order
    (`examples` and `meta` from the same `encode_examples` call, padding rows removed).

    Candidates are the top-n starts x top-n ends of every window of an example with the start
    in the context and max-context, end >= start and at most `max_answer_length` pieces; the
    best sum of logits wins across windows; texts are cut from the original context and
    repeated texts kept once; probabilities are a softmax over the n-best. An example without
    a valid span predicts "" (its n-best is that one empty answer)."""
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    expected = meta.char_start.shape
    if start_logits.shape != expected or end_logits.shape != expected:
        raise ValueError(f"logits of shapes {start_logits.shape} and {end_logits.shape}, expected "
                         f"{expected} (one row per feature, padding rows removed)")
    by_example: dict = {}
    for row, e in enumerate(meta.example_index.tolist()):
        by_example.setdefault(e, []).extend(_row_candidates(
            meta, row, start_logits[row], end_logits[row], n_best_size, max_answer_length))
    predictions, nbest = {}, {}
    for e, ex in enumerate(examples):
        chosen, seen = [], set()
        for score, a, b, cs, ce in sorted(by_example.get(e, []), key=lambda c: -c[0]):
            text = ex.context[cs:ce]
            if text not in seen:
                seen.add(text)
                chosen.append((text, score, a, b))
            if len(chosen) == n_best_size:
                break
        if not chosen:
            chosen = [("", 0.0, 0.0, 0.0)]
        probs = _softmax([c[1] for c in chosen])
        predictions[ex.guid] = chosen[0][0]
        nbest[ex.guid] = [{"text": t, "probability": p, "start_logit": a, "end_logit": b}
                          for (t, _, a, b), p in zip(chosen, probs)]
    return predictions, nbest


# ------------------------------------------------------------------------------ dispatcher

_ENCODERS = {
    "classification": (TextExample, encode_classification),
    "tagging": (TaggedExample, encode_tagging),
    "span": (SpanExample, encode_span),
}


def encode_examples(kind: str, examples: Sequence, tokenizer: FullTokenizer, spec: TaskSpec,
                    is_training: bool) -> EncodedTask:
    """Features and metadata of `examples` for a task of `kind` (`tasks.TASK_KINDS`)."""
    check_kind(kind)
    if spec.kind != kind:
        raise ConfigError(f"task.kind is {spec.kind!r} but {kind!r} examples were given")
    example_type, encode = _ENCODERS[kind]
    for ex in examples:
        if not isinstance(ex, example_type):
            where = getattr(ex, "source", "") or "an example"
            raise DataError(f"{where}: a {kind} task reads {example_type.__name__}s, got "
                            f"{type(ex).__name__}")
    return encode(examples, tokenizer, spec, is_training)


# ------------------------------------------------------------------------------ tf.data

def _pipeline(input_context) -> tuple[int, int]:
    if input_context is None:
        return 1, 0
    return int(input_context.num_input_pipelines), int(input_context.input_pipeline_id)


def eval_feature_indices(num_features: int, batch_size: int, input_context=None) -> np.ndarray:
    """The feature row behind each element of this input pipeline's evaluation stream (what
    `task_dataset(is_training=False)` yields, in order), -1 for a padding copy: pipeline i of n
    takes rows i, i+n, i+2n, ...; every pipeline yields the same number of batches (enough for
    the largest share), the rest padding."""
    num_pipelines, pipeline_id = _pipeline(input_context)
    own = np.arange(pipeline_id, num_features, num_pipelines, dtype=np.int64)
    largest_share = -(-num_features // num_pipelines)
    order = np.full(max(1, -(-largest_share // batch_size)) * batch_size, -1, np.int64)
    order[:len(own)] = own
    return order


def _check_dataset_args(features: dict, batch_size: int, skip_batches: int, is_training: bool) -> int:
    sizes = {name: int(np.shape(value)[0]) for name, value in features.items()}
    if not sizes or "input_ids" not in sizes:
        raise ConfigError("task_dataset: features need at least input_ids")
    if len(set(sizes.values())) != 1:
        raise DataError(f"task_dataset: features differ in their number of rows ({sizes})")
    if sizes["input_ids"] == 0:
        raise DataError("task_dataset: no examples (the input file gave no features)")
    if batch_size <= 0:
        raise ConfigError(f"batch_size must be > 0, got {batch_size}")
    if skip_batches < 0 or (skip_batches and not is_training):
        raise ConfigError(f"skip_batches must be >= 0 and only given for training, got {skip_batches}")
    return sizes["input_ids"]


def task_dataset(features: dict, batch_size: int, *, is_training: bool, seed: int | None,
                 input_context=None, skip_batches: int = 0):
    """A tf.data.Dataset of feature batches ({name: [batch_size, ...]}, static shapes) for one
    input pipeline; `batch_size` is this pipeline's batch.

    Training repeats forever; epoch e is a permutation of this pipeline's rows drawn from
    (seed, e) by a stateless shuffle, and batches run across epoch boundaries
    (drop_remainder), so `skip_batches=k` starts exactly at batch k of an uninterrupted run
    with the same seed (seed None: a random one). Evaluation is one pass in row order, the last
    batch padded to `batch_size` with copies of a row whose example_weight is 0, so every row
    is predicted once (`eval_feature_indices` gives the row behind each element).

    Sharding: with `input_context` (tf.distribute.InputContext), pipeline i of n owns rows i,
    i+n, i+2n, ... (training shuffles only its own rows each epoch); the dataset is marked not
    to be sharded again by a strategy."""
    import tensorflow as tf

    n = _check_dataset_args(features, batch_size, skip_batches, is_training)
    features = dict(features)
    features.setdefault("example_weight", np.ones((n,), np.float32))
    table = {name: tf.constant(value) for name, value in features.items()}

    def gather(rows, keep=None):
        batch = {name: tf.gather(value, rows) for name, value in table.items()}
        if keep is not None:
            batch["example_weight"] = batch["example_weight"] * keep
        return batch

    if is_training:
        ds = _training_rows(n, batch_size, seed, input_context, skip_batches)
        ds = ds.batch(batch_size, drop_remainder=True).map(gather)
    else:
        order = eval_feature_indices(n, batch_size, input_context)
        keep = (order >= 0).astype(np.float32)
        rows = np.where(order >= 0, order, max(order[0], 0))
        ds = tf.data.Dataset.from_tensor_slices((rows, keep)).batch(batch_size, drop_remainder=True)
        ds = ds.map(gather)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _training_rows(num_features: int, batch_size: int, seed: int | None, input_context,
                   skip_batches: int):
    """The endless stream of this pipeline's row indices, reshuffled per epoch from (seed,
    epoch), starting after `skip_batches` batches."""
    import tensorflow as tf

    num_pipelines, pipeline_id = _pipeline(input_context)
    own = np.arange(pipeline_id, num_features, num_pipelines, dtype=np.int64)
    if not len(own):
        raise DataError(f"task_dataset: input pipeline {pipeline_id} of {num_pipelines} has no "
                        f"examples ({num_features} in all)")
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    own_t, seed_t = tf.constant(own), tf.constant(seed, tf.int64)

    def epoch_rows(epoch):
        order = tf.random.experimental.stateless_shuffle(own_t, seed=tf.stack([seed_t, epoch]))
        return tf.data.Dataset.from_tensor_slices(order)

    first_epoch, skip = divmod(skip_batches * batch_size, len(own))
    ds = tf.data.Dataset.counter(first_epoch).flat_map(epoch_rows)
    return ds.skip(skip) if skip else ds
