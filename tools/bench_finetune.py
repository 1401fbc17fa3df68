#!/usr/bin/env python3
"""Fine-tuning throughput on this machine: tfcompact's task model and loop vs HuggingFace (PyTorch).

The task is sentence-pair classification (LCQMC/XNLI shaped: [CLS] a [SEP] b [SEP], segment ids
0 then 1; batch 32, length 128 by default). For each preset, one optimizer step (forward,
backward, AdamW update with global-norm clipping 1.0) is timed on

  * ours: `tfcompact.models.tasks.build_task_model` on the preset's backbone, the
    classification objective of `tfcompact.objectives.tasks`, `tfcompact.optim.create_optimizer
    ("adamw", ...)`, run by `tfcompact.train.loop.TrainLoop` under the default strategy (many
    steps per call, as `tfcompact finetune` runs it; `--jit` XLA-compiles the step), and
  * HF: `*ForSequenceClassification` of HuggingFace transformers built from the same config
    values, torch.optim.AdamW, the same batch, in the same process (when torch and transformers
    are importable: `pip install -e .[interop]`).

Warm-up steps (tracing and compiling included) are excluded from the timing; then the two
frameworks take turns for `--rounds` rounds of `--steps` steps and each keeps its fastest round,
so load from other jobs on a shared machine falls on both alike. Printed per row: parameters
(the two task models must agree), step time, examples/s, examples per CPU-second of this process
(all threads), the ratios ours/HF of step time and of CPU time per step, and whether the
project's target (ours <= 0.5 x HF's step time, i.e. >= 2 x the examples/s) is met.

    python tools/bench_finetune.py                        # tiny, small and base rows
    python tools/bench_finetune.py --presets tiny --steps 10 --jit
    python tools/bench_finetune.py --presets bert_base_zh --rounds 2
    python tools/bench_finetune.py --presets test:bert --no_hf   # tfcompact.configs.tiny_config
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TOOLS))
sys.path.insert(0, TOOLS)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench_train_step import hf_config as make_hf_config, hf_version  # noqa: E402
from tfcompact.architectures import ARCHITECTURES  # noqa: E402

# (row label, preset, size class). "tiny": ALBERT tiny (4 layers, 312 wide) and a 4-layer BERT
# (TinyBERT's general student); ELECTRA's smallest released size; the 12-layer base sizes.
ROWS = [
    ("albert tiny", "albert_tiny_zh", "tiny"),
    ("tinybert 4L-312", "tinybert_4l_312_zh", "tiny"),
    ("electra small", "electra_small_zh", "small"),
    ("albert base", "albert_base_zh", "base"),
    ("bert base", "bert_base_zh", "base"),
    ("electra base", "electra_base_zh", "base"),
]
STEPS = {"test": 1, "tiny": 5, "small": 3, "base": 1}
TEST_PREFIX = "test:"  # test:<arch>: the test-sized config of tfcompact.configs.tiny_config
TARGET_RATIO = 0.5  # our step time / HF's
CLS, SEP, FIRST_WORD = 101, 102, 106  # the Chinese BERT vocabulary's special ids


def select_rows(wanted: list[str] | None) -> list[tuple[str, str, str]]:
    """The rows named by size class ("tiny", "small", "base"), preset, label or test:<arch>."""
    if not wanted:
        return list(ROWS)
    names = [n.strip() for item in wanted for n in item.split(",") if n.strip()]
    rows = []
    for name in names:
        if name.startswith(TEST_PREFIX):
            arch = name[len(TEST_PREFIX):]
            if arch not in ARCHITECTURES:
                raise SystemExit(f"--presets {name}: unknown architecture {arch!r}; expected one "
                                 f"of {', '.join(ARCHITECTURES)}")
            rows.append((name, name, "test"))
            continue
        hits = [r for r in ROWS if name in r]
        if not hits:
            from tfcompact.configs import get_preset

            get_preset(name)  # a one-line error for an unknown preset
            hits = [(name, name, "base")]
        rows.extend(h for h in hits if h not in rows)
    return rows


def resolve(preset: str):
    """(architecture, config) of a preset or of test:<arch>."""
    from tfcompact.configs import get_preset, tiny_config

    if preset.startswith(TEST_PREFIX):
        arch = preset[len(TEST_PREFIX):]
        return arch, tiny_config(arch)
    p = get_preset(preset)
    return p.arch, p.config


def pair_batch(vocab_size: int, batch: int, seq: int, num_labels: int, seed: int = 0) -> dict:
    """Full-length sentence pairs [CLS] a [SEP] b [SEP] with random words and labels, plus the
    classification features the task readers write (label_ids, example_weight)."""
    rng = np.random.default_rng(seed)
    low = FIRST_WORD if vocab_size > FIRST_WORD + 1 else 1
    ids = rng.integers(low, vocab_size, size=(batch, seq)).astype(np.int32)
    segments = np.zeros((batch, seq), np.int32)
    split = rng.integers(seq // 4, 3 * seq // 4, size=batch)  # where text a ends
    for row, cut in enumerate(split):
        ids[row, [0, cut, seq - 1]] = [CLS % vocab_size, SEP % vocab_size, SEP % vocab_size]
        segments[row, cut + 1:] = 1
    return {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": segments,
            "example_weight": np.ones((batch,), np.float32),
            "label_ids": rng.integers(0, num_labels, size=(batch,)).astype(np.int32)}


def _clock() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads)."""
    return time.perf_counter(), time.process_time()


