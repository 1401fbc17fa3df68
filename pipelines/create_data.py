"""The streaming, multi-process, resumable corpus converter behind `tfcompact create-data`.

Plan: the input files (in sorted order) are seen as one byte stream of T bytes; output shard k
takes the documents whose boundary lies in bytes [k*T/N, (k+1)*T/N) (see
`tfcompact.text.corpus.iter_documents`). Each shard is one unit of work, done by one worker
process, from its own seeds, so:

- memory: a worker holds one window of documents (about `window_chars` characters) and the
  serialised instances made from it, never the corpus;
- determinism: a shard's bytes depend on the inputs, the settings and the seed only, not on
  `--num_workers` nor on which worker ran it;
- resume: a shard is written to a temporary name, renamed, then a small done-marker is
  written beside it; a restarted run with the same settings skips shards that have one (and
  the size it records);
- stale output: the run record holds the sha256 of every input file and the vocabulary's md5;
  a rerun after the inputs changed converts again (the earlier conversion is set aside and
  put back if the new one fails); other settings in the same directory are refused;
- nothing half-written: `manifest.json`, written last, is what readers trust, with the
  vocabulary copied beside it as `vocab.txt`; a run that fails removes what it wrote.

Per window: documents are tokenized and segmented once; for each of the `dupe_factor` passes
each document makes instances with a generator seeded by (seed, file, byte offset);
instances are masked, serialised, shuffled within the window and appended to the shard.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import json
import math
import multiprocessing as mp
import os
import queue as queue_lib
import re
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: output directories are not locked
    fcntl = None

from pipelines import instances, masking, writer
from pipelines.corpus import iter_tfds_documents
from tfcompact.errors import DataError, UserError
from tfcompact.files import (atomic_write_bytes, atomic_writer, is_remote, is_temp_name,
                             output_error, remove_if_present, strip_temp_suffix,
                             unwritable_reason)
from tfcompact.inputs.manifest import (MANIFEST_NAME, SCHEMA_MASKED, SCHEMA_UNMASKED,
                                       VOCAB_NAME, build_manifest, load_manifest, shard_entry,
                                       shard_mismatch, vocab_beside, write_manifest)
from tfcompact.text import corpus
from tfcompact.text.segmenter import SEGMENTERS, make_segmenter, resolve_segmenter

RUN_FILE = ".tfcompact-create-data.json"
WORK_DIR = ".tfcompact-work"
# The previous conversion of an input that has changed since, kept until the new one is done.
PREVIOUS_DIR = ".tfcompact-previous"
DEFAULT_WINDOW_CHARS = 1 << 18
MIN_SEQ_LENGTH, MAX_SEQ_LENGTH = 8, 8192
MAX_SHARDS = 99_999  # shard names have five digits
UNK_WARNING = 0.05  # share of [UNK] tokens worth a warning (People's Daily with BERT's vocab: 0.007 %)
_SHARD_RE = re.compile(r"^data-(\d{5})-of-(\d{5})\.tfrecord$")


@dataclass
class ConvertConfig:
    """Every setting that changes the output bytes (recorded in the run file and manifest)."""

    inputs: list  # file paths (already expanded) or ["tfds:NAME[:split]"]
    vocab_path: str
    output_dir: str
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    masking: str = "wwm"
    pair_task: str = "sop"
    dupe_factor: int = 5
    short_seq_prob: float = 0.1
    masked_lm_prob: float = 0.15
    num_shards: int = 0  # 0: chosen from the input size
    seed: int = 12345
    # None: the default, rjieba, or jieba when rjieba cannot be imported; run_conversion and
    # conversion_config replace it by the name of the segmenter that runs.
    segmenter: Optional[str] = None
    do_lower_case: bool = True
    errors: str = "fail"
    tfds_data_dir: Optional[str] = None
    window_chars: int = DEFAULT_WINDOW_CHARS
    input_shard_index: int = 0
    num_input_shards: int = 1

    def validate(self) -> None:
        """Every setting in range, each error naming its flag (before anything is written)."""
        if self.masking not in masking.MASKING_MODES:
            raise UserError(f"--masking {self.masking}: expected one of {', '.join(masking.MASKING_MODES)}")
        if self.pair_task not in instances.PAIR_TASKS:
            raise UserError(f"--pair_task {self.pair_task}: expected one of {', '.join(instances.PAIR_TASKS)}")
        if not MIN_SEQ_LENGTH <= self.max_seq_length <= MAX_SEQ_LENGTH:
            raise UserError(f"--max_seq_length {self.max_seq_length}: expected {MIN_SEQ_LENGTH}.."
                            f"{MAX_SEQ_LENGTH}")
        max_tokens = self.max_seq_length - (3 if self.pair_task != "none" else 2)
        if not 1 <= self.max_predictions_per_seq <= max_tokens:
            raise UserError(
                f"--max_predictions_per_seq {self.max_predictions_per_seq}: expected 1..{max_tokens} "
                f"(a sequence of {self.max_seq_length} holds {max_tokens} text tokens besides "
                f"[CLS]/[SEP]; BERT uses about max_seq_length * masked_lm_prob)")
        if not 0.0 < self.masked_lm_prob <= 1.0:  # also false for nan
            raise UserError(f"--masked_lm_prob {self.masked_lm_prob}: expected a probability in (0, 1] "
                            "(0.15 in BERT)")
        if self.dupe_factor < 1:
            raise UserError(f"--dupe_factor {self.dupe_factor}: expected >= 1")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise UserError(f"--short_seq_prob {self.short_seq_prob}: expected a probability in [0, 1]")
        if not 0 <= self.num_shards <= MAX_SHARDS:
            raise UserError(f"--num_shards {self.num_shards}: expected 1..{MAX_SHARDS}, or 0 to choose "
                            "from the input size")
        if self.seed < 0:
            raise UserError(f"--seed {self.seed}: expected a non-negative integer")
        if self.errors not in ("skip", "fail"):
            raise UserError(f"--errors {self.errors}: expected skip or fail")
        if not 0 <= self.input_shard_index < self.num_input_shards:
            raise UserError(
                f"--shard_index {self.input_shard_index} / --num_input_shards {self.num_input_shards}: "
                "expected 0 <= shard_index < num_input_shards")
        if self.tfds_data_dir and not (len(self.inputs) == 1 and str(self.inputs[0]).startswith("tfds:")):
            raise UserError(f"--tfds_data_dir {self.tfds_data_dir}: only used with --input tfds:NAME")
        if not self.output_dir:
            raise UserError("--output_dir is empty: expected a directory path")

    @property
    def schema(self) -> str:
        return SCHEMA_UNMASKED if self.masking == "none" else SCHEMA_MASKED

    @property
    def uses_segmenter(self) -> bool:
        return self.masking in ("wwm", "ngram", "none")


# ---------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------
def default_num_shards(total_bytes: int) -> int:
    """8 shards, or one per 32 MiB of text for bigger corpora (independent of --num_workers)."""
    return max(8, min(4096, math.ceil(total_bytes / (32 << 20))))


def shard_plan(sizes: Sequence[int], num_shards: int) -> list[list[tuple[int, int, int]]]:
    """For each shard: [(file index, local start, local end)] covering its global byte range."""
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    total = int(offsets[-1])
    plan = []
    for k in range(num_shards):
        g0 = total * k // num_shards
        g1 = total * (k + 1) // num_shards
        parts = []
        for fi, size in enumerate(sizes):
            f0, f1 = int(offsets[fi]), int(offsets[fi + 1])
            lo, hi = max(g0, f0), min(g1, f1)
            if lo < hi or (size == 0 and g0 <= f0 < g1):
                parts.append((fi, lo - f0, hi - f0))
        plan.append(parts)
    return plan


# ---------------------------------------------------------------------------------------------
# Worker side
# ---------------------------------------------------------------------------------------------
_WORKER: dict = {}


def _worker_init(progress_queue) -> None:
    _WORKER["queue"] = progress_queue


def _worker_resources(cfg: ConvertConfig):
    key = (cfg.vocab_path, cfg.do_lower_case, cfg.segmenter if cfg.uses_segmenter else None)
    res = _WORKER.get("resources")
    if res is None or res[0] != key:
        from tfcompact.text.tokenizer import FullTokenizer

        tok = FullTokenizer(cfg.vocab_path, do_lower_case=cfg.do_lower_case)
        seg = make_segmenter(cfg.segmenter) if cfg.uses_segmenter else None
        if seg is not None:
            seg.load()  # the dictionary, now (before forking, when called by the parent)
        res = (key, tok, seg)
        _WORKER["resources"] = res
    return res[1], res[2]


class _ShardWriter:
    """Converts the windows of one shard and appends framed records to its temp file."""

    def __init__(self, cfg: ConvertConfig, shard_index: int, tok, seg, out):
        self.cfg = cfg
        self.shard_index = shard_index
        self.tok = tok
        self.cut = seg.cut if seg is not None else None
        self.out = out
        self.window: list = []
        self.window_chars = 0
        self.window_index = 0
        self.num_instances = 0
        self.tokens = self.unk_tokens = 0  # text tokens, and how many of them are [UNK]
        self.unk_id = tok.vocab.unk_id
        self.paired = cfg.pair_task != "none"
        self.max_num_tokens = cfg.max_seq_length - (3 if self.paired else 2)
        vocab = tok.vocab
        self.mask_cfg = None
        if cfg.masking != "none":
            self.mask_cfg = masking.MaskingConfig(
                mode=cfg.masking, max_predictions_per_seq=cfg.max_predictions_per_seq,
                mask_id=vocab.mask_id, replacement_ids=vocab.replacement_ids,
                masked_lm_prob=cfg.masked_lm_prob)

    def add_document(self, file_index: int, doc: corpus.Document) -> None:
        """Tokenize and segment a document once; convert the window when it is full."""
        sentences = []
        chars = 0
        for sentence in doc.sentences:
            ids, starts = self.tok.encode_with_words(sentence, self.cut)
            if ids:
                sentences.append((ids, starts))
                chars += len(sentence)
        if sentences:
            encoded = instances.EncodedDocument.from_sentences(sentences, self.max_num_tokens)
            self.window.append((file_index, doc.offset, encoded))
            self.window_chars += chars
            self.tokens += len(encoded.ids)
            self.unk_tokens += int(np.count_nonzero(encoded.ids == self.unk_id))
        if self.window_chars >= self.cfg.window_chars:
            self.flush()

    def flush(self) -> None:
        """Make every dupe pass's instances for the window, mask, serialise, shuffle, write."""
        if not self.window:
            return
        cfg = self.cfg
        docs = self.window
        n_docs = len(docs)
        batch: list = []
        for j, (fi, offset, document) in enumerate(docs):
            # One generator per document (seeded by its file and byte offset) for all passes.
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([cfg.seed, fi, offset])))

            def random_document(r, j=j):
                if n_docs < 2:
                    return None
                k = int(r.integers(0, n_docs - 1))
                return docs[k + (k >= j)][2]

            for _ in range(cfg.dupe_factor):
                batch.extend(instances.create_instances_from_document(
                    document, rng, max_seq_length=cfg.max_seq_length,
                    short_seq_prob=cfg.short_seq_prob, pair_task=cfg.pair_task,
                    random_document=random_document if cfg.pair_task == "nsp" else None))
        wrng = np.random.Generator(np.random.PCG64(
            np.random.SeedSequence([cfg.seed, self.shard_index, self.window_index, 7])))
        order = wrng.permutation(len(batch)).tolist()
        records: list[bytes] = []
        step = 1024  # rows masked and serialised at once: bounds the numpy temporaries (~15 MB)
        for lo in range(0, len(order), step):
            records.extend(self.serialize([batch[i] for i in order[lo:lo + step]], wrng))
        self.out.write(writer.frame_records(records))
        self.num_instances += len(records)
        self.window = []
        self.window_chars = 0
        self.window_index += 1

    def serialize(self, batch: list, rng: np.random.Generator) -> list[bytes]:
        cfg = self.cfg
        vocab = self.tok.vocab
        tokens, starts, maskable, segs, lengths, labels = instances.assemble_batch(
            batch, cfg.max_seq_length, vocab.cls_id, vocab.sep_id)
        if self.mask_cfg is None:
            return writer.batch_to_example_bytes(
                tokens, segs, lengths, labels, word_ids=instances.word_ids_batch(starts, maskable))
        masked, positions, lm_ids, counts = masking.static_mask_batch(
            tokens, starts, maskable, lengths, rng, self.mask_cfg)
        return writer.batch_to_example_bytes(
            masked, segs, lengths, labels, masked_lm_positions=positions, masked_lm_ids=lm_ids,
            num_predictions=counts)


