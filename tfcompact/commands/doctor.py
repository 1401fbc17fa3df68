"""`tfcompact doctor`: can this machine run the job? Versions, devices, data and model access."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="experiment YAML (or shipped name): check its data and "
                                         "model directories too")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config value (repeatable)")
    parser.add_argument("--data", action="append", default=[],
                        help="a data directory written by create-data (repeatable)")
    parser.add_argument("--model_dir", help="a model directory to check for read/write access")
    parser.add_argument("--tpu", help="initialise this TPU ('local' on a TPU VM) and describe it")
    parser.add_argument("--expect_tensorflow", metavar="VERSION",
                        help="fail unless exactly this TensorFlow is installed (used by submit)")


def run(args: argparse.Namespace) -> int:
    from tfcompact.train.doctor import run_doctor

    data = [(f"--data {i + 1}" if len(args.data) > 1 else "--data", d)
            for i, d in enumerate(args.data)]
    model_dir = args.model_dir
    if args.config:
        from tfcompact.train.experiment import load_experiment

        exp = load_experiment(args.config, args.overrides)
        data.append(("data.train", exp.data.train))
        if exp.data.eval:
            data.append(("data.eval", exp.data.eval))
        model_dir = model_dir or exp.train.model_dir
    problems = run_doctor(tpu=args.tpu, data=data, model_dir=model_dir,
                          expect_tensorflow=args.expect_tensorflow)
    if problems:
        print(f"doctor: {len(problems)} problem(s); first: {problems[0]}")
        return 1
    print("doctor: ok")
    return 0
