"""Task files -> the examples of `tfcompact.tasks`: classification tables and JSON lines, SQuAD v1
JSON, CoNLL tagging files. Streaming (SQuAD excepted: one JSON document), TensorFlow-free for
local paths; every malformed row is a one-line DataError naming ``file:line`` (and the field),
or for SQuAD the file and the JSON path (``data[0].paragraphs[3].qas[2].answers[0]``).

Formats (`FORMATS`; `default_format` picks one from the task kind and the file name):

- ``tsv`` / ``csv``: a header row, columns picked by name. Without ``text_fields`` the first of
  `TEXT_COLUMNS` the header holds is used (``text_a[,text_b]`` as ChnSentiCorp ``label text_a``
  and LCQMC/BQ ``text_a text_b label``; ``sentence1,sentence2`` as XNLI; ``premise,hypo`` as
  the XNLI-MT training file, whose ``contradictory`` is read as the dev/test files' spelling
  ``contradiction``); the label is ``label`` or else ``gold_label``. Numeric ``text_fields``
  and ``label_field`` (``0,1`` and ``2``) read a headerless file by column position (the
  original LCQMC). TSV has quoting off: Chinese TSVs hold bare ``"`` characters.
- ``xnli``: the XNLI 1.0 dev/test TSV (``language``, ``gold_label``, ``sentence1``,
  ``sentence2``, ...): only the ``language == zh`` rows.
- ``jsonl`` / ``clue``: one JSON object a line, fields as for the tables (``sentence``;
  ``sentence1`` + ``sentence2`` as AFQMC, CMNLI, OCNLI; CSL's ``keyword`` list + ``abst``:
  text_a is the keywords joined by one space, text_b the abstract, as CLUE's baseline pairs
  them). Labels may be JSON numbers or strings: always read as strings.
- ``squad`` (span): SQuAD v1 JSON (CMRC 2018, DRCD).
- ``conll`` (tagging): ``token ... tag`` lines, a blank line between sentences.

Rows with the label ``-`` (no gold label: annotators disagreed, as in CMNLI/OCNLI/MNLI) are
skipped when reading labelled data, and other languages' XNLI rows always are; both are counted
in the optional ``counts`` (a `collections.Counter`) so a command can say so (`describe_counts`).
"""
from __future__ import annotations

import collections
import csv
import io
import json
import os
import re
from typing import Iterable, Iterator, Optional, Sequence

from tfcompact.errors import ConfigError, DataError
from tfcompact.files import is_remote, read_bytes
from tfcompact.tasks import TAGGING_SCHEMES, SpanExample, TaggedExample, TextExample, check_kind

# format -> (task kind, what it reads)
FORMATS: dict[str, tuple[str, str]] = {
    "tsv": ("classification", "tab-separated table with a header row, columns by name "
                              "(ChnSentiCorp, LCQMC, BQ, XNLI-MT); quoting off"),
    "csv": ("classification", "comma-separated table with a header row (quoted fields)"),
    "xnli": ("classification", "XNLI 1.0 dev/test TSV: the language == zh rows"),
    "jsonl": ("classification", "JSON lines; --text_fields/--label_field name the keys"),
    "clue": ("classification", "CLUE JSON lines: sentence | sentence1+sentence2 | keyword+abst "
                               "(CSL) and label (TNEWS, IFLYTEK, AFQMC, CMNLI, OCNLI, CSL)"),
    "squad": ("span", "SQuAD v1 JSON (CMRC 2018, DRCD)"),
    "conll": ("tagging", "`token tag` lines, blank line between sentences; BIO, BIOES or BMES"),
}
DEFAULT_FORMAT = {"tagging": "conll", "span": "squad"}
# The text columns looked for when none are named, pairs first.
TEXT_COLUMNS: tuple[tuple[str, ...], ...] = (
    ("text_a", "text_b"), ("sentence1", "sentence2"), ("premise", "hypothesis"),
    ("premise", "hypo"), ("keyword", "abst"), ("text_a",), ("sentence",), ("text",))
LABEL_COLUMNS = ("label", "gold_label")
ID_COLUMNS = ("id", "qid", "guid")
NO_GOLD_LABEL = "-"
# Counter keys of what readers skip or change.
SKIPPED_NO_GOLD = "rows without a gold label ('-') skipped"
SKIPPED_LANGUAGE = "XNLI rows in other languages than zh skipped"
REPAIRED_OFFSETS = "answer offsets moved to the nearest occurrence of the answer text"
BMES_TAGS = "BMES tags M-X read as I-X"

