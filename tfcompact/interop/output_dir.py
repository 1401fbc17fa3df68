"""Write an output directory all at once, never at the expense of an input or of a file this
command did not write.

Every command that writes an output directory (`export` in every format, `import-tf1`) goes
through `atomic_output_dir(output, kind=..., inputs=...)`:

- **Inputs are untouchable.** The output may never be, contain or lie inside one of the
  command's inputs (`inputs`: (flag, path) pairs). Paths are compared resolved
  (`os.path.realpath`: symlinks, `..` and relative spellings all count).
- **All at once.** The output is built in a fresh directory beside it (`.NAME.tmp-XXXX`, same
  filesystem) and renamed into place when complete; a failure (bad input, full disk, Ctrl-C)
  removes it again, and parent directories created for the output are removed too. A finished
  output is never half-written and a failed run leaves nothing behind.
- **The marker.** Every output holds `.tfcompact-output.json`: `kind` (which command wrote it,
  e.g. `export --format tf1`, `import-tf1`) and `files` (every path it wrote, directories
  ending in `/`). This is how an earlier output is recognised:
  `--overwrite` replaces an existing directory only when its marker names the same kind and it
  holds nothing the marker does not list (a file someone added, a checkpoint a later training
  run wrote). The old directory is renamed aside, the new one renamed in, and only then is the
  old one deleted (if the second rename fails, the old one is put back). An existing empty
  directory is used without `--overwrite`; any other existing path is refused with one line.
- **Modes.** Directories are made with `os.mkdir` (0777 minus the user's umask, not
  `mkdtemp`'s 0700), so an output reads like anything else the user creates.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from typing import Iterator, Sequence

from tfcompact.errors import UserError
from tfcompact.files import input_relation, is_remote

MARKER = ".tfcompact-output.json"

Inputs = Sequence[tuple[str, str]]   # (flag, path), e.g. ("--model_dir", "runs/m")


def _check_not_an_input(output: str, real: str, inputs: Inputs) -> None:
    for flag, path in inputs:
        relation = input_relation(real, path)
        if relation:
            raise UserError(f"--output {output} {relation} the {flag} {path}; an output may never "
                            "be, contain or lie inside an input: choose another directory")


def listing(directory: str) -> list[str]:
    """Every path under `directory`, relative, '/'-separated, directories ending in '/'."""
    out = []
    for dirpath, dirnames, filenames in os.walk(directory):
        rel = os.path.relpath(dirpath, directory)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        out += [prefix + d + "/" for d in dirnames]
        out += [prefix + f for f in filenames]
    return sorted(p for p in out if p != MARKER)


def read_marker(directory: str) -> dict | None:
    """The marker of an earlier output in `directory` (None when absent or unreadable)."""
    try:
        with open(os.path.join(directory, MARKER), encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    if not (isinstance(marker, dict) and isinstance(marker.get("kind"), str)
            and isinstance(marker.get("files"), list)):
        return None
    return marker


def _write_marker(directory: str, kind: str) -> None:
    with open(os.path.join(directory, MARKER), "w", encoding="utf-8") as f:
        json.dump({"kind": kind, "written_by": f"tfcompact {kind}", "files": listing(directory)},
                  f, indent=1)
        f.write("\n")


def _check_replaceable(output: str, real: str, kind: str, overwrite: bool) -> None:
    """An existing non-empty directory may be replaced only if it is an earlier output of
    `kind` holding nothing else, and only with --overwrite."""
    marker = read_marker(real)
    if marker is None:
        raise UserError(f"--output {output} already exists and was not written by tfcompact "
                        f"(no {MARKER}); --overwrite replaces only earlier outputs of "
                        f"`tfcompact {kind}`: choose a new directory")
    if marker["kind"] != kind:
        raise UserError(f"--output {output} holds the output of `tfcompact {marker['kind']}`, "
                        f"not of `tfcompact {kind}`; choose another directory")
    foreign = sorted(set(listing(real)) - {str(f) for f in marker["files"]})
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UserError(f"--output {output} holds files `tfcompact {kind}` did not write ({shown}); "
                        "move them away or choose another directory")
    if not overwrite:
        raise UserError(f"--output {output} already holds an earlier `tfcompact {kind}` output; "
                        "pass --overwrite to replace it")


def _existing_ancestor(path: str) -> str:
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


def _check_creatable(output: str, parent: str) -> None:
    """The output's parent exists or can be made: probe the nearest existing ancestor by
    creating (and removing) a directory in it (os.access says yes to root, and knows nothing of
    filesystems such as sysfs that refuse new directories)."""
    ancestor = _existing_ancestor(parent)
    if not os.path.isdir(ancestor):
        raise UserError(f"--output {output}: {ancestor} is a file, not a directory")
    try:
        probe = _fresh_dir(ancestor, ".tfcompact-probe-")
        os.rmdir(probe)
    except OSError as e:
        raise UserError(f"--output {output}: cannot create a directory in {ancestor} "
                        f"({e.strerror})") from None


def check_output_dir(output: str, *, kind: str, inputs: Inputs = (), overwrite: bool = False) -> str:
    """The resolved output path, after checking that this command may write it (see the module
    docstring); cheap, so commands call it before any slow work."""
    if not output or not output.strip():
        raise UserError("--output is empty; give the directory to write (an unset shell variable?)")
    if output.startswith("~"):
        raise UserError(f"--output {output}: a literal ~ (the shell expands it only at the start of a "
                        "word, not after --output=); write $HOME or put a space after --output")
    if is_remote(output):
        raise UserError(
            f"--output {output}: write exports to a local directory and copy them with gsutil/"
            "gcloud storage afterwards (a remote rename is not atomic)")
    real = os.path.realpath(output)
    _check_not_an_input(output, real, inputs)
    if os.path.lexists(real) and not os.path.isdir(real):
        raise UserError(f"--output {output} is a file; expected a directory path")
    try:
        if os.path.isdir(real) and os.listdir(real):
            _check_replaceable(output, real, kind, overwrite)
    except OSError as e:  # e.g. a directory we may not read
        raise UserError(f"--output {output}: cannot look inside ({e.strerror})") from None
    _check_creatable(output, os.path.dirname(real))
    return real


def _fresh_dir(parent: str, prefix: str) -> str:
    """Create a new directory `parent/prefix<random>` with the umask's mode (unlike mkdtemp)."""
    for _ in range(100):
        path = os.path.join(parent, prefix + secrets.token_hex(4))
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{parent}: no free name for {prefix}*")


