"""Output files written all at once: a temporary name beside the target, then a rename; on
failure the temporary file is removed and one line names the target.

The one atomic write of the project, for local paths and for any path TensorFlow's file
system layer knows (`gs://...`, where the rename is a copy and a delete), and the one check
that an output is not one of the command's inputs. Local paths never import TensorFlow, so
the corpus converter's workers stay TensorFlow-free.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
from typing import BinaryIO, Iterator, Sequence

from tfcompact.errors import UserError

# `<name>.tmp-<pid>-<random>` (`temp_name`), or `<name>.tmp-<pid>` as older versions wrote.
_TEMP_SUFFIX = re.compile(r"\.tmp-\d+(-[0-9a-f]{8})?$")


class OutputError(UserError):
    """An output file cannot be written; `reason` is the system's one-line explanation."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: cannot write ({reason})")
        self.path, self.reason = path, reason


def is_remote(path: str | os.PathLike) -> bool:
    """True for a URL-style path (`gs://bucket/...`) that only TensorFlow's gfile can write."""
    return "://" in os.fspath(path)


def output_error(path: str | os.PathLike, error: BaseException) -> OutputError:
    """The one-line error for an output file that cannot be written (disk full, read-only,
    a directory in the way, a bucket without permission, ...)."""
    text = getattr(error, "strerror", None) or getattr(error, "message", None) or str(error)
    first = text.strip().splitlines()[0] if str(text).strip() else type(error).__name__
    return OutputError(os.fspath(path), first)


def remove_if_present(path: str | os.PathLike) -> None:
    """Delete a temporary file after a failure (the failure itself is what gets reported)."""
    path = os.fspath(path)
    try:
        if is_remote(path):
            import tensorflow as tf

            if tf.io.gfile.exists(path):
                tf.io.gfile.remove(path)
        else:
            os.remove(path)
    except Exception:  # noqa: BLE001 - best-effort cleanup; the original error is reported
        pass


def temp_name(path: str | os.PathLike) -> str:
    """A sibling name no other process uses: `<path>.tmp-<pid>-<random>`."""
    return f"{os.fspath(path)}.tmp-{os.getpid()}-{secrets.token_hex(4)}"


def is_temp_name(name: str) -> bool:
    """True for the name of a temporary file an atomic write leaves when it is killed."""
    return _TEMP_SUFFIX.search(name) is not None


def strip_temp_suffix(name: str) -> str:
    """The name a temporary file was going to be renamed to (other names unchanged)."""
    return _TEMP_SUFFIX.sub("", name)


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, from a local path or a remote one (`gs://...`, through TensorFlow);
    OSError (FileNotFoundError when absent) either way."""
    path = os.fspath(path)
    if not is_remote(path):
        with open(path, "rb") as f:
            return f.read()
    import tensorflow as tf

    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    except tf.errors.NotFoundError:
        raise FileNotFoundError(path) from None
    except tf.errors.OpError as e:
        raise OSError(e.message.splitlines()[0]) from None


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, *, mode: int = 0o666) -> Iterator[BinaryIO]:
    """A binary file on a temporary sibling of `path`, renamed over `path` when the block ends:
    readers never see a half-written file. On any exception (also Ctrl-C) the temporary file
    is removed; an OSError (or TensorFlow's error on gs://) becomes a one-line OutputError
    naming `path`. Local files are created with `mode` minus the umask, never through a
    symlink (`O_EXCL | O_NOFOLLOW`)."""
    path = os.fspath(path)
    tmp = temp_name(path)
    try:
        if is_remote(path):
            import tensorflow as tf

            with tf.io.gfile.GFile(tmp, "wb") as f:
                yield f
            tf.io.gfile.rename(tmp, path, overwrite=True)
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        with os.fdopen(os.open(tmp, flags, mode), "wb", buffering=1 << 20) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        remove_if_present(tmp)
        if isinstance(e, OSError) or type(e).__module__.startswith("tensorflow"):
            raise output_error(path, e) from None
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, mode: int = 0o666) -> None:
    """Write `data` to `path` through `atomic_writer`. The file gets `mode` minus the umask
    (the user's umask alone, like every other output, by default)."""
    with atomic_writer(path, mode=mode) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _inside(path: str, folder: str) -> bool:
    """True when `path` lies strictly below `folder` (both resolved)."""
    return path != folder and os.path.commonpath([path, folder]) == folder


def input_relation(output: str, input_path: str) -> str | None:
    """How an output path stands to an input path: "is", "contains", "lies inside", or None.
    Both are resolved (symlinks, `..`, relative spellings; a hard link to the input "is" it);
    an empty or remote input is never local output's concern."""
    if not input_path or is_remote(input_path) or is_remote(output):
        return None
    out, src = os.path.realpath(output), os.path.realpath(input_path)
    if out == src or (os.path.exists(out) and os.path.exists(src) and os.path.samefile(out, src)):
        return "is"
    if _inside(src, out):
        return "contains"
    if _inside(out, src):
        return "lies inside"
    return None


def unwritable_reason(directory: str) -> str | None:
    """Why new files cannot be created in an existing directory, or None if they can."""
    if os.access(directory, os.W_OK | os.X_OK):
        return None
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except (OSError, AttributeError):
        pass
    return "permission denied"


def check_output_file(path: str, flag: str, inputs: Sequence[str] = (),
                      overwrite: bool = False) -> str:
    """Refuse an output file location before any work: empty, a directory or device, one of the
    inputs, an existing file without `overwrite`, a missing or unwritable directory. Returns the
    path to write (a symlink's target, so the link stays)."""
    if not path:
        raise UserError(f"{flag} is empty: expected a file path")
    real = os.path.realpath(path)
    for f in inputs:
        relation = input_relation(real, f)
        if relation:
            what = "is also an --input file" if relation == "is" else f"{relation} the --input {f}"
            raise UserError(f"{flag} {path}: {what}; writing it would destroy the input")
    if os.path.isdir(real):
        raise UserError(f"{flag} {path}: is a directory (expected the path of the file to write)")
    if os.path.lexists(real):
        if not os.path.isfile(real):
            raise UserError(f"{flag} {path}: not a regular file ({real} is a device, pipe or socket)")
        if not overwrite:
            raise UserError(f"{flag} {path}: already exists (pass --overwrite to replace it)")
    parent = os.path.dirname(real)
    if not os.path.isdir(parent):
        raise UserError(f"{flag} {path}: directory {parent} does not exist")
    reason = unwritable_reason(parent)
    if reason:
        raise UserError(f"{flag} {path}: cannot write in {parent} ({reason})")
    return real