TAG_PREFIXES = {"BIO": ("B", "I"), "BIOES": ("B", "I", "E", "S")}
_TAG = re.compile(r"^(?:O|([BIESM])-(.+))$")


def describe_counts(path: str, counts: collections.Counter) -> str:
    """One line saying what a reader skipped or repaired in `path` ("" when nothing)."""
    parts = [f"{n} {what}" for what, n in sorted(counts.items()) if n]
    return f"{path}: " + "; ".join(parts) if parts else ""


def parse_fields(value: str | Sequence[str] | None) -> list[str]:
    """`--text_fields a,b` -> ["a", "b"] (a list is returned as it is; None -> [])."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [f.strip() for f in items if f.strip()]


def default_format(kind: str, path: str) -> str:
    """The reader format of a file when none is given: by kind, and for classification by the
    extension (.json/.jsonl -> jsonl, .csv -> csv, otherwise tsv)."""
    check_kind(kind)
    if kind in DEFAULT_FORMAT:
        return DEFAULT_FORMAT[kind]
    ext = os.path.splitext(path)[1].lower()
    return {".json": "jsonl", ".jsonl": "jsonl", ".csv": "csv"}.get(ext, "tsv")


def _add(counts: Optional[collections.Counter], key: str, n: int = 1) -> None:
    if counts is not None:
        counts[key] += n


def _lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file (a byte-order mark dropped), decoded line by line so
    that an undecodable line is named exactly."""
    try:
        source = io.BytesIO(read_bytes(path)) if is_remote(path) else open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    with source as f:
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{n}: not UTF-8 text (byte {e.start + 1} of the line)") from None


# ------------------------------------------------------------------------------ classification

def _pick_text_fields(names: Sequence[str], where: str, what: str) -> list[str]:
    """The first of `TEXT_COLUMNS` all present in `names`."""
    for candidate in TEXT_COLUMNS:
        if all(c in names for c in candidate):
            return list(candidate)
    expected = " | ".join(",".join(c) for c in TEXT_COLUMNS)
    raise DataError(f"{where}: no text {what} found (has: {', '.join(names) or 'none'}); expected "
                    f"one of {expected}, or name them with --text_fields")


def _pick_label_field(names: Sequence[str], label_field: Optional[str], labelled: bool,
                      where: str, what: str) -> Optional[str]:
    if not labelled:
        return None
    if label_field:
        return label_field
    for name in LABEL_COLUMNS:
        if name in names:
            return name
    raise DataError(f"{where}: no label {what} found (has: {', '.join(names)}); expected "
                    f"{' or '.join(LABEL_COLUMNS)}, or name it with --label_field")


def _example(path: str, line: int, guid: Optional[str], texts: Sequence[str],
             label: Optional[str]) -> TextExample:
    """A TextExample; `guid` defaults to `<file stem>-<line>`."""
    if guid is None:
        guid = f"{os.path.splitext(os.path.basename(path))[0]}-{line}"
    return TextExample(guid=guid, text_a=texts[0], text_b=texts[1] if len(texts) > 1 else None,
                       label=label, source=f"{path}:{line}")


def _text_value(value, where: str, field: str) -> str:
    """A text field's value: a non-empty string (a JSON list of strings is joined by spaces)."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = " ".join(v.strip() for v in value)
    if not isinstance(value, str):
        raise DataError(f"{where}: field {field!r}: expected text, got {json.dumps(value)[:40]}")
    value = value.strip()
    if not value:
        raise DataError(f"{where}: field {field!r} is empty (expected text)")
    return value


def _label_value(value, where: str, field: str) -> str:
    """A label as a string (JSON numbers included); empty, null or other types are errors."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: field {field!r}: expected a label (string or integer), "
                        f"got {json.dumps(value)[:40]}")
    value = str(value).strip()
    if not value:
        raise DataError(f"{where}: field {field!r} is empty (expected a label)")
    return value


