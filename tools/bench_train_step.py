#!/usr/bin/env python3
"""Pretraining step time on this machine: tfcompact's loop vs HuggingFace transformers (PyTorch),
in float32 and in bfloat16.

For each preset at batch 32, length 128, 20 masked predictions and each precision: one full
optimizer step (forward, backward, LAMB/AdamW update) of the tfcompact training loop, and, when
torch + transformers are installed (the `interop` extra), the same configuration as a
HuggingFace `*ForPreTraining` model with torch.optim.AdamW in the same run (bfloat16: Keras'
mixed_bfloat16 policy against torch's CPU autocast to bfloat16, both with float32 master
weights). Printed per row: step time, examples/s, HF step time and the ratio ours/HF (TARGETS:
<= 0.5 at equal precision), model FLOPs per step (`tfcompact.train.utilisation`, the formula
the training loop logs) and the utilisation of this machine's matmul peak in that precision,
measured at the start of the same run (a short matmul probe; TARGETS: >= 50 % of the float32
peak for base sizes). Inputs are synthetic (the reader has its own benchmark,
tools/bench_reader.py).

    python tools/bench_train_step.py                 # every row, float32 and bfloat16
    python tools/bench_train_step.py --only albert_tiny_zh --precisions float32 --steps 10
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tfcompact.architectures import ARCHITECTURES  # noqa: E402

# (row label, preset, size class); base sizes run fewer steps.
ROWS = [
    ("albert tiny", "albert_tiny_zh", "tiny"),
    ("albert small", "albert_small_zh", "small"),
    ("albert base", "albert_base_zh", "base"),
    ("tinybert 4L-312", "tinybert_4l_312_zh", "tiny"),
    ("tinybert 6L-768", "tinybert_6l_768_zh", "small"),
    ("bert base", "bert_base_zh", "base"),
    ("electra small", "electra_small_zh", "small"),
    ("electra base", "electra_base_zh", "base"),
    ("mobilebert base-f2", "mobilebert_base_f2_zh", "small"),
    ("mobilebert base-f4", "mobilebert_base_f4_zh", "base"),
]
STEPS = {"tiny": 2, "small": 2, "base": 1}


def synthetic_batch(vocab_size: int, batch: int, seq: int, preds: int, seed: int = 0) -> dict:
    """Full-length sequences with `preds` masked positions each, as the readers produce them."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, vocab_size, size=(batch, seq)).astype(np.int32)
    ids[:, 0] = 101
    ids[:, -1] = 102
    positions = np.sort(np.stack([rng.choice(np.arange(1, seq - 1), preds, replace=False)
                                  for _ in range(batch)]), axis=1).astype(np.int32)
    labels = np.take_along_axis(ids, positions, 1).astype(np.int32)
    masked = ids.copy()
    np.put_along_axis(masked, positions, 103, 1)
    segments = np.zeros_like(ids)
    segments[:, seq // 2:] = 1
    return {"input_ids": masked, "input_mask": np.ones_like(ids), "segment_ids": segments,
            "masked_lm_positions": positions, "masked_lm_ids": labels,
            "masked_lm_weights": np.ones((batch, preds), np.float32),
            "next_sentence_labels": rng.integers(0, 2, size=(batch,)).astype(np.int32)}


def setup_ours(preset: str, batch: dict, jit: bool, precision: str = "float32"):
    """(one-step function, facts) for our training loop on `batch`; the first step (trace and
    compile) runs here and is timed as `first_call_s`."""
    import keras
    import tensorflow as tf

    from tfcompact.configs import get_preset
    from tfcompact.models import build_pretraining_model
    from tfcompact.objectives.pretraining import pretraining_objective
    from tfcompact.optim import create_optimizer
    from tfcompact.train.loop import TrainLoop
    from tfcompact.train.utilisation import train_flops_per_step

    p = get_preset(preset)
    tf.keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(precision)
    try:
        model = build_pretraining_model(preset, seed=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    name = "adamw" if p.arch == "electra" else "lamb"
    opt = create_optimizer(name, 1e-4, 0, 1000)
    ds = tf.data.Dataset.from_tensors({k: tf.constant(v) for k, v in batch.items()}).repeat()
    strategy = tf.distribute.get_strategy()
    loop = TrainLoop(strategy, model, opt, pretraining_objective(p.arch), ds.element_spec, seed=0,
                     jit_compile=jit, loss_is_replica_share=True)
    it = iter(strategy.distribute_datasets_from_function(lambda ctx: ds))
    t0 = time.perf_counter()
    loop.train(it, 1)
    b, seq = batch["input_ids"].shape
    flops = train_flops_per_step(p.arch, p.config, batch=b, seq_length=seq,
                                 num_predictions=batch["masked_lm_positions"].shape[1])
    facts = {"first_call_s": time.perf_counter() - t0, "flops": flops,
             "params": int(sum(np.prod(v.shape) for v in model.trainable_variables))}
    return (lambda n: loop.train(it, n)["loss"]), facts


def fastest_turns(steppers: dict, steps: int, turns: int) -> dict:
    """Each framework's seconds per step: they take turns of `steps` steps, `turns` times, and
    each one's fastest turn is kept (on a shared machine the least disturbed one)."""
    best = {name: float("inf") for name in steppers}
    for _ in range(turns):
        for name, step in steppers.items():
            t0 = time.perf_counter()
            step(steps)
            best[name] = min(best[name], (time.perf_counter() - t0) / steps)
    return best


def hf_config(arch: str, config):
    """The HuggingFace config of the same network (the original code's "gelu" in HF's name:
    `ARCHITECTURES[arch].hf_gelu`, the tanh form except for ELECTRA)."""
    import transformers as T

    gelu = ARCHITECTURES[arch].hf_gelu if config.hidden_act == "gelu" else config.hidden_act

    common = dict(vocab_size=config.vocab_size, hidden_size=config.hidden_size,
                  num_hidden_layers=config.num_hidden_layers,
                  num_attention_heads=config.num_attention_heads,
                  intermediate_size=config.intermediate_size,
                  hidden_dropout_prob=config.hidden_dropout_prob,
                  attention_probs_dropout_prob=config.attention_probs_dropout_prob,
                  max_position_embeddings=config.max_position_embeddings,
                  type_vocab_size=config.type_vocab_size)
    if arch == "albert":
        return T.AlbertConfig(embedding_size=config.embedding_size, hidden_act=gelu,
                              num_hidden_groups=config.num_hidden_groups,
                              inner_group_num=config.inner_group_num, **common)
    if arch in ("bert", "tinybert"):
        return T.BertConfig(hidden_act=gelu, **common)
    if arch == "electra":
        return T.ElectraConfig(embedding_size=config.embedding_size, hidden_act=gelu, **common)
    return T.MobileBertConfig(embedding_size=config.embedding_size,
                              true_hidden_size=config.intra_bottleneck_size,
                              intra_bottleneck_size=config.intra_bottleneck_size,
                              use_bottleneck_attention=config.use_bottleneck_attention,
                              key_query_shared_bottleneck=config.key_query_shared_bottleneck,
                              num_feedforward_networks=config.num_feedforward_networks,
                              normalization_type=config.normalization_type,
                              trigram_input=config.trigram_input,
                              hidden_act=config.hidden_act, **common)


def setup_hf(preset: str, batch: dict, precision: str = "float32"):
    """A function running n optimizer steps of the same configuration in HuggingFace
    transformers (after one warm-up step), or None when torch/transformers are missing."""
    try:
        import torch
        import transformers as T
    except ImportError:
        return None
    from tfcompact.configs import get_preset

    p = get_preset(preset)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    config = hf_config(p.arch, p.config)
    ids = torch.tensor(batch["input_ids"], dtype=torch.long)
    mask = torch.tensor(batch["input_mask"], dtype=torch.long)
    segments = torch.tensor(batch["segment_ids"], dtype=torch.long)
    labels = torch.full_like(ids, -100)
    labels.scatter_(1, torch.tensor(batch["masked_lm_positions"], dtype=torch.long),
                    torch.tensor(batch["masked_lm_ids"], dtype=torch.long))
    sentence = torch.tensor(batch["next_sentence_labels"], dtype=torch.long)
    if p.arch == "electra":
        gen_cfg = p.config.generator_config()
        generator = T.ElectraForMaskedLM(hf_config("electra", gen_cfg))
        discriminator = T.ElectraForPreTraining(config)
        params = list(generator.parameters()) + list(discriminator.parameters())
        rtd = (torch.rand(ids.shape) < 0.15).long()

        def loss_fn():
            g = generator(input_ids=ids, attention_mask=mask, token_type_ids=segments,
                          labels=labels).loss
            d = discriminator(input_ids=ids, attention_mask=mask, token_type_ids=segments,
                              labels=rtd).loss
            return g + 50.0 * d
    else:
        model = getattr(T, ARCHITECTURES[p.arch].hf_pretraining)(config)
        params = list(model.parameters())
        key = "sentence_order_label" if p.arch == "albert" else "next_sentence_label"

        def loss_fn():
            return model(input_ids=ids, attention_mask=mask, token_type_ids=segments,
                         labels=labels, **{key: sentence}).loss
    opt = torch.optim.AdamW(params, lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision != "float32"):
            loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return float(loss.detach())

    step()  # warm-up

    def steps(n: int) -> float:
        for _ in range(n):
            loss = step()
        return loss

    return steps


PRECISIONS = ("float32", "mixed_bfloat16")
SHORT = {"float32": "fp32", "mixed_bfloat16": "bf16"}


def machine_line(peaks: dict) -> str:
    """CPU model, cores, the bfloat16 flags and the matmul peaks measured in this run."""
    from tfcompact.train.precision import CPU_BF16_FLAGS, cpu_flags
    from tfcompact.train.utilisation import _cpu_model

    flags = cpu_flags() or frozenset()
    simd = [f for f in ("avx2", "avx512f", "avx512_vnni", *CPU_BF16_FLAGS, "amx_tile")
            if f in flags]
    measured = ", ".join(f"{SHORT[p]} {v / 1e9:.0f} GFLOP/s" for p, v in peaks.items())
    return (f"{_cpu_model()}, {os.cpu_count()} CPU(s), flags {' '.join(simd) or '?'}; "
            f"matmul peak measured now: {measured}")


def run_row(label: str, preset: str, size: str, precision: str, args, peaks: dict) -> dict:
    """One preset at one precision: ours, then HF, printed as one line."""
    from tfcompact.configs import get_preset

    config = get_preset(preset).config
    batch = synthetic_batch(config.vocab_size, args.batch_size, args.seq_length, args.predictions)
    steps = args.steps or STEPS[size]
    step_ours, ours = setup_ours(preset, batch, args.jit, precision)
    step_hf = None if args.no_hf else setup_hf(preset, batch, precision)
    steppers = {"ours": step_ours, **({"hf": step_hf} if step_hf else {})}
    times = fastest_turns(steppers, steps, args.turns)
    ours["step_s"] = times["ours"]
    hf = {"step_s": times["hf"]} if "hf" in times else None
    util = ours["flops"] / ours["step_s"] / peaks[precision]
    row = {"model": label, "preset": preset, "precision": precision, **ours,
           "examples_per_s": args.batch_size / ours["step_s"], "utilisation": util,
           "utilisation_of_fp32_peak": ours["flops"] / ours["step_s"] / peaks["float32"],
           "hf_step_s": hf["step_s"] if hf else None,
           "ratio": ours["step_s"] / hf["step_s"] if hf else None}
    hf_s = f"{hf['step_s']:>11.3f}{row['ratio']:>9.2f}" if hf else f"{'-':>11}{'-':>9}"
    print(f"{label:<20}{SHORT[precision]:>5}{ours['params'] / 1e6:>8.1f}M{ours['step_s']:>9.3f}"
          f"{row['examples_per_s']:>8.1f}{hf_s}{ours['flops'] / 1e9:>12.1f}{util:>7.1%}",
          flush=True)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--only", action="append", help="preset(s) to run (default: all rows)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS),
                        help="comma-separated: float32, mixed_bfloat16 (default both)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--predictions", type=int, default=20)
    parser.add_argument("--steps", type=int, help="timed steps per turn (default by size)")
    parser.add_argument("--turns", type=int, default=3,
                        help="turns each framework takes; the fastest is kept (default 3)")
    parser.add_argument("--jit", action="store_true", help="XLA-compile our step function")
    parser.add_argument("--no_hf", action="store_true", help="skip the HuggingFace rows")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    precisions = [p for p in args.precisions.split(",") if p]
    unknown = sorted(set(precisions) - set(PRECISIONS))
    if unknown:
        parser.error(f"--precisions: unknown {', '.join(unknown)}; expected {', '.join(PRECISIONS)}")

    from tfcompact.train.utilisation import measure_cpu_peak

    # the peaks this run's utilisation divides by, measured now (not the loop's cached probe)
    peaks = {p: measure_cpu_peak("bfloat16" if p != "float32" else "float32", 3.0)[0]
             for p in sorted(set(precisions) | {"float32"})}
    rows = [r for r in ROWS if not args.only or r[1] in args.only or r[0] in args.only]
    print(f"batch {args.batch_size}, length {args.seq_length}, {args.predictions} predictions, "
          f"jit={args.jit}; {machine_line(peaks)}")
    header = (f"{'model':<20}{'prec':>5}{'params':>9}{'step s':>9}{'ex/s':>8}{'HF step s':>11}"
              f"{'ours/HF':>9}{'GFLOP/step':>12}{'util':>7}")
    print(header)
    print("-" * len(header))
    results = [run_row(label, preset, size, precision, args, peaks)
               for label, preset, size in rows for precision in precisions]
    if results and results[0].get("hf_step_s") is not None:
        print(f"HF: *ForPreTraining (ELECTRA: generator MaskedLM + discriminator), "
              f"torch.optim.AdamW, clip 1.0, bf16 = torch.autocast(cpu, bfloat16); {hf_version()}")
    print("util: model FLOPs per second over this machine's matmul peak in the row's precision")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_line(peaks), "peaks": peaks, "rows": results}, f,
                      indent=2)
    return 0


def hf_version() -> str:
    import torch
    import transformers

    return f"torch {torch.__version__}, transformers {transformers.__version__}"


if __name__ == "__main__":
    sys.exit(main())
