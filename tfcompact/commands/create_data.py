"""`tfcompact create-data`: raw text (.txt/.gz files or a prepared TFDS dataset) -> sharded
pretraining TFRecords + manifest.json, streaming over several processes, resumable."""
from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True,
                        help="glob(s) of .txt/.gz files (comma-separated), or tfds:NAME[:split]")
    parser.add_argument("--tfds_data_dir", default=None, help="data_dir of a prepared TFDS dataset")
    parser.add_argument("--vocab", required=True, help="vocab.txt (BERT layout)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--max_predictions_per_seq", type=int, default=20)
    parser.add_argument("--masking", choices=("wwm", "ngram", "token", "none"), default="wwm",
                        help="none writes the unmasked format (word_ids) for dynamic masking")
    parser.add_argument("--pair_task", choices=("nsp", "sop", "none"), default="sop")
    parser.add_argument("--dupe_factor", type=int, default=5)
    parser.add_argument("--short_seq_prob", type=float, default=0.1)
    parser.add_argument("--masked_lm_prob", type=float, default=0.15)
    parser.add_argument("--num_workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--num_shards", type=int, default=0, help="0: 8, or one per 32 MiB of text")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--segmenter", choices=("jieba", "rjieba", "presegmented"), default="jieba")
    parser.add_argument("--do_lower_case", type=_bool, default=True)
    parser.add_argument("--errors", choices=("skip", "fail"), default="fail",
                        help="invalid UTF-8: fail (default) or skip the line")
    parser.add_argument("--shard_index", type=int, default=0, help="this host's part of the input files")
    parser.add_argument("--num_input_shards", type=int, default=1, help="number of hosts splitting the input files")
    parser.add_argument("--allow_empty", action="store_true",
                        help="write a conversion with 0 instances instead of failing (e.g. one "
                             "host's part of a split corpus)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def _bool(v: str) -> bool:
    if v.lower() in ("1", "true", "yes"):
        return True
    if v.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {v!r}")


def run(args) -> int:
    from pipelines.corpus import expand_inputs
    from pipelines.create_data import ConvertConfig, run_conversion

    inputs = [args.input] if args.input.startswith("tfds:") else expand_inputs(args.input)
    cfg = ConvertConfig(
        inputs=inputs, vocab_path=args.vocab, output_dir=args.output_dir,
        max_seq_length=args.max_seq_length, max_predictions_per_seq=args.max_predictions_per_seq,
        masking=args.masking, pair_task=args.pair_task, dupe_factor=args.dupe_factor,
        short_seq_prob=args.short_seq_prob, masked_lm_prob=args.masked_lm_prob,
        num_shards=args.num_shards, seed=args.seed, segmenter=args.segmenter,
        do_lower_case=args.do_lower_case, errors=args.errors, tfds_data_dir=args.tfds_data_dir,
        input_shard_index=args.shard_index, num_input_shards=args.num_input_shards,
    )
    manifest = run_conversion(cfg, num_workers=args.num_workers, progress=not args.quiet,
                              allow_empty=args.allow_empty)
    print(f"create-data: wrote {manifest['num_instances']} instances in {len(manifest['shards'])} shards "
          f"to {args.output_dir}", file=sys.stderr)
    return 0
