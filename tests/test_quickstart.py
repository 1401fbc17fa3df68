"""`tfcompact quickstart`, the README's main job, shortened: packaged corpus -> TFRecords ->
tiny ALBERT on CPU -> TF1 checkpoint + SavedModel exports, with progress and a curve."""
import json
import os
import subprocess
import sys


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, timeout=600):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, "-m", "tfcompact.cli", "quickstart", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_quickstart_end_to_end(tmp_path):
    out = tmp_path / "qs"
    r = _run("--output_dir", str(out), "--steps", "20", "--corpus_bytes", "300000",
             "--num_workers", "1", "--set", "train.steps_per_loop=5",
             "--set", "optimizer.warmup_steps=5", "--set", "train.eval_every=10")
    assert r.returncode == 0, r.stderr[-3000:]
    for step in ("[1/4] corpus", "[2/4] create-data", "[3/4] pretrain", "[4/4] export"):
        assert step in r.stdout
    assert "step 20/20 | loss" in r.stdout and "mlm_accuracy" in r.stdout and "ETA" in r.stdout
    assert "MLM accuracy curve" in r.stdout
    # data: converted shards with a manifest matching the smoke config
    manifest = json.load(open(out / "data" / "train" / "manifest.json"))
    assert manifest["max_seq_length"] == 64 and manifest["pair_task"] == "sop"
    # model directory: config, vocab, checkpoint, TensorBoard events, summary
    summary = json.load(open(out / "model" / "summary.json"))
    assert summary["status"] == "completed" and summary["step"] == 20
    history = summary["history"]
    assert [h["step"] for h in history] == [5, 10, 15, 20]
    assert history[-1]["loss"] < history[0]["loss"]
    assert [e["step"] for e in summary["eval_history"]] == [10, 20]
    assert summary["eval"]["step"] == 20 and 0.0 <= summary["eval"]["mlm_accuracy"] <= 1.0
    assert (out / "model" / "tfcompact.json").exists() and (out / "model" / "vocab.txt").exists()
    assert os.listdir(out / "model" / "tensorboard" / "train")
    # exports
    assert (out / "export" / "tf1" / "model.ckpt.index").exists()
    assert (out / "export" / "tf1" / "albert_config.json").exists()
    assert (out / "export" / "savedmodel" / "encoder" / "saved_model.pb").exists()


def test_quickstart_rejects_bad_arguments(tmp_path):
    r = _run("--output_dir", str(tmp_path / "x"), "--steps", "0")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        "tfcompact quickstart: error: --steps 0: expected a positive number of steps")
