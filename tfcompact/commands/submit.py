"""`tfcompact submit`: run an experiment on a Cloud TPU VM via gcloud (or print the commands)."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="experiment YAML or shipped config name")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config value (repeatable)")
    parser.add_argument("--tpu_name", required=True, help="name of the TPU VM to create")
    parser.add_argument("--zone", help="e.g. europe-west4-a (default: the config's tpu.zone)")
    parser.add_argument("--project", help="GCP project (default: the config's tpu.project)")
    parser.add_argument("--accelerator_type",
                        help="e.g. v3-8, v3-256 (default: the config's tpu.accelerator_type)")
    parser.add_argument("--runtime_version",
                        help="TPU VM image (default: the config's tpu.runtime_version)")
    parser.add_argument("--delete_on_finish", action="store_true",
                        help="delete the TPU VM when the job ends (also after a failure)")
    parser.add_argument("--staging_dir", default="tfcompact_submit",
                        help="local directory for the wheel and the resolved experiment YAML")
    parser.add_argument("--source_dir", default=".",
                        help="source checkout of tfcompact to build the wheel from")
    parser.add_argument("--skip_data_check", action="store_true",
                        help="submit even if the data manifests cannot be read from this machine")
    parser.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")


def run(args: argparse.Namespace) -> int:
    from tfcompact.errors import UserError
    from tfcompact.train.experiment import load_experiment
    from tfcompact.train.submit import SubmitSpec, submit

    exp = load_experiment(args.config, args.overrides)
    zone = args.zone or exp.tpu.zone
    project = args.project or exp.tpu.project
    if not zone or not project:
        raise UserError("--zone and --project are required (or tpu.zone / tpu.project in the "
                        "config)")
    spec = SubmitSpec(tpu_name=args.tpu_name, zone=zone, project=project,
                      accelerator_type=args.accelerator_type or exp.tpu.accelerator_type,
                      runtime_version=args.runtime_version or exp.tpu.runtime_version,
                      delete_on_finish=args.delete_on_finish, staging_dir=args.staging_dir,
                      source_dir=args.source_dir, skip_data_check=args.skip_data_check)
    return submit(exp, spec, dry_run=args.dry_run)
