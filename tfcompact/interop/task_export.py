"""Deployable exports of a fine-tuned model directory (``task.json`` + ``best/``).

`export_task_savedmodel` writes one SavedModel whose ``serving_default`` takes raw strings and
needs only TensorFlow and tensorflow-text to run (``import tensorflow_text`` before
``tf.saved_model.load``; no tfcompact code): the project's tokenizer built from tensorflow-text
ops, BERT packing (`interop.preprocessing.BertPreprocessor`), the task model, and decoding:

- classification, input ``text`` (and ``text_b`` for a pair task: task.json's ``text_fields``
  names two, or its format is ``xnli``): ``probabilities`` [B, C] float32, ``label_ids`` [B]
  int32, ``labels`` [B] string. ``serving_single`` (text) and ``serving_pair`` (text, text_b)
  are there too, whichever ``serving_default`` is (a pair task read from a format that finds
  its columns itself, e.g. LCQMC's TSV header, has empty text_fields: use ``serving_pair``).
- tagging, input ``text``: a word is each character of the text that tokenizes to at least
  one WordPiece (Chinese NER data has one character a line; spaces and dropped control
  characters are no words); its tag is read at its first piece. Per character of the
  original string (T = the batch's longest text, in characters):
  ``tags`` [B, T] string ("" for a character that is no word, is cut off by
  max_seq_length, or is padding), ``tag_ids`` [B, T] int32 (-1 there).
  Entities as seqeval's default mode finds them in the word tags (IOB2/BIOES prefixes
  ``B- I- E- S-``, type after the prefix), padded to the batch's largest count K:
  ``entity_types`` [B, K] string (""), ``entity_starts`` / ``entity_ends`` [B, K] int32
  character offsets [start, end) in the original string (-1), ``entity_texts`` [B, K] string
  (the original substring, ""), ``num_entities`` [B] int32.
- span, inputs ``question`` and ``context``: the context is cut into windows of
  max_seq_length - 3 - len(question pieces) tokens every ``doc_stride`` tokens (the question cut
  to ``max_query_length`` pieces), as training featurised it; in every window the top
  ``n_best_size`` start and end positions are paired (both context tokens, end >= start,
  at most ``max_answer_length`` tokens) and the best pair over all windows by
  start + end logit wins. ``answer`` [B] string (a substring of the original context),
  ``start`` / ``end`` [B] int32 character offsets [start, end) in the context (-1 when no
  pair is valid, answer ""), ``score`` [B] float32 (start + end logit, -inf when none).

Every export also has the ``task_logits`` signature: the TF Hub encoder inputs
``input_word_ids``, ``input_mask``, ``input_type_ids`` (int32 [B, S]) -> the task model's
outputs (``logits``, or ``start_logits``/``end_logits``); it is what TFLite converts. The
restored object carries ``labels`` (string [C]), ``max_seq_length``, ``vocab_size`` and the
assets ``vocab.txt`` and ``task.json``.

Character offsets count Unicode code points, as Python indexes a str. Tokens are mapped back
through normalisation (curly quotes, ellipsis, lower-casing, dropped marks) by the rules of
`tfcompact.text.offsets`: each character's normalised length is computed on its own and
normalisation is additive in length, so each normalised byte belongs to one original character.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tfcompact import modeldir
from tfcompact.errors import ConfigError, UserError
from tfcompact.interop.output_dir import atomic_output_dir, check_output_dir
from tfcompact.interop.preprocessing import (
    BertPreprocessor,
    export_preprocessing_savedmodel,
)
from tfcompact.interop.savedmodel import (
    FEATURE_KEYS,
    encoder_input_signature,
    export_encoder,
)
from tfcompact.interop.tf1_checkpoint import checkpoint_files, resolve_checkpoint_prefix
from tfcompact.interop.tflite import QUANTIZE_MODES, check_tflite, convert_module
from tfcompact.models.tasks import task_backbone
from tfcompact.tasks import TASK_FILE, TaskSpec
from tfcompact.text.tokenizer import (
    _TF_ASCII_PUNCT,
    _TF_CJK,
    MAX_CHARS_PER_WORD,
    UNK,
    Vocab,
    make_tf_tokenizer,
)

TASK_FORMATS = ("savedmodel", "tflite")
# the output marker's kind of `export_task_savedmodel` (interop/output_dir.py)
SAVEDMODEL_KIND = "export --format savedmodel (task model only)"
GATE_BATCHES = 8  # random inputs the TFLite export is checked on

# seqeval's chunk prefixes; any other first character of a tag counts as "other".
_PREFIXES = {"B": 0, "I": 1, "O": 2, "E": 3, "S": 4, ".": 5}
_B, _I, _O, _E, _S, _DOT, _OTHER = 0, 1, 2, 3, 4, 5, 6
# The score of "no valid span": the lowest float64, which segment maxima start from (-inf
# would not compare equal to their result).
NO_SPAN = np.finfo(np.float64).min


# ------------------------------------------------------------------------------ tokens

def tokenize_with_offsets(tokenizer, text: tf.Tensor):
    """[B] strings -> (ids, starts, ends), each int32 [B, (tokens)]: the ids of
    `tokenizer.tokenize(text)` and each piece's code-point span [start, end) in the original
    string, by the rules of `tfcompact.text.offsets` (a piece ends after the dropped
    combining marks that follow it; an [UNK] word spans the whole word)."""
    chars = tf.strings.unicode_split(text, "UTF-8")
    flat_chars = chars.flat_values
    norm_len = tf.strings.length(tokenizer.normalize(flat_chars))  # bytes, per character
    char_byte = tf.cumsum(norm_len, exclusive=True)  # where each character's bytes start
    total = tf.reduce_sum(norm_len, keepdims=True)
    row_char0 = tf.cast(chars.row_starts(), tf.int32)
    row_byte0 = tf.gather(tf.concat([char_byte, total], 0), row_char0)
    keep = f"[{_TF_ASCII_PUNCT}]|\\p{{P}}|[{_TF_CJK}]"
    words, word_begin, word_end = tf_text.regex_split_with_offsets(
        tokenizer.normalize(text), f"\\s+|{keep}", keep)
    flat_words = words.flat_values
    too_long = tf.strings.length(flat_words, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
    pieces, piece_begin, piece_end = tokenizer.wordpiece.tokenize_with_offsets(
        tf.where(too_long, tf.constant(UNK), flat_words))
    # pieces: [words, (pieces)]; their byte offsets are inside the (normalised) word
    word_of_piece = pieces.value_rowids()
    word_row = tf.cast(words.value_rowids(), tf.int32)
    word_byte0 = tf.gather(row_byte0, word_row) + tf.cast(word_begin.flat_values, tf.int32)
    word_len = tf.cast(word_end.flat_values - word_begin.flat_values, tf.int32)
    long_piece = tf.gather(too_long, word_of_piece)
    base = tf.gather(word_byte0, word_of_piece)
    begin = base + tf.where(long_piece, 0, tf.cast(piece_begin.flat_values, tf.int32))
    end = base + tf.where(long_piece, tf.gather(word_len, word_of_piece),
                          tf.cast(piece_end.flat_values, tf.int32))
    first = tf.searchsorted(char_byte, begin, side="right") - 1
    last = tf.searchsorted(char_byte, end - 1, side="right") - 1
    # extend the end over dropped combining marks (normalised to nothing) right after it
    dropped_mark = (norm_len == 0) & tf.strings.regex_full_match(flat_chars, r"\p{M}")
    kept = tf.logical_not(dropped_mark)
    kept_before = tf.cumsum(tf.cast(kept, tf.int32), exclusive=True)
    kept_before = tf.concat([kept_before, tf.reduce_sum(tf.cast(kept, tf.int32), keepdims=True)], 0)
    kept_at = tf.concat([tf.cast(tf.where(kept)[:, 0], tf.int32), tf.shape(flat_chars)], 0)
    next_kept = tf.gather(kept_at, tf.gather(kept_before, last + 1))
    piece_row = tf.gather(word_row, word_of_piece)
    row_end = tf.gather(tf.cast(chars.row_limits(), tf.int32), piece_row)
    end_char = tf.minimum(next_kept, row_end)
    row0 = tf.gather(row_char0, piece_row)
    ids = words.with_flat_values(pieces).merge_dims(1, 2)
    return (tf.cast(ids, tf.int32), ids.with_flat_values(first - row0),
            ids.with_flat_values(end_char - row0))


def character_pieces(tokenizer, text: tf.Tensor) -> tf.RaggedTensor:
    """[B] strings -> int32 [B, (characters), (pieces)]: each character tokenized on its own
    (the tagging words: a character with no piece is no word)."""
    chars = tf.strings.unicode_split(text, "UTF-8")
    return tf.cast(chars.with_flat_values(tokenizer.tokenize(chars.flat_values)), tf.int32)


def _global_index(ragged: tf.RaggedTensor) -> tf.Tensor:
    """int32 [B] flat index of each row's first value (its row start)."""
    return tf.cast(ragged.row_starts(), tf.int32)


