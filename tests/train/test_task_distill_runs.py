"""TinyBERT task distillation end to end through `tfcompact distill`: stage 1 (intermediate
layers, through fit_dense) then stage 2 (predictions, from stage 1's model directory) against a
fine-tuned teacher, on the tiny sentiment task; the teacher's directory is left untouched, the
students' exports hold no projection, stage 2 brings the student's predictions towards the
teacher's, and wrong teachers or starts fail in one line before anything is built.

Teacher: a BERT of 2 layers, hidden 32, fine-tuned here for a few steps. Student: a TinyBERT of
2 layers, hidden 16 (no dimension 32, so a teacher-sized variable cannot hide in its files)."""
from __future__ import annotations

import hashlib
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from tests.train import task_helpers as th
from tfcompact import modeldir
from tfcompact.cli import main
from tfcompact.configs import tiny_config
from tfcompact.errors import ConfigError
from tfcompact.models import build_pretraining_model
from tfcompact.tasks import BEST_DIR
from tfcompact.train.experiment import tpu_configs_dir
from tfcompact.train.finetune import run_finetuning
from tfcompact.train.pretrain import RunOptions
from tfcompact.train.task_experiment import finetune_experiment_from_dict


def _quiet(_line: str) -> None:
    pass


def _student_dir(path: str, vocab: str) -> str:
    """A narrow TinyBERT model directory as general distillation leaves it (random weights)."""
    config = tiny_config("tinybert", vocab_size=sum(1 for _ in open(vocab, encoding="utf-8")),
                         num_hidden_layers=2, hidden_size=16, num_attention_heads=2,
                         intermediate_size=48)
    keras.utils.set_random_seed(1)
    model = build_pretraining_model("tinybert", config)
    modeldir.write_model_dir_config(path, "tinybert", config, vocab_path=vocab)
    tf.train.Checkpoint(model=model).save(os.path.join(path, modeldir.CHECKPOINT_DIR, "ckpt"))
    return path


def _task(train: str, dev: str) -> dict:
    return {"kind": "classification", "task_format": "tsv", "train": train, "dev": dev,
            "text_fields": ["text_a"], "label_field": "label", "max_seq_length": 32}


