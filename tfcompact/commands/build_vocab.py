"""`tfcompact build-vocab`: raw text -> vocab.txt in the Chinese BERT layout (specials, every CJK
character seen, WordPiece pieces for the rest, learned with tensorflow-text's learner)."""
from __future__ import annotations

import argparse

MIN_VOCAB_SIZE = 110  # 104 special/unused ids + some text
MAX_VOCAB_SIZE = 1_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="glob(s) of .txt/.gz files (comma-separated)")
    parser.add_argument("--vocab_size", type=int, required=True)
    parser.add_argument("--output", required=True, help="vocab.txt to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    parser.add_argument("--do_lower_case", choices=("true", "false"), default="true")
    parser.add_argument("--errors", choices=("skip", "fail"), default="fail")


def run(args) -> int:
    from tfcompact.text.corpus import expand_inputs
    from tfcompact.files import check_output_file
    from tfcompact.errors import UserError
    from tfcompact.text.vocab_builder import build_vocab, count_basic_tokens, write_vocab

    if not MIN_VOCAB_SIZE <= args.vocab_size <= MAX_VOCAB_SIZE:
        raise UserError(f"--vocab_size {args.vocab_size}: expected {MIN_VOCAB_SIZE}..{MAX_VOCAB_SIZE} "
                        f"(104 special/unused ids + text; Chinese BERT has 21128)")
    lower = args.do_lower_case == "true"
    files = expand_inputs(args.input)
    output = check_output_file(args.output, "--output", inputs=files, overwrite=args.overwrite)
    counts = count_basic_tokens(files, do_lower_case=lower, errors=args.errors)
    if not counts:
        raise UserError(f"--input {args.input}: no text found")
    vocab = build_vocab(counts, args.vocab_size, do_lower_case=lower)
    write_vocab(vocab, output)
    fewer = (f" (the corpus gives fewer than --vocab_size {args.vocab_size})"
             if len(vocab) < args.vocab_size else "")
    print(f"build-vocab: wrote {len(vocab)} tokens to {args.output}{fewer}")
    return 0
