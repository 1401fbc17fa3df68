"""`tfcompact evaluate --model_dir D --input F`: score a fine-tuned model on a labelled file
with the task's official metric (accuracy / macro-F1; entity P/R/F1; CMRC 2018 EM/F1)."""
from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_dir", required=True, help="a fine-tuned model directory")
    parser.add_argument("--input", required=True, help="a labelled file in the task's format")
    parser.add_argument("--output", help="also write the predictions here (the task's format)")
    parser.add_argument("--checkpoint", help="a checkpoint prefix instead of <model_dir>/best/")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")


def run(args: argparse.Namespace) -> int:
    from tfcompact.train.task_predict import check_arguments, evaluate_file, load_for_prediction

    output = check_arguments(args)
    model, spec, tokenizer = load_for_prediction(args.model_dir, args.checkpoint)
    scores = evaluate_file(model, spec, tokenizer, args.input, args.batch_size, output)
    if args.json:
        print(json.dumps(scores, indent=1, ensure_ascii=False))
    else:
        from tfcompact.metrics import format_scores

        print(f"{args.input}: {format_scores(scores)} (percent)")
    return 0
