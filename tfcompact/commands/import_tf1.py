"""`tfcompact import-tf1`: a released TF1 checkpoint (BERT, albert_zh, Chinese ELECTRA /
MobileBERT) into a model directory that pretraining, fine-tuning and export accept.

Every model variable must be found in the checkpoint and every checkpoint variable used
(optimizer slots and global_step aside); otherwise one error lists missing/unused names and
shape mismatches, and nothing is written. The output may not be, contain or lie inside the
checkpoint, config or vocab; `--overwrite` replaces only an earlier import (see
`tfcompact/interop/output_dir.py`).
"""
from __future__ import annotations

import argparse

from tfcompact.architectures import ARCHITECTURES



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", required=True, choices=list(ARCHITECTURES))
    parser.add_argument("--checkpoint", required=True,
                        help="TF1 checkpoint prefix (dir/model.ckpt), its .index file, or its directory")
    parser.add_argument("--config", required=True, help="the original config JSON (bert_config.json, ...)")
    parser.add_argument("--vocab", default=None, help="vocab.txt (default: vocab.txt beside the checkpoint)")
    parser.add_argument("--layout", default=None, choices=("google", "brightmart"),
                        help="ALBERT checkpoint layout (default: detected from the variable names)")
    parser.add_argument("--output", required=True, help="model directory to create")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier import-tf1 output at --output (nothing else)")


def run(args: argparse.Namespace) -> int:
    from tfcompact.interop import convert

    summary = convert.import_tf1_checkpoint(
        args.arch, args.checkpoint, args.config, args.output, vocab=args.vocab,
        layout=args.layout, overwrite=args.overwrite)
    print(summary)
    return 0