def ours_runner(preset: str, batch: dict, num_labels: int, warmup: int, jit: bool):
    """Our fine-tuning step (task model + task objective + AdamW in the TrainLoop), warmed up:
    (run(n) -> loss after n more steps, {"params", "first_call_s"})."""
    import tensorflow as tf

    from tfcompact.models import build_backbone
    from tfcompact.models.tasks import build_task_model
    from tfcompact.objectives.tasks import task_objective
    from tfcompact.optim import create_optimizer
    from tfcompact.train.loop import TrainLoop

    arch, config = resolve(preset)
    tf.keras.utils.set_random_seed(0)
    strategy = tf.distribute.get_strategy()
    # ELECTRA: HuggingFace's head (dense + GELU + dense over [CLS]), the same model as HF's
    model = build_task_model(build_backbone(arch, config), arch, config, "classification",
                             num_labels, electra_head="transformers")
    optimizer = create_optimizer("adamw", 2e-5, 0, 10_000)
    data = tf.data.Dataset.from_tensors({k: tf.constant(v) for k, v in batch.items()}).repeat()
    loop = TrainLoop(strategy, model, optimizer, task_objective("classification", num_labels),
                     data.element_spec, seed=0, jit_compile=jit, loss_is_replica_share=True)
    batches = iter(strategy.distribute_datasets_from_function(lambda ctx: data))
    first = time.perf_counter()
    loop.train(batches, warmup)  # traces, compiles and runs the warm-up steps
    info = {"first_call_s": time.perf_counter() - first,
            "params": int(sum(np.prod(v.shape) for v in model.trainable_variables))}
    return lambda n: float(loop.train(batches, n)["loss"]), info


def hf_available() -> bool:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def hf_task_class(arch: str) -> str:
    """HF's sequence-classification class for an architecture (the table's pretraining class's
    family: BertForPreTraining -> BertForSequenceClassification)."""
    return ARCHITECTURES[arch].hf_pretraining.replace("ForPreTraining", "ForSequenceClassification")


def hf_runner(preset: str, batch: dict, num_labels: int, warmup: int, threads: int = 0):
    """The same task model in HuggingFace transformers with torch.optim.AdamW, warmed up:
    (run(n) -> loss after n more steps, {"params"})."""
    import torch
    import transformers

    arch, config = resolve(preset)
    torch.manual_seed(0)
    torch.set_num_threads(threads or max(1, os.cpu_count() or 1))
    hf_config = make_hf_config(arch, config)
    hf_config.num_labels = num_labels
    model = getattr(transformers, hf_task_class(arch))(hf_config)
    model.train()
    inputs = dict(input_ids=batch["input_ids"], attention_mask=batch["input_mask"],
                  token_type_ids=batch["segment_ids"], labels=batch["label_ids"])
    inputs = {k: torch.from_numpy(v.astype(np.int64)) for k, v in inputs.items()}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-5, weight_decay=0.01, eps=1e-6)

    def run(n: int) -> float:
        for _ in range(n):
            optimizer.zero_grad(set_to_none=True)
            loss = model(**inputs).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        return float(loss.detach())

    if warmup:
        run(warmup)
    return run, {"params": int(sum(p.numel() for p in params))}


def measure(runners: dict, steps: int, rounds: int) -> dict:
    """Per runner, the fastest of `rounds` rounds of `steps` steps (the runners take turns, so
    load from other jobs falls on both alike): step_s, cpu_step_s of that round, last loss."""
    best: dict = {}
    for _ in range(rounds):
        for name, run in runners.items():
            wall, cpu = _clock()
            loss = run(steps)
            now_wall, now_cpu = _clock()
            figures = {"step_s": (now_wall - wall) / steps, "cpu_step_s": (now_cpu - cpu) / steps,
                       "loss": loss}
            if name not in best or figures["step_s"] < best[name]["step_s"]:
                best[name] = figures
    return best


