"""Local output files written all at once: a temporary name beside the target, then a rename;
on failure the temporary file is removed and one line names the target. Shared by the
library (build-vocab) and the corpus pipelines; TensorFlow-free."""
from __future__ import annotations

import os

from tfcompact.errors import UserError


def output_error(path: str | os.PathLike, error: OSError) -> UserError:
    """The one-line error for an output file that cannot be written (disk full, read-only,
    a directory in the way, ...)."""
    return UserError(f"{os.fspath(path)}: cannot write ({error.strerror or error})")


def remove_if_present(path: str | os.PathLike) -> None:
    """Delete a temporary file after a failure (the failure itself is what gets reported)."""
    try:
        os.remove(path)
    except OSError:
        pass


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to `<path>.tmp-<pid>` then rename: readers never see a half-written file. If that
    fails the temporary file is removed and a UserError names `path`."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        remove_if_present(tmp)
        raise output_error(path, e) from None
