"""Helpers shared by the data tests: the Chinese BERT vocab and small real corpora."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
_CANDIDATES = (ROOT.parent / "shared" / "data" / "bert_chinese_vocab.txt",
               pathlib.Path("/work/shared/data/bert_chinese_vocab.txt"))


def bert_vocab_path() -> str:
    """The 21,128-entry Chinese BERT vocab (tests only; the product never reads shared/)."""
    for p in _CANDIDATES:
        if p.is_file():
            return str(p)
    pytest.skip("Chinese BERT vocab (shared/data/bert_chinese_vocab.txt) not available")


def peoples_daily_text(tmp_path, max_bytes: int) -> str:
    """Write the first `max_bytes` of People's Daily (converter input format) under tmp_path."""
    from pipelines.package_corpus import write_peoples_daily_text

    out = os.path.join(str(tmp_path), f"pd_{max_bytes}.txt")
    write_peoples_daily_text(out, max_bytes=max_bytes)
    return out