def _line(label: str, framework: str, r: dict, batch_size: int, ratios: str = "") -> str:
    return (f"{label:<19}{framework:<11}{r['params'] / 1e6:>8.2f}M{r['step_s']:>9.3f}"
            f"{batch_size / r['step_s']:>9.1f}{batch_size / max(r['cpu_step_s'], 1e-9):>10.1f}"
            f"{ratios}")


def run_row(label: str, preset: str, size: str, args, use_hf: bool) -> dict:
    """Bench one preset on both sides; print its lines and return its figures."""
    _, config = resolve(preset)
    batch = pair_batch(config.vocab_size, args.batch_size, args.seq_length, args.num_labels)
    steps = args.steps or STEPS[size]
    runners, infos = {}, {}
    runners["ours"], infos["ours"] = ours_runner(preset, batch, args.num_labels,
                                                 args.warmup_steps, args.jit)
    if use_hf:
        runners["hf"], infos["hf"] = hf_runner(preset, batch, args.num_labels, args.warmup_steps,
                                               args.threads)
    figures = measure(runners, steps, args.rounds)
    ours = {**infos["ours"], **figures["ours"]}
    row = {"model": label, "preset": preset, "steps": steps, "rounds": args.rounds,
           "ours": ours, "hf": None, "ratio": None, "cpu_ratio": None, "target_met": None}
    if not use_hf:
        print(_line(label, "tfcompact", ours, args.batch_size), flush=True)
        return row
    hf = {**infos["hf"], **figures["hf"]}
    row.update(hf=hf, ratio=ours["step_s"] / hf["step_s"],
               cpu_ratio=ours["cpu_step_s"] / hf["cpu_step_s"])
    row["target_met"] = row["ratio"] <= TARGET_RATIO
    verdict = "met" if row["target_met"] else "NOT met"
    print(_line(label, "tfcompact", ours, args.batch_size,
                f"{row['ratio']:>9.2f}{row['cpu_ratio']:>9.2f}  {verdict}"))
    print(_line("", "HF torch", hf, args.batch_size), flush=True)
    if hf["params"] != ours["params"]:
        print(f"{'':<19}note: parameters differ (ours {ours['params']:,}, HF {hf['params']:,})")
    return row


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", action="append",
                        help="rows to run, comma-separated or repeated: a size (tiny, small, "
                             "base), a preset, or test:<arch> (default: every row)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--num_labels", type=int, default=2)
    parser.add_argument("--steps", type=int, help="timed steps per round (default by size: "
                        + ", ".join(f"{k} {v}" for k, v in STEPS.items()) + ")")
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed rounds per framework, taking turns; the fastest is kept")
    parser.add_argument("--warmup_steps", type=int, default=1,
                        help="untimed steps first (our first one includes tracing/compiling)")
    parser.add_argument("--jit", action="store_true", help="XLA-compile our step function")
    parser.add_argument("--threads", type=int, default=0,
                        help="intra-op threads of both frameworks (default: every CPU)")
    parser.add_argument("--no_hf", action="store_true", help="skip the HuggingFace rows")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if min(args.batch_size, args.rounds, args.warmup_steps, args.steps or 1) < 1 or \
            args.seq_length < 8 or args.num_labels < 2:
        parser.error("expected batch_size, steps, rounds, warmup_steps >= 1, "
                     "seq_length >= 8, num_labels >= 2")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = select_rows(args.presets)
    if args.threads:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        except RuntimeError:  # TensorFlow already initialised (main called in a process)
            print(f"--threads {args.threads}: TensorFlow was already initialised; kept its pool")
    use_hf = not args.no_hf and hf_available()
    print(f"sentence-pair classification, {args.num_labels} labels, batch {args.batch_size}, "
          f"length {args.seq_length}, jit={args.jit}, {args.warmup_steps} warm-up step(s) "
          f"untimed, then the fastest of {args.rounds} alternating rounds, {os.cpu_count()} CPU(s), "
          f"{args.threads or 'all'} thread(s)")
    if not args.no_hf and not use_hf:
        print("HF rows skipped: torch/transformers not importable (pip install -e .[interop])")
    header = (f"{'model':<19}{'framework':<11}{'params':>9}{'step s':>9}{'ex/s':>9}"
              f"{'ex/CPU-s':>10}{'ours/HF':>9}{'CPU o/HF':>9}  target")
    print(header)
    print("-" * len(header))
    results = [run_row(label, preset, size, args, use_hf) for label, preset, size in rows]
    if use_hf:
        met = sum(bool(r["target_met"]) for r in results)
        print(f"target ours/HF step time <= {TARGET_RATIO} (>= {1 / TARGET_RATIO:.0f}x examples/s)"
              f": met on {met} of {len(results)} rows")
        print(f"HF: *ForSequenceClassification, torch.optim.AdamW, clip 1.0; {hf_version()}")
    if args.json:
        from tfcompact.files import atomic_write_text

        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
