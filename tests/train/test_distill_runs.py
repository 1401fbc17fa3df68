"""Pretraining by distillation end to end on tiny models: the teacher stays frozen, the
projection lives only in the run's checkpoints (never in an export), a killed run resumes bit
for bit (projection included), MobileBERT's students start from the teacher's embeddings and
follow the layer-wise learning rates of progressive transfer, and bad set-ups fail in one line.

Teacher: a BERT of 2 layers, hidden 32, saved as a model directory (random weights: a frozen
teacher does not need to be good for these properties). Students: TinyBERT hidden 16 (through
`fit_dense` 16 -> 32), MobileBERT of the teacher's width, heads and depth."""
from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from tests.train.train_helpers import SPECIAL, VOCAB_SIZE, make_masked_data, tiny_experiment
from tfcompact import modeldir
from tfcompact.cli import main
from tfcompact.configs import tiny_config
from tfcompact.errors import ConfigError
from tfcompact.models import build_pretraining_model
from tfcompact.train.experiment import (experiment_from_dict, read_yaml_with_base,
                                        tpu_configs_dir)
from tfcompact.train.plan import make_plan
from tfcompact.train.pretrain import (RunOptions, build_run, check_before_building,
                                      precision_and_workdir, restore, run_pretraining,
                                      train_loops)
from tfcompact.train.strategy import resolve_strategy

TEACHER = dict(vocab_size=VOCAB_SIZE, num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
               intermediate_size=64, max_position_embeddings=64)


def _quiet(_line: str) -> None:
    pass


def _write_vocab(path: str, tokens: list[str]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in tokens))
    return path


def _teacher_dir(path: str, vocab: str, seed: int) -> str:
    """A BERT model directory as pretraining leaves it (random weights, one checkpoint)."""
    config = tiny_config("bert", **TEACHER)
    keras.utils.set_random_seed(seed)
    model = build_pretraining_model("bert", config)
    modeldir.write_model_dir_config(path, "bert", config, vocab_path=vocab)
    tf.train.Checkpoint(model=model).save(os.path.join(path, modeldir.CHECKPOINT_DIR, "ckpt"))
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill_runs")
    data = make_masked_data(str(root / "data"), num_instances=48, num_shards=1)
    names = sorted(SPECIAL, key=SPECIAL.get)
    vocab = _write_vocab(str(root / "vocab.txt"),
                         names + [f"w{i}" for i in range(VOCAB_SIZE - len(names))])
    teacher_json = str(root / "teacher_bert.json")
    tiny_config("bert", **TEACHER).to_json_file(teacher_json)
    teacher = _teacher_dir(str(root / "teacher"), vocab, seed=3)
    return {"root": root, "data": data, "vocab": vocab, "teacher_json": teacher_json,
            "teacher": teacher}


def _recipe(name: str) -> dict:
    raw, _ = read_yaml_with_base(tpu_configs_dir() / "distill" / f"{name}.yaml")
    return dict(raw["distillation"])


def _experiment(ws, model_dir, arch: str, recipe: str, teacher: str | None = None,
                distillation: dict | None = None, **train) -> dict:
    raw = tiny_experiment(ws["data"], str(model_dir), arch=arch, **train)
    if arch == "tinybert":
        # No student dimension is 32 (the teacher's width, fit_dense's output): 16 and 48.
        raw["model"]["overrides"].update(hidden_size=16, intermediate_size=48)
    raw["data"]["vocab"] = ws["vocab"]
    raw["distillation"] = {**_recipe(recipe), **(distillation or {}),
                           "teacher": {"arch": "bert", "config_file": ws["teacher_json"],
                                       "checkpoint": teacher or ws["teacher"]}}
    return raw


def _drive(exp, max_loops: int | None = None):
    """`run_pretraining`'s steps, keeping the run: (run, student weights after restore,
    progress)."""
    options = RunOptions(log=_quiet, max_loops=max_loops)
    info = resolve_strategy(None, 0)
    plan = make_plan(exp)
    check_before_building(plan, info, options)
    with precision_and_workdir(exp.train.precision, True) as write_dir:
        keras.utils.set_random_seed(exp.train.seed)
        run = build_run(plan, info, _quiet, write_dir)
        start = restore(run)
        at_start = {v.path: v.numpy().copy() for v in run.model.weights}
        return run, at_start, train_loops(run, options, start)


