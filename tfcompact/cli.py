"""The `tfcompact` command line: one sub-command per stage of the workflow.

Each sub-command lives in `tfcompact/commands/<module>.py` with two functions:
`add_arguments(parser)` and `run(args) -> int`. Modules are imported only when their
command runs, so `tfcompact presets` does not pay for importing the data pipeline.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from tfcompact.errors import UserError

# command name -> (module under tfcompact.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "quickstart": ("quickstart", "convert the packaged corpus, pretrain a tiny ALBERT on CPU, export it"),
    "presets": ("presets", "list the published Chinese model presets"),
    "build-vocab": ("build_vocab", "build a Chinese BERT-layout WordPiece vocabulary from raw text"),
    "create-data": ("create_data", "convert raw text / TFDS corpora to pretraining TFRecords"),
    "pretrain": ("pretrain", "pretrain a model from a tpu_configs/*.yaml experiment"),
    "submit": ("submit", "submit a pretraining job to a Cloud TPU VM"),
    "task-data": ("task_data", "write a packaged Chinese task dataset (People's Daily NER, review sentiment)"),
    "distill": ("distill", "distil a student from a frozen teacher (general or task distillation)"),
    "finetune": ("finetune", "fine-tune a model on a classification, tagging or span task"),
    "evaluate": ("evaluate", "score a fine-tuned model on a task file with the official metric"),
    "predict": ("predict", "write a fine-tuned model's predictions for a task file"),
    "doctor": ("doctor", "check this machine: versions, devices (TPU, GPU, CPU features), data access"),
    "export": ("export", "export a model directory as TF1 checkpoint, SavedModel or TFLite"),
    "import-tf1": ("import_tf1", "import a released TF1 checkpoint into a model directory"),
    "import-hf": ("import_hf", "import a HuggingFace model directory (config.json + model.safetensors) into a model directory"),
    "check-tflite": ("check_tflite", "compare a TFLite export with its SavedModel on the same inputs"),
    "augment": ("augment", "augment a task file with whole-word MLM replacements (task distillation)"),
}


def _add_command(subparsers, name: str) -> None:
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(f"tfcompact.commands.{module_name}")
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfcompact", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if name == only:
            _add_command(subparsers, name)
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def _quiet_tensorflow() -> None:
    """After an error nothing may follow it: TensorFlow logs some warnings late (e.g. about
    checkpoint values never restored, when objects are collected at exit)."""
    if "tensorflow" in sys.modules:
        import logging

        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        try:
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.ERROR)
        except ImportError:
            pass


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # TensorFlow's C++ start-up INFO lines (oneDNN, CUDA probing) bury the output; warnings stay.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0 if not argv or command is None else 2
    try:
        return int(args._run(args) or 0)
    except UserError as e:
        _quiet_tensorflow()
        sys.stdout.flush()
        message = " ".join(str(e).split())  # one line, whatever the message held
        print(f"tfcompact {args.command}: error: {message}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print(f"tfcompact {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (e.g. `tfcompact presets | head`): not an error.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
