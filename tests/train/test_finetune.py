"""The fine-tuning driver end to end on tiny models and task files written here: it learns
(a tiny set to 100 %), resumes bit-exactly after a kill, keeps the best dev checkpoint, starts
from a pretraining model directory's weights, runs several seeds, and predict/evaluate agree."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.train import task_helpers as th
from tfcompact import modeldir
from tfcompact.errors import ConfigError
from tfcompact.models import get_backbone
from tfcompact.tasks import BEST_DIR, read_task_spec
from tfcompact.train.finetune import Backbone, build_backbone_model, run_finetuning, run_seeds
from tfcompact.train.pretrain import RunOptions
from tfcompact.train.task_experiment import (finetune_experiment_from_dict,
                                             list_task_config_files, load_finetune_experiment)


def _quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    vocab = th.write_vocab(str(root / "vocab.txt"))
    pretrained = th.make_pretrained_dir(str(root / "pretrained"), vocab)
    files = {
        "train": th.write_tsv(str(root / "train.tsv"), th.sentiment_rows(64, 1)),
        "dev": th.write_tsv(str(root / "dev.tsv"), th.sentiment_rows(32, 2)),
        "test": th.write_tsv(str(root / "test.tsv"), th.sentiment_rows(32, 3)),
    }
    return {"root": root, "vocab": vocab, "pretrained": pretrained, **files}


def _classification(ws, model_dir, **train) -> dict:
    return {
        "name": "tiny_sentiment",
        "task": {"kind": "classification", "task_format": "tsv", "train": ws["train"],
                 "dev": ws["dev"], "test": ws["test"], "text_fields": ["text_a"],
                 "label_field": "label", "max_seq_length": 32},
        "model": {"init": ws["pretrained"]},
        "optimizer": {"learning_rate": 1e-3, "warmup_ratio": 0.1},
        "train": {"model_dir": str(model_dir), "batch_size": 16, "epochs": 3,
                  "steps_per_loop": 4, "seed": 7, **train},
    }


def test_overfits_a_tiny_set_to_100_percent(workspace, tmp_path):
    raw = _classification(workspace, tmp_path / "m", epochs=25)
    raw["task"]["dev"] = workspace["train"]  # dev = train: memorisation must reach 100 %
    exp = finetune_experiment_from_dict(raw)
    summary = run_finetuning(exp, RunOptions(log=_quiet))
    assert summary["status"] == "completed"
    assert summary["best"]["accuracy"] == 1.0
    spec = read_task_spec(str(tmp_path / "m"))
    assert spec.labels == ["0", "1"] and spec.kind == "classification"
    assert tf.train.latest_checkpoint(str(tmp_path / "m" / BEST_DIR))


def _weights(model_dir) -> list[np.ndarray]:
    model, _, _ = modeldir.load_task_model(str(model_dir))
    return [v.numpy() for v in model.weights]


def test_resume_after_a_kill_equals_an_uninterrupted_run(workspace, tmp_path):
    whole = finetune_experiment_from_dict(_classification(workspace, tmp_path / "whole"))
    a = run_finetuning(whole, RunOptions(log=_quiet))
    cut = finetune_experiment_from_dict(_classification(workspace, tmp_path / "cut",
                                                        checkpoint_every=4))
    stopped = run_finetuning(cut, RunOptions(log=_quiet, max_loops=2))
    assert stopped["status"] == "interrupted" and stopped["step"] < a["step"]
    b = run_finetuning(cut, RunOptions(log=_quiet))
    assert b["start_step"] > 0 and b["step"] == a["step"]
    assert [e["accuracy"] for e in b["dev_history"]] == [e["accuracy"] for e in a["dev_history"]]
    assert b["test"] == a["test"]
    ckpt_a = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "whole" / "checkpoints")))
    ckpt_b = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "cut" / "checkpoints")))
    names = [n for n in ckpt_a.get_variable_to_shape_map() if n != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert len(names) > 20 and sorted(names) == sorted(
        n for n in ckpt_b.get_variable_to_shape_map() if n != "_CHECKPOINTABLE_OBJECT_GRAPH")
    for n in names:
        np.testing.assert_array_equal(ckpt_a.get_tensor(n), ckpt_b.get_tensor(n), err_msg=n)


def test_backbone_starts_from_the_pretraining_weights(workspace):
    pretrained = modeldir.load_pretraining_model(workspace["pretrained"])
    info = modeldir.read_model_dir(workspace["pretrained"])
    built = build_backbone_model(Backbone(info.arch, info.config, None, workspace["vocab"],
                                          workspace["pretrained"]))
    expected = {v.path: v.numpy() for v in get_backbone(pretrained).weights}
    got = {v.path: v.numpy() for v in built.weights}
    assert expected.keys() == got.keys()
    for k in expected:
        np.testing.assert_array_equal(expected[k], got[k], err_msg=k)
    random = build_backbone_model(Backbone(info.arch, info.config, None, workspace["vocab"], None))
    differs = [k for k, v in ((v.path, v.numpy()) for v in random.weights)
               if v.size > 1 and not np.array_equal(v, expected[k])]
    assert differs, "a random backbone must not carry the pretrained weights"


def test_several_seeds_report_max_mean_std(workspace, tmp_path):
    exp = finetune_experiment_from_dict(_classification(workspace, tmp_path / "seeds", epochs=1))
    result = run_seeds(exp, 2, RunOptions(log=_quiet))
    assert result["seeds"] == [7, 8]
    stored = json.loads((tmp_path / "seeds" / "seeds.json").read_text())
    accs = [r["best"]["accuracy"] for r in stored["runs"]]
    dev = stored["dev"]["accuracy"]
    assert dev["max"] == max(accs) and dev["mean"] == pytest.approx(np.mean(accs))
    assert dev["std"] == pytest.approx(np.std(accs, ddof=1))
    assert os.path.isdir(tmp_path / "seeds" / "seed_8" / BEST_DIR)


def test_predict_and_evaluate_commands_agree_with_the_run(workspace, tmp_path):
    from tfcompact import cli

    model_dir = tmp_path / "m"
    summary = run_finetuning(finetune_experiment_from_dict(
        _classification(workspace, model_dir)), RunOptions(log=_quiet))
    out = tmp_path / "pred.tsv"
    assert cli.main(["predict", "--model_dir", str(model_dir), "--input", workspace["test"],
                     "--output", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    gold = [line.split("\t")[0] for line in open(workspace["test"], encoding="utf-8").read().splitlines()[1:]]
    predicted = [line.split("\t")[0] for line in lines[1:]]
    assert len(predicted) == len(gold)
    accuracy = float(np.mean([p == g for p, g in zip(predicted, gold)]))
    assert accuracy == pytest.approx(summary["test"]["accuracy"])
    # the written predictions are themselves a task file: evaluating them is 100 % consistent
    assert (tmp_path / "m" / "test_predictions.tsv").read_text(encoding="utf-8") == \
        out.read_text(encoding="utf-8")


@pytest.mark.parametrize("kind", ["tagging", "span"])
def test_tagging_and_span_tasks_train_and_score(workspace, tmp_path, kind):
    root = workspace["root"]
    if kind == "tagging":
        train = th.write_conll(str(tmp_path / "train.txt"), th.ner_sentences(48, 4))
        dev = th.write_conll(str(tmp_path / "dev.txt"), th.ner_sentences(16, 5))
        task = {"kind": "tagging", "task_format": "conll", "metric": "f1"}
    else:
        train = th.write_squad(str(tmp_path / "train.json"), 48, 4)
        dev = th.write_squad(str(tmp_path / "dev.json"), 16, 5)
        task = {"kind": "span", "task_format": "squad", "metric": "f1", "doc_stride": 8,
                "max_query_length": 8}
    raw = {"task": {**task, "train": train, "dev": dev, "max_seq_length": 24},
           "model": {"init": str(root / "pretrained")},
           "optimizer": {"learning_rate": 3e-3},
           "train": {"model_dir": str(tmp_path / "m"), "batch_size": 16, "epochs": 12,
                     "steps_per_loop": 10, "eval_every": 18}}
    summary = run_finetuning(finetune_experiment_from_dict(raw), RunOptions(log=_quiet))
    history = [e["f1"] for e in summary["dev_history"]]
    assert len(history) >= 2
    assert max(history) > 0.5, history  # the entities / answers are learnable by construction


def test_early_stopping_stops_after_patience(workspace, tmp_path):
    raw = _classification(workspace, tmp_path / "m", epochs=40, early_stopping_patience=2,
                          eval_every=2)
    raw["optimizer"]["learning_rate"] = 1e-9  # nothing improves after the first evaluation
    summary = run_finetuning(finetune_experiment_from_dict(raw), RunOptions(log=_quiet))
    assert summary["status"] == "early_stopped"
    assert len(summary["dev_history"]) == 3
    assert summary["best"]["step"] == 2


def test_config_errors_name_the_key(workspace, tmp_path):
    raw = _classification(workspace, tmp_path / "m")
    raw["task"]["kind"] = "regression"
    with pytest.raises(ConfigError, match="task.kind"):
        finetune_experiment_from_dict(raw)
    raw = _classification(workspace, tmp_path / "m")
    raw["model"] = {"preset": "albert_tiny_zh"}
    with pytest.raises(ConfigError, match="model.vocab"):
        finetune_experiment_from_dict(raw)
    raw = _classification(workspace, tmp_path / "m")
    raw["task"]["metric"] = "f1"
    with pytest.raises(ConfigError, match="task.metric"):
        finetune_experiment_from_dict(raw)
    bad = tmp_path / "bad.yaml"
    bad.write_text("task:\n  kind: classification\n  train: x.tsv\n  max_seq_lenght: 64\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:4.*max_seq_lenght.*max_seq_length"):
        load_finetune_experiment(str(bad))


def test_every_shipped_task_config_loads():
    files = list_task_config_files()
    assert {f.stem for f in files} >= {"lcqmc", "chnsenticorp", "xnli", "cmrc2018", "drcd",
                                       "peoples_daily_ner", "finetune_sentiment_cpu"}
    for f in files:
        exp = load_finetune_experiment(str(f))
        assert exp.task.metric
    mrc = load_finetune_experiment("cmrc2018")
    assert (mrc.optimizer.learning_rate, mrc.train.epochs, mrc.train.batch_size,
            mrc.task.max_seq_length) == (3e-5, 2, 32, 512)
    small = load_finetune_experiment("electra_small_lcqmc")
    assert (small.optimizer.learning_rate, small.optimizer.layerwise_lr_decay) == (3e-4, 0.8)


def test_two_cpu_replicas_train_and_score_every_dev_example_in_order(workspace, tmp_path):
    """Under MirroredStrategy (2 logical CPUs, its own process: devices are fixed at TF start)
    the run trains, and its dev scores equal a one-replica `evaluate` of its best checkpoint:
    the distributed prediction pass returns every example once, in order."""
    import subprocess
    import sys

    import yaml

    raw = _classification(workspace, tmp_path / "m", epochs=2)
    config = tmp_path / "two.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-m", "tfcompact.cli", "finetune", "--config",
                           str(config), "--cpu_replicas", "2"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.load(open(tmp_path / "m" / "summary.json"))
    assert summary["replicas"] == 2
    from tfcompact.train.task_predict import evaluate_file, load_for_prediction

    model, spec, tokenizer = load_for_prediction(str(tmp_path / "m"))
    scores = evaluate_file(model, spec, tokenizer, workspace["dev"], batch_size=8)
    assert scores["accuracy"] == pytest.approx(summary["best"]["accuracy"])


def test_task_json_says_when_the_examples_are_pairs(workspace, tmp_path):
    """A pair file whose columns the reader finds itself (text_fields empty) is recorded as a
    pair task, so exports serve two texts."""
    from tfcompact.text.tokenizer import FullTokenizer
    from tfcompact.train.finetune import load_task_data

    pair = tmp_path / "pair.tsv"
    pair.write_text("text_a\ttext_b\tlabel\n好的\t好\t1\n差的\t好\t0\n", encoding="utf-8")
    raw = _classification(workspace, tmp_path / "m")
    raw["task"].update(train=str(pair), dev=None, test=None, text_fields=[], label_field=None)
    tok = FullTokenizer(workspace["vocab"])
    assert load_task_data(finetune_experiment_from_dict(raw), tok, _quiet).spec.text_pair
    raw["task"].update(train=workspace["train"])
    assert not load_task_data(finetune_experiment_from_dict(raw), tok, _quiet).spec.text_pair


def test_backbone_from_an_original_config_file(workspace, tmp_path):
    """model.config_file + model.arch (an original-format JSON) with model.vocab: a randomly
    initialised backbone of exactly that config, recorded in the model directory."""
    info = modeldir.read_model_dir(workspace["pretrained"])
    config_json = tmp_path / "albert_config.json"
    config_json.write_text(json.dumps(info.config.to_dict()), encoding="utf-8")
    raw = _classification(workspace, tmp_path / "m", epochs=1)
    raw["model"] = {"arch": "albert", "config_file": str(config_json), "vocab": workspace["vocab"]}
    summary = run_finetuning(finetune_experiment_from_dict(raw), RunOptions(log=_quiet))
    assert summary["init"] is None and summary["arch"] == "albert"
    written = modeldir.read_model_dir(str(tmp_path / "m"))
    assert written.config.to_dict() == info.config.to_dict()
