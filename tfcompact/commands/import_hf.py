"""`tfcompact import-hf`: a HuggingFace model directory (config.json + model.safetensors, or
pytorch_model.bin when torch is installed, + vocab.txt) into a model directory that pretraining,
distillation, fine-tuning and export accept.

BERT (and TinyBERT, which HF stores as BERT), ALBERT, ELECTRA and MobileBERT. Every weight of the
model must be found and every stored weight used (tied copies and buffers aside), or one error
lists what is missing, unused or misshapen and nothing is written. ELECTRA's Hub releases are
two directories: pass the discriminator as --model_dir and the generator as --generator.
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_dir", required=True,
                        help="HuggingFace model directory (config.json, model.safetensors, vocab.txt)")
    parser.add_argument("--generator", default=None,
                        help="ELECTRA: the generator's HuggingFace directory (required for ELECTRA)")
    parser.add_argument("--vocab", default=None, help="vocab.txt (default: vocab.txt in --model_dir)")
    parser.add_argument("--output", required=True, help="model directory to create")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier import-hf output at --output (nothing else)")


def run(args: argparse.Namespace) -> int:
    from tfcompact.interop.huggingface import import_huggingface

    print(import_huggingface(args.model_dir, args.output, generator=args.generator, vocab=args.vocab,
                             overwrite=args.overwrite))
    return 0
