"""Corpus reading: byte ranges partition documents, BOM/CRLF, giant lines, invalid UTF-8, gzip."""
import gzip
import hashlib

import numpy as np
import pytest

from tfcompact.text import corpus
from tfcompact.errors import DataError, UserError

DOCS = [["第一篇。", "第二句！"], ["English line", "中文第三句？"], ["单句文档"], ["最后。", "一句", "两句。"]]


def _write(tmp_path, text, name="c.txt", raw=None):
    p = tmp_path / name
    p.write_bytes(raw if raw is not None else text.encode("utf-8"))
    return str(p)


def _text(docs, blank="\n"):
    return blank.join("".join(s + "\n" for s in d) for d in docs)


def _all(path, **kw):
    return [d.sentences for d in corpus.iter_documents(path, **kw)]


def test_documents_and_sentence_split(tmp_path):
    path = _write(tmp_path, "\n\n" + _text(DOCS, blank="\n \n\n") + "\n\n")
    assert _all(path) == DOCS
    path = _write(tmp_path, "一。二！三？“四。”五\n", name="p.txt")
    assert _all(path) == [["一。", "二！", "三？", "“四。”", "五"]]


def test_byte_ranges_partition_documents(tmp_path):
    rng = np.random.default_rng(0)
    docs = [[f"文档{d}句{s}。" for s in range(int(rng.integers(1, 5)))] for d in range(60)]
    text = _text(docs, blank="\n\n")
    path = _write(tmp_path, text)
    size = len(text.encode())
    for n in (1, 2, 3, 7, 50, size):
        cuts = [size * k // n for k in range(n + 1)]
        got = []
        for k in range(n):
            got += _all(path, start=cuts[k], end=cuts[k + 1])
        assert got == docs, n


def test_bom_crlf_and_gzip(tmp_path):
    raw = b"\xef\xbb\xbf" + _text(DOCS).replace("\n", "\r\n").encode("utf-8")
    path = _write(tmp_path, "", raw=raw)
    assert _all(path) == DOCS
    gz = tmp_path / "c.txt.gz"
    gz.write_bytes(gzip.compress(raw))
    assert _all(str(gz)) == DOCS
    assert corpus.uncompressed_size(str(gz)) == len(raw)
    half = len(raw) // 2
    assert _all(str(gz), start=0, end=half) + _all(str(gz), start=half) == DOCS


def test_invalid_utf8_reports_file_and_offset(tmp_path):
    raw = "好的。\n".encode() + b"bad \xff\xfe line\n" + "后面。\n".encode()
    path = _write(tmp_path, "", raw=raw)
    with pytest.raises(DataError, match=r"c\.txt:2: invalid UTF-8 at byte offset 14"):
        _all(path)
    stats = corpus.ReadStats()
    assert [d.sentences for d in corpus.iter_documents(path, errors="skip", stats=stats)] == [["好的。", "后面。"]]
    assert stats.bad_lines == 1


def test_giant_line_is_read_in_pieces(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "MAX_LINE_BYTES", 64)
    line = "长" * 100  # 300 bytes, cut at character boundaries
    path = _write(tmp_path, "前。\n" + line + "\n\n后。\n")
    docs = _all(path)
    assert "".join(docs[0][1:]) == line and len(docs[0]) > 2
    assert docs[1] == ["后。"]


def test_empty_file_and_blank_documents(tmp_path):
    assert _all(_write(tmp_path, "")) == []
    assert _all(_write(tmp_path, "\n \n\t\n\u3000\n", name="b.txt")) == []


def test_expand_inputs(tmp_path):
    for n in ("b.txt", "a.txt"):
        (tmp_path / n).write_text("x\n")
    assert [p.split("/")[-1] for p in corpus.expand_inputs(str(tmp_path / "*.txt"))] == ["a.txt", "b.txt"]
    with pytest.raises(Exception, match="no such file"):
        corpus.expand_inputs(str(tmp_path / "missing*.txt"))


def test_expand_inputs_refuses_what_is_not_a_text_file(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(UserError, match=r"--input .*d: is a directory \(give text files, e\.g\. .*d/\*\.txt\)"):
        corpus.expand_inputs(str(tmp_path / "d"))
    with pytest.raises(UserError, match="--input /dev/zero: not a regular file"):
        corpus.expand_inputs("/dev/zero")
    with pytest.raises(UserError, match="--input is empty"):
        corpus.expand_inputs(" , ")
    (tmp_path / "d" / "a.txt").write_text("x\n")
    with pytest.raises(UserError, match="no such file"):  # a glob matching only directories
        corpus.expand_inputs(str(tmp_path / "*"))
    assert corpus.expand_inputs(str(tmp_path / "d" / "*")) == [str(tmp_path / "d" / "a.txt")]


def test_fingerprint_is_one_read_of_text_size_and_stored_bytes(tmp_path):
    raw = _text(DOCS).encode("utf-8")
    path = _write(tmp_path, "", raw=raw)
    assert corpus.fingerprint(path) == (len(raw), hashlib.sha256(raw).hexdigest())
    gz = tmp_path / "c.txt.gz"
    gz.write_bytes(gzip.compress(raw, mtime=0))
    assert corpus.fingerprint(str(gz)) == (len(raw), hashlib.sha256(gz.read_bytes()).hexdigest())
    gz.write_bytes(gz.read_bytes()[:20])
    with pytest.raises(DataError, match="c.txt.gz: not a readable gzip file"):
        corpus.fingerprint(str(gz))


@pytest.mark.parametrize("raw,match", [
    ("一。\n二。\n".encode() + b"\x80\n", r"c\.txt:3: invalid UTF-8 at byte offset 14 \(use --errors skip"),
    ("一。\n".encode("utf-16"), r"c\.txt:1: invalid UTF-8 .*looks like UTF-16: convert it to UTF-8"),
    (gzip.compress("一。\n".encode(), mtime=0), r"c\.txt:1: invalid UTF-8 .*looks gzip-compressed"),
])
def test_invalid_utf8_names_line_and_likely_cause(tmp_path, raw, match):
    with pytest.raises(DataError, match=match):
        _all(_write(tmp_path, "", raw=raw))
