"""`tfcompact check-tflite`: run a TFLite export and its SavedModel on the same inputs.

Reports the max |difference| per output, the mean cosine similarity, for MLM exports the
agreement rate of the argmax predictions, and (with --benchmark N) the latency of both.
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tflite", required=True, help="model.tflite written by `tfcompact export --format tflite`")
    parser.add_argument("--savedmodel", required=True, help="the encoder SavedModel it was converted from")
    parser.add_argument("--num_batches", type=int, default=4, help="random input batches to compare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_threads", type=int, default=None,
                        help="threads for both runtimes (e.g. 1 for a phone-like latency figure)")
    parser.add_argument("--benchmark", type=int, default=0, help="timed runs per runtime (0: no timing)")
    parser.add_argument("--max_abs_diff", type=float, default=None,
                        help="exit 1 if any output differs by more than this")
    parser.add_argument("--min_agreement", type=float, default=None,
                        help="exit 1 if the mlm argmax agreement is below this")


def _check_arguments(args: argparse.Namespace) -> None:
    from tfcompact.errors import UserError

    for flag, value, low in (("--num_batches", args.num_batches, 1), ("--num_threads", args.num_threads, 1),
                             ("--benchmark", args.benchmark, 0)):
        if value is not None and value < low:
            raise UserError(f"{flag} {value}: expected at least {low}")
    if args.max_abs_diff is not None and not args.max_abs_diff >= 0:
        raise UserError(f"--max_abs_diff {args.max_abs_diff}: expected a number >= 0")
    if args.min_agreement is not None and not 0 <= args.min_agreement <= 1:
        raise UserError(f"--min_agreement {args.min_agreement}: expected a fraction in 0..1")


def run(args: argparse.Namespace) -> int:
    _check_arguments(args)
    import tensorflow as tf

    if args.num_threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(args.num_threads)
            tf.config.threading.set_inter_op_parallelism_threads(args.num_threads)
        except RuntimeError:
            # TensorFlow already started in this process (e.g. called from Python, not the
            # shell): its thread pools are fixed now; only TFLite gets --num_threads.
            print(f"check-tflite: warning: TensorFlow already initialised; the SavedModel runs "
                  f"with its existing threads, TFLite with {args.num_threads}", file=sys.stderr)
    from tfcompact.interop.tflite import check_tflite

    result = check_tflite(args.tflite, args.savedmodel, num_batches=args.num_batches, seed=args.seed,
                          num_threads=args.num_threads, benchmark_runs=args.benchmark)
    for line in result.lines():
        print(line)
    failed = False
    if args.max_abs_diff is not None and max(result.max_abs_diff.values()) > args.max_abs_diff:
        print(f"check-tflite: FAIL: max abs diff above {args.max_abs_diff}", file=sys.stderr)
        failed = True
    if (args.min_agreement is not None and result.argmax_agreement is not None
            and result.argmax_agreement < args.min_agreement):
        print(f"check-tflite: FAIL: argmax agreement below {args.min_agreement}", file=sys.stderr)
        failed = True
    return 1 if failed else 0