# ------------------------------------------------------------------------------ labels

def seqeval_parts(label: str) -> tuple[int, str]:
    """(prefix code, type) of a tag as seqeval's default (prefix) mode reads it: the first
    character is the chunk tag, the type is what follows the first '-' ('_' when empty)."""
    return _PREFIXES.get(label[:1], _OTHER), label[1:].split("-", 1)[-1] or "_"


def label_tables(labels: list) -> tuple[np.ndarray, np.ndarray, list]:
    """Prefix codes [C + 2] and type ids [C + 2] of the labels, then of seqeval's sentinel 'O'
    (id C) and of its start state (id C + 1: tag 'O', type ''), and the type names."""
    parts = [seqeval_parts(label) for label in labels] + [(_O, "_"), (_O, "")]
    names = sorted({t for _, t in parts})
    return (np.array([p for p, _ in parts], np.int32),
            np.array([names.index(t) for _, t in parts], np.int32), names)


# ------------------------------------------------------------------------------ decoding

def _seqeval_marks(prev_tag, tag, prev_type, type_):
    """seqeval's end_of_chunk (a chunk ended before this word) and start_of_chunk (one starts
    here), elementwise over prefix codes and type ids."""
    def eq(x, code):
        return tf.equal(x, code)

    new_type = tf.not_equal(prev_type, type_)
    ended = (eq(prev_tag, _E) | eq(prev_tag, _S)
             | ((eq(prev_tag, _B) | eq(prev_tag, _I)) & (eq(tag, _B) | eq(tag, _S) | eq(tag, _O)))
             | (tf.not_equal(prev_tag, _O) & tf.not_equal(prev_tag, _DOT) & new_type))
    started = (eq(tag, _B) | eq(tag, _S)
               | ((eq(prev_tag, _E) | eq(prev_tag, _S) | eq(prev_tag, _O))
                  & (eq(tag, _E) | eq(tag, _I)))
               | (tf.not_equal(tag, _O) & tf.not_equal(tag, _DOT) & new_type))
    return ended, started