def _make_parents(parent: str, output: str) -> list[str]:
    """Create the missing ancestors of the output; returns them, innermost first."""
    missing = []
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    created: list[str] = []
    try:
        for d in reversed(missing):
            os.mkdir(d)
            created.insert(0, d)
    except OSError as e:
        _remove_dirs(created)
        raise UserError(f"--output {output}: cannot create {e.filename or parent} ({e.strerror})") from None
    return created


def _remove_dirs(dirs: list[str]) -> None:
    for d in dirs:
        with contextlib.suppress(OSError):
            os.rmdir(d)


def _swap_in(tmp: str, real: str, output: str, kind: str, overwrite: bool) -> None:
    """Rename the finished `tmp` to `real`; an earlier output there is replaced only after the
    same checks as at the start (it may have changed during the slow work)."""
    if os.path.isdir(real) and os.listdir(real):
        _check_replaceable(output, real, kind, overwrite)
        old = _fresh_dir(os.path.dirname(real), f".{os.path.basename(real)}.old-")
        os.rename(real, os.path.join(old, "previous"))
        try:
            os.rename(tmp, real)
        except BaseException:
            os.rename(os.path.join(old, "previous"), real)
            os.rmdir(old)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, real)  # also replaces an empty directory


@contextlib.contextmanager
def atomic_output_dir(output: str, *, kind: str, inputs: Inputs = (),
                      overwrite: bool = False) -> Iterator[str]:
    """Yield a fresh directory beside `output`; when the block finishes, mark it as an output of
    `kind` and rename it to `output`. On any exception nothing is left behind; an OSError
    becomes one UserError line naming the file, and error messages name the output's final
    path, never the temporary one.
    """
    real = check_output_dir(output, kind=kind, inputs=inputs, overwrite=overwrite)
    created = _make_parents(os.path.dirname(real), output)
    tmp = None
    try:
        tmp = _fresh_dir(os.path.dirname(real), f".{os.path.basename(real)}.tmp-")
        yield tmp
        _write_marker(tmp, kind)
        _swap_in(tmp, real, output, kind, overwrite)
        tmp = None
    except OSError as e:
        where = str(e.filename or output)
        if tmp is not None:
            where = where.replace(tmp, output)
        raise UserError(f"{where}: {e.strerror or e}; nothing was written to {output}") from None
    except UserError as e:
        if tmp is None or tmp not in str(e):
            raise
        raise type(e)(str(e).replace(tmp, output)) from None  # name the path the user gave
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            _remove_dirs(created)
