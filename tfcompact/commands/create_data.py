"""`tfcompact create-data`: raw text (.txt/.gz files or a prepared TFDS dataset) -> sharded
pretraining TFRecords + manifest.json, streaming over several processes, resumable."""
from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipelines.create_data import add_conversion_arguments

    add_conversion_arguments(
        parser, input_help="glob(s) of .txt/.gz files (comma-separated), or tfds:NAME[:split]")
    parser.add_argument("--tfds_data_dir", default=None, help="data_dir of a prepared TFDS dataset")
    parser.add_argument("--num_workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--shard_index", type=int, default=0, help="this host's part of the input files")
    parser.add_argument("--num_input_shards", type=int, default=1, help="number of hosts splitting the input files")
    parser.add_argument("--allow_empty", action="store_true",
                        help="write a conversion with 0 instances instead of failing (e.g. one "
                             "host's part of a split corpus)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def run(args) -> int:
    from pipelines.create_data import conversion_config, run_conversion
    from tfcompact.text.corpus import expand_inputs

    inputs = [args.input] if args.input.startswith("tfds:") else expand_inputs(args.input)
    cfg = conversion_config(args, inputs, tfds_data_dir=args.tfds_data_dir,
                            input_shard_index=args.shard_index,
                            num_input_shards=args.num_input_shards)
    manifest = run_conversion(cfg, num_workers=args.num_workers, progress=not args.quiet,
                              allow_empty=args.allow_empty)
    print(f"create-data: wrote {manifest['num_instances']} instances in {len(manifest['shards'])} shards "
          f"to {args.output_dir}")
    return 0