def _table_rows(path: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of each non-blank row of a CSV (quoted) or TSV (no quoting) file."""
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    lines = (line for _, line in _lines(path))
    reader = csv.reader(lines, delimiter=delimiter, quoting=quoting, strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"{path}:{reader.line_num}: malformed row ({e})") from None
        if row and any(cell.strip() for cell in row):
            yield start, row
        start = reader.line_num + 1


def _columns(path: str, header: Optional[list[str]], text_fields: list[str],
             label_field: Optional[str], labelled: bool) -> tuple[list[int], Optional[int], Optional[int]]:
    """Column indices of the texts, the label and the id, by name in `header` or, for a
    headerless file (`header` None), by the numbers in text_fields/label_field."""
    if header is None:
        if labelled and label_field is None:
            raise ConfigError(f"{path}: a headerless file (numeric --text_fields) needs the "
                              f"label's column number as --label_field")
        label = int(label_field) if labelled else None
        return [int(f) for f in text_fields], label, None
    where = f"{path}:1"
    names = header
    fields = text_fields or _pick_text_fields(names, where, "columns")
    label = _pick_label_field(names, label_field, labelled, where, "column")
    for f in fields + ([label] if label else []):
        if f not in names:
            raise DataError(f"{where}: no column {f!r} in the header ({', '.join(names)})")
    ident = next((names.index(c) for c in ID_COLUMNS if c in names), None)
    return [names.index(f) for f in fields], names.index(label) if label else None, ident


def _read_table(path: str, delimiter: str, text_fields: list[str], label_field: Optional[str],
                labelled: bool, counts: Optional[collections.Counter],
                language: Optional[str] = None) -> Iterator[TextExample]:
    """A header-row table (or a headerless one with numeric fields) -> TextExamples."""
    headerless = bool(text_fields) and all(f.isdigit() for f in text_fields) and (
        label_field is None or label_field.isdigit())
    rows = _table_rows(path, delimiter)
    header = None if headerless else next(rows, (1, None))[1]
    if not headerless and header is None:
        raise DataError(f"{path}: empty file (expected a header row, then one example a row)")
    header = [h.strip() for h in header] if header else None
    texts, label, ident = _columns(path, header, text_fields, label_field, labelled)
    lang = _language_column(path, header) if language else None
    # The XNLI-MT training file spells the dev/test files' "contradiction" "contradictory".
    renames = ({"contradictory": "contradiction"}
               if header and [header[i] for i in texts] == ["premise", "hypo"] else {})
    width = len(header) if header else None
    sep = "tab" if delimiter == "\t" else "comma"
    kept = 0
    for line, row in rows:
        where = f"{path}:{line}"
        if width is not None and len(row) != width:
            raise DataError(f"{where}: {len(row)} {sep}-separated columns, the header has {width}"
                            + (" (a tab inside a text?)" if len(row) > width else ""))
        if width is None and len(row) <= max(texts + [label or 0]):
            raise DataError(f"{where}: {len(row)} columns, expected at least "
                            f"{max(texts + [label or 0]) + 1}")
        if lang is not None and row[lang].strip() != language:
            _add(counts, SKIPPED_LANGUAGE)
            continue
        names = header or [str(i) for i in range(len(row))]
        values = [_text_value(row[i], where, names[i]) for i in texts]
        value = _label_value(row[label], where, names[label]) if label is not None else None
        if value == NO_GOLD_LABEL:
            _add(counts, SKIPPED_NO_GOLD)
            continue
        kept += 1
        yield _example(path, line, row[ident].strip() if ident is not None else None, values,
                       renames.get(value, value))
    if lang is not None and not kept:
        raise DataError(f"{path}: no row with language {language} (XNLI 1.0 dev/test files hold "
                        f"15 languages; this one has none in Chinese)")


def _language_column(path: str, header: list[str]) -> int:
    if "language" not in header:
        raise DataError(f"{path}:1: no 'language' column: not an XNLI 1.0 dev/test file "
                        f"(use --task_format tsv for a file with Chinese rows only)")
    return header.index("language")


def _read_json_lines(path: str, text_fields: list[str], label_field: Optional[str],
                     labelled: bool, counts: Optional[collections.Counter]) -> Iterator[TextExample]:
    """JSON lines (one object a line) -> TextExamples; fields chosen on the first object."""
    fields: Optional[list[str]] = text_fields or None
    label: Optional[str] = None
    for line, text in _lines(path):
        if not text.strip():
            continue
        where = f"{path}:{line}"
        try:
            row = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: invalid JSON ({e.msg}, column {e.colno})") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
        if fields is None:
            fields = _pick_text_fields(list(row), where, "fields")
        if label is None and labelled:
            label = _pick_label_field(list(row), label_field, labelled, where, "field")
        for f in fields + ([label] if label else []):
            if f not in row:
                raise DataError(f"{where}: field {f!r} missing (has: {', '.join(row)})")
        values = [_text_value(row[f], where, f) for f in fields]
        value = _label_value(row[label], where, label) if label else None
        if value == NO_GOLD_LABEL:
            _add(counts, SKIPPED_NO_GOLD)
            continue
        ident = next((row[c] for c in ID_COLUMNS if c in row), None)
        yield _example(path, line, None if ident is None else str(ident), values, value)


def read_classification(path: str, task_format: str, text_fields: str | Sequence[str] | None = None,
                        label_field: Optional[str] = None, labelled: bool = True,
                        counts: Optional[collections.Counter] = None) -> Iterator[TextExample]:
    """Single-text or pair classification examples from a table or JSON lines (see the module
    docstring for the formats); `labelled=False` reads test files without labels (label None)."""
    fields = parse_fields(text_fields)
    if len(fields) > 2:
        raise ConfigError(f"--text_fields {','.join(fields)}: expected one or two fields")
    label_field = label_field.strip() if label_field else None
    if task_format in ("tsv", "csv"):
        delimiter = "\t" if task_format == "tsv" else ","
        return _read_table(path, delimiter, fields, label_field, labelled, counts)
    if task_format == "xnli":
        fields = fields or ["sentence1", "sentence2"]
        return _read_table(path, "\t", fields, label_field or "gold_label", labelled, counts,
                           language="zh")
    if task_format in ("jsonl", "clue"):
        return _read_json_lines(path, fields, label_field, labelled, counts)
    raise ConfigError(f"--task_format {task_format!r}: not a classification format "
                      f"(expected one of {', '.join(_formats_of('classification'))})")


def _formats_of(kind: str) -> list[str]:
    return [name for name, (k, _) in FORMATS.items() if k == kind]


# ------------------------------------------------------------------------------ SQuAD v1

def _get(obj, key, types, path: str, where: str):
    """obj[key] of the expected JSON type(s), or a DataError naming the file and JSON path."""
    if not isinstance(obj, dict):
        raise DataError(f"{path}: {where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise DataError(f"{path}: {where}.{key}: missing")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise DataError(f"{path}: {where}.{key}: expected {names}, got {json.dumps(value)[:40]}")
    return value


def _answer(answer, context: str, qid: str, path: str, where: str, repair: bool,
            counts: Optional[collections.Counter]) -> tuple[str, int]:
    """(text, start) of one answer, its offset checked against the context (or repaired)."""
    text = _get(answer, "text", str, path, where)
    start = _get(answer, "answer_start", int, path, where)
    if not text.strip():
        raise DataError(f"{path}: {where}.text: empty answer of question {qid}")
    if context[start:start + len(text)] == text and start >= 0:
        return text, start
    found = [m.start() for m in re.finditer(re.escape(text), context)]
    if not found:
        raise DataError(f"{path}: {where}.text: the answer {text!r} of question {qid} does not "
                        f"occur in its context")
    if not repair:
        raise DataError(f"{path}: {where}.answer_start: question {qid}: context[{start}:"
                        f"{start + len(text)}] is {context[max(start, 0):start + len(text)]!r}, "
                        f"not the answer {text!r} (it occurs at {found[0]}; repair=True moves it)")
    _add(counts, REPAIRED_OFFSETS)
    return text, min(found, key=lambda s: (abs(s - start), s))


def _question(qa, context: str, path: str, where: str, labelled: bool, repair: bool,
              counts: Optional[collections.Counter]) -> SpanExample:
    qid = str(_get(qa, "id", (str, int), path, where))
    question = _get(qa, "question", str, path, where).strip()
    if not question:
        raise DataError(f"{path}: {where}.question: empty question {qid}")
    if qa.get("is_impossible"):
        raise DataError(f"{path}: {where}.is_impossible: question {qid} has no answer (SQuAD v2); "
                        f"only SQuAD v1 questions, each with an answer, are supported")
    answers = _get(qa, "answers", list, path, where) if labelled or "answers" in qa else []
    if labelled and not answers:
        raise DataError(f"{path}: {where}.answers: question {qid} has no answer (SQuAD v1: only "
                        f"prediction input may leave them out)")
    spans = tuple(_answer(a, context, qid, path, f"{where}.answers[{k}]", repair, counts)
                  for k, a in enumerate(answers))
    return SpanExample(guid=qid, question=question, context=context, answers=spans,
                       source=f"{path}: {where}")


def read_squad(path: str, labelled: bool = True, repair: bool = True,
               counts: Optional[collections.Counter] = None) -> Iterator[SpanExample]:
    """SQuAD v1 questions (CMRC 2018, DRCD): data[].paragraphs[].context/qas[].id/question/
    answers[].text/answer_start. Every answer's offset is checked against its context; one
    that is off but whose text occurs in the context is moved to the nearest occurrence when
    `repair` (the default: CMRC 2018's training set has a few such answers, and the official
    scorer compares answer texts, never offsets) and counted, an error naming the question
    otherwise. Question ids must be unique (predictions are keyed by them). `labelled=False`
    (prediction input) allows questions without answers."""
    try:
        doc = json.loads(read_bytes(path).decode("utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg}, column {e.colno})") from None
    seen: dict[str, str] = {}
    for i, article in enumerate(_get(doc, "data", list, path, "(top level)")):
        for j, paragraph in enumerate(_get(article, "paragraphs", list, path, f"data[{i}]")):
            where = f"data[{i}].paragraphs[{j}]"
            context = _get(paragraph, "context", str, path, where)
            for k, qa in enumerate(_get(paragraph, "qas", list, path, where)):
                example = _question(qa, context, path, f"{where}.qas[{k}]", labelled, repair, counts)
                if example.guid in seen:
                    raise DataError(f"{path}: {where}.qas[{k}].id: question id {example.guid!r} "
                                    f"appears twice (first at {seen[example.guid]})")
                seen[example.guid] = f"{where}.qas[{k}]"
                yield example


# ------------------------------------------------------------------------------ CoNLL tagging

def _read_tag(tag: str, where: str, counts: Optional[collections.Counter]) -> str:
    """A tag in its BIO/BIOES spelling: O, B-X, I-X, E-X, S-X; BMES's M-X (the B/M/E/S
    spelling of BIOES some Chinese NER releases use) is read as I-X."""
    m = _TAG.match(tag)
    if not m:
        raise DataError(f"{where}: tag {tag!r}: expected O or B-X, I-X, E-X, S-X (M-X) with an "
                        f"entity type X")
    if m.group(1) == "M":
        _add(counts, BMES_TAGS)
        return "I-" + m.group(2)
    return tag


def read_conll(path: str, labelled: bool = True,
               counts: Optional[collections.Counter] = None) -> Iterator[TaggedExample]:
    """Sentences of a CoNLL-style file: one `token [columns...] tag` line per word (token first,
    tag last, whitespace-separated), a blank line between sentences, `-DOCSTART-` lines skipped.
    Unlabelled files (prediction input) may have the token alone (tags None)."""
    words: list[str] = []
    tags: list[str] = []
    first = 0

    def sentence() -> TaggedExample:
        return TaggedExample(guid=f"{os.path.splitext(os.path.basename(path))[0]}-{first}",
                             words=tuple(words), tags=tuple(tags) if labelled else None,
                             source=f"{path}:{first}")

    for line, text in _lines(path):
        cols = text.split()
        if not cols or cols[0] == "-DOCSTART-":
            if words:
                yield sentence()
                words, tags = [], []
            continue
        if labelled and len(cols) < 2:
            raise DataError(f"{path}:{line}: one column {cols[0]!r}: expected `token tag` "
                            f"(whitespace-separated, the tag last)")
        if not words:
            first = line
        words.append(cols[0])
        if labelled:
            tags.append(_read_tag(cols[-1], f"{path}:{line}", counts))
    if words:
        yield sentence()


def tag_scheme(tags: Iterable[str]) -> str:
    """"BIOES" when any tag is E-X or S-X, else "BIO"."""
    return "BIOES" if any(t[:2] in ("E-", "S-") for t in tags) else "BIO"


def _tag_source(example: TaggedExample, i: int) -> str:
    """`file:line` of the example's `i`-th word (sentences are consecutive lines)."""
    path, _, line = example.source.rpartition(":")
    return f"{path}:{int(line) + i}" if line.isdigit() else f"{example.source} word {i + 1}"