def convert_shard(cfg: ConvertConfig, files: Sequence[str], parts: Sequence[tuple[int, int, int]],
                  shard_index: int, num_shards: int) -> dict:
    """Convert one output shard (temp file, rename, done-marker). Returns its stats."""
    tok, seg = _worker_resources(cfg)
    name = writer.shard_name(shard_index, num_shards)
    final = os.path.join(cfg.output_dir, name)
    progress = _WORKER.get("queue")
    stats = corpus.ReadStats()
    reported = 0
    last_report = time.monotonic()
    digest = hashlib.sha256()  # of the bytes as written: no second read of the shard
    # Reading errors are DataErrors already: an OSError here is the output side.
    with atomic_writer(final) as f:
        out = _HashingWriter(f, digest)
        sw = _ShardWriter(cfg, shard_index, tok, seg, out)
        for fi, start, end in parts:
            for doc in corpus.iter_documents(files[fi], errors=cfg.errors, start=start, end=end,
                                             stats=stats):
                sw.add_document(fi, doc)
                now = time.monotonic()
                if progress is not None and now - last_report > 0.5:
                    progress.put((shard_index, stats.bytes_read - reported, sw.num_instances))
                    reported, last_report = stats.bytes_read, now
        sw.flush()
    info = {
        "file": name, "num_instances": sw.num_instances, "sha256": digest.hexdigest(),
        "bytes": out.size, "bytes_read": stats.bytes_read, "bad_lines": stats.bad_lines,
        "first_bad": stats.first_bad, "long_lines": stats.long_lines, "documents": stats.documents,
        "tokens": sw.tokens, "unk_tokens": sw.unk_tokens,
    }
    atomic_write_bytes(_done_path(cfg.output_dir, name), json.dumps(info).encode())
    if progress is not None:
        progress.put((shard_index, stats.bytes_read - reported, sw.num_instances))
    return info