def extract_entities(tag_ids: tf.RaggedTensor, tables) -> tuple:
    """Entities of each row of word tag ids [B, (words)] as seqeval's get_entities finds them
    (default mode, a sentinel 'O' after the last word): (row [E], type id [E], first word [E],
    last word [E]) with word indices inside the row, in row then position order."""
    prefix_of, type_of, _ = tables
    sentinel = len(prefix_of) - 2
    nrows = tag_ids.nrows(out_type=tf.int32)
    tags = tf.concat([tag_ids, tf.fill([nrows, 1], sentinel)], axis=1)
    prev = tf.concat([tf.fill([nrows, 1], sentinel + 1), tag_ids], axis=1)
    flat, flat_prev = tags.flat_values, prev.flat_values
    prefix_of, type_of = tf.constant(prefix_of), tf.constant(type_of)
    prev_type = tf.gather(type_of, flat_prev)
    ended, started = _seqeval_marks(tf.gather(prefix_of, flat_prev), tf.gather(prefix_of, flat),
                                    prev_type, tf.gather(type_of, flat))
    row = tf.cast(tags.value_rowids(), tf.int32)
    row0 = tf.gather(_global_index(tags), row)
    # the chunk that ends before position j began at the last start before j in the row
    start_count = tf.cumsum(tf.cast(started, tf.int32), exclusive=True)
    start_at = tf.concat([[-1], tf.cast(tf.where(started)[:, 0], tf.int32)], 0)
    last_start = tf.gather(start_at, start_count)
    begin = tf.where(last_start >= row0, last_start, row0)
    at = tf.cast(tf.where(ended)[:, 0], tf.int32)
    ent_row0 = tf.gather(row0, at)
    return (tf.gather(row, at), tf.gather(prev_type, at), tf.gather(begin, at) - ent_row0,
            at - 1 - ent_row0)


def _pad(values, rows, nrows, default):
    """Values with sorted row ids -> dense [nrows, K] padded with `default`."""
    ragged = tf.RaggedTensor.from_value_rowids(values, tf.cast(rows, tf.int64),
                                               nrows=tf.cast(nrows, tf.int64))
    return ragged.to_tensor(default_value=default)


