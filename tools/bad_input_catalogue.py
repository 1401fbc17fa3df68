#!/usr/bin/env python3
"""Run the bad-input catalogue against the installed `tfcompact` command and print a table.

    python tools/bad_input_catalogue.py [--only SUBSTRING] [--area data|export|train|tasks|distill]

Each case (tools/bad_inputs/<area>.py) prepares real files in a fresh directory, runs
`python -m tfcompact.cli ...` there in a subprocess, and passes when:
  * the exit status is the expected one (1 for a user error),
  * the last line of stderr is the command's one-line error (`tfcompact CMD: error: ...`)
    and contains the expected text (naming the file, line or field at fault),
  * every file that existed before the run is byte-identical afterwards and no file was added
    (no half-written output, no stray temporary files).
The closing line counts the verdicts; the exit status is 1 if any case failed.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

AREAS = ("data", "export", "train", "tasks", "distill")


def snapshot(root: pathlib.Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and '<dir>' for every directory) under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "<dir>"
        for f in filenames:
            p = os.path.join(dirpath, f)
            if os.path.islink(p) or not os.path.isfile(p):  # links, FIFOs, sockets: not read
                out[os.path.relpath(p, root)] = "<link>" if os.path.islink(p) else "<special>"
                continue
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            out[os.path.relpath(p, root)] = h.hexdigest()
    return out


def check_in_process(case, directory: pathlib.Path, capsys) -> None:
    """The catalogue's verdict for `case` run in this process (pytest, with `directory` the
    working directory and `capsys` pytest's fixture): exit status, a last stderr line that is
    the command's one-line error with the expected text, no traceback, no file changed."""
    from tfcompact.cli import main as cli_main

    argv = case.argv(directory)
    before = snapshot(directory)
    capsys.readouterr()
    code = cli_main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == case.exit_code, err
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith(f"tfcompact {argv[0]}: error: "), err
    assert case.expect in lines[-1], lines[-1]
    after = snapshot(directory)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, changed


def run_case(case) -> tuple[int | None, str, str]:
    """(exit status, last stderr line, verdict) of one case."""
    with tempfile.TemporaryDirectory(prefix="tfcompact-bad-") as tmp:
        root = pathlib.Path(tmp)
        try:
            argv = case.argv(root)
        except Exception as e:  # the set-up itself failed: the case says nothing
            return None, f"set-up failed: {e}", "ERROR"
        before = snapshot(root)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
        proc = subprocess.run([sys.executable, "-m", "tfcompact.cli", *argv], cwd=root,
                              capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                              timeout=600)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        after = snapshot(root)
        allowed = set(case.may_write)
        changed = sorted(p for p in set(before) | set(after)
                         if before.get(p) != after.get(p) and p not in allowed
                         and not any(p.startswith(a + os.sep) for a in allowed))
        problems = []
        if proc.returncode != case.exit_code:
            problems.append(f"exit {proc.returncode}, expected {case.exit_code}")
        command = argv[0] if argv else ""
        if not last.startswith(f"tfcompact {command}: error: "):
            problems.append("last line is not the one-line error")
        if case.expect not in last:
            problems.append(f"message lacks {case.expect!r}")
        if changed:
            problems.append(f"files changed: {', '.join(changed[:3])}"
                            f"{' ...' if len(changed) > 3 else ''}")
        return proc.returncode, last, "PASS" if not problems else "FAIL: " + "; ".join(problems)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--area", choices=AREAS, action="append",
                        help="only these areas (default: all)")
    parser.add_argument("--only", help="only cases whose name contains this text")
    args = parser.parse_args(argv)
    cases = []
    for area in args.area or AREAS:
        try:
            module = importlib.import_module(f"bad_inputs.{area}")
        except ModuleNotFoundError as e:
            if e.name != f"bad_inputs.{area}":
                raise
            continue
        cases += [(area, c) for c in module.CASES if not args.only or args.only in c.name]
    passed = failed = 0
    print(f"{'case':<58} {'exit':>4}  verdict / message")
    start = time.time()
    for area, case in cases:
        code, last, verdict = run_case(case)
        ok = verdict == "PASS"
        passed += ok
        failed += not ok
        message = last if len(last) <= 150 else last[:147] + "..."
        print(f"{case.name[:58]:<58} {'-' if code is None else code:>4}  {verdict}\n"
              f"{'':<64}{message}", flush=True)
    print(f"bad-input catalogue: {len(cases)} cases in {time.time() - start:.0f}s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
