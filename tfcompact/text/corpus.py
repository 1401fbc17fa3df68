"""Reading raw corpora: text files (.txt, .gz) -> documents of sentences (build-vocab and the
corpus converter read them through this module; `pipelines.corpus` adds TFDS datasets).

Input format (google-research/bert's): one sentence (or paragraph) a line, documents separated
by blank lines. Lines are additionally split after Chinese/ASCII sentence-final punctuation,
so paragraph-per-line corpora also give sentence-sized segments.

Robustness: UTF-8 BOM dropped, CRLF accepted, a line longer than `MAX_LINE_BYTES` is read in
pieces (memory stays bounded), a document longer than `MAX_DOCUMENT_CHARS` is cut into several,
invalid UTF-8 either fails with the file and byte offset or (errors="skip") drops the line.

Byte ranges: `iter_documents(path, start, end)` yields exactly the documents whose boundary
(file start or the first blank line before them) lies in [start, end), so disjoint ranges
covering a file give every document exactly once: that is how the converter splits a corpus
into output shards without reading it into memory.
"""
from __future__ import annotations

import glob
import gzip
import hashlib
import os
import re
import stat
import zlib
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

from tfcompact.errors import DataError, UserError

MAX_LINE_BYTES = 1 << 20
MAX_DOCUMENT_CHARS = 1 << 20
_BOM = b"\xef\xbb\xbf"
_SENTENCE_END = re.compile(r"([。！？!?]+[”’\"'」』）)]*)")


@dataclass
class Document:
    """A document: its sentences and the byte offset (in its file) of its first line."""

    sentences: list
    offset: int


@dataclass
class ReadStats:
    """Counters a reader fills in (bytes read, lines skipped for invalid UTF-8, ...)."""

    bytes_read: int = 0
    bad_lines: int = 0
    first_bad: Optional[str] = None
    long_lines: int = 0
    documents: int = 0
    extra: dict = field(default_factory=dict)


def split_sentences(line: str) -> list[str]:
    """Split a line after sentence-final punctuation (。！？!? plus closing quotes)."""
    parts = _SENTENCE_END.split(line)
    out = []
    for i in range(0, len(parts), 2):
        s = parts[i] + (parts[i + 1] if i + 1 < len(parts) else "")
        s = s.strip()
        if s:
            out.append(s)
    return out


def is_gzip(path: str) -> bool:
    return path.endswith(".gz")


def open_binary(path: str):
    """Open a corpus file for binary reading (.gz transparently)."""
    try:
        return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")
    except OSError as e:
        raise DataError(f"{path}: cannot open ({e.strerror})") from None


def uncompressed_size(path: str) -> int:
    """Size in bytes of the text (decompressing .gz files once to count exactly)."""
    if not is_gzip(path):
        return os.path.getsize(path)
    return fingerprint(path)[0]