def _checkpoint(prefix: str) -> dict:
    reader = tf.train.load_checkpoint(prefix)
    return {n: reader.get_tensor(n) for n, _ in tf.train.list_variables(prefix)
            if n != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def _latest(model_dir) -> str:
    return tf.train.latest_checkpoint(os.path.join(str(model_dir), modeldir.CHECKPOINT_DIR))


@pytest.fixture(scope="module")
def tinybert_run(ws):
    """TinyBERT general distillation, 4 steps without interruption."""
    model_dir = ws["root"] / "tinybert_whole"
    exp = experiment_from_dict(_experiment(ws, model_dir, "tinybert", "tinybert_general",
                                           total_steps=4, steps_per_loop=2, checkpoint_every=2))
    run, at_start, progress = _drive(exp)
    return {"dir": model_dir, "run": run, "at_start": at_start, "progress": progress}


def test_teacher_stays_frozen_and_the_student_learns(ws, tinybert_run):
    run = tinybert_run["run"]
    assert tinybert_run["progress"].status == "completed" and tinybert_run["progress"].step == 4
    saved = modeldir.load_pretraining_model(ws["teacher"])
    assert len(saved.weights) == len(run.teacher.weights) > 0
    for after, before in zip(run.teacher.weights, saved.weights):
        assert after.path.endswith(before.path)
        np.testing.assert_array_equal(after.numpy(), before.numpy(), err_msg=after.path)
    assert not run.teacher.trainable_weights
    changed = {v.path for v in run.model.weights
               if not np.array_equal(v.numpy(), tinybert_run["at_start"][v.path])}
    for name in ("bert/embeddings/word_embeddings",
                 "bert/encoder/layer_0/attention/self/query/kernel",
                 "bert/encoder/layer_1/output/dense/kernel"):
        assert name in changed, name


def test_projection_is_in_the_run_checkpoint_only(ws, tinybert_run, tmp_path):
    names = set(_checkpoint(_latest(tinybert_run["dir"])))
    projection = [n for n in names if n.startswith("distillation/") and "fit_dense" in n]
    assert any("kernel" in n for n in projection) and any("bias" in n for n in projection)
    assert not [n for n in names if "teacher" in n]
    tf1 = tmp_path / "tf1"
    assert main(["export", "--model_dir", str(tinybert_run["dir"]), "--format", "tf1",
                 "--output", str(tf1)]) == 0
    tf1_variables = tf.train.list_variables(tf.train.latest_checkpoint(str(tf1)))
    exported = [n for n, _ in tf1_variables]
    assert "bert/encoder/layer_0/attention/self/query/kernel" in exported
    assert not [n for n in exported if "fit_dense" in n or "teacher" in n or "distillation" in n]
    tf1_shapes = [tuple(s) for _, s in tf1_variables]
    assert (48, 16) in tf1_shapes and not [s for s in tf1_shapes if 32 in s]
    saved = tmp_path / "savedmodel"
    assert main(["export", "--model_dir", str(tinybert_run["dir"]), "--format", "savedmodel",
                 "--output", str(saved), "--seq_length", "32"]) == 0
    shapes = [tuple(s) for _, s in tf.train.list_variables(str(saved / "encoder" / "variables" /
                                                              "variables"))]
    assert (48, 16) in shapes  # the student's FFN output kernel
    assert not [s for s in shapes if 32 in s]  # fit_dense (16, 32) and the teacher's variables
    graph = (saved / "encoder" / "saved_model.pb").read_bytes()
    assert b"fit_dense" not in graph and b"teacher" not in graph


def test_kill_and_resume_equals_the_whole_run_projection_included(ws, tinybert_run):
    model_dir = ws["root"] / "tinybert_killed"
    exp = experiment_from_dict(_experiment(ws, model_dir, "tinybert", "tinybert_general",
                                           total_steps=4, steps_per_loop=2, checkpoint_every=2))
    stopped = run_pretraining(exp, RunOptions(log=_quiet, max_loops=1))
    assert stopped["status"] == "interrupted" and stopped["step"] == 2
    resumed = run_pretraining(exp, RunOptions(log=_quiet))
    assert resumed["start_step"] == 2 and resumed["step"] == 4
    whole, cut = _checkpoint(_latest(tinybert_run["dir"])), _checkpoint(_latest(model_dir))
    assert sorted(whole) == sorted(cut)
    assert [n for n in whole if n.startswith("distillation/")]
    for name, value in whole.items():
        np.testing.assert_array_equal(cut[name], value, err_msg=name)


@pytest.fixture(scope="module")
def mobilebert_run(ws):
    """MobileBERT PKT with LAMB, layer-wise rates and copy_from_teacher: 2 of 4 steps, i.e. the
    whole of phase 0 (layer 0) with 2 layers."""
    model_dir = ws["root"] / "mobilebert_pkt"
    raw = _experiment(ws, model_dir, "mobilebert", "mobilebert_pkt",
                      distillation={"layerwise_lr": "progressive"},
                      total_steps=4, steps_per_loop=2, checkpoint_every=2)
    raw["optimizer"].update(name="lamb", weight_decay_rate=0.01)
    raw["model"]["overrides"].update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    exp = experiment_from_dict(raw)
    assert exp.distillation.copy_from_teacher  # the recipe's
    run, at_start, progress = _drive(exp, max_loops=1)
    assert progress.status == "interrupted" and progress.step == 2
    return {"run": run, "at_start": at_start}


def test_mobilebert_starts_from_the_teachers_embeddings_not_its_encoder(ws, mobilebert_run):
    at_start = mobilebert_run["at_start"]
    teacher = {v.path.removeprefix("teacher/"): v.numpy()
               for v in modeldir.load_pretraining_model(ws["teacher"]).weights}
    for name in ("bert/embeddings/word_embeddings", "bert/embeddings/position_embeddings",
                 "cls/predictions/transform/dense/kernel"):
        np.testing.assert_array_equal(at_start[name], teacher[name], err_msg=name)
    shared = [n for n in at_start if "/encoder/" in n and n in teacher
              and teacher[n].shape == at_start[n].shape]
    assert shared  # same names and shapes exist in the encoder, and were left alone
    for name in shared:
        if name.endswith("kernel"):
            assert not np.array_equal(at_start[name], teacher[name]), name


def test_progressive_layerwise_rates_reach_the_run(mobilebert_run):
    """Phase 0 of 2: only encoder layer 0 moves (3 x background rate); layer 1 (0 before its
    phase) and the embeddings and heads (always 0) keep their start values, although weight
    decay and the embeddings' gradient would move them under a plain LAMB."""
    run, at_start = mobilebert_run["run"], mobilebert_run["at_start"]
    after = {v.path: v.numpy() for v in run.model.weights}
    layer_0 = [n for n in after if "/encoder/layer_0/" in n and n.endswith("kernel")]
    assert layer_0
    moved = [n for n in layer_0 if not np.array_equal(after[n], at_start[n])]
    assert moved and "bert/encoder/layer_0/attention/self/query/kernel" in moved
    for name, value in after.items():
        if "/encoder/layer_0/" not in name:
            np.testing.assert_array_equal(value, at_start[name], err_msg=name)


def test_teacher_vocabulary_differs_one_line_before_building(ws, tmp_path):
    names = sorted(SPECIAL, key=SPECIAL.get)
    other = _write_vocab(str(tmp_path / "other_vocab.txt"),
                         names + [f"v{i}" for i in range(VOCAB_SIZE - len(names))])
    teacher = _teacher_dir(str(tmp_path / "teacher_other_vocab"), other, seed=3)
    model_dir = tmp_path / "student"
    exp = experiment_from_dict(_experiment(ws, model_dir, "tinybert", "tinybert_general",
                                           teacher=teacher), source="exp.yaml")
    with pytest.raises(ConfigError) as e:
        run_pretraining(exp, RunOptions(log=_quiet))
    message = str(e.value)
    assert "\n" not in message and message.startswith("exp.yaml: ")
    assert "teacher_other_vocab" in message and "vocab" in message
    assert not os.path.exists(model_dir / modeldir.CHECKPOINT_DIR)


def test_old_distillation_kind_is_refused_in_one_line(ws, tmp_path, capsys):
    raw = _experiment(ws, tmp_path / "m", "tinybert", "tinybert_general")
    raw["distillation"]["kind"] = "tinybert_general"
    with pytest.raises(ConfigError, match=r"^exp.yaml: distillation.kind is no longer read"):
        experiment_from_dict(raw, source="exp.yaml")
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert main(["distill", "--config", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "distillation.kind" in err[0]
