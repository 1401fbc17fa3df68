"""BERT tokenization for the Chinese BERT vocabulary, in two implementations that agree id for id.

The rules (google-research/bert `BasicTokenizer` + `WordpieceTokenizer`, plus one normalisation
step of our own):

1. Typographic punctuation missing from the Chinese BERT vocabulary is mapped to ASCII before
   anything else: curly quotes to straight quotes, em dash to hyphen, ellipsis to three dots.
   (About 0.8 % of news-text tokens would otherwise be [UNK].) No NFKC: it would turn
   full-width Chinese punctuation into ASCII, and the vocabulary has the full-width forms.
2. Clean: NUL, U+FFFD and control characters (Unicode Cc/Cf, except tab/newline/CR) are
   dropped; tab, newline, CR and every space/line/paragraph separator (Zs, Zl, Zp, e.g.
   U+3000, U+2028) become a space (google-research/bert splits on them too).
3. `do_lower_case`: lower-case (full Unicode case mapping), NFD, drop combining marks (Mn).
4. Split on whitespace; every punctuation character (ASCII symbols and Unicode P*) and every
   CJK ideograph becomes its own token.
5. WordPiece: greedy longest match with `##` continuations; a word longer than 100 characters
   or with an unmatched remainder becomes [UNK].

`make_tf_tokenizer` builds these steps from tensorflow-text ops (RE2 regexes,
`normalize_utf8`, `FastWordpieceTokenizer`) so they run inside a SavedModel; `FullTokenizer`
is the pure-Python path the corpus converter uses (one regex pass and a per-word cache,
several MB/s), tested to give the same ids.
"""
from __future__ import annotations

import bisect
import collections
import functools
import hashlib
import itertools
import json
import operator
import os
import re
import sys
import unicodedata
from typing import Iterable, Sequence

import numpy as np

from tfcompact.errors import DataError

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
MAX_CHARS_PER_WORD = 100
CONTINUATION_PREFIX = "##"

# Step 1: punctuation absent from the Chinese BERT vocabulary, mapped to ASCII.
PUNCTUATION_MAP = {
    "\u201c": '"', "\u201d": '"',  # “ ”
    "\u2018": "'", "\u2019": "'",  # ‘ ’
    "\u2014": "-",  # — em dash
    "\u2026": "...",  # … ellipsis
}

# Code point ranges of the CJK Unified Ideographs blocks BERT splits into single characters.
CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)
# ASCII non-letters/digits that BERT treats as punctuation although Unicode does not (e.g. ^ $ `).
ASCII_PUNCT_RANGES = ((33, 47), (58, 64), (91, 96), (123, 126))