def fingerprint(path: str) -> tuple[int, str]:
    """(size of the text in bytes, sha256 of the file as stored), in one read of the file: what
    the converter's run record compares to tell a changed input from an unchanged one."""
    digest = hashlib.sha256()
    total = 0
    try:
        with open(path, "rb") as raw:
            if not is_gzip(path):
                for block in iter(lambda: raw.read(1 << 22), b""):
                    digest.update(block)
                    total += len(block)
                return total, digest.hexdigest()
            hashing = _HashingReader(raw, digest)
            with gzip.GzipFile(fileobj=hashing, mode="rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    total += len(block)
            hashing.drain()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: not a readable gzip file ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    return total, digest.hexdigest()


class _HashingReader:
    """A binary file wrapper that hashes every byte read through it."""

    def __init__(self, f, digest):
        self.f = f
        self.digest = digest

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.digest.update(data)
        return data

    def drain(self) -> None:
        for block in iter(lambda: self.read(1 << 22), b""):
            pass


def check_input_file(path: str, flag: str = "--input") -> None:
    """A corpus input must be a readable regular file (not a directory, device or pipe)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise UserError(f"{flag} {path}: {'no such file' if isinstance(e, FileNotFoundError) else e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{flag} {path}: is a directory (give text files, e.g. "
                        f"{os.path.join(path, '*.txt')})")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{flag} {path}: not a regular file (a device or pipe); write the text to a file first")


def expand_inputs(patterns: Sequence[str] | str) -> list[str]:
    """Glob patterns (comma-separated or a list) -> sorted, de-duplicated list of regular files."""
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",") if p.strip()]
    if not patterns:
        raise UserError("--input is empty: expected text files or globs (comma-separated)")
    files: list[str] = []
    for p in patterns:
        if glob.has_magic(p):
            matched = [m for m in sorted(glob.glob(p, recursive=True)) if not os.path.isdir(m)]
            if not matched:
                raise UserError(f"--input {p}: no such file(s)")
        else:
            matched = [p]
        for m in matched:
            check_input_file(m)
        files.extend(matched)
    seen = set()
    out = []
    for f in files:
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out


def _line_number(path: str, offset: int) -> int:
    """1-based line of the byte at `offset` of the (decompressed) text: for error messages."""
    newlines = 0
    with open_binary(path) as f:
        remaining = offset
        while remaining > 0:
            block = f.read(min(remaining, 1 << 22))
            if not block:
                break
            newlines += block.count(b"\n")
            remaining -= len(block)
    return newlines + 1


def _not_utf8_hint(path: str) -> str:
    """What the start of a file says about why it is not UTF-8 ("" when nothing obvious)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "the file looks like UTF-16: convert it to UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)"
    if head[:2] == b"\x1f\x8b" and not is_gzip(path):
        return "the file looks gzip-compressed: give it a .gz name"
    return ""


def invalid_utf8_message(path: str, offset: int) -> str:
    """`FILE:LINE: invalid UTF-8 at byte offset N` plus what to do."""
    where = f"{path}:{_line_number(path, offset)}: invalid UTF-8 at byte offset {offset}"
    hint = _not_utf8_hint(path)
    return f"{where} ({hint or 'use --errors skip to drop such lines'})"


def _iter_raw_lines(f, path: str, start: int, stats: ReadStats) -> Iterator[tuple[int, bytes, bool, bool]]:
    """Yield (offset, bytes without newline, is_whole_line_start, ends_line) from `start`.

    If `start` > 0 the partial line it falls in is skipped (it belongs to the previous range).
    Lines longer than MAX_LINE_BYTES come in pieces, cut at UTF-8 character boundaries.
    """
    pos = 0
    if start > 0:
        f.seek(start - 1)
        pos = start - 1
        while True:  # skip to the first line starting at or after `start`
            piece = f.readline(MAX_LINE_BYTES)
            if not piece:
                return
            pos += len(piece)
            if piece.endswith(b"\n"):
                break
    line_start = True
    carry = b""
    while True:
        piece = f.readline(MAX_LINE_BYTES)
        if not piece and not carry:
            return
        offset = pos - len(carry)
        pos += len(piece)
        data = carry + piece
        carry = b""
        ends = data.endswith(b"\n") or not piece
        if not ends:
            stats.long_lines += line_start
            # Keep an incomplete UTF-8 character for the next piece.
            cut = len(data)
            back = 0
            while back < 4 and cut - back - 1 >= 0 and (data[cut - back - 1] & 0xC0) == 0x80:
                back += 1
            if cut - back - 1 >= 0 and data[cut - back - 1] >= 0xC0:
                lead = data[cut - back - 1]
                need = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
                if back + 1 < need:
                    carry = data[cut - back - 1:]
                    data = data[:cut - back - 1]
        if offset == 0 and data.startswith(_BOM):
            data = data[3:]
            offset += 3
        yield offset, data.rstrip(b"\r\n"), line_start, ends
        line_start = ends


def iter_documents(
    path: str,
    errors: str = "fail",
    start: int = 0,
    end: Optional[int] = None,
    stats: Optional[ReadStats] = None,
    max_document_chars: int = MAX_DOCUMENT_CHARS,
) -> Iterator[Document]:
    """Documents (lists of sentence strings) of one .txt/.gz file, or of a byte range of it.

    `errors`: "fail" raises DataError naming the file and byte offset of invalid UTF-8;
    "skip" drops such lines (counted in `stats.bad_lines`).
    """
    if errors not in ("fail", "skip"):
        raise UserError(f"--errors {errors!r}: expected skip or fail")
    stats = stats if stats is not None else ReadStats()
    with open_binary(path) as f:
        started = start == 0  # the file start is a boundary
        sentences: list[str] = []
        chars = 0
        doc_offset = start
        try:
            lines = _iter_raw_lines(f, path, start, stats)
            for offset, raw, whole_start, ends in lines:
                stats.bytes_read += len(raw) + 1
                blank = whole_start and ends and not raw.strip()
                if blank:
                    try:
                        blank = not raw.decode("utf-8").strip()
                    except UnicodeDecodeError:
                        blank = False
                if blank:
                    if started and sentences:
                        stats.documents += 1
                        yield Document(sentences, doc_offset)
                        sentences, chars = [], 0
                    if end is not None and offset >= end:
                        return
                    if not started:
                        started = True
                    doc_offset = offset
                    continue
                if not started:
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    if errors == "fail":
                        raise DataError(invalid_utf8_message(path, offset + e.start)) from None
                    stats.bad_lines += 1
                    if stats.first_bad is None:
                        stats.first_bad = (f"{path}:{_line_number(path, offset + e.start)}, "
                                           f"byte offset {offset + e.start}")
                    continue
                if not sentences:
                    doc_offset = offset
                for s in split_sentences(text):
                    sentences.append(s)
                    chars += len(s)
                if chars >= max_document_chars:
                    stats.documents += 1
                    yield Document(sentences, doc_offset)
                    sentences, chars = [], 0
            if started and sentences:
                stats.documents += 1
                yield Document(sentences, doc_offset)
        except (EOFError, gzip.BadGzipFile, OSError) as e:
            if isinstance(e, DataError):
                raise
            raise DataError(f"{path}: read error ({e})") from None
