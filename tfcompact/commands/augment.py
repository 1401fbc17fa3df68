"""`tfcompact augment --model_dir D --input F --output F --kind K`: TinyBERT-style data
augmentation of a task file for task distillation, on whole Chinese words (a pretraining
model's MLM head proposes same-length replacements for segmenter words)."""
from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipelines.augment import SEGMENTERS, AugmentConfig

    d = AugmentConfig()
    parser.add_argument("--model_dir", required=True,
                        help="a pretraining model directory (its MLM head proposes the words)")
    parser.add_argument("--input", required=True, help="a task file (any format the task readers take)")
    parser.add_argument("--output", required=True,
                        help="where to write the originals and copies (classification: JSON "
                             "lines; tagging: CoNLL; span: SQuAD v1 JSON)")
    parser.add_argument("--kind", required=True, help="classification, tagging or span")
    parser.add_argument("--task_format", default="", help="reader format (default: from kind and file name)")
    parser.add_argument("--text_fields", default=None, help="classification: the text column(s), a[,b]")
    parser.add_argument("--label_field", default=None, help="classification: the label column")
    parser.add_argument("--num_copies", type=int, default=d.num_copies, help="copies tried per example (N)")
    parser.add_argument("--replace_prob", type=float, default=d.replace_prob,
                        help="probability that a word is replaced in a copy (p)")
    parser.add_argument("--top_k", type=int, default=d.top_k, help="candidates kept per word (K)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--max_seq_length", type=int, default=d.max_seq_length)
    parser.add_argument("--batch_size", type=int, default=d.batch_size, help="masked sequences per MLM call")
    parser.add_argument("--num_workers", type=int, default=os.cpu_count() or 1,
                        help="processes segmenting and tokenising")
    parser.add_argument("--segmenter", default=d.segmenter, help=f"one of {', '.join(SEGMENTERS)}")
    parser.add_argument("--dictionary_words", action=argparse.BooleanOptionalAction, default=True,
                        help="multi-character replacements must be words of the segmenter's dictionary")
    parser.add_argument("--do_lower_case", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")


def run(args: argparse.Namespace) -> int:
    from pipelines.augment import AugmentConfig, augment_file
    from tfcompact.commands import console_log
    from tfcompact.files import check_output_file
    from tfcompact.tasks import check_kind

    check_kind(args.kind, "--kind")
    cfg = AugmentConfig(num_copies=args.num_copies, replace_prob=args.replace_prob, top_k=args.top_k,
                        seed=args.seed, max_seq_length=args.max_seq_length, batch_size=args.batch_size,
                        num_workers=args.num_workers, segmenter=args.segmenter,
                        dictionary_words=args.dictionary_words,
                        do_lower_case=args.do_lower_case).check()
    output = check_output_file(args.output, "--output", inputs=[args.input], overwrite=args.overwrite)
    counts = augment_file(cfg, args.model_dir, args.input, output, args.kind, args.task_format,
                          args.text_fields, args.label_field,
                          log=lambda line: console_log(f"augment: {line}"))
    rate = counts["examples"] / max(counts["seconds"], 1e-9)
    print(f"augment: {counts['examples']} examples, {counts['copies written']} copies written, "
          f"{counts['words replaced']} words replaced, {counts['duplicates dropped']} duplicates "
          f"dropped, {counts['candidate words']} words with candidates; {rate:.1f} examples/s; "
          f"wrote {args.output}")
    return 0
