"""Small derived files the text modules keep in the user's cache directory to start faster
(`$XDG_CACHE_HOME/tfcompact`, default `~/.cache/tfcompact`).

A cache is data, never code (no pickle, no marshal), and it is read only when no other user can
have written it: the directory and the file must belong to this user and be writable by no
one else. Anything else (a foreign owner, a group/world-writable file, a damaged file, a
failed write) is reported once on stderr and the caller rebuilds the data; nothing is
swallowed silently and the result is the same either way, only slower.
"""
from __future__ import annotations

import os
import stat
import sys

from tfcompact.files import OutputError, atomic_write_bytes

_WARNED: set = set()


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tfcompact")


def cache_path(name: str) -> str:
    return os.path.join(cache_dir(), name)


def warn(message: str) -> None:
    """One line on stderr, once per process per message."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"tfcompact: warning: {message}", file=sys.stderr, flush=True)


def _not_private(st: os.stat_result) -> str | None:
    """Why a file or directory with this stat could have been written by another user."""
    if not hasattr(os, "geteuid"):  # no POSIX owners (Windows): the profile directory is private
        return None
    if st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}, not by this user ({os.geteuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def read_private(name: str) -> bytes | None:
    """The bytes of cache file `name`, or None if it is absent or could come from someone else
    (then a warning says why). The checks are made on the opened file, not on its path."""
    path = cache_path(name)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as e:
        warn(f"not using cache {path}: {e.strerror}")
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        problem = "not a regular file" if not stat.S_ISREG(st.st_mode) else _not_private(st)
        if problem is None:
            problem = _not_private(os.stat(os.path.dirname(path)))
            if problem is not None:
                problem = f"its directory is {problem}"
        if problem is not None:
            warn(f"not using cache {path}: {problem}")
            return None
        return f.read()


def write_private(name: str, data: bytes) -> None:
    """Write cache file `name` atomically in a directory only this user can write (created
    with mode 0700). A failure is reported with a warning: the cache only saves time."""
    path = cache_path(name)
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        problem = _not_private(os.stat(directory))
    except OSError as e:
        warn(f"cannot write cache {path} ({e.strerror}); later runs rebuild it")
        return
    if problem is not None:
        warn(f"not writing cache {path}: its directory is {problem}")
        return
    try:  # never group/world-writable, whatever the umask: read_private would refuse it
        atomic_write_bytes(path, data, mode=0o644)
    except OutputError as e:
        warn(f"cannot write cache {path} ({e.reason}); later runs rebuild it")