class _HashingWriter:
    """File wrapper that feeds everything written to a hash as well."""

    def __init__(self, f, digest):
        self.f = f
        self.digest = digest
        self.size = 0

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.f.write(data)
        self.size += len(data)


def _convert_shard_task(args):
    return convert_shard(*args)


def _done_path(output_dir: str, shard_file: str) -> str:
    return os.path.join(output_dir, WORK_DIR, shard_file + ".done.json")


# ---------------------------------------------------------------------------------------------
# TFDS input: exported to a text file by a short-lived process (TensorFlow stays out of the
# converter's workers, which would otherwise each pay about 590 MB for importing it).
# ---------------------------------------------------------------------------------------------
def _export_tfds(spec: str, data_dir: Optional[str], out_path: str) -> None:
    with atomic_writer(out_path) as f:
        for doc in iter_tfds_documents(spec, data_dir):
            f.write("".join(s.replace("\n", " ") + "\n" for s in doc.sentences).encode("utf-8"))
            f.write(b"\n")


def _export_tfds_main(spec, data_dir, out_path, errq) -> None:
    try:
        _export_tfds(spec, data_dir, out_path)
    except Exception as e:  # reported to the parent as one line
        errq.put(f"{type(e).__name__}: {e}".splitlines()[0])
        sys.exit(1)


def export_tfds_input(spec: str, data_dir: Optional[str], work_dir: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec[len("tfds:"):])
    out_path = os.path.join(work_dir, f"tfds-{safe}.txt")
    if os.path.exists(out_path):
        return out_path
    ctx = mp.get_context("spawn")
    errq = ctx.Queue()
    proc = ctx.Process(target=_export_tfds_main, args=(spec, data_dir, out_path, errq))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        try:
            msg = errq.get(timeout=1)
        except queue_lib.Empty:
            msg = f"exit code {proc.exitcode}"
        if msg.startswith(("DataError: ", "UserError: ")):
            msg = msg.split(": ", 1)[1]
        raise DataError(f"--input {spec}: {msg}")
    return out_path


