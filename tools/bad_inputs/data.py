"""Bad inputs for the data stage: `tfcompact create-data` and `tfcompact build-vocab`.

Flags out of range, broken or wrong vocabularies, corpora that are empty, binary or not UTF-8,
inputs that are not regular files, and output locations that are files, inputs, or places that
cannot be written. Full-disk and read-only-filesystem cases need a private mount, and a FIFO
as input would block the catalogue's own snapshot of the case directory: those are tested in
tests/pipelines/test_create_data_errors.py (which also runs every case below in-process) and
tests/text/test_vocab_builder.py.
"""
from __future__ import annotations

import gzip
import os
from typing import Callable

from bad_inputs.common import Case, Path, corpus, data_dir, vocab

# Small settings so each case converts in about a second when it gets that far.
SMALL = ["--max_seq_length", "32", "--max_predictions_per_seq", "5", "--num_shards", "2",
         "--dupe_factor", "1", "--num_workers", "1", "--quiet"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def create_data(tmp: Path, *extra: str, input: Path | str | None = None,
                vocab_path: Path | str | None = None, out: Path | str | None = None) -> list[str]:
    """create-data on the small real corpus and vocab (`extra` flags override SMALL)."""
    return ["create-data", "--input", str(input if input is not None else corpus(tmp)),
            "--vocab", str(vocab_path if vocab_path is not None else vocab(tmp)),
            "--output_dir", str(out if out is not None else tmp / "out"), *SMALL, *extra]


def build_vocab(tmp: Path, *extra: str, input: Path | str | None = None,
                output: Path | str | None = None, vocab_size: str = "300") -> list[str]:
    return ["build-vocab", "--input", str(input if input is not None else corpus(tmp)),
            "--vocab_size", vocab_size, "--output", str(output if output is not None
                                                        else tmp / "vocab.txt"), *extra]


def flag(*extra: str) -> Callable[[Path], list[str]]:
    """A case that only adds flags to the small create-data run."""
    return lambda tmp: create_data(tmp, *extra)


def write(tmp: Path, name: str, data: bytes | str) -> Path:
    path = tmp / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def vocab_file(tmp: Path, tokens: list[str], name: str = "vocab.txt") -> Path:
    return write(tmp, name, "".join(t + "\n" for t in tokens))


def with_dir(tmp: Path, name: str) -> Path:
    (tmp / name).mkdir()
    return tmp / name


def symlink(tmp: Path, name: str, target: str) -> Path:
    os.symlink(target, tmp / name)
    return tmp / name


CJK_CORPUS = "人民日报发表新年献词。\n全国各族人民团结一致。\n\n今天北京的天气很好。\n我们在学校学习。\n"
BAD_LINE_3 = "第一行。\n第二行。\n".encode() + b"bad \xff byte\n" + CJK_CORPUS.encode()

CASES = [
    # -- create-data: flags out of range -------------------------------------------------------
    Case("create-data --masked_lm_prob 5", flag("--masked_lm_prob", "5"), "--masked_lm_prob 5"),
    Case("create-data --masked_lm_prob -1", flag("--masked_lm_prob", "-1"), "--masked_lm_prob -1"),
    Case("create-data --masked_lm_prob 0", flag("--masked_lm_prob", "0"), "--masked_lm_prob 0"),
    Case("create-data --masked_lm_prob nan", flag("--masked_lm_prob", "nan"), "--masked_lm_prob nan"),
    Case("create-data --num_shards -3", flag("--num_shards", "-3"), "--num_shards -3"),
    Case("create-data --num_shards 100000 (shard names have 5 digits)",
         flag("--num_shards", "100000"), "--num_shards 100000"),
    Case("create-data --max_predictions_per_seq 0", flag("--max_predictions_per_seq", "0"),
         "--max_predictions_per_seq 0"),
    Case("create-data --max_predictions_per_seq 40 > seq 32 can hold",
         flag("--max_predictions_per_seq", "40"), "--max_predictions_per_seq 40"),
    Case("create-data --max_predictions_per_seq 30 with SOP (29 tokens)",
         flag("--max_predictions_per_seq", "30"), "--max_predictions_per_seq 30"),
    Case("create-data --max_seq_length 4", flag("--max_seq_length", "4"), "--max_seq_length 4"),
    Case("create-data --max_seq_length -128", flag("--max_seq_length", "-128"),
         "--max_seq_length -128"),
    Case("create-data --max_seq_length abc (argparse)", flag("--max_seq_length", "abc"),
         "--max_seq_length", exit_code=2),
    Case("create-data --dupe_factor 0", flag("--dupe_factor", "0"), "--dupe_factor 0"),
    Case("create-data --short_seq_prob 1.5", flag("--short_seq_prob", "1.5"), "--short_seq_prob 1.5"),
    Case("create-data --short_seq_prob -0.1", flag("--short_seq_prob", "-0.1"),
         "--short_seq_prob -0.1"),
    Case("create-data --num_workers 0", flag("--num_workers", "0"), "--num_workers 0"),
    Case("create-data --num_workers -2", flag("--num_workers", "-2"), "--num_workers -2"),
    Case("create-data --seed -1", flag("--seed", "-1"), "--seed -1"),
    Case("create-data --shard_index 2 of 2", flag("--shard_index", "2", "--num_input_shards", "2"),
         "--shard_index 2"),
    Case("create-data --num_input_shards 0", flag("--num_input_shards", "0"), "--num_input_shards 0"),
    Case("create-data --tfds_data_dir without a tfds: input", flag("--tfds_data_dir", "/tmp"),
         "--tfds_data_dir"),
    # -- create-data: vocabulary ---------------------------------------------------------------
    Case("create-data vocab of only special tokens",
         lambda tmp: create_data(tmp, vocab_path=vocab_file(tmp, SPECIALS)),
         "vocab.txt: vocabulary has only special tokens"),
    Case("create-data vocab with a duplicate token (line 16 = line 6)",
         lambda tmp: create_data(tmp, vocab_path=vocab_file(
             tmp, SPECIALS + list("人民日报发表新年献词") + ["人"])),
         "vocab.txt:16: duplicate token"),
    Case("create-data empty vocab file", lambda tmp: create_data(tmp, vocab_path=write(tmp, "vocab.txt", "")),
         "vocab.txt: vocabulary is empty"),
    Case("create-data vocab lacking [CLS]",
         lambda tmp: create_data(tmp, vocab_path=vocab_file(
             tmp, ["[PAD]", "[UNK]", "[SEP]", "[MASK]"] + list("人民日报"))), "[CLS]"),
    Case("create-data vocab with a blank line (line 3)",
         lambda tmp: create_data(tmp, vocab_path=write(tmp, "vocab.txt", "[PAD]\n[UNK]\n\n[CLS]\n")),
         "vocab.txt:3: empty line"),
    Case("create-data vocab not UTF-8", lambda tmp: create_data(
        tmp, vocab_path=write(tmp, "vocab.txt", b"[PAD]\n[UNK]\n\xff\xfe\n")), "not UTF-8"),
    Case("create-data vocab is a directory",
         lambda tmp: create_data(tmp, vocab_path=with_dir(tmp, "vocabdir")), "vocabdir"),
    Case("create-data vocab does not exist",
         lambda tmp: create_data(tmp, vocab_path=tmp / "missing.txt"), "missing.txt"),
    Case("create-data --input and --vocab swapped",
         lambda tmp: create_data(tmp, input=vocab(tmp), vocab_path=corpus(tmp)),
         "corpus.txt:4: empty line in vocabulary"),
    # -- create-data: corpus -------------------------------------------------------------------
    Case("create-data corpus of blank lines only",
         lambda tmp: create_data(tmp, input=write(tmp, "blank.txt", "\n\n  \n\r\n" * 50)),
         "--allow_empty"),
    Case("create-data Latin corpus of one-letter documents (no instances)",
         lambda tmp: create_data(tmp, input=write(tmp, "latin.txt", "a\n\nb\n\nc\n")),
         "--allow_empty"),
    Case("create-data corpus all invalid UTF-8 with --errors skip",
         lambda tmp: create_data(tmp, "--errors", "skip",
                                 input=write(tmp, "bad.txt", b"\xff\xfe\xfa\n\x80abc\n" * 20)),
         "--allow_empty"),
    Case("create-data empty corpus file", lambda tmp: create_data(tmp, input=write(tmp, "empty.txt", b"")),
         "empty"),
    Case("create-data --input glob matching nothing",
         lambda tmp: create_data(tmp, input=tmp / "nothing" / "*.txt"), "no such file"),
    Case("create-data --input empty string", lambda tmp: create_data(tmp, input=""), "--input"),
    Case("create-data --input a directory",
         lambda tmp: create_data(tmp, input=with_dir(tmp, "corpusdir")), "is a directory"),
    Case("create-data invalid UTF-8 on line 3",
         lambda tmp: create_data(tmp, input=write(tmp, "corpus.txt", BAD_LINE_3)),
         "corpus.txt:3:"),
    Case("create-data binary file (gzip bytes named .txt)",
         lambda tmp: create_data(tmp, input=write(tmp, "corpus.txt", gzip.compress(
             CJK_CORPUS.encode() * 20, mtime=0))), "corpus.txt:1:"),
    Case("create-data UTF-16 corpus",
         lambda tmp: create_data(tmp, input=write(tmp, "corpus.txt", CJK_CORPUS.encode("utf-16"))),
         "UTF-16"),
    Case("create-data .gz that is not gzip",
         lambda tmp: create_data(tmp, input=write(tmp, "corpus.txt.gz", CJK_CORPUS)), "corpus.txt.gz"),
    Case("create-data truncated .gz",
         lambda tmp: create_data(tmp, input=write(tmp, "corpus.txt.gz", gzip.compress(
             CJK_CORPUS.encode() * 50, mtime=0)[:60])), "corpus.txt.gz"),
    Case("create-data --input /dev/zero", lambda tmp: create_data(tmp, input="/dev/zero"),
         "not a regular file"),
    # -- create-data: output -------------------------------------------------------------------
    Case("create-data --output_dir is a file",
         lambda tmp: create_data(tmp, out=write(tmp, "out", "mine")), "not a directory"),
    Case("create-data --output_dir under a file",
         lambda tmp: create_data(tmp, out=write(tmp, "out", "mine") / "data"), "not a directory"),
    Case("create-data --output_dir is the corpus",
         lambda tmp: create_data(tmp, out=corpus(tmp)), "not a directory"),
    Case("create-data --output_dir empty string", lambda tmp: create_data(tmp, out=""), "--output_dir"),
    Case("create-data --output_dir where mkdir is not permitted (/sys)",
         lambda tmp: create_data(tmp, out="/sys/tfcompact-out"), "--output_dir /sys/tfcompact-out"),
    Case("create-data --output_dir holds the user's files",
         lambda tmp: create_data(tmp, out=tmp), "did not write"),
    Case("create-data --output_dir holds a conversion with another seed",
         lambda tmp: [data_dir(tmp, "out"), create_data(tmp, "--seed", "99")][1], "seed"),
    Case("create-data --output_dir holds an unreadable run record",
         lambda tmp: [write(with_dir(tmp, "out"), ".tfcompact-create-data.json", "{"),
                      create_data(tmp)][1], "unreadable run record"),
    # -- build-vocab ---------------------------------------------------------------------------
    Case("build-vocab --vocab_size 0", lambda tmp: build_vocab(tmp, vocab_size="0"), "--vocab_size 0"),
    Case("build-vocab --vocab_size -5", lambda tmp: build_vocab(tmp, vocab_size="-5"), "--vocab_size -5"),
    Case("build-vocab --vocab_size 100", lambda tmp: build_vocab(tmp, vocab_size="100"),
         "--vocab_size 100"),
    Case("build-vocab --vocab_size 10**12", lambda tmp: build_vocab(tmp, vocab_size=str(10 ** 12)),
         "--vocab_size 1000000000000"),
    Case("build-vocab corpus of blank lines only",
         lambda tmp: build_vocab(tmp, input=write(tmp, "blank.txt", "\n \n\n" * 9)), "no text"),
    Case("build-vocab --input glob matching nothing",
         lambda tmp: build_vocab(tmp, input=tmp / "none*.txt"), "no such file"),
    Case("build-vocab --input a directory",
         lambda tmp: build_vocab(tmp, input=with_dir(tmp, "corpusdir")), "is a directory"),
    Case("build-vocab invalid UTF-8 on line 3",
         lambda tmp: build_vocab(tmp, input=write(tmp, "corpus.txt", BAD_LINE_3)),
         "corpus.txt:3:"),
    Case("build-vocab --input /dev/zero", lambda tmp: build_vocab(tmp, input="/dev/zero"),
         "not a regular file"),
    Case("build-vocab --output is a directory",
         lambda tmp: build_vocab(tmp, output=with_dir(tmp, "vocabdir")), "--output"),
    Case("build-vocab --output in a missing directory",
         lambda tmp: build_vocab(tmp, output=tmp / "missing" / "vocab.txt"), "--output"),
    Case("build-vocab --output is the --input corpus",
         lambda tmp: build_vocab(tmp, output=corpus(tmp)), "--input"),
    Case("build-vocab --output exists",
         lambda tmp: build_vocab(tmp, output=write(tmp, "vocab.txt", "[PAD]\n")), "--overwrite"),
    Case("build-vocab --output is a symlink to /dev/full",
         lambda tmp: build_vocab(tmp, output=symlink(tmp, "vocab.txt", "/dev/full")),
         "not a regular file"),
    Case("build-vocab --output where writing is not permitted (/sys)",
         lambda tmp: build_vocab(tmp, output="/sys/tfcompact-vocab.txt"), "tfcompact-vocab.txt: cannot write"),
    Case("build-vocab --do_lower_case maybe (argparse)",
         lambda tmp: build_vocab(tmp, "--do_lower_case", "maybe"), "--do_lower_case", exit_code=2),
]
