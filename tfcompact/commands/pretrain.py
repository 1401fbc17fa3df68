"""`tfcompact pretrain --config X.yaml`: run (or resume) one experiment of tpu_configs/."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="experiment YAML, or the name of a shipped one (e.g. cpu_smoke)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a config value by dotted key, e.g. train.batch_size=64 "
                             "(repeatable; the value is parsed as YAML)")
    parser.add_argument("--model_dir", help="overrides train.model_dir")
    parser.add_argument("--init_checkpoint",
                        help="warm start: model weights from this model directory (training "
                             "output or `tfcompact import-tf1` output); ignored when resuming")
    parser.add_argument("--tpu", help="TPU name, 'local' on a TPU VM, or grpc://host:port")
    parser.add_argument("--cpu_replicas", type=int, default=0,
                        help="split the CPU into N logical devices under MirroredStrategy "
                             "(exercises the distributed code path without accelerators)")
    parser.add_argument("--verify_data", action="store_true",
                        help="hash every data shard against manifest.json before training "
                             "(sizes are always checked; a damaged shard met during training "
                             "is named either way)")
    parser.add_argument("--check", action="store_true",
                        help="validate the config and print it, then exit (no TensorFlow work)")


def _overrides(args: argparse.Namespace) -> list[str]:
    extra = list(args.overrides)
    if args.model_dir:
        extra.append(f"train.model_dir={args.model_dir}")
    if args.init_checkpoint:
        extra.append(f"train.init_checkpoint={args.init_checkpoint}")
    return extra


def run(args: argparse.Namespace) -> int:
    from tfcompact.train.experiment import load_experiment

    exp = load_experiment(args.config, _overrides(args))
    if args.check:
        import yaml

        print(yaml.safe_dump(exp.to_dict(), sort_keys=False, allow_unicode=True), end="")
        return 0
    from tfcompact.commands import console_log
    from tfcompact.train.pretrain import RunOptions, run_pretraining

    summary = run_pretraining(exp, RunOptions(tpu=args.tpu, cpu_replicas=args.cpu_replicas,
                                              verify_data=args.verify_data, log=console_log))
    print(f"done: step {summary['step']}/{summary['total_steps']}, model directory "
          f"{exp.train.model_dir} (summary.json, checkpoints/, tensorboard/)")
    return 0