# ---------------------------------------------------------------------------------------------
# Output directory
# ---------------------------------------------------------------------------------------------
def _run_record(cfg: ConvertConfig, files: Sequence[str], fingerprints: Sequence[tuple[int, str]],
                vocab_md5: str, num_shards: int, segmenter_info: dict) -> dict:
    d = dataclasses.asdict(cfg)
    d.pop("output_dir")
    d["vocab_path"] = os.path.abspath(cfg.vocab_path)
    d["inputs"] = list(cfg.inputs)
    d["files"] = [[os.path.abspath(f), int(size), sha] for f, (size, sha) in zip(files, fingerprints)]
    d["vocab_md5"] = vocab_md5
    d["num_shards"] = num_shards
    d["segmenter_info"] = segmenter_info
    return d


def _settings_and_content(record: dict) -> tuple[dict, list]:
    """A run record split into the settings (another conversion: refused) and what the input
    files and the vocabulary contain (changed inputs: converted again). Records written before
    content hashes were kept have [path, size] per file: their content never matches."""
    settings = dict(record)
    if (settings.get("segmenter_info") or {}).get("name") == "none":
        settings.pop("segmenter", None)  # unused by the masking (recorded as jieba before rjieba)
    files = settings.pop("files", [])
    settings["files"] = [f[0] for f in files]
    return settings, [[f[1:] for f in files], settings.pop("vocab_md5", None)]


def _is_ours(name: str, num_shards: Optional[int]) -> bool:
    if name in (MANIFEST_NAME, VOCAB_NAME, RUN_FILE, WORK_DIR, PREVIOUS_DIR):
        return True
    base = strip_temp_suffix(name)
    m = _SHARD_RE.match(base)
    if m:
        return num_shards is None or int(m.group(2)) == num_shards
    return base in (MANIFEST_NAME, VOCAB_NAME, RUN_FILE)


def check_output_dir(output_dir: str) -> None:
    """Refuse an output location that cannot be a directory we write (before any work)."""
    if os.path.lexists(output_dir) and not os.path.isdir(output_dir):
        raise UserError(f"--output_dir {output_dir}: not a directory (a file is in the way)")
    parent = os.path.abspath(output_dir)
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UserError(f"--output_dir {output_dir}: {parent} is not a directory")
    reason = unwritable_reason(parent)
    if reason:
        raise UserError(f"--output_dir {output_dir}: cannot write in {parent} ({reason})")


def _our_files(output_dir: str) -> list[str]:
    """Relative paths of the files of a conversion in `output_dir` (top level and work dir)."""
    out = []
    for name in sorted(os.listdir(output_dir)):
        if name == PREVIOUS_DIR:
            continue
        if name == WORK_DIR and os.path.isdir(os.path.join(output_dir, name)):
            out += [os.path.join(WORK_DIR, n) for n in sorted(os.listdir(os.path.join(output_dir, name)))]
        else:
            out.append(name)
    return out


class _OutputChanges:
    """The output directory, created if needed and locked for this run (a second create-data
    into it is refused), with an undo for a failed run: the files it added are removed and the
    files it set aside (the earlier conversion of inputs that have changed since) are put back,
    so earlier outputs are as they were and nothing is left behind. A run that is interrupted
    or killed keeps its finished shards instead, for the next run to resume."""

    def __init__(self, output_dir: str):
        self.output_dir = os.path.abspath(output_dir)
        created = None
        path = self.output_dir
        while not os.path.lexists(path):
            created, path = path, os.path.dirname(path)
        self.created = created  # the top directory this run creates, if it creates any
        try:
            os.makedirs(self.output_dir, exist_ok=True)
        except OSError as e:
            raise UserError(f"--output_dir {output_dir}: cannot create it ({e.strerror})") from None
        self._lock = os.open(self.output_dir, os.O_RDONLY)
        try:
            if fcntl is not None:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise UserError(f"--output_dir {output_dir}: another create-data is writing into it; "
                            "wait for it to finish (or use another directory)") from None
        except OSError:  # a file system without flock (some network ones): no lock
            pass
        self.before = set() if created else set(self._entries())
        self.aside: list[str] = []

    def release(self) -> None:
        os.close(self._lock)

    def _entries(self) -> list[str]:
        entries = _our_files(self.output_dir) if os.path.isdir(self.output_dir) else []
        if os.path.isdir(os.path.join(self.output_dir, WORK_DIR)):
            entries.append(WORK_DIR + os.sep)
        return entries

    def set_aside(self, relpaths: Sequence[str]) -> None:
        root = os.path.join(self.output_dir, PREVIOUS_DIR)
        shutil.rmtree(root, ignore_errors=True)  # left by a killed run: older still
        for rel in relpaths:
            dst = os.path.join(root, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.replace(os.path.join(self.output_dir, rel), dst)
            self.aside.append(rel)

    def undo(self) -> None:
        self.release()
        if self.created is not None:
            shutil.rmtree(self.created, ignore_errors=True)
            return
        added = [e for e in self._entries() if e not in self.before]
        for rel in sorted(added, key=lambda e: e.endswith(os.sep)):  # files, then the work dir
            path = os.path.join(self.output_dir, rel)
            if rel.endswith(os.sep):
                shutil.rmtree(path, ignore_errors=True)
            else:
                remove_if_present(path)
        root = os.path.join(self.output_dir, PREVIOUS_DIR)
        for rel in self.aside:
            os.makedirs(os.path.dirname(os.path.join(self.output_dir, rel)), exist_ok=True)
            os.replace(os.path.join(root, rel), os.path.join(self.output_dir, rel))
        if self.aside:
            shutil.rmtree(root, ignore_errors=True)

    def commit(self) -> None:
        shutil.rmtree(os.path.join(self.output_dir, PREVIOUS_DIR), ignore_errors=True)
        self.release()


def prepare_output_dir(output_dir: str, record: dict, changes: _OutputChanges) -> bool:
    """Validate the output dir (created and locked by `changes`). Returns True if a finished
    identical run is there.

    Another conversion (other settings) in the directory is refused. The conversion of inputs
    whose content has changed since (same paths and settings) is set aside through `changes`:
    restored if this run fails, deleted when it succeeds."""
    run_path = os.path.join(output_dir, RUN_FILE)
    existing = sorted(os.listdir(output_dir))
    previous = None
    if os.path.exists(run_path):
        try:
            with open(run_path, encoding="utf-8") as f:
                previous = json.load(f)
            if not isinstance(previous, dict):
                raise ValueError("not an object")
        except (OSError, ValueError):
            raise DataError(f"{run_path}: unreadable run record; remove it or use a new --output_dir") from None
    foreign = [n for n in existing if not _is_ours(n, record["num_shards"] if previous else None)]
    if previous is None:  # without our run record, only a TFDS export of ours may be there
        foreign = foreign or [n for n in existing if n != WORK_DIR]
    if foreign:
        raise DataError(
            f"--output_dir {output_dir} contains files this conversion did not write "
            f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}): use an empty or new directory")
    if previous is not None and previous != record:
        (old, old_content), (new, new_content) = _settings_and_content(previous), _settings_and_content(record)
        if old != new:
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            # e.g. a conversion made when jieba was the default, resumed without --segmenter
            hint = (f"; it was segmented with --segmenter {old['segmenter']}"
                    if "segmenter" in diff and isinstance(old.get("segmenter"), str) else "")
            raise DataError(
                f"--output_dir {output_dir} holds a conversion with other settings (differs in "
                f"{', '.join(diff)}{hint}): use a new directory to convert with these settings")
        changed = [os.path.basename(f) for f, a, b in zip(new["files"], old_content[0], new_content[0]) if a != b]
        if old_content[1] != new_content[1]:
            changed.append(os.path.basename(record["vocab_path"]))
        print(f"create-data: {', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''} changed since "
              f"{output_dir} was converted: converting again", file=sys.stderr, flush=True)
        changes.set_aside(_our_files(output_dir))
        previous = None
    if previous is None:
        atomic_write_bytes(run_path, (json.dumps(record, indent=1, ensure_ascii=False) + "\n").encode())
    # Leftovers of killed workers.
    for n in existing:
        if is_temp_name(n) and os.path.exists(os.path.join(output_dir, n)):
            os.remove(os.path.join(output_dir, n))
    os.makedirs(os.path.join(output_dir, WORK_DIR), exist_ok=True)
    return previous is not None and os.path.exists(os.path.join(output_dir, MANIFEST_NAME))


