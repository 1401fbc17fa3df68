"""`tfcompact predict --model_dir D --input F --output P`: a fine-tuned model's predictions for
a file of the task's format (labels not needed), written in that format."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_dir", required=True, help="a fine-tuned model directory")
    parser.add_argument("--input", required=True, help="a file in the task's format")
    parser.add_argument("--output", required=True,
                        help="where to write the predictions (classification: the input's "
                             "layout with predicted labels; tagging: CoNLL; span: {id: answer})")
    parser.add_argument("--checkpoint", help="a checkpoint prefix instead of <model_dir>/best/")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")


def run(args: argparse.Namespace) -> int:
    from tfcompact.train.task_predict import check_arguments, load_for_prediction, predict_file

    output = check_arguments(args)
    model, spec, tokenizer = load_for_prediction(args.model_dir, args.checkpoint)
    count = predict_file(model, spec, tokenizer, args.input, output, args.batch_size)
    print(f"wrote {count} predictions to {args.output}")
    return 0