def is_cjk_char(cp: int) -> bool:
    """True for a code point in a CJK ideograph block (each such character is one token)."""
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------
class Vocab:
    """A WordPiece vocabulary: one token a line, id = line number (0-based).

    Validates that the five BERT special tokens are present and records the file's md5, which
    the corpus manifest stores so a model can check it is trained on ids of its own vocab.
    """

    def __init__(self, tokens: Sequence[str], path: str = "<memory>", md5: str | None = None):
        self.path = str(path)
        self.tokens: list[str] = list(tokens)
        if not self.tokens:
            raise DataError(f"{self.path}: vocabulary is empty (expected one token a line)")
        self.token_to_id: dict[str, int] = {}
        for i, tok in enumerate(self.tokens):
            first = self.token_to_id.setdefault(tok, i)
            if first != i:  # two ids for one token: one of them could never be produced
                raise DataError(f"{self.path}:{i + 1}: duplicate token {tok!r} (first on line "
                                f"{first + 1}); each token must appear once")
        missing = [t for t in SPECIAL_TOKENS if t not in self.token_to_id]
        if missing:
            raise DataError(
                f"{self.path}: vocabulary lacks special token(s) {', '.join(missing)} "
                f"(a BERT vocab needs {', '.join(SPECIAL_TOKENS)})"
            )
        self.md5 = md5 or hashlib.md5("".join(t + "\n" for t in self.tokens).encode("utf-8")).hexdigest()
        self.pad_id = self.token_to_id[PAD]
        self.unk_id = self.token_to_id[UNK]
        self.cls_id = self.token_to_id[CLS]
        self.sep_id = self.token_to_id[SEP]
        self.mask_id = self.token_to_id[MASK]

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        """Read vocab.txt (UTF-8, one token a line; ASCII blanks around a token are ignored, other
        characters are kept: the Chinese BERT vocab has a token that is U+2028 alone)."""
        path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise DataError(f"{path}: cannot read vocabulary ({e.strerror})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: vocabulary is not UTF-8 (invalid byte at offset {e.start})") from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        tokens = [line.strip(" \t\r") for line in lines]
        for lineno, tok in enumerate(tokens, 1):
            if not tok:
                raise DataError(f"{path}:{lineno}: empty line in vocabulary (expected a token)")
        return cls(tokens, path=path, md5=hashlib.md5(raw).hexdigest())

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def size(self) -> int:
        return len(self.tokens)

    @property
    def special_ids(self) -> dict[str, int]:
        return {t: self.token_to_id[t] for t in SPECIAL_TOKENS}

    @functools.cached_property
    def is_continuation(self) -> np.ndarray:
        """bool [vocab_size]: True for `##` pieces (never valid as masked-LM labels here)."""
        return np.array([t.startswith(CONTINUATION_PREFIX) and len(t) > 2 for t in self.tokens], dtype=bool)

    @functools.cached_property
    def replacement_ids(self) -> np.ndarray:
        """Ids a masked token may be replaced with in the 10 % "random" case: ordinary tokens
        only (no specials, no [unusedN], no `##` pieces, no <S>/<T>-style markers)."""
        keep = [
            i for i, t in enumerate(self.tokens)
            if not (t.startswith("[") and t.endswith("]"))
            and not (t.startswith("<") and t.endswith(">") and len(t) > 2)
            and not (t.startswith(CONTINUATION_PREFIX) and len(t) > 2)
        ]
        if not keep:
            keep = [i for i in range(len(self.tokens)) if i not in self.special_ids.values()]
        return np.asarray(keep, dtype=np.int64)

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        return [self.token_to_id.get(t, self.unk_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[int(i)] for i in ids]


# ---------------------------------------------------------------------------------------------
# Character classes, built once from the Unicode database (about 0.3 s).
# ---------------------------------------------------------------------------------------------
def _space_chars() -> list[str]:
    """Tab, newline, CR and the Zs/Zl/Zp separators (all below U+3001)."""
    return [ch for ch in map(chr, range(0x3001))
            if ch in "\t\n\r" or unicodedata.category(ch) in ("Zs", "Zl", "Zp")]


def _ranges_to_class(cps: list[int]) -> str:
    """Turn sorted code points into a regex character-class body of ranges (escaped)."""
    out = []
    start = prev = None
    for cp in cps:
        if start is None:
            start = prev = cp
        elif cp == prev + 1:
            prev = cp
        else:
            out.append((start, prev))
            start = prev = cp
    if start is not None:
        out.append((start, prev))
    parts = []
    for lo, hi in out:
        parts.append(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}")
    return "".join(parts)


def _char_class_cache_name() -> str:
    return f"char-classes-v1-unicode-{unicodedata.unidata_version}.json"


@functools.lru_cache(maxsize=1)
def _char_classes() -> dict[str, str]:
    """Regex class bodies for BERT's punctuation, control, space and combining-mark sets.

    Scanning the Unicode database takes about 0.3 s; the result is cached (JSON, keyed by the
    Unicode version, in the private cache of `tfcompact.text.user_cache`) so the converter's
    worker processes start faster. A damaged cache is reported and rebuilt."""
    from tfcompact.text import user_cache

    name = _char_class_cache_name()
    raw = user_cache.read_private(name)
    if raw is not None:
        try:
            cached = json.loads(raw.decode("utf-8"))
            if (isinstance(cached, dict) and set(cached) == {"punct", "control", "space", "marks", "cjk"}
                    and all(isinstance(v, str) for v in cached.values())):
                return cached
            problem = "unexpected content"
        except (UnicodeDecodeError, ValueError) as e:
            problem = f"not valid JSON ({e})"
        user_cache.warn(f"cache {user_cache.cache_path(name)} is damaged ({problem}); rebuilding it")
    classes = _scan_char_classes()
    user_cache.write_private(name, json.dumps(classes).encode("utf-8"))
    return classes


def _scan_char_classes() -> dict[str, str]:
    punct, control, space, marks = [], [], [], []
    ascii_punct = {cp for lo, hi in ASCII_PUNCT_RANGES for cp in range(lo, hi + 1)}
    for cp in range(sys.maxunicode + 1):
        cat = unicodedata.category(chr(cp))
        if cp in ascii_punct or cat[0] == "P":
            punct.append(cp)
        if cp in (9, 10, 13) or cat in ("Zs", "Zl", "Zp"):
            space.append(cp)
        elif cp == 0 or cp == 0xFFFD or cat in ("Cc", "Cf"):
            control.append(cp)
        if cat == "Mn":
            marks.append(cp)
    cjk = "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in CJK_RANGES)
    return {
        "punct": _ranges_to_class(punct),
        "control": _ranges_to_class(control),
        "space": _ranges_to_class(space),
        "marks": _ranges_to_class(marks),
        "cjk": cjk,
    }


# ---------------------------------------------------------------------------------------------
# Pure-Python tokenizer
# ---------------------------------------------------------------------------------------------
_WHITESPACE = re.compile(r"\s")


class _MemoTable(dict):
    """A dict that computes a missing key's value once with `fill(key)` and keeps it (bounded by
    the number of distinct characters seen)."""

    def __init__(self, fill):
        super().__init__()
        self._fill = fill

    def __missing__(self, key):
        value = self[key] = self._fill(key)
        return value


class BasicTokenizer:
    """BERT's basic tokenizer (steps 1-4 of the module docstring): text -> basic tokens.

    Needs no vocabulary; the vocabulary builder counts its tokens.
    """

    def __init__(self, do_lower_case: bool = True):
        self.do_lower_case = bool(do_lower_case)
        c = _char_classes()
        # Characters to map (typographic punctuation, spaces other than U+0020) or drop
        # (controls; combining marks when lower-casing), matched in one pass.
        self._repl = dict(PUNCTUATION_MAP)
        self._repl.update({ch: " " for ch in _space_chars() if ch != " "})
        drop = c["control"] + (c["marks"] if self.do_lower_case else "")
        special = "".join(re.escape(ch) for ch in self._repl if ch != " ")
        self._clean_re = re.compile(f"[{special}{drop}]")
        self._marks_re = re.compile(f"[{c['marks']}]+")
        self._token_re = re.compile(f"[{c['cjk']}]|[{c['punct']}]|[^\\s{c['cjk']}{c['punct']}]+")
        self._cjk_re = re.compile(f"[{c['cjk']}]")
        # Step 1-2 as str.translate: code point -> replacement, None (drop) or itself (keep),
        # filled on first sight of each character (a C dict lookup per character afterwards;
        # the regex's large character classes cost about 0.3 us a character).
        self._clean_table = _MemoTable(self._clean_entry)

    def _clean_entry(self, cp: int):
        ch = chr(cp)
        if self._clean_re.match(ch) is None:
            return cp
        return self._repl.get(ch) or None

    def normalize(self, text: str) -> str:
        """Steps 1-3 of the module docstring (punctuation map, clean, lower/NFD/strip marks).

        One regex pass maps or drops the rare special characters (and, when lower-casing,
        combining marks: stripping them before NFD gives the same result, NFD never composes);
        then lower(), and NFD only for text that is not NFD already.
        """
        text = text.translate(self._clean_table)
        if self.do_lower_case:
            text = text.lower()
            if not text.isascii():
                if not unicodedata.is_normalized("NFD", text):
                    text = self._marks_re.sub("", unicodedata.normalize("NFD", text))
                elif "\u0307" in text:  # the only mark lower() creates (from U+0130)
                    text = text.replace("\u0307", "")
        return text


    def split_words(self, text: str) -> list[str]:
        """Normalise and split into BERT basic tokens (CJK chars and punctuation separate)."""
        return self._token_re.findall(self.normalize(text))

    def is_cjk_token(self, token: str) -> bool:
        return len(token) == 1 and self._cjk_re.match(token) is not None


class FullTokenizer(BasicTokenizer):
    """BERT basic tokenizer + WordPiece in Python (the converter's fast path).

    `tokenize_to_ids(text)` gives the ids of the whole text; `encode_with_words(text, cut)`
    also gives whole-word boundaries from a segmenter, for whole-word masking.
    """

    def __init__(self, vocab: Vocab | str | os.PathLike, do_lower_case: bool = True):
        super().__init__(do_lower_case)
        self.vocab = vocab if isinstance(vocab, Vocab) else Vocab.load(vocab)
        self._piece_cache: dict[str, tuple[int, ...]] = {}
        # Character -> its id when it is a token by itself (CJK ideograph or punctuation),
        # -1 otherwise: most Chinese sentences are made of such characters only, and then the
        # ids are one dict lookup per character (no regex split, no WordPiece).
        self._char_ids = _MemoTable(self._char_entry)

    def _char_entry(self, ch: str) -> int:
        m = self._token_re.match(ch + "a")  # a letter after it: does the token stop at ch?
        if m is None or m.end() != 1:
            return -1  # a space, or part of a longer word (letters, digits, ...)
        return self.wordpiece_ids(ch)[0]

    # -- WordPiece ------------------------------------------------------------------------------
    def wordpiece_ids(self, word: str) -> tuple[int, ...]:
        """Greedy longest-match-first WordPiece of one basic token (cached)."""
        ids = self._piece_cache.get(word)
        if ids is not None:
            return ids
        t2i = self.vocab.token_to_id
        if len(word) > MAX_CHARS_PER_WORD:
            ids = (self.vocab.unk_id,)
        else:
            out = []
            start, n = 0, len(word)
            while start < n:
                end = n
                cur = None
                while start < end:
                    sub = word[start:end]
                    if start > 0:
                        sub = CONTINUATION_PREFIX + sub
                    cur = t2i.get(sub)
                    if cur is not None:
                        break
                    end -= 1
                if cur is None:
                    out = [self.vocab.unk_id]
                    break
                out.append(cur)
                start = end
            ids = tuple(out)
        if len(self._piece_cache) < 200_000:  # bounded: memory stays flat on any corpus
            self._piece_cache[word] = ids
        return ids

    def tokenize_to_ids(self, text: str) -> list[int]:
        """Ids of `text` (no [CLS]/[SEP])."""
        out: list[int] = []
        for w in self.split_words(text):
            out.extend(self.wordpiece_ids(w))
        return out

    def encode_with_words(self, text: str, cut=None) -> tuple[list[int], list[bool]]:
        """Ids of `text` plus, per id, whether it starts a new whole word.

        `cut` is a lossless word segmenter applied to the normalised text (see
        `tfcompact.text.segmenter`); a basic token belongs to the segmenter word containing its
        first character, so a word of several characters or pieces (北京, 3.14, iphone ##12)
        is one unit, and two segmenter words inside one basic token merge into one. The ids
        are exactly `tokenize_to_ids(text)`. Without `cut`, every basic token is a word.
        """
        norm = self.normalize(text)
        if not norm:
            return [], []
        words = None
        fast = list(map(self._char_ids.__getitem__, norm))
        if -1 not in fast:  # every character is a token of its own
            if cut is None:
                return fast, [True] * len(fast)
            words = cut(norm)
            word_ends = list(itertools.accumulate(map(len, words)))
            if word_ends and word_ends[-1] == len(norm):
                flags = bytearray(len(norm))
                flags[0] = 1
                collections.deque(map(flags.__setitem__, word_ends[:-1], itertools.repeat(1)), maxlen=0)
                return fast, list(map(bool, flags))
        if cut is not None and _WHITESPACE.search(norm) is None:
            words = cut(norm) if words is None else words
            out = self._encode_runs(norm, fast, words)
            if out is not None:
                return out
        toks = self._token_re.findall(norm)
        if not toks:
            return [], []
        pieces = list(map(self._piece_cache.get, toks))
        if None in pieces:
            pieces = [p if p is not None else self.wordpiece_ids(t) for p, t in zip(pieces, toks)]
        if cut is None:
            tok_new = [True] * len(toks)
        else:
            words = cut(norm) if words is None else words
            word_ends = list(itertools.accumulate(map(len, words)))
            lossless = bool(word_ends) and word_ends[-1] == len(norm)
            if not lossless:  # a segmenter that dropped characters: search
                word_ends, pos = [], 0
                for w in words:
                    found = norm.find(w, pos)
                    pos = (found if found >= 0 else pos) + len(w)
                    word_ends.append(pos)
            if lossless and len(toks) == len(norm):  # one token per character: flag word starts
                flags = bytearray(len(norm))
                flags[0] = 1
                collections.deque(map(flags.__setitem__, word_ends[:-1], itertools.repeat(1)), maxlen=0)
                tok_new = list(map(bool, flags))
                word_ends = None
            elif " " in norm:
                tok_starts = [m.start() for m in self._token_re.finditer(norm)]
            else:  # tokens tile the string
                tok_starts = list(itertools.accumulate(map(len, toks), initial=0))[:-1]
            if word_ends is not None:
                widx = list(map(functools.partial(bisect.bisect_right, word_ends), tok_starts))
                tok_new = [True]
                tok_new += map(operator.ne, widx[1:], widx)
        if max(map(len, pieces)) == 1:
            return list(map(operator.itemgetter(0), pieces)), tok_new
        ids: list[int] = []
        starts: list[bool] = []
        for p, new in zip(pieces, tok_new):
            ids.extend(p)
            starts.append(new)
            starts.extend([False] * (len(p) - 1))
        return ids, starts

    def _encode_runs(self, norm: str, char_ids: list, words: list) -> tuple[list[int], list[bool]] | None:
        """`encode_with_words` for a text without spaces that mixes single-character tokens
        with longer words (digits, Latin letters), working run by run instead of token by token.

        Tokens tile such a text: each character with an id in `char_ids` is a token, each
        maximal run of the others (-1) is one word for WordPiece. A token starts a new whole
        word when a segmenter word starts after the previous token's start and at or before
        its own start. None when the segmenter's words do not tile the text."""
        n = len(norm)
        ends = list(itertools.accumulate(map(len, words)))
        if not ends or ends[-1] != n:
            return None
        flags = bytearray(n + 1)  # flags[p] = 1: a word starts at p
        flags[0] = 1
        collections.deque(map(flags.__setitem__, ends[:-1], itertools.repeat(1)), maxlen=0)
        ids: list[int] = []
        starts: list[bool] = []
        prev = -1  # start of the previous token
        pos = 0
        for is_word, group in itertools.groupby(char_ids, key=(-1).__eq__):
            size = len(list(group))
            if is_word:  # one basic token norm[pos:pos + size]
                pieces = self._piece_cache.get(norm[pos:pos + size]) or self.wordpiece_ids(norm[pos:pos + size])
                ids.extend(pieces)
                starts.append(prev < 0 or 1 in flags[prev + 1:pos + 1])
                starts.extend([False] * (len(pieces) - 1))
                prev = pos
            else:  # `size` single-character tokens
                ids.extend(char_ids[pos:pos + size])
                starts.append(prev < 0 or 1 in flags[prev + 1:pos + 1])
                starts.extend(map(bool, flags[pos + 1:pos + size]))
                prev = pos + size - 1
            pos += size
        return ids, starts

    def tokenize(self, text: str) -> list[str]:
        """Token strings of `text` (for display and debugging)."""
        return self.vocab.convert_ids_to_tokens(self.tokenize_to_ids(text))


# ---------------------------------------------------------------------------------------------
# tensorflow-text tokenizer (runs inside a SavedModel)
# ---------------------------------------------------------------------------------------------
_TF_CJK = "".join(f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in CJK_RANGES)
_TF_ASCII_PUNCT = "!-/:-@\\[-`{-~"


def make_tf_tokenizer(vocab_path: str | os.PathLike, do_lower_case: bool = True):
    """A `tf.Module` whose `tokenize(strings)` maps a [batch] string tensor to a
    [batch, (tokens)] int64 RaggedTensor of WordPiece ids, same ids as `FullTokenizer`.

    Built only from TF / tensorflow-text ops, so it can be tracked by a SavedModel (the vocab
    is compiled into the FastWordpieceTokenizer model buffer, no asset file needed).
    Attributes: `vocab_size`, `pad_id`, `unk_id`, `cls_id`, `sep_id`, `mask_id`, `do_lower_case`.
    """
    import tensorflow as tf
    import tensorflow_text as tf_text

    vocab = Vocab.load(vocab_path)

    class BertChineseTokenizer(tf.Module):
        """BERT basic tokenizer + FastWordpieceTokenizer on tensorflow-text ops."""

        def __init__(self):
            super().__init__(name="bert_chinese_tokenizer")
            self.do_lower_case = bool(do_lower_case)
            self.vocab_size = len(vocab)
            self.pad_id, self.unk_id = vocab.pad_id, vocab.unk_id
            self.cls_id, self.sep_id, self.mask_id = vocab.cls_id, vocab.sep_id, vocab.mask_id
            self.wordpiece = tf_text.FastWordpieceTokenizer(
                vocab=vocab.tokens,
                suffix_indicator=CONTINUATION_PREFIX,
                max_bytes_per_word=4 * MAX_CHARS_PER_WORD + 4,
                token_out_type=tf.int64,
                unknown_token=UNK,
                no_pretokenization=True,
                support_detokenization=False,
            )

        def normalize(self, text):
            """Steps 1-3: [batch] strings -> [batch] normalised strings."""
            text = tf.strings.regex_replace(text, "[\u201c\u201d]", '"')
            text = tf.strings.regex_replace(text, "[\u2018\u2019]", "'")
            text = tf.strings.regex_replace(text, "\u2014", "-")
            text = tf.strings.regex_replace(text, "\u2026", "...")
            text = tf.strings.regex_replace(text, r"[\t\n\r\p{Zs}\p{Zl}\p{Zp}]", " ")
            text = tf.strings.regex_replace(text, r"[\x{0}\x{FFFD}\p{Cc}\p{Cf}]", "")
            if self.do_lower_case:
                text = tf.strings.lower(text, encoding="utf-8")
                text = tf_text.normalize_utf8(text, "NFD")
                text = tf.strings.regex_replace(text, r"\p{Mn}", "")
            return text

        def split_words(self, text):
            """[batch] strings -> [batch, (words)] basic tokens."""
            keep = f"[{_TF_ASCII_PUNCT}]|\\p{{P}}|[{_TF_CJK}]"
            return tf_text.regex_split(self.normalize(text), f"\\s+|{keep}", keep)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def tokenize(self, text):
            """[batch] strings -> [batch, (tokens)] int64 WordPiece ids."""
            words = self.split_words(text)
            too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
            flat = tf.where(too_long, tf.constant(UNK), words.flat_values)
            pieces = self.wordpiece.tokenize(flat)  # [n_words, (pieces)]
            return words.with_flat_values(pieces).merge_dims(1, 2)

    return BertChineseTokenizer()


def packaged_vocab_path() -> str:
    """A 7,006-token Chinese vocab shipped with tfcompact (BERT layout: [CLS]=101 etc.), built by
    `tfcompact build-vocab --vocab_size 8000` from the People's Daily 1998-01 corpus: for the
    quickstart and tests; real runs bring their own or the released 21,128-token vocab."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "vocab_zh_pd.txt")