def check_tags(example: TaggedExample, scheme: str) -> None:
    """The example's tags form valid `scheme` entities: BIO: I-X continues B-X or I-X; BIOES:
    also every entity ends (B-X I-X* E-X, or S-X alone). A DataError names file:line."""
    if scheme not in TAG_PREFIXES:
        raise ConfigError(f"tagging scheme: expected one of {', '.join(TAGGING_SCHEMES)}, got {scheme!r}")
    prefixes = TAG_PREFIXES[scheme]
    open_type: Optional[str] = None  # the type of the entity the previous tag leaves open
    previous = "O"
    for i, tag in enumerate(example.tags or ()):
        prefix, _, kind = tag.partition("-")
        where = _tag_source(example, i)
        if tag != "O" and (prefix not in prefixes or not kind):
            raise DataError(f"{where}: tag {tag!r} is not a {scheme} tag (expected O, "
                            f"{', '.join(p + '-X' for p in prefixes)})")
        if prefix in ("I", "E") and open_type != kind:
            raise DataError(f"{where}: tag {tag!r} after {previous!r}: {prefix}-{kind} must "
                            f"continue a B-{kind} or I-{kind}")
        if scheme == "BIOES" and open_type is not None and prefix not in ("I", "E"):
            raise DataError(f"{where}: tag {tag!r} after {previous!r}: a BIOES entity ends "
                            f"with E-{open_type}")
        open_type = kind if prefix in ("B", "I") else None
        previous = tag
    if scheme == "BIOES" and open_type is not None:
        raise DataError(f"{_tag_source(example, len(example.tags) - 1)}: the sentence ends inside "
                        f"a BIOES entity ({previous!r}; expected E-{open_type})")


