"""The `tfcompact` command line: one sub-command per stage of the workflow.

Each sub-command lives in `tfcompact/commands/<module>.py` with two functions:
`add_arguments(parser)` and `run(args) -> int`. Modules are imported only when their
command runs, so `tfcompact presets` and `tfcompact --version` do not pay for importing
TensorFlow or the data pipeline.

Exit status:
  0    success
  1    user error: a bad input file, config, checkpoint, flag value or machine; one line on
       stderr, `tfcompact COMMAND: error: ...`, naming the file, line or field at fault
  2    usage error: unknown command or flag, missing or malformed argument, no command given
  130  interrupted (Ctrl-C)

Output: progress and results go to stdout, warnings and errors to stderr. TensorFlow's
start-up log lines (oneDNN, CUDA probing, CPU features) and a few library warnings that mean
nothing here are hidden; `--verbose` (before or after the command) shows everything.
A TF_CPP_MIN_LOG_LEVEL set in the environment is kept as it is.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
from typing import Callable, Sequence

from tfcompact import __version__
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
    "export": ("export", "export a model directory as TF1 checkpoint, SavedModel, TFLite or HuggingFace directory"),
    "import-tf1": ("import_tf1", "import a released TF1 checkpoint into a model directory"),
    "import-hf": ("import_hf", "import a HuggingFace model directory (config.json + model.safetensors) into a model directory"),
    "check-tflite": ("check_tflite", "compare a TFLite export with its SavedModel on the same inputs"),
    "augment": ("augment", "augment a task file with whole-word MLM replacements (task distillation)"),
}

EXIT_OK, EXIT_USER_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
VERBOSE_HELP = "show every log line TensorFlow writes (its start-up lines are hidden by default)"
_WITHOUT_TENSORFLOW = frozenset({"presets"})  # commands that never load it: no filter needed
TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"  # TensorFlow's C++ log threshold: 0 INFO, 1 WARNING, 2 ERROR

# What TensorFlow writes to stderr, by line. Its C++ log lines (absl format: severity letter,
# date, time, thread, file:line]) are kept from WARNING up, except those below that mean
# nothing to a user of this project. The lines it writes while its libraries load come before
# TF_CPP_MIN_LOG_LEVEL is read, so only a filter on the stderr file descriptor removes them.
# Two formats: absl's (TF 2.21: `I0000 00:00:1796075653.147002    3302 port.cc:153] `) and
# TensorFlow's own before it moved to absl (TF 2.20, the TPU line:
# `2026-11-30 23:12:50.668421: I tensorflow/core/util/port.cc:153] `).
_ABSL_LINE = re.compile(rb"(?:([IWEF])\d{4} \d+:\d+:\d+\.\d+ +\d+ "
                        rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) )[^ \]]+:\d+\] ")
_ABSL_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_TFLITE_INFO = b"INFO: "  # the TFLite interpreter's own INFO lines (e.g. XNNPACK delegate created)
_NOISE = re.compile(rb"\] (failed call to cuInit: "        # no GPU driver: the CPU is used
                    rb"|Ignored output_format\.|Ignored drop_control_dependency\.)")  # TFLite converter


def keep_stderr_line(line: bytes, min_level: int, drop_noise: bool) -> bool:
    """Whether a line written to stderr is shown: not a TensorFlow C++ log line below
    `min_level` (0 INFO .. 3 FATAL), and with `drop_noise` none of the known meaningless ones."""
    text = line.rstrip(b"\r\n")
    if text == _ABSL_BANNER:
        return min_level < 1
    if text.startswith(_TFLITE_INFO):
        return min_level < 1
    match = _ABSL_LINE.match(text)
    if match is None:
        return True
    if b"IWEF".index(match.group(1) or match.group(2)) < min_level:
        return False
    return not (drop_noise and _NOISE.search(text))


def _may_begin_log_line(partial: bytes) -> bool:
    """A line still being written that a log line could begin with (held until it ends)."""
    return (_ABSL_BANNER.startswith(partial) or _TFLITE_INFO.startswith(partial)
            or partial.startswith(_TFLITE_INFO) or re.match(rb"[IWEF](\d|$)|\d", partial) is not None)


def filter_stderr(src: int, dst: int, min_level: int, drop_noise: bool) -> None:
    """Copy file descriptor `src` to `dst` until end of file, line by line through
    `keep_stderr_line`. A partial line (a progress line ending in \\r) passes at once unless a log
    line could begin with it. Runs in its own process: see `_start_stderr_filter`."""
    pending, out_ok = b"", True
    while True:
        chunk = os.read(src, 1 << 16)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        out = b"".join(ln + b"\n" for ln in lines if keep_stderr_line(ln, min_level, drop_noise))
        if pending and not _may_begin_log_line(pending):
            out, pending = out + pending, b""
        out_ok = out_ok and _write_all(dst, out)  # the reader gone: keep draining the pipe
    if pending and out_ok and keep_stderr_line(pending, min_level, drop_noise):
        _write_all(dst, pending)


def _write_all(fd: int, data: bytes) -> bool:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        return False
    return True


def _start_stderr_filter(min_level: int, drop_noise: bool) -> Callable[[], None] | None:
    """Point file descriptor 2 (inherited by worker processes) at a pipe read by a small filter
    process, which writes the lines kept to the real stderr. Returns the function that puts
    stderr back and waits for the filter to write what is left."""
    if os.name != "posix":
        return None
    try:
        sys.stderr.flush()
        real_stderr = os.dup(2)
    except (OSError, ValueError):
        return None  # no stderr to filter
    read_end, write_end = os.pipe()
    ready_read, ready_write = os.pipe()  # the filter says it runs before stderr depends on it
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f"import os, sys; sys.path.insert(0, {package_root!r}); from tfcompact.cli import "
            f"filter_stderr; os.write({ready_write}, b'1'); os.close({ready_write}); "
            f"filter_stderr(0, 1, {min_level}, {drop_noise})")
    try:  # a session of its own: Ctrl-C stops the command, the filter still writes its message
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", code], stdin=read_end,
                                stdout=real_stderr, stderr=real_stderr, pass_fds=(ready_write,),
                                start_new_session=True)
    except OSError:
        proc = None
    os.close(read_end)
    os.close(ready_write)
    started = proc is not None and os.read(ready_read, 1) == b"1"
    os.close(ready_read)
    if not started:  # stderr stays as it was
        os.close(write_end)
        os.close(real_stderr)
        return None
    os.dup2(write_end, 2)
    os.close(write_end)

    def stop() -> None:
        sys.stderr.flush()
        os.dup2(real_stderr, 2)
        os.close(real_stderr)
        try:  # end of file once this process and its workers let go of the pipe
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass  # a process still holds the pipe; the filter writes its lines when it ends
    return stop


def quiet_tensorflow_logs(verbose: bool, filter_fd: bool) -> Callable[[], None] | None:
    """Hide TensorFlow's start-up log lines for this process and the processes it starts (they
    inherit the environment and stderr), unless `verbose` or TF_CPP_MIN_LOG_LEVEL is set. With
    `filter_fd` (the program itself, not a call from Python) stderr also passes through
    `filter_stderr`. Returns the function that undoes the filter, or None."""
    if verbose:
        return None
    user_level = os.environ.get(TF_LOG_LEVEL)
    if user_level is None:
        os.environ[TF_LOG_LEVEL] = "1"
        min_level, drop_noise = 1, True
    else:
        try:
            min_level, drop_noise = int(user_level), False
        except ValueError:
            return None  # TensorFlow's own business
    return _start_stderr_filter(min_level, drop_noise) if filter_fd and min_level >= 1 else None


# Python warnings from the libraries that mean nothing to a user of the command line
# (message regex, category); --verbose shows them.
PYTHON_NOISE: tuple[tuple[str, type[Warning]], ...] = (
    # Keras, when a stage trains part of the model on purpose (TinyBERT's layer distillation
    # leaves the MLM head alone): "did you forget to provide a `loss` argument?"
    (r"Gradients do not exist for variables ", UserWarning),
)


def ignore_python_noise() -> None:
    """Hide the PYTHON_NOISE warnings in this process (the program's own, not a caller's)."""
    import warnings

    for message, category in PYTHON_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category)


def _add_command(subparsers, name: str) -> None:
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(f"tfcompact.commands.{module_name}")
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    module.add_arguments(parser)
    # also after the command name; SUPPRESS: not given here keeps what came before it
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help=VERBOSE_HELP)
    parser.set_defaults(_run=module.run)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(prog="tfcompact", description=doc.splitlines()[0],
                                     epilog=doc[doc.find("Exit status:"):],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"tfcompact {__version__}")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if name == only:
            _add_command(subparsers, name)
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def _after_error() -> None:
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
    sys.stdout.flush()


def _parse(argv: list[str]) -> tuple[argparse.ArgumentParser, argparse.Namespace | int]:
    """The parser and the parsed arguments, or the exit status argparse chose (--help,
    --version: 0; a usage error, already printed: 2)."""
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=command if command in COMMANDS else None)
    try:
        return parser, parser.parse_args(argv)
    except SystemExit as e:
        return parser, e.code if isinstance(e.code, int) else EXIT_USAGE


def _run_command(args: argparse.Namespace) -> int:
    try:
        return int(args._run(args) or EXIT_OK)
    except UserError as e:
        _after_error()
        message = " ".join(str(e).split())  # one line, whatever the message held
        print(f"tfcompact {args.command}: error: {message}", file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        _after_error()
        print(f"tfcompact {args.command}: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (e.g. `tfcompact presets | head`): not an error.
        sys.stderr.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run `tfcompact [--verbose] COMMAND ...` and return its exit status (module docstring).
    Called with no `argv` (the installed program) stderr is filtered; called from Python
    (tests, notebooks), the caller's stderr is left alone."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser, args = _parse(args_list)
    if isinstance(args, int):
        return args
    if getattr(args, "_run", None) is None:  # `tfcompact` or `tfcompact --verbose` alone
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if argv is None and not args.verbose:
        ignore_python_noise()
    stop_filter = quiet_tensorflow_logs(
        args.verbose, filter_fd=argv is None and args.command not in _WITHOUT_TENSORFLOW)
    try:
        return _run_command(args)
    finally:
        if stop_filter is not None:
            stop_filter()


if __name__ == "__main__":
    sys.exit(main())
