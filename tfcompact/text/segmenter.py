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
import os
import pickle
import re
from typing import Callable, Optional

from tfcompact.errors import UserError

SEGMENTERS = ("jieba", "rjieba", "presegmented")


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Segmenter:
    """A named, versioned word segmenter: `cut(text) -> list[str]` (lossless)."""

    def __init__(self, name: str, version: str, cut: Callable[[str], list[str]],
                 load: Optional[Callable[[], None]] = None):
        self.name = name
        self.version = version
        self._cut = cut
        self._load = load

    def load(self) -> None:
        """Load the dictionary now (otherwise done by the first `cut`): the converter calls it
        before forking its workers, so they start with it in memory."""
        if self._load is not None:
            self._load()

    def cut(self, text: str) -> list[str]:
        """Words of `text` in order; their concatenation equals `text`."""
        return self._cut(text)

    def describe(self) -> dict:
        """{"name", "version"} as recorded in manifest.json."""
        return {"name": self.name, "version": self.version}

    def __repr__(self) -> str:
        return f"Segmenter({self.name} {self.version})"


def _jieba_cache_path(dict_path: str, version: str) -> str:
    st = os.stat(dict_path)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tfcompact", f"jieba-{version}-{st.st_size}-{st.st_mtime_ns}.pickle")


def _load_jieba_dictionary(tokenizer, version: str) -> None:
    """Initialise a jieba.Tokenizer of the default dictionary from a pickle cache.

    jieba's own cache (a marshal file in the temp dir) takes about 1.1 s to load here, a pickle
    of the same (word -> frequency, total) prefix dictionary about 0.35 s. The cache is keyed by
    jieba's version and the dictionary file's size and mtime; anything unexpected falls back to
    jieba's own `initialize()`, so the words are the same either way."""
    if tokenizer.initialized:
        return
    import jieba

    dict_path = os.path.join(os.path.dirname(os.path.abspath(jieba.__file__)), jieba.DEFAULT_DICT_NAME)
    if tokenizer.dictionary != jieba.DEFAULT_DICT or not os.path.isfile(dict_path):
        tokenizer.initialize()
        return
    path = _jieba_cache_path(dict_path, version)
    try:
        with open(path, "rb") as f:
            freq, total = pickle.load(f)
        if isinstance(freq, dict) and isinstance(total, int) and total > 0:
            tokenizer.FREQ, tokenizer.total = freq, total
            tokenizer.initialized = True
            return
    except (OSError, ValueError, TypeError, EOFError, pickle.UnpicklingError):
        pass
    tokenizer.initialize()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            pickle.dump((tokenizer.FREQ, tokenizer.total), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass


_WORDS_AND_SPACES = re.compile(r"\S+|\s+")


def make_segmenter(name: str = "jieba") -> Segmenter:
    """Build a segmenter by name. jieba loads its dictionary (about 1 s, cached on disk by jieba)
    on first use in each process; rjieba needs `pip install tfcompact[fast]`."""
    if name == "jieba":
        import jieba

        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        version = getattr(jieba, "__version__", _package_version("jieba"))

        def cut(text: str) -> list[str]:
            return tokenizer.lcut(text, HMM=True)

        return Segmenter("jieba", version, cut, load=lambda: _load_jieba_dictionary(tokenizer, version))
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
