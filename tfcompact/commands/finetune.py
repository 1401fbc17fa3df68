"""`tfcompact finetune --config X.yaml`: fine-tune (or resume) one task experiment."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="task YAML, or the name of a shipped one (tpu_configs/finetune/, "
                             "e.g. lcqmc, cmrc2018, or finetune_sentiment_cpu)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a config value by dotted key, e.g. task.train=my.tsv "
                             "(repeatable; the value is parsed as YAML)")
    parser.add_argument("--model_dir", help="overrides train.model_dir")
    parser.add_argument("--init", help="overrides model.init: the model directory to start "
                                       "from (a pretraining run or `tfcompact import-tf1`)")
    parser.add_argument("--random_init", action="store_true",
                        help="the baseline: model.init's architecture, config and vocabulary "
                             "with randomly initialised weights")
    parser.add_argument("--seeds", type=int, default=1,
                        help="run N seeds (train.seed, +1, ...) into <model_dir>/seed_<s> and "
                             "print max / mean / std per split")
    parser.add_argument("--tpu", help="TPU name, 'local' on a TPU VM, or grpc://host:port")
    parser.add_argument("--cpu_replicas", type=int, default=0,
                        help="split the CPU into N logical devices under MirroredStrategy")
    parser.add_argument("--check", action="store_true",
                        help="validate the config and print it, then exit")


def _overrides(args: argparse.Namespace) -> list[str]:
    extra = list(args.overrides)
    if args.model_dir:
        extra.append(f"train.model_dir={args.model_dir}")
    if args.init:
        extra += [f"model.init={args.init}", "model.preset=null", "model.config_file=null",
                  "model.vocab=null", "model.overrides={}"]
    if args.random_init:
        extra.append("model.random_init=true")
    return extra


def run(args: argparse.Namespace) -> int:
    from tfcompact.errors import ConfigError
    from tfcompact.train.task_experiment import load_finetune_experiment

    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: expected at least 1")
    exp = load_finetune_experiment(args.config, _overrides(args))
    if args.check:
        import yaml

        print(yaml.safe_dump(exp.to_dict(), sort_keys=False, allow_unicode=True), end="")
        return 0
    from tfcompact.commands import console_log
    from tfcompact.train.finetune import run_finetuning, run_seeds
    from tfcompact.train.pretrain import RunOptions

    options = RunOptions(tpu=args.tpu, cpu_replicas=args.cpu_replicas, log=console_log)
    if args.seeds > 1:
        run_seeds(exp, args.seeds, options)
        print(f"done: {args.seeds} seeds under {exp.train.model_dir} (seeds.json)")
        return 0
    summary = run_finetuning(exp, options)
    best = summary["best"] or {}
    print(f"done: step {summary['step']}/{summary['total_steps']} ({summary['status']}); best dev "
          f"{summary['metric']} {best.get(summary['metric'], float('nan')):.4f} at step "
          f"{best.get('step')}; model directory {exp.train.model_dir} (best/, summary.json)")
    return 0
