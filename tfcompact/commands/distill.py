"""`tfcompact distill --config X.yaml`: run (or resume) one distillation stage.

A stage is an experiment with a `distillation:` section. Without a `task:` section it trains on
pretraining data beside a frozen pretrained teacher (TinyBERT general distillation, MobileBERT's
progressive transfer and main stage: the `pretrain` driver); with one it trains a task model
beside a fine-tuned teacher (TinyBERT task distillation: the `finetune` driver). Either way the
same strategies, checkpoints, resume, TensorBoard scalars (every loss term), summary.json and
exports as pretraining and fine-tuning.
"""
from __future__ import annotations

import argparse
import pathlib


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="distillation experiment YAML (a path, or the name of a shipped "
                             "one, e.g. tinybert_4l_312_zh_general)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a config value by dotted key (repeatable; YAML value)")
    parser.add_argument("--model_dir", help="overrides train.model_dir")
    parser.add_argument("--teacher",
                        help="overrides the teacher: its model directory (pretraining stages: "
                             "distillation.teacher.checkpoint; task stages: the fine-tuned "
                             "teacher's directory, distillation.teacher)")
    parser.add_argument("--init",
                        help="where the student starts: a model directory (pretraining stages: "
                             "train.init_checkpoint, e.g. the PKT stage for MobileBERT's main "
                             "stage; task stages: model.init, e.g. the general-distilled "
                             "student or task stage 1)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="task stages: run N seeds into <model_dir>/seed_<s>")
    parser.add_argument("--tpu", help="TPU name, 'local' on a TPU VM, or grpc://host:port")
    parser.add_argument("--cpu_replicas", type=int, default=0,
                        help="split the CPU into N logical devices under MirroredStrategy")
    parser.add_argument("--check", action="store_true",
                        help="validate the config and print it, then exit")


def _config_path(name_or_path: str) -> pathlib.Path:
    from tfcompact.errors import ConfigError
    from tfcompact.train.experiment import resolve_config_path
    from tfcompact.train.task_experiment import resolve_task_config_path

    try:
        return resolve_config_path(name_or_path)
    except ConfigError:
        return resolve_task_config_path(name_or_path)


def run(args: argparse.Namespace) -> int:
    from tfcompact.commands import finetune, pretrain
    from tfcompact.errors import ConfigError
    from tfcompact.train.experiment import read_yaml_with_base

    path = _config_path(args.config)
    raw, _ = read_yaml_with_base(path)
    if not isinstance(raw.get("distillation"), dict):
        raise ConfigError(f"{path}: no distillation section: `tfcompact distill` runs a stage with "
                          f"a teacher (start from tpu_configs/distill/*.yaml); without one use "
                          f"`tfcompact pretrain` or `tfcompact finetune`")
    overrides = list(args.overrides)
    common = dict(config=str(path), model_dir=args.model_dir, tpu=args.tpu,
                  cpu_replicas=args.cpu_replicas, check=args.check)
    if "task" in raw:
        if args.teacher:
            overrides.append(f"distillation.teacher={args.teacher}")
        return finetune.run(argparse.Namespace(overrides=overrides, init=args.init,
                                               random_init=False, seeds=args.seeds, **common))
    if args.seeds != 1:
        raise ConfigError(f"--seeds {args.seeds}: only task distillation stages run several seeds")
    if args.teacher:
        overrides.append(f"distillation.teacher.checkpoint={args.teacher}")
    return pretrain.run(argparse.Namespace(overrides=overrides, init_checkpoint=args.init,
                                           verify_data=False, **common))