def best_spans(start_logits, end_logits, lo, length, max_context, *, n_best_size: int,
               max_answer_length: int, seq_length: int):
    """The best valid (score float64, start, end position) of each window [M]: the top
    `n_best_size` starts x ends (ties: lower position first), start and end inside the
    window's context positions [lo, lo + length), the start max-context (`max_context`:
    callable positions [M, k] -> bool), end >= start, at most `max_answer_length` pieces;
    score NO_SPAN when no pair is valid."""
    k = min(n_best_size, seq_length)
    start_val, start_pos = tf.math.top_k(start_logits, k)
    end_val, end_pos = tf.math.top_k(end_logits, k)
    s, e = start_pos[:, :, None], end_pos[:, None, :]
    lo, hi = lo[:, None, None], (lo + length)[:, None, None]
    valid = ((s >= lo) & (s < hi) & (e >= lo) & (e < hi) & (e >= s)
             & (e - s + 1 <= max_answer_length) & max_context(start_pos)[:, :, None])
    score = tf.cast(start_val, tf.float64)[:, :, None] + tf.cast(end_val, tf.float64)[:, None, :]
    score = tf.reshape(tf.where(valid, score, NO_SPAN), [-1, k * k])
    best = tf.argmax(score, axis=1, output_type=tf.int32)
    return (tf.gather(score, best, batch_dims=1), tf.gather(start_pos, best // k, batch_dims=1),
            tf.gather(end_pos, best % k, batch_dims=1))


# ------------------------------------------------------------------------------ windows

def word_windows(word_pieces: tf.RaggedTensor, room: int):
    """Greedy windows of whole words with at most `room` pieces each, as the Python tagging
    featurisation cuts a long sentence (`inputs.task_features.word_windows`; one empty window
    for a text without words). word_pieces: int32 [B, (words), (pieces)], each word at most
    `room` pieces. Returns (first [M], stop [M]) global word indices, row by row in order."""
    counts = tf.cast(word_pieces.values.row_lengths(), tf.int32)
    before = tf.cumsum(counts, exclusive=True)
    before_pad = tf.concat([before, tf.reduce_sum(counts, keepdims=True)], 0)
    through = before + counts
    first, limit = _global_index(word_pieces), tf.cast(word_pieces.row_limits(), tf.int32)

    def next_start(w, lim):
        # the first word that no longer fits after the window starting at word w
        return tf.minimum(tf.searchsorted(through, tf.gather(before_pad, w) + room, side="right"),
                          lim)

    def body(i, cur, starts, keep):
        starts = starts.write(i, cur)
        keep = keep.write(i, (cur < limit) | tf.equal(i, 0))
        return i + 1, tf.where(cur < limit, next_start(cur, limit), cur), starts, keep

    _, _, starts, keep = tf.while_loop(
        lambda i, cur, *_: tf.equal(i, 0) | tf.reduce_any(cur < limit), body,
        (tf.constant(0), first, tf.TensorArray(tf.int32, 0, dynamic_size=True),
         tf.TensorArray(tf.bool, 0, dynamic_size=True)))
    keep = tf.transpose(keep.stack())
    win_first = tf.boolean_mask(tf.transpose(starts.stack()), keep)
    row_limit = tf.boolean_mask(tf.broadcast_to(limit[:, None], tf.shape(keep)), keep)
    return win_first, next_start(win_first, row_limit), before


def doc_windows(query_len: tf.Tensor, doc_len: tf.Tensor, seq_length: int, doc_stride: int):
    """The context windows of each example, as `inputs.task_features.doc_windows`: `room` =
    seq_length - 3 - question pieces each, every min(doc_stride, room) pieces until one reaches
    the end. Returns (example [M], start [M], length [M]) in example then window order."""
    room = seq_length - 3 - query_len
    stride = tf.minimum(doc_stride, room)
    count = 1 + tf.maximum(0, (doc_len - room + stride - 1) // stride)
    windows = tf.ragged.range(count)
    example = tf.cast(windows.value_rowids(), tf.int32)
    start = windows.flat_values * tf.gather(stride, example)
    length = tf.minimum(tf.gather(room, example), tf.gather(doc_len, example) - start)
    return example, start, length


def max_context(example, start, length, doc_first, num_doc):
    """bool [sum(length)]: for each piece of each window (flat, window by window) whether this
    window gives it the most context: min(pieces left, pieces right) + 0.01 * window length,
    highest in the first window (run_squad's _check_is_max_context, in float64 as Python)."""
    pieces = tf.ragged.range(length)
    window = tf.cast(pieces.value_rowids(), tf.int32)
    j = pieces.flat_values
    n = tf.gather(length, window)
    score = (tf.cast(tf.minimum(j, n - 1 - j), tf.float64)
             + 0.01 * tf.cast(n, tf.float64))
    doc = tf.gather(doc_first, tf.gather(example, window)) + tf.gather(start, window) + j
    best = tf.math.unsorted_segment_max(score, doc, num_doc)
    num_windows = tf.size(start)
    first = tf.math.unsorted_segment_min(
        tf.where(tf.equal(score, tf.gather(best, doc)), window, num_windows), doc, num_doc)
    return tf.equal(tf.gather(first, doc), window)


# ------------------------------------------------------------------------------ the module

class TaskServingModule(tf.Module):
    """The object saved as the task SavedModel (see the module docstring)."""

    def __init__(self, task_model, spec: TaskSpec, vocab_path: str, task_file: str,
                 seq_length: int):
        super().__init__(name="task")
        vocab = Vocab.load(vocab_path)
        tokenizer = make_tf_tokenizer(vocab_path, spec.do_lower_case)
        # Only the packer is used; the preprocessor object itself is not saved (its own
        # signatures would be traced again), its vocabulary asset is.
        self._pack = BertPreprocessor(tokenizer, cls_id=vocab.cls_id, sep_id=vocab.sep_id,
                                      default_seq_length=seq_length)._pack
        self.vocab_file = tf.saved_model.Asset(vocab_path)
        self.tokenizer = tokenizer
        self.task_model = task_model
        self.task_file = tf.saved_model.Asset(task_file)
        self.labels = tf.Variable(list(spec.labels) or [""], trainable=False, name="labels")
        self.max_seq_length = tf.Variable(seq_length, trainable=False, name="max_seq_length")
        self.vocab_size = tf.Variable(len(vocab), trainable=False, name="vocab_size")
        self._spec = spec
        self._seq_length = seq_length
        self._label_names = tf.constant(list(spec.labels) or [""])
        self._tables = label_tables(list(spec.labels))
        # autograph off: the decoding is written with tf ops and loops only, and converting
        # everything it calls (tensorflow-text included) would only slow the export down
        self.task_logits = tf.function(self._task_logits, autograph=False,
                                       input_signature=[encoder_input_signature()])

    def _task_logits(self, inputs: dict) -> dict:
        out = self.task_model({"input_ids": inputs["input_word_ids"],
                               "input_mask": inputs["input_mask"],
                               "segment_ids": inputs["input_type_ids"]}, training=False)
        return {k: tf.cast(v, tf.float32) for k, v in out.items()}

    def _run(self, segments: list) -> dict:
        """Pack ragged id segments to the serving length and run the task model."""
        return self.task_logits(self._pack(segments, self._seq_length))  # one trace of the model

    def classify(self, text, text_b=None) -> dict:
        segments = [self.tokenizer.tokenize(text)]
        if text_b is not None:
            segments.append(self.tokenizer.tokenize(text_b))
        logits = self._run([tf.cast(s, tf.int32) for s in segments])["logits"]
        label_ids = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"probabilities": tf.nn.softmax(logits, axis=-1), "label_ids": label_ids,
                "labels": tf.gather(self._label_names, label_ids)}

    def tag(self, text) -> dict:
        room = self._seq_length - 2
        pieces = character_pieces(self.tokenizer, text)
        is_word = pieces.row_lengths(axis=2) > 0
        word_pieces = tf.ragged.boolean_mask(pieces, is_word)[:, :, :room]
        first, stop, before = word_windows(word_pieces, room)
        window_ids = tf.gather(word_pieces.values, tf.ragged.range(first, stop)).merge_dims(1, 2)
        pred = tf.argmax(self._run([window_ids])["logits"], axis=-1, output_type=tf.int32)
        window = tf.searchsorted(first, tf.range(tf.size(before)), side="right") - 1
        position = 1 + before - tf.gather(before, tf.gather(first, window))
        word_tag = tf.gather_nd(pred, tf.stack([window, position], axis=1))
        word_tags = tf.RaggedTensor.from_row_splits(word_tag, word_pieces.row_splits)
        flat_is_word = is_word.flat_values
        word_of_char = tf.cumsum(tf.cast(flat_is_word, tf.int32), exclusive=True)
        char_tag = tf.where(flat_is_word,
                            tf.gather(tf.concat([word_tag, [-1]], 0), word_of_char), -1)
        tag_ids = is_word.with_flat_values(char_tag).to_tensor(default_value=-1)
        tags = tf.gather(self._label_names, tf.maximum(tag_ids, 0))
        out = {"tag_ids": tag_ids, "tags": tf.where(tag_ids >= 0, tags, "")}
        row, type_id, w0, w1 = extract_entities(word_tags, self._tables)
        char_of_word = tf.cast(tf.where(flat_is_word)[:, 0], tf.int32)
        row_word0 = tf.gather(_global_index(word_tags), row)
        row_char0 = tf.gather(_global_index(is_word), row)
        start = tf.gather(char_of_word, row_word0 + w0) - row_char0
        end = tf.gather(char_of_word, row_word0 + w1) - row_char0 + 1
        nrows = tf.shape(text)[0]
        texts = tf.strings.substr(tf.gather(text, row), start, end - start, unit="UTF8_CHAR")
        out.update({
            "entity_types": _pad(tf.gather(tf.constant(self._tables[2]), type_id), row, nrows, ""),
            "entity_starts": _pad(start, row, nrows, -1), "entity_ends": _pad(end, row, nrows, -1),
            "entity_texts": _pad(texts, row, nrows, ""),
            "num_entities": tf.math.unsorted_segment_sum(tf.ones_like(row), row, nrows)})
        return out

    def answer(self, question, context) -> dict:
        spec, seq = self._spec, self._seq_length
        query = tf.cast(self.tokenizer.tokenize(question), tf.int32)[:, :spec.max_query_length]
        ids, char_start, char_end = tokenize_with_offsets(self.tokenizer, context)
        query_len = tf.cast(query.row_lengths(), tf.int32)
        example, start, length = doc_windows(query_len, tf.cast(ids.row_lengths(), tf.int32),
                                             seq, spec.doc_stride)
        doc_first = _global_index(ids)
        window_doc0 = tf.gather(doc_first, example) + start
        pieces = tf.ragged.range(window_doc0, window_doc0 + length)
        out = self._run([tf.gather(query, example), tf.gather(ids.flat_values, pieces)])
        lo = 2 + tf.gather(query_len, example)
        is_max = tf.concat([max_context(example, start, length, doc_first,
                                        tf.size(ids.flat_values)), [False]], 0)
        piece0 = _global_index(pieces)

        def start_has_max_context(positions):
            j = tf.minimum(tf.maximum(positions - lo[:, None], 0),
                           tf.maximum(length - 1, 0)[:, None])
            return tf.gather(is_max, piece0[:, None] + j)

        score, s, e = best_spans(out["start_logits"], out["end_logits"], lo, length,
                                 start_has_max_context, n_best_size=spec.n_best_size,
                                 max_answer_length=spec.max_answer_length, seq_length=seq)
        nrows = tf.shape(context)[0]
        best = tf.math.unsorted_segment_max(score, example, nrows)
        windows = tf.range(tf.size(example))
        win = tf.math.unsorted_segment_min(
            tf.where(tf.equal(score, tf.gather(best, example)), windows, tf.size(example)),
            example, nrows)
        found = best > NO_SPAN
        none = tf.size(ids.flat_values)
        doc0, lo_w = tf.gather(window_doc0, win), tf.gather(lo, win)
        first = tf.where(found, doc0 + tf.gather(s, win) - lo_w, none)
        last = tf.where(found, doc0 + tf.gather(e, win) - lo_w, none)
        begin = tf.gather(tf.concat([char_start.flat_values, [-1]], 0), first)
        end = tf.gather(tf.concat([char_end.flat_values, [-1]], 0), last)
        answer = tf.strings.substr(context, tf.maximum(begin, 0), tf.maximum(end - begin, 0),
                                   unit="UTF8_CHAR")
        return {"answer": answer, "start": begin, "end": end,
                "score": tf.where(found, tf.cast(best, tf.float32), -np.inf)}

    def serving_signatures(self) -> dict:
        """``serving_default`` for the task's kind (classification: also ``serving_single``
        and ``serving_pair``) and ``task_logits``, as concrete functions."""
        def strings(*names):
            return [tf.TensorSpec([None], tf.string, name=n) for n in names]

        kind = self._spec.kind
        extra = {}
        if kind == "classification":
            self.serve_single = tf.function(lambda text: self.classify(text), autograph=False,
                                            input_signature=strings("text"))
            self.serve_pair = tf.function(lambda text, text_b: self.classify(text, text_b),
                                          autograph=False,
                                          input_signature=strings("text", "text_b"))
            extra = {"serving_single": self.serve_single.get_concrete_function(),
                     "serving_pair": self.serve_pair.get_concrete_function()}
            default = extra["serving_pair" if is_pair_task(self._spec) else "serving_single"]
        elif kind == "tagging":
            self.serve = tf.function(lambda text: self.tag(text), autograph=False,
                                     input_signature=strings("text"))
            default = self.serve.get_concrete_function()
        else:
            self.serve = tf.function(lambda question, context: self.answer(question, context),
                                     autograph=False,
                                     input_signature=strings("question", "context"))
            default = self.serve.get_concrete_function()
        return {"serving_default": default, **extra,
                "task_logits": self.task_logits.get_concrete_function()}


def is_pair_task(spec: TaskSpec) -> bool:
    """A classification task over two texts: task.json says so (`text_pair`, from the training
    data), names two text_fields, or its format is XNLI's."""
    return spec.kind == "classification" and (spec.text_pair or len(spec.text_fields) >= 2
                                              or spec.task_format == "xnli")


def check_serving_length(spec: TaskSpec, seq_length: int, max_positions: int) -> None:
    """The serving sequence length fits the model and, for span tasks, leaves room for the
    context after the longest question."""
    if not 3 <= seq_length <= max_positions:
        raise ConfigError(f"--seq_length {seq_length}: expected 3..{max_positions} (the model's "
                          "max_position_embeddings)")
    if spec.kind == "span" and spec.max_query_length + 3 >= seq_length:
        raise ConfigError(f"--seq_length {seq_length} leaves no room for the context after a "
                          f"question of max_query_length {spec.max_query_length} pieces; expected "
                          f"more than {spec.max_query_length + 3}")


def save_task_savedmodel(task_model, spec: TaskSpec, info, output_dir: str,
                         seq_length: int | None = None) -> str:
    """Write the raw-text task SavedModel of `task_model` (the model of the directory `info`
    describes, whose vocab.txt and task.json become assets) to `output_dir`, which must not
    exist yet."""
    seq_length = spec.max_seq_length if seq_length is None else seq_length
    check_serving_length(spec, seq_length, info.config.max_position_embeddings)
    if info.vocab_path is None:
        raise ConfigError(f"{info.path}: no vocab.txt; the raw-text SavedModel tokenizes with "
                          "the vocabulary the model was fine-tuned with")
    module = TaskServingModule(task_model, spec, info.vocab_path,
                               os.path.join(info.path, TASK_FILE), seq_length)
    tf.saved_model.save(module, output_dir, signatures=module.serving_signatures())
    return output_dir


# ------------------------------------------------------------------------------ exports

class _FixedShapeTask(tf.Module):
    """`serve`: a task SavedModel's `task_logits` at int32 [batch, seq_length] (what TFLite
    converts; converting the restored SavedModel, as interop.tflite does for encoders, gives the
    same logits where converting the in-memory Keras model gave NaN for ALBERT)."""

    def __init__(self, task_savedmodel, batch: int, seq_length: int):
        super().__init__()
        self.task = task_savedmodel
        spec = {k: tf.TensorSpec([batch, seq_length], tf.int32, name=k) for k in FEATURE_KEYS}
        self.serve = tf.function(task_savedmodel.task_logits, input_signature=[spec],
                                 autograph=False)


def _inputs(model_dir: str, checkpoint: str | None) -> tuple[list, str | None]:
    """The export's inputs ((flag, path) pairs no output may touch) and the checkpoint prefix."""
    inputs = [("--model_dir", model_dir)]
    if checkpoint is not None:
        checkpoint = resolve_checkpoint_prefix(checkpoint)
        inputs += [("--checkpoint", f) for f in checkpoint_files(checkpoint)]
    return inputs, checkpoint


def export_task_savedmodel(model_dir: str, output_dir: str, *, checkpoint: str | None = None,
                           seq_length: int | None = None, overwrite: bool = False) -> str:
    """Write the raw-text SavedModel (module docstring) of the fine-tuned directory `model_dir`
    (its best checkpoint, or `checkpoint`) to `output_dir`, all at once (built beside it and
    renamed; nothing is left on failure). `seq_length` defaults to task.json's max_seq_length."""
    inputs, checkpoint = _inputs(model_dir, checkpoint)
    check_output_dir(output_dir, kind=SAVEDMODEL_KIND, inputs=inputs, overwrite=overwrite)
    task_model, spec, info = modeldir.load_task_model(model_dir, checkpoint)
    with atomic_output_dir(output_dir, kind=SAVEDMODEL_KIND, inputs=inputs,
                           overwrite=overwrite) as tmp:
        save_task_savedmodel(task_model, spec, info, tmp, seq_length)
    return output_dir


def _check_task_flags(model_dir: str, fmt: str, flags: dict) -> None:
    """Only savedmodel and tflite apply to a fine-tuned directory, and only their flags."""
    if fmt not in TASK_FORMATS:
        raise UserError(f"--format {fmt}: a fine-tuned directory ({model_dir} has {TASK_FILE}) "
                        f"exports as {' or '.join(TASK_FORMATS)}")
    if fmt == "tflite" and flags.get("--quantize") not in QUANTIZE_MODES:
        raise UserError(f"--quantize {flags.get('--quantize')}: expected one of "
                        f"{', '.join(QUANTIZE_MODES)}")
    for flag, value in flags.items():
        if value not in (None, False, "none") and not (flag == "--quantize" and fmt == "tflite"):
            raise UserError(f"{flag} {value if value is not True else ''}".rstrip()
                            + f" does not apply to a fine-tuned directory's --format {fmt}")


def _tflite_with_gate(seq_length: int, quantize: str, tmp: str, task_dir: str,
                      model_dir: str) -> str:
    """model.tflite of the task SavedModel at `task_dir` at a fixed length, checked against it:
    fp32 must predict the same labels on every input (else nothing is written)."""
    path = os.path.join(tmp, "model.tflite")
    task = tf.saved_model.load(task_dir)
    convert_module(_FixedShapeTask(task, 1, seq_length), path, quantize=quantize, source=model_dir)
    check = check_tflite(path, task_dir, num_batches=GATE_BATCHES, loaded=task)
    if quantize == "none" and check.argmax_agreement < 1.0:
        raise UserError(f"TFLite conversion of {model_dir} is not faithful: predicted labels agree "
                        f"with the SavedModel on {check.argmax_agreement:.2%} of "
                        f"{GATE_BATCHES} inputs; nothing was written")
    diff = max(check.max_abs_diff.values())
    return (f"predicted labels agree with {os.path.basename(task_dir)}/ on "
            f"{check.argmax_agreement:.2%} of {GATE_BATCHES} random inputs, max |logit diff| "
            f"{diff:.2g}")


def export_task_dir(model_dir: str, fmt: str, output: str, *, checkpoint: str | None = None,
                    seq_length: int | None = None, quantize: str = "none",
                    do_lower_case: bool | None = None, overwrite: bool = False,
                    **other_flags) -> str:
    """`tfcompact export` of a fine-tuned directory; returns the summary line.

    savedmodel: ``task/`` (the raw-text SavedModel), ``encoder/`` (the fine-tuned backbone in
    the TF Hub text API), ``preprocessing/`` (strings -> packed features at seq_length),
    ``vocab.txt``, ``task.json``. tflite: ``model.tflite`` (the task model on int32
    input_word_ids/input_mask/input_type_ids [1, seq_length] -> its logits) and the ``task/``
    SavedModel it is checked against. `other_flags`: pretraining-only flags (must be unset).
    """
    _check_task_flags(model_dir, fmt, {"--quantize": quantize, **other_flags})
    inputs, checkpoint = _inputs(model_dir, checkpoint)
    kind = f"export --format {fmt}"
    check_output_dir(output, kind=kind, inputs=inputs, overwrite=overwrite)
    task_model, spec, info = modeldir.load_task_model(model_dir, checkpoint)
    if do_lower_case is not None and do_lower_case != spec.do_lower_case:
        raise UserError(f"--do_lower_case {str(do_lower_case).lower()}: {model_dir}/{TASK_FILE} "
                        f"says do_lower_case {str(spec.do_lower_case).lower()}, which the model "
                        "was fine-tuned with")
    seq_length = spec.max_seq_length if seq_length is None else seq_length
    check_serving_length(spec, seq_length, info.config.max_position_embeddings)
    with atomic_output_dir(output, kind=kind, inputs=inputs, overwrite=overwrite) as tmp:
        task_dir = os.path.join(tmp, "task")
        save_task_savedmodel(task_model, spec, info, task_dir, seq_length)
        if fmt == "savedmodel":
            export_encoder(task_backbone(task_model), info.arch, info.config,
                           os.path.join(tmp, "encoder"))
            export_preprocessing_savedmodel(info.vocab_path, os.path.join(tmp, "preprocessing"),
                                            do_lower_case=spec.do_lower_case, seq_length=seq_length)
            for name in ("vocab.txt", TASK_FILE):
                shutil.copyfile(os.path.join(model_dir, name), os.path.join(tmp, name))
            what = f"SavedModels {output}/task (raw text), encoder and preprocessing"
        else:
            gate = _tflite_with_gate(seq_length, quantize, tmp, task_dir, model_dir)
            what = f"TFLite {output}/model.tflite (quantize {quantize}; {gate}) and {output}/task"
    return (f"exported the {spec.kind} model of {model_dir} ({info.arch}) as {what}, "
            f"seq_length {seq_length}")