# ------------------------------------------------------------------------------ labels

def _natural_order(labels: Iterable[str]) -> list[str]:
    """Integer labels by value ("2" before "10"), any other set in string order."""
    labels = set(labels)
    if labels and all(re.fullmatch(r"-?\d+", x) for x in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def collect_labels(examples: Iterable, kind: str) -> list[str]:
    """The label list (id order) from the TRAINING split. Classification: the labels sorted
    (integers by value). Tagging: "O", then for each entity type seen (sorted) every prefix of
    the scheme the tags use, B I (BIO) or B I E S (BIOES), so an entity type is one set of ids
    whatever prefixes the training split happens to hold. Span: []."""
    check_kind(kind)
    if kind == "span":
        return []
    if kind == "classification":
        labels = _natural_order(e.label for e in examples if e.label is not None)
    else:
        tags = {t for e in examples for t in (e.tags or ())}
        kinds = sorted({t.partition("-")[2] for t in tags if t != "O"})
        labels = ["O"] + [f"{p}-{k}" for k in kinds for p in TAG_PREFIXES[tag_scheme(tags)]]
        if not tags:
            labels = []
    if not labels:
        raise DataError(f"no labelled {kind} examples in the training split")
    return labels


def _label_list(labels: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(labels[:limit])
    return shown + (f", ... {len(labels) - limit} more" if len(labels) > limit else "")


def check_labels(examples: Iterable, labels: Sequence[str], path: str = "") -> list:
    """Every label of a dev/test split is one of the training `labels` (a tagging split's tags
    also form valid entities of the labels' scheme, `check_tags`): an unseen label is a
    DataError naming file:line, never a silent new class. Returns the examples as a list."""
    known = set(labels)
    examples = list(examples)
    scheme = tag_scheme(labels)
    for e in examples:
        if isinstance(e, TaggedExample):
            for i, tag in enumerate(e.tags or ()):
                if tag not in known:
                    raise DataError(f"{_tag_source(e, i)}: tag {tag!r} is not one of the "
                                    f"training labels ({_label_list(labels)})")
            check_tags(e, scheme)
        elif getattr(e, "label", None) is not None and e.label not in known:
            raise DataError(f"{e.source or path}: label {e.label!r} is not one of the training "
                            f"labels ({_label_list(labels)})")
    return examples


def read_examples(kind: str, path: str, task_format: str = "",
                  text_fields: str | Sequence[str] | None = None, label_field: Optional[str] = None,
                  labelled: bool = True, counts: Optional[collections.Counter] = None
                  ) -> Iterator:
    """The examples of a task file of any kind: the one entry point the trainer, `evaluate` and
    `predict` use. `task_format` "" picks `default_format(kind, path)`."""
    check_kind(kind)
    task_format = task_format or default_format(kind, path)
    if task_format not in FORMATS:
        raise ConfigError(f"--task_format {task_format!r}: expected one of {', '.join(FORMATS)}")
    if FORMATS[task_format][0] != kind:
        raise ConfigError(f"--task_format {task_format} reads {FORMATS[task_format][0]} files, "
                          f"not {kind} (for {kind}: {', '.join(_formats_of(kind))})")
    if kind == "span":
        return read_squad(path, labelled=labelled, counts=counts)
    if kind == "tagging":
        return read_conll(path, labelled=labelled, counts=counts)
    return read_classification(path, task_format, text_fields, label_field, labelled, counts)
