"""Output files written all at once: a temporary name beside the target, then a rename; on
failure the temporary file is removed and one line names the target.

The one atomic write of the project, for local paths and for any path TensorFlow's file
system layer knows (`gs://...`, where the rename is a copy and a delete). Local paths never
import TensorFlow, so the corpus converter's workers stay TensorFlow-free.
"""
from __future__ import annotations

import os
import secrets

from tfcompact.errors import UserError


def is_remote(path: str | os.PathLike) -> bool:
    """True for a URL-style path (`gs://bucket/...`) that only TensorFlow's gfile can write."""
    return "://" in os.fspath(path)


def output_error(path: str | os.PathLike, error: BaseException) -> UserError:
    """The one-line error for an output file that cannot be written (disk full, read-only,
    a directory in the way, a bucket without permission, ...)."""
    text = getattr(error, "strerror", None) or getattr(error, "message", None) or str(error)
    first = text.strip().splitlines()[0] if str(text).strip() else type(error).__name__
    return UserError(f"{os.fspath(path)}: cannot write ({first})")


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


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a temporary sibling, then rename it over `path`: readers never see a
    half-written file. If that fails the temporary file is removed and a UserError names
    `path`. The file gets the user's umask like every other output."""
    path = os.fspath(path)
    tmp = temp_name(path)
    try:
        if is_remote(path):
            import tensorflow as tf

            with tf.io.gfile.GFile(tmp, "wb") as f:
                f.write(data)
            tf.io.gfile.rename(tmp, path, overwrite=True)
            return
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:  # also on Ctrl-C: no temporary file is left behind
        remove_if_present(tmp)
        # OSError locally, tf.errors.OpError on gs://: one line naming the target.
        if isinstance(e, OSError) or type(e).__module__.startswith("tensorflow"):
            raise output_error(path, e) from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))
