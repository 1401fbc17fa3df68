"""What a bad-input case is, and the small real inputs the cases start from.

A case prepares files in a fresh directory and returns the `tfcompact` arguments to run there.
The verdict is the same for every case (see `tools/bad_input_catalogue.py`): the expected exit
status, the expected text in the last line of stderr, that line being the command's one-line
error (`tfcompact CMD: error: ...`), and every file that existed before the run byte-identical
afterwards with no file added (nothing half-written, no stray temp files).
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import subprocess
import sys
from typing import Callable

Path = pathlib.Path


@dataclasses.dataclass
class Case:
    """One bad input: `argv(tmp)` prepares `tmp` and returns the arguments after `tfcompact`."""

    name: str
    argv: Callable[[Path], list[str]]
    expect: str                 # text the last stderr line must contain
    exit_code: int = 1          # tfcompact.cli: 1 user error, 2 usage error
    # Paths (relative to tmp) the run may create or change anyway (e.g. a log); normally none.
    may_write: tuple[str, ...] = ()


def tfcompact(*args: str, cwd: Path | None = None) -> None:
    """Run the installed command as set-up (must succeed)."""
    proc = subprocess.run([sys.executable, "-m", "tfcompact.cli", *args], cwd=cwd,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"set-up `tfcompact {' '.join(args)}` failed: "
                           f"{proc.stderr.strip().splitlines()[-1:]}")


CORPUS_LINES = [
    "人民日报发表新年献词。", "全国各族人民团结一致，开创新局面。", "今天北京的天气很好。",
    "", "我们在学校学习中文。", "老师讲了一个有趣的故事。", "同学们都笑了。", "",
    "经济发展取得了新的成就。", "科学技术是第一生产力。", "改革开放二十年来变化很大。",
]


def corpus(tmp: Path, name: str = "corpus.txt", repeat: int = 20) -> Path:
    """A small real Chinese corpus: one sentence a line, blank line between documents."""
    path = tmp / name
    path.write_text(("\n".join(CORPUS_LINES) + "\n\n") * repeat, encoding="utf-8")
    return path


def vocab(tmp: Path) -> Path:
    """The People's Daily vocabulary shipped with tfcompact, copied into tmp."""
    import tfcompact

    src = os.path.join(os.path.dirname(tfcompact.__file__), "data", "vocab_zh_pd.txt")
    dst = tmp / "vocab.txt"
    shutil.copyfile(src, dst)
    return dst


def data_dir(tmp: Path, name: str = "data", **flags: str) -> Path:
    """A small create-data output (seq 32, 5 predictions, 2 shards) converted for real."""
    out = tmp / name
    args = {"--max_seq_length": "32", "--max_predictions_per_seq": "5", "--num_shards": "2",
            "--dupe_factor": "1", "--num_workers": "1", "--quiet": None, **flags}
    argv = ["create-data", "--input", str(corpus(tmp)), "--vocab", str(vocab(tmp)),
            "--output_dir", str(out)]
    for k, v in args.items():
        argv += [k] if v is None else [k, v]
    tfcompact(*argv)
    return out