# ---------------------------------------------------------------------------------------------
# Settings from the command line, and the manifest of a conversion (shared with the Beam
# pipeline, which produces the same output)
# ---------------------------------------------------------------------------------------------
def parse_bool(v: str) -> bool:
    if v.lower() in ("1", "true", "yes"):
        return True
    if v.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {v!r}")


def add_conversion_arguments(parser: argparse.ArgumentParser,
                             input_help: str = "glob(s) of .txt/.gz files (comma-separated)") -> None:
    """The flags of every setting in `ConvertConfig` that `conversion_config` reads."""
    parser.add_argument("--input", required=True, help=input_help)
    parser.add_argument("--vocab", required=True, help="vocab.txt (BERT layout)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--max_predictions_per_seq", type=int, default=20)
    parser.add_argument("--masking", choices=masking.MASKING_MODES, default="wwm",
                        help="none writes the unmasked format (word_ids) for dynamic masking")
    parser.add_argument("--pair_task", choices=instances.PAIR_TASKS, default="sop")
    parser.add_argument("--dupe_factor", type=int, default=5)
    parser.add_argument("--short_seq_prob", type=float, default=0.1)
    parser.add_argument("--masked_lm_prob", type=float, default=0.15)
    parser.add_argument("--num_shards", type=int, default=0, help="0: 8, or one per 32 MiB of text")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--segmenter", choices=SEGMENTERS, default=None,
                        help="word segmenter for whole-word masking (default: rjieba, or jieba "
                             "with a warning when rjieba is not installed; both use jieba's word "
                             "list); presegmented: words are separated by spaces")
    parser.add_argument("--do_lower_case", type=parse_bool, default=True)
    parser.add_argument("--errors", choices=("skip", "fail"), default="fail",
                        help="invalid UTF-8: fail (default) or skip the line")


def conversion_config(args: argparse.Namespace, inputs: Sequence[str], **settings) -> ConvertConfig:
    """The ConvertConfig of parsed `add_conversion_arguments` flags (+ `settings`), with the
    segmenter that runs named (no --segmenter: rjieba, or jieba when rjieba is missing)."""
    return with_resolved_segmenter(ConvertConfig(
        inputs=list(inputs), vocab_path=args.vocab, output_dir=args.output_dir,
        max_seq_length=args.max_seq_length, max_predictions_per_seq=args.max_predictions_per_seq,
        masking=args.masking, pair_task=args.pair_task, dupe_factor=args.dupe_factor,
        short_seq_prob=args.short_seq_prob, masked_lm_prob=args.masked_lm_prob,
        num_shards=args.num_shards, seed=args.seed, segmenter=args.segmenter,
        do_lower_case=args.do_lower_case, errors=args.errors, **settings))


def with_resolved_segmenter(cfg: ConvertConfig) -> ConvertConfig:
    """`cfg` naming the segmenter that runs (see `resolve_segmenter`), so that the run record,
    the manifest and every worker agree on it; unchanged when the masking needs no segmenter."""
    if not cfg.uses_segmenter or cfg.segmenter is not None:
        return cfg
    return dataclasses.replace(cfg, segmenter=resolve_segmenter(cfg.segmenter))


