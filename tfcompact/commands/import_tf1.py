"""`tfcompact import-tf1`: a released TF1 checkpoint (BERT, albert_zh, Chinese ELECTRA /
MobileBERT) into a model directory that pretraining, fine-tuning and export accept.

The sizes come from exactly one of `--config` and `--preset` (neither or both is a usage
error). `--config` is the release's config JSON; ELECTRA releases ship none, and take instead
the hparams JSON their scripts read (`model_size`, `vocab_size`, `model_hparam_overrides`, ...:
see `tfcompact/interop/release_config.py`). `--preset` must be a preset of `--arch` (which
stays required, so the command says what it imports); vocab.txt and the checkpoint's word
embeddings must then have the preset's vocab_size entries.

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
    sizes = parser.add_mutually_exclusive_group(required=True)
    sizes.add_argument("--config", help="the original config JSON (bert_config.json, ...), or for "
                       "--arch electra the hparams JSON of an ELECTRA release (model_size, ...)")
    sizes.add_argument("--preset", help="take the sizes from this preset (`tfcompact presets`); "
                       "it must be of --arch")
    parser.add_argument("--vocab", default=None, help="vocab.txt (default: vocab.txt beside the checkpoint)")
    parser.add_argument("--layout", default=None, choices=("google", "brightmart"),
                        help="ALBERT checkpoint layout (default: detected from the variable names)")
    parser.add_argument("--output", required=True, help="model directory to create")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier import-tf1 output at --output (nothing else)")


def run(args: argparse.Namespace) -> int:
    from tfcompact.interop import convert

    summary = convert.import_tf1_checkpoint(
        args.arch, args.checkpoint, args.config, args.output, preset=args.preset,
        vocab=args.vocab, layout=args.layout, overwrite=args.overwrite)
    print(summary)
    return 0
