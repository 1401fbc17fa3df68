"""Write an output directory all at once: build it under a temporary name, then rename.

Every export and import goes through `atomic_output_dir`, so a failure (bad input, a full
disk, Ctrl-C) leaves nothing at the output path, and a finished output is never half-written.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Iterator

from tfcompact.errors import UserError


def _is_remote(path: str) -> bool:
    return "://" in path


def check_output_dir(output: str, *, overwrite: bool = False) -> str:
    """The absolute output path, after checking it can be written (local, not a file, and
    empty unless `overwrite`); cheap, so commands call it before any slow work."""
    if _is_remote(output):
        raise UserError(
            f"--output {output}: write exports to a local directory and copy them with gsutil/"
            "gcloud storage afterwards (a remote rename is not atomic)")
    output = os.path.abspath(output)
    if os.path.isfile(output):
        raise UserError(f"--output {output} is a file; expected a directory path")
    if os.path.isdir(output) and os.listdir(output) and not overwrite:
        raise UserError(f"--output {output} already exists and is not empty; "
                        "choose a new directory or pass --overwrite")
    return output


@contextlib.contextmanager
def atomic_output_dir(output: str, *, overwrite: bool = False) -> Iterator[str]:
    """Yield a fresh temporary directory beside `output`; on success rename it to `output`.

    An existing non-empty `output` is an error unless `overwrite` is set (then it is replaced
    only after the new one is complete). On any exception the temporary directory is removed.
    """
    output = check_output_dir(output, overwrite=overwrite)
    parent = os.path.dirname(output)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise UserError(f"--output {output}: cannot create parent directory ({e.strerror})") from e
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(output)}.tmp-", dir=parent)
    try:
        yield tmp
        if os.path.isdir(output):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(output)}.old-", dir=parent)
            os.rename(output, os.path.join(old, "x"))
            os.rename(tmp, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