def conversion_manifest(cfg: ConvertConfig, vocab_size: int, vocab_md5: str, special_ids: dict,
                        segmenter: dict, shards: Sequence[dict], files: Sequence[str]) -> dict:
    """manifest.json of a conversion of `files` with `cfg` (the converter's and Beam's)."""
    tfds = str(cfg.inputs[0]).startswith("tfds:")
    return build_manifest(
        schema=cfg.schema, max_seq_length=cfg.max_seq_length,
        max_predictions_per_seq=cfg.max_predictions_per_seq, vocab_size=vocab_size,
        vocab_md5=vocab_md5, do_lower_case=cfg.do_lower_case, special_ids=special_ids,
        masking=cfg.masking, pair_task=cfg.pair_task, dupe_factor=cfg.dupe_factor, seed=cfg.seed,
        segmenter=segmenter, shards=shards,
        inputs=list(cfg.inputs) if tfds else [f if is_remote(f) else os.path.abspath(f)
                                              for f in files])


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------
class Progress:
    """One status line on stdout (progress; warnings and errors go to stderr): MB done / total,
    MB/s, ETA, shards, instances."""

    def __init__(self, total_bytes: int, num_shards: int, done_shards: int, stream=None, enabled=True):
        self.total = max(1, total_bytes)
        self.num_shards = num_shards
        self.done_shards = done_shards
        self.bytes = 0
        self.instances: dict[int, int] = {}
        self.start = time.monotonic()
        self.last = 0.0
        self.stream = stream or sys.stdout
        self.enabled = enabled

    def update(self, shard: int, delta_bytes: int, instances_so_far: int) -> None:
        self.bytes += delta_bytes
        self.instances[shard] = instances_so_far

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < 1.0):
            return
        self.last = now
        el = max(now - self.start, 1e-6)
        rate = self.bytes / el / 1e6
        remaining = max(0, self.total - self.bytes)
        eta = remaining / (self.bytes / el) if self.bytes else float("nan")
        eta_s = f"{eta:.0f}s" if eta == eta else "?"
        line = (f"create-data: {self.bytes / 1e6:.1f}/{self.total / 1e6:.1f} MB  {rate:.2f} MB/s  "
                f"ETA {eta_s}  shards {self.done_shards}/{self.num_shards}  "
                f"instances {sum(self.instances.values())}")
        end = "\n" if force else ""
        print("\r" + line, end=end, file=self.stream, flush=True)


def load_vocab(path: str):
    """The conversion's vocabulary (tfcompact.text.tokenizer.Vocab): a valid BERT vocabulary
    with at least one ordinary token (with only [PAD], [UNK], ... every word would be [UNK])."""
    from tfcompact.text.tokenizer import Vocab

    vocab = Vocab.load(path)
    if all(t.startswith("[") and t.endswith("]") for t in vocab.tokens):
        raise DataError(f"{path}: vocabulary has only special tokens ({len(vocab)}: "
                        f"{', '.join(vocab.tokens[:5])}{', ...' if len(vocab) > 5 else ''}); "
                        "every word would be [UNK]")
    return vocab