def _tree_digest(path: str) -> str:
    h = hashlib.sha256()
    for top, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(top, name)
            h.update(os.path.relpath(full, path).encode())
            with open(full, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("task_distill")
    vocab = th.write_vocab(str(root / "vocab.txt"))
    train = th.write_tsv(str(root / "train.tsv"), th.sentiment_rows(64, 1))
    dev = th.write_tsv(str(root / "dev.tsv"), th.sentiment_rows(32, 2))
    teacher = str(root / "teacher")
    raw = {"name": "teacher", "task": _task(train, dev),
           "model": {"init": th.make_pretrained_dir(str(root / "bert"), vocab, arch="bert")},
           "optimizer": {"learning_rate": 3e-3, "warmup_ratio": 0.1},
           "train": {"model_dir": teacher, "batch_size": 16, "epochs": 10, "steps_per_loop": 20,
                     "seed": 7}}
    summary = run_finetuning(finetune_experiment_from_dict(raw), RunOptions(log=_quiet))
    # a teacher that knows the task (好 / 差): its predictions are worth distilling
    assert summary["best"]["accuracy"] >= 0.8  # dev majority: 20 of 32
    return {"root": root, "vocab": vocab, "train": train, "dev": dev, "teacher": teacher,
            "student": _student_dir(str(root / "student"), vocab)}


def _stage_yaml(ws, name: str, recipe: str, model: dict, epochs: int, **distillation) -> str:
    raw = {"base": [str(tpu_configs_dir() / "distill" / f"{recipe}.yaml")],
           "name": name, "task": _task(ws["train"], ws["dev"]), "model": model,
           "optimizer": {"learning_rate": 3e-3, "warmup_ratio": 0.0},
           "train": {"model_dir": str(ws["root"] / name), "batch_size": 16, "epochs": epochs,
                     "steps_per_loop": 4, "seed": 7},
           "distillation": distillation}
    path = ws["root"] / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def stages(ws):
    """Stage 1 (teacher in the file), then stage 2 (teacher and start given on the command line)."""
    before = _tree_digest(ws["teacher"])
    one = _stage_yaml(ws, "stage1", "tinybert_task_intermediate", {"init": ws["student"]},
                      epochs=2, teacher=ws["teacher"])
    assert main(["distill", "--config", one]) == 0
    two = _stage_yaml(ws, "stage2", "tinybert_task_prediction", {"init": ws["student"]},
                      epochs=8, teacher="/nowhere")
    assert main(["distill", "--config", two, "--teacher", ws["teacher"],
                 "--init", str(ws["root"] / "stage1")]) == 0
    return {"teacher_before": before, "one": str(ws["root"] / "stage1"),
            "two": str(ws["root"] / "stage2")}


def _summary(model_dir: str) -> dict:
    with open(os.path.join(model_dir, "summary.json"), encoding="utf-8") as f:
        return json.load(f)


def _no_training_only_names(names) -> list:
    return [n for n in names if "fit_dense" in n or "teacher" in n or n.startswith("distillation")]


def test_both_stages_run_and_leave_plain_task_models(ws, stages):
    assert _tree_digest(ws["teacher"]) == stages["teacher_before"]
    one, two = _summary(stages["one"]), _summary(stages["two"])
    assert one["status"] == two["status"] == "completed"
    assert two["init"] == stages["one"]  # stage 2 started from stage 1's directory
    run_ckpt = modeldir.latest_checkpoint(stages["one"])
    assert [n for n, _ in tf.train.list_variables(run_ckpt)
            if n.startswith("distillation/") and "fit_dense" in n]
    for stage in (stages["one"], stages["two"]):
        best = tf.train.latest_checkpoint(os.path.join(stage, BEST_DIR))
        assert best
        names = [n for n, _ in tf.train.list_variables(best)]
        assert not _no_training_only_names(names)
        assert not [s for _, s in tf.train.list_variables(best) if 32 in s]
    model = modeldir.load_task_model(stages["two"])[0]
    assert not _no_training_only_names([v.path for v in model.weights])
    assert not [v for v in model.weights if 32 in tuple(v.shape)]


def test_stage_two_brings_the_student_to_the_teacher(stages):
    history = _summary(stages["two"])["history"]
    assert len(history) >= 3
    # soft cross-entropy against the teacher (the recipe's match is named `prediction`)
    losses = [h["prediction_loss"] for h in history]
    # falls by more than 5 % over the stage and ends at (about) its lowest: the student keeps
    # moving towards the teacher instead of wandering (the size of the fall depends on the
    # dropout draws; the direction must not)
    assert losses[-1] < 0.95 * losses[0], losses
    assert losses[-1] <= min(losses) + 2e-3, losses


def _predicted(model_dir: str, data: str, out) -> list[str]:
    assert main(["predict", "--model_dir", model_dir, "--input", data, "--output", str(out)]) == 0
    return [line.split("\t")[0] for line in out.read_text(encoding="utf-8").splitlines()[1:]]


def test_stage_two_agrees_with_the_teacher_on_dev(ws, stages, tmp_path):
    """Stage 1 trains no head (no loss reaches it); after stage 2 the student's dev labels
    agree with the teacher's more often than stage 1's do."""
    teacher = _predicted(ws["teacher"], ws["dev"], tmp_path / "teacher.tsv")
    before = _predicted(stages["one"], ws["dev"], tmp_path / "one.tsv")
    after = _predicted(stages["two"], ws["dev"], tmp_path / "two.tsv")
    assert len(teacher) == len(before) == len(after) == 32

    def agreement(labels):
        return sum(a == b for a, b in zip(labels, teacher)) / len(teacher)

    assert agreement(after) > agreement(before)
    assert agreement(after) >= 0.75


def _distill_raw(ws, tmp_path, **changes) -> dict:
    raw = {"name": "bad", "task": _task(ws["train"], ws["dev"]),
           "model": {"init": ws["student"]},
           "train": {"model_dir": str(tmp_path / "m"), "batch_size": 16, "epochs": 1},
           "distillation": {"teacher": ws["teacher"], "matches": [
               {"feature": "logits", "loss": "soft_ce", "name": "prediction"}]}}
    raw.update(changes)
    return raw


def _one_line_error(raw) -> str:
    with pytest.raises(ConfigError) as e:
        run_finetuning(finetune_experiment_from_dict(raw, source="exp.yaml"),
                       RunOptions(log=_quiet))
    message = str(e.value)
    assert "\n" not in message and message.startswith("exp.yaml: ")
    return message


def test_teacher_must_be_a_fine_tuned_directory(ws, tmp_path):
    raw = _distill_raw(ws, tmp_path)
    raw["distillation"]["teacher"] = ws["student"]
    message = _one_line_error(raw)
    assert f"distillation.teacher {ws['student']} is not a fine-tuned" in message
    assert not os.path.exists(tmp_path / "m" / modeldir.CHECKPOINT_DIR)


def test_teacher_with_other_labels_is_refused(ws, tmp_path):
    rows = [("pos" if label == "1" else "neg", text) for label, text in th.sentiment_rows(32, 5)]
    other = th.write_tsv(str(tmp_path / "train.tsv"), rows)
    raw = _distill_raw(ws, tmp_path, task=_task(other, other))
    message = _one_line_error(raw)
    assert "distillation.teacher" in message and "labels" in message
    assert "'neg'" in message and "'0'" in message


def test_fine_tuned_init_without_distillation_is_still_refused(ws, tmp_path):
    raw = _distill_raw(ws, tmp_path, model={"init": ws["teacher"]})
    del raw["distillation"]
    message = _one_line_error(raw)
    assert f"model.init {ws['teacher']} is a fine-tuned model directory" in message


def _weights(model_dir: str) -> dict:
    prefix = tf.train.latest_checkpoint(os.path.join(model_dir, modeldir.CHECKPOINT_DIR))
    reader = tf.train.load_checkpoint(prefix)
    return {n: reader.get_tensor(n) for n, _ in tf.train.list_variables(prefix)
            if n.startswith("model/")}


def test_precomputed_teacher_logits_train_as_the_online_teacher(ws, stages, tmp_path):
    """Stage 2 with the teacher's logits computed once gives the weights of stage 2 with the
    teacher beside the student (same data order, same targets up to float rounding)."""
    runs = {}
    for mode in ("online", "precomputed"):
        raw = _distill_raw(ws, tmp_path, model={"init": stages["one"]},
                           train={"model_dir": str(tmp_path / mode), "batch_size": 16,
                                  "epochs": 2, "steps_per_loop": 4, "seed": 7})
        raw["distillation"]["teacher_logits"] = mode
        run_finetuning(finetune_experiment_from_dict(raw, source="exp.yaml"), RunOptions(log=_quiet))
        runs[mode] = _weights(str(tmp_path / mode))
    assert runs["online"].keys() == runs["precomputed"].keys()
    for name, value in runs["online"].items():
        np.testing.assert_allclose(runs["precomputed"][name], value, rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    bad = _distill_raw(ws, tmp_path)
    bad["distillation"]["teacher_logits"] = "precomputed"
    bad["distillation"]["matches"].append({"feature": "hidden", "loss": "mmd"})
    with pytest.raises(ConfigError, match=r"distillation.teacher_logits.*logits matches only"):
        finetune_experiment_from_dict(bad, source="exp.yaml")
