"""Chinese word segmentation for whole-word masking: jieba (default), rjieba (fast), or a corpus
that is already segmented (words separated by spaces).

Every segmenter is lossless: `cut(text)` returns pieces whose concatenation is `text` (spaces
included), so word boundaries can be aligned with tokenizer offsets by position alone. The
segmenter's name and version go into the corpus manifest: a different jieba version gives
different words, hence different masks.
"""
from __future__ import annotations

import importlib.metadata
import logging
import re
from typing import Callable

from tfcompact.errors import UserError

SEGMENTERS = ("jieba", "rjieba", "presegmented")


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Segmenter:
    """A named, versioned word segmenter: `cut(text) -> list[str]` (lossless)."""

    def __init__(self, name: str, version: str, cut: Callable[[str], list[str]]):
        self.name = name
        self.version = version
        self._cut = cut

    def cut(self, text: str) -> list[str]:
        """Words of `text` in order; their concatenation equals `text`."""
        return self._cut(text)

    def describe(self) -> dict:
        """{"name", "version"} as recorded in manifest.json."""
        return {"name": self.name, "version": self.version}

    def __repr__(self) -> str:
        return f"Segmenter({self.name} {self.version})"


_WORDS_AND_SPACES = re.compile(r"\S+|\s+")


def make_segmenter(name: str = "jieba") -> Segmenter:
    """Build a segmenter by name. jieba loads its dictionary (about 1 s, cached on disk by jieba)
    on first use in each process; rjieba needs `pip install tfcompact[fast]`."""
    if name == "jieba":
        import jieba

        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()

        def cut(text: str) -> list[str]:
            return tokenizer.lcut(text, HMM=True)

        return Segmenter("jieba", getattr(jieba, "__version__", _package_version("jieba")), cut)
    if name == "rjieba":
        try:
            import rjieba
        except ImportError:
            raise UserError("--segmenter rjieba needs the rjieba package (pip install tfcompact[fast])") from None
        return Segmenter("rjieba", _package_version("rjieba"), lambda text: rjieba.cut(text))
    if name == "presegmented":
        # The corpus itself carries the segmentation: words are separated by whitespace.
        return Segmenter("presegmented", "1", _WORDS_AND_SPACES.findall)
    raise UserError(f"unknown segmenter {name!r} (expected one of {', '.join(SEGMENTERS)})")