def _stat_key(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def fingerprint_inputs(files: Sequence[str]) -> list[tuple[int, str, tuple[int, int]]]:
    """(text size, sha256, (size, mtime) when read) of each input file; refuses a file that
    changes while it is being read."""
    out = []
    for f in files:
        corpus.check_input_file(f)
        key = _stat_key(f)
        size, sha = corpus.fingerprint(f)
        if _stat_key(f) != key:
            raise DataError(f"{f}: changed while it was being read; convert it when nothing writes to it")
        out.append((size, sha, key))
    return out


def _check_inputs_unchanged(files: Sequence[str], keys: Sequence[tuple[int, int]]) -> None:
    for f, key in zip(files, keys):
        try:
            changed, what = _stat_key(f) != key, "size or modification time"
        except OSError as e:
            changed, what = True, e.strerror
        if changed:
            raise DataError(f"{f}: changed during the conversion ({what}); run create-data again "
                            "to convert the new content")


def _copy_vocab(cfg: ConvertConfig, vocab_md5: str) -> None:
    """The vocabulary beside the shards as vocab.txt (the trainer and readers look for it there)."""
    try:
        with open(cfg.vocab_path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"{cfg.vocab_path}: cannot read the vocabulary again ({e.strerror})") from None
    if hashlib.md5(raw).hexdigest() != vocab_md5:
        raise DataError(f"{cfg.vocab_path}: changed during the conversion; run create-data again")
    atomic_write_bytes(os.path.join(cfg.output_dir, VOCAB_NAME), raw)


def _damaged_shards(output_dir: str, shards: Sequence[dict]) -> list[tuple[dict, str]]:
    """Shards of a finished conversion that are missing or not the size recorded for them."""
    damaged = []
    for shard in shards:
        path = os.path.join(output_dir, shard["file"])
        if not os.path.isfile(path):
            damaged.append((shard, f"{path}: missing"))
            continue
        problem = shard_mismatch(path, shard, size=os.path.getsize(path))
        if problem:
            damaged.append((shard, problem))
    return damaged


def _no_instances_error(cfg: ConvertConfig, files: Sequence[str], infos: dict) -> DataError:
    documents = sum(i.get("documents", 0) for i in infos.values())
    bad = sum(i.get("bad_lines", 0) for i in infos.values())
    if documents:
        why = (f"{documents} document(s) but no instance (each has too few tokens or words to "
               "make one)")
    elif bad:
        why = f"no text: all {bad} non-blank line(s) are invalid UTF-8 and were skipped"
    else:
        why = "no text: the input has only blank lines"
    names = list(files) or list(cfg.inputs)
    label = ", ".join(names[:2]) + (f" and {len(names) - 2} more" if len(names) > 2 else "")
    return DataError(f"--input {label}: {why}; nothing written (pass --allow_empty to write a "
                     "conversion with 0 instances)")


def run_conversion(cfg: ConvertConfig, num_workers: int = 1, progress: bool = True,
                   allow_empty: bool = False) -> dict:
    """Convert `cfg.inputs` into `cfg.output_dir` (resuming a killed run). Returns the manifest.

    Everything is checked before the output directory is touched where it can be (settings,
    vocabulary, input files, the output location). If the run fails later, what it wrote is
    removed and an earlier conversion it was replacing is put back; Ctrl-C or a kill keeps the
    finished shards for resuming. A conversion with no instance at all is an error unless
    `allow_empty`."""
    cfg.validate()
    cfg = with_resolved_segmenter(cfg)
    if cfg.uses_segmenter:  # an unknown or unimportable one is refused before anything is written
        make_segmenter(cfg.segmenter)
    if num_workers < 1:
        raise UserError(f"--num_workers {num_workers}: expected at least 1")
    check_output_dir(cfg.output_dir)
    vocab = load_vocab(cfg.vocab_path)
    tfds = len(cfg.inputs) == 1 and str(cfg.inputs[0]).startswith("tfds:")
    files: list = []
    prints: list = []
    if tfds:
        if cfg.num_input_shards > 1:
            raise UserError("--shard_index/--num_input_shards split input files; not supported with tfds: input")
    else:
        files = list(cfg.inputs)[cfg.input_shard_index::cfg.num_input_shards]
        if not files:
            raise UserError(f"--shard_index {cfg.input_shard_index}: no input files for this host")
        prints = fingerprint_inputs(files)
        if sum(p[0] for p in prints) == 0:
            raise DataError(f"--input {', '.join(cfg.inputs)}: the input files are empty")
    changes = _OutputChanges(cfg.output_dir)
    try:
        manifest = _convert(cfg, vocab, files, prints, changes, num_workers, progress, allow_empty)
    except KeyboardInterrupt:
        changes.release()
        _remove_temp_files(cfg.output_dir)
        raise
    except OSError as e:  # the output side (input errors are DataErrors)
        changes.undo()
        raise output_error(e.filename or cfg.output_dir, e) from None
    except BaseException:
        changes.undo()
        raise
    changes.commit()
    return manifest


def _tfds_input(cfg: ConvertConfig, work: str) -> tuple[list, list]:
    """Export a `tfds:NAME[:split]` input to text (a short-lived process); (files, prints)."""
    # Validate the directory before spending time on the export.
    if os.path.isdir(cfg.output_dir):
        foreign = [n for n in os.listdir(cfg.output_dir) if not _is_ours(n, None)]
        if foreign:
            raise DataError(f"--output_dir {cfg.output_dir} contains files this conversion did not write "
                            f"({', '.join(sorted(foreign)[:3])}): use an empty or new directory")
    os.makedirs(work, exist_ok=True)
    files = [export_tfds_input(cfg.inputs[0], cfg.tfds_data_dir, work)]
    return files, fingerprint_inputs(files)


def _finished_or_redo(cfg: ConvertConfig, vocab, changes: _OutputChanges) -> dict | None:
    """The manifest of an identical finished conversion whose shards are intact (nothing to
    do), else None, with damaged shards and the manifest set aside to be written again."""
    finished = load_manifest(cfg.output_dir)
    damaged = _damaged_shards(cfg.output_dir, finished["shards"])
    if not damaged:
        if vocab_beside(cfg.output_dir, finished) is None:
            _copy_vocab(cfg, vocab.md5)  # conversions made before vocab.txt was copied
        return finished
    for _, problem in damaged:
        print(f"create-data: {problem}: converting that shard again", file=sys.stderr, flush=True)
    redo = [MANIFEST_NAME]
    for shard, _ in damaged:
        redo += [shard["file"], os.path.relpath(_done_path(cfg.output_dir, shard["file"]), cfg.output_dir)]
    changes.set_aside([r for r in redo if os.path.exists(os.path.join(cfg.output_dir, r))])
    return None


def _done_shards(cfg: ConvertConfig, num_shards: int) -> dict[int, dict]:
    """Shard number -> done-marker info of the shards a previous run finished intact."""
    infos: dict[int, dict] = {}
    for k in range(num_shards):
        name = writer.shard_name(k, num_shards)
        done = _done_path(cfg.output_dir, name)
        path = os.path.join(cfg.output_dir, name)
        if os.path.exists(done) and os.path.exists(path):
            with open(done, encoding="utf-8") as f:
                info = json.load(f)
            if shard_mismatch(path, info, size=os.path.getsize(path)) is None:
                infos[k] = info
    return infos


def _convert_in_process(cfg: ConvertConfig, tasks: list, prog: "Progress", infos: dict) -> None:
    _WORKER["queue"] = _LocalQueue(prog)
    try:
        for t in tasks:
            infos[t[3]] = convert_shard(*t)
            prog.done_shards += 1
            prog.show()
    except BaseException:
        _remove_temp_files(cfg.output_dir)
        raise
    finally:
        _WORKER.pop("queue", None)


def _worker_pool(cfg: ConvertConfig, num_workers: int, num_tasks: int):
    """(pool, progress queue). fork: workers start without re-importing anything, with the
    tokenizer and the segmenter's dictionary loaded once here (rjieba builds its own on import,
    about 0.2 s; jieba's takes about 0.3-1 s a process; gc.freeze keeps the collector from writing to, hence copying, the shared pages).
    spawn when TensorFlow is loaded here (unsafe to fork): each worker loads its own."""
    if "tensorflow" in sys.modules or "fork" not in mp.get_all_start_methods():
        ctx = mp.get_context("spawn")
    else:
        ctx = mp.get_context("fork")
        _worker_resources(cfg)
        gc.freeze()
    q = ctx.Queue()
    try:
        return ctx.Pool(min(num_workers, num_tasks), initializer=_worker_init, initargs=(q,)), q
    finally:
        gc.unfreeze()


def _convert_in_pool(cfg: ConvertConfig, tasks: list, prog: "Progress", infos: dict,
                     num_workers: int) -> None:
    pool, q = _worker_pool(cfg, num_workers, len(tasks))
    try:
        pending = {t[3]: pool.apply_async(_convert_shard_task, (t,)) for t in tasks}
        while pending:
            try:
                while True:
                    prog.update(*q.get(timeout=0.2))
            except queue_lib.Empty:
                pass
            for k in [k for k, r in pending.items() if r.ready()]:
                infos[k] = pending.pop(k).get()  # re-raises a worker's DataError
                prog.done_shards += 1
            prog.show()
        pool.close()
    except BaseException:
        pool.terminate()
        pool.join()
        _remove_temp_files(cfg.output_dir)
        raise
    pool.join()


def _shard_entries(cfg: ConvertConfig, infos: dict, num_shards: int) -> list[dict]:
    shards = []
    for k in range(num_shards):
        info = infos[k]
        size = info.get("bytes")  # done-markers of older versions lack it
        if size is None:
            size = os.path.getsize(os.path.join(cfg.output_dir, info["file"]))
        shards.append(shard_entry(info["file"], info["num_instances"], info["sha256"], size))
    return shards


def _warn_about_quality(cfg: ConvertConfig, infos: dict, shards: list, progress: bool) -> None:
    """Invalid UTF-8 skipped, a vocabulary that does not fit the text, empty shards."""
    bad = sum(i.get("bad_lines", 0) for i in infos.values())
    if bad and progress:
        first = next(i["first_bad"] for i in infos.values() if i.get("first_bad"))
        print(f"create-data: skipped {bad} line(s) of invalid UTF-8 (first: {first})", file=sys.stderr)
    tokens = sum(i.get("tokens", 0) for i in infos.values())
    unk = sum(i.get("unk_tokens", 0) for i in infos.values())
    if tokens and unk / tokens > UNK_WARNING:
        print(f"create-data: warning: {unk / tokens:.0%} of the tokens are [UNK] with {cfg.vocab_path} "
              "(is it the vocabulary for this text?)", file=sys.stderr, flush=True)
    empty = sum(s["num_instances"] == 0 for s in shards)
    if empty and sum(s["num_instances"] for s in shards):
        print(f"create-data: warning: {empty} of {len(shards)} shards have no instances (fewer documents "
              "than shards); a smaller --num_shards spreads the data over all of them",
              file=sys.stderr, flush=True)


def _convert(cfg: ConvertConfig, vocab, files: list, prints: list, changes: _OutputChanges,
             num_workers: int, progress: bool, allow_empty: bool) -> dict:
    record_files = files
    if not files:  # tfds:NAME[:split]
        files, prints = _tfds_input(cfg, os.path.join(cfg.output_dir, WORK_DIR))
        record_files = []
    sizes = [p[0] for p in prints]
    total = int(sum(sizes))
    if total == 0:
        raise DataError(f"--input {', '.join(cfg.inputs)}: the input files are empty")
    num_shards = cfg.num_shards or default_num_shards(total)
    seg_info = make_segmenter(cfg.segmenter).describe() if cfg.uses_segmenter else {"name": "none", "version": "0"}
    record = _run_record(cfg, record_files, [p[:2] for p in prints][:len(record_files)], vocab.md5,
                         num_shards, seg_info)
    if prepare_output_dir(cfg.output_dir, record, changes):
        finished = _finished_or_redo(cfg, vocab, changes)
        if finished is not None:
            return finished
    plan = shard_plan(sizes, num_shards)
    infos = _done_shards(cfg, num_shards)
    todo = [k for k in range(num_shards) if k not in infos]
    prog = Progress(total - sum(i.get("bytes_read", 0) for i in infos.values()),
                    num_shards, len(infos), enabled=progress)
    tasks = [(cfg, files, plan[k], k, num_shards) for k in todo]
    if tasks:
        if num_workers <= 1:
            _convert_in_process(cfg, tasks, prog, infos)
        else:
            _convert_in_pool(cfg, tasks, prog, infos, num_workers)
        prog.show(force=True)
    shards = _shard_entries(cfg, infos, num_shards)
    if sum(s["num_instances"] for s in shards) == 0 and not allow_empty:
        raise _no_instances_error(cfg, record_files, infos)
    _check_inputs_unchanged(files, [p[2] for p in prints])
    _warn_about_quality(cfg, infos, shards, progress)
    manifest = conversion_manifest(cfg, len(vocab), vocab.md5, vocab.special_ids, seg_info, shards,
                                   files)
    _copy_vocab(cfg, vocab.md5)
    write_manifest(cfg.output_dir, manifest)  # last: what readers trust
    return manifest


def _remove_temp_files(output_dir: str) -> None:
    """Drop the temporary files of shards that were being written when the run failed."""
    for n in os.listdir(output_dir):
        if is_temp_name(n):
            remove_if_present(os.path.join(output_dir, n))


class _LocalQueue:
    """In-process stand-in for the progress queue when converting without workers."""

    def __init__(self, prog: Progress):
        self.prog = prog

    def put(self, item) -> None:
        self.prog.update(*item)
        self.prog.show()
