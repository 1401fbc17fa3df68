"""Kill -9 at any moment, restart: the run ends with exactly the weights of an uninterrupted run."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from train_helpers import make_masked_data, tiny_experiment, write_yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _command(config):
    return [sys.executable, "-m", "tfcompact.cli", "pretrain", "--config", config]


def _env():
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return env


def _experiment(tmp_path, data_dir, name):
    raw = tiny_experiment(data_dir, str(tmp_path / name), total_steps=40, steps_per_loop=2,
                          checkpoint_every=2, keep_checkpoints=2)
    # Dropout on: its masks must be reproduced from (seed, step) after the restart.
    raw["model"]["overrides"].update(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    raw["optimizer"]["warmup_steps"] = 5
    return write_yaml(str(tmp_path / f"{name}.yaml"), raw)


def _checkpoint_step(model_dir):
    state = os.path.join(model_dir, "checkpoints", "checkpoint")
    if not os.path.exists(state):
        return 0
    latest = tf.train.latest_checkpoint(os.path.dirname(state))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def _variables(model_dir):
    prefix = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    reader = tf.train.load_checkpoint(prefix)
    names = [n for n, _ in tf.train.list_variables(prefix) if n != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    return prefix, {n: reader.get_tensor(n) for n in names}


def test_sigkill_and_restart_is_bit_identical(tmp_path):
    data_dir = make_masked_data(str(tmp_path / "data"), num_instances=40)
    straight = _experiment(tmp_path, data_dir, "straight")
    killed = _experiment(tmp_path, data_dir, "killed")
    a = subprocess.Popen(_command(straight), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    b = subprocess.Popen(_command(killed), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    killed_dir = str(tmp_path / "killed")
    deadline = time.time() + 240
    while _checkpoint_step(killed_dir) < 4 and b.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(random.uniform(0.0, 0.3))  # somewhere in a loop or in a save
    assert b.poll() is None, "the run finished before it could be killed"
    os.kill(b.pid, signal.SIGKILL)
    b.wait()
    stopped_at = _checkpoint_step(killed_dir)
    assert 0 < stopped_at < 40
    restart = subprocess.run(_command(killed), cwd=ROOT, env=_env(), capture_output=True,
                             text=True, timeout=300)
    assert restart.returncode == 0, restart.stderr[-2000:]
    assert "resumed from" in restart.stdout
    assert a.wait(timeout=300) == 0, a.stderr.read().decode()[-2000:]

    summary = json.load(open(os.path.join(killed_dir, "summary.json")))
    assert summary["status"] == "completed" and summary["step"] == 40
    assert summary["start_step"] >= stopped_at  # continued, did not start over
    prefix_a, va = _variables(str(tmp_path / "straight"))
    prefix_b, vb = _variables(killed_dir)
    assert prefix_a.endswith("ckpt-40") and prefix_b.endswith("ckpt-40")
    assert set(va) == set(vb) and len(va) > 20
    assert any("optimizer/_variables/" in n for n in va)  # slots
    assert any("optimizer/_iterations" in n for n in va) and any(n.startswith("step/") for n in va)
    for name in va:
        np.testing.assert_array_equal(va[name], vb[name], err_msg=name)


def test_interrupted_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    """A kill between writing ckpt-N files and updating `checkpoint` (the manager's last act)
    must leave ckpt-(N-1) as the one restored."""
    import keras

    from tfcompact.optim import create_optimizer
    from tfcompact.train.checkpointing import RunCheckpoints

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    opt = create_optimizer("adamw", 1e-3, 0, 10)
    opt.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64)
    bad = tf.Variable(0, dtype=tf.int64)
    ckpts = RunCheckpoints(str(tmp_path), model=model, optimizer=opt, step=step,
                           nonfinite_in_a_row=bad, keep=3)
    step.assign(2)
    saved = model.get_layer("d").kernel.numpy().copy()
    first = ckpts.save()
    # What a kill in the middle of the next save leaves: new data, no index, old state file.
    directory = os.path.dirname(first)
    with open(os.path.join(directory, "ckpt-4.data-00000-of-00001"), "wb") as f:
        f.write(b"\x00" * 17)
    with open(os.path.join(directory, "ckpt-4.index"), "wb") as f:
        f.write(b"trunc")
    model.get_layer("d").kernel.assign(np.zeros((3, 2), np.float32))
    step.assign(0)
    again = RunCheckpoints(str(tmp_path), model=model, optimizer=opt, step=step,
                           nonfinite_in_a_row=bad, keep=3)
    assert again.restore_latest() == first
    assert int(step.numpy()) == 2
    np.testing.assert_array_equal(model.get_layer("d").kernel.numpy(), saved)


def test_warm_start_loads_model_weights_only(tmp_path):
    from train_helpers import VOCAB_SIZE

    from tfcompact.configs import tiny_config
    from tfcompact.errors import CheckpointError
    from tfcompact.interop.convert import save_training_checkpoint
    from tfcompact.models import build_pretraining_model
    from tfcompact.modeldir import write_model_dir_config
    from tfcompact.train.checkpointing import warm_start

    config = tiny_config("albert", vocab_size=VOCAB_SIZE)
    source = build_pretraining_model("albert", config)
    src_dir = str(tmp_path / "src")
    write_model_dir_config(src_dir, "albert", config)
    save_training_checkpoint(source, src_dir)
    target = build_pretraining_model("albert", config)
    used = warm_start(target, src_dir)
    assert used.startswith(os.path.join(src_dir, "checkpoints"))
    for a, b in zip(source.weights, target.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(CheckpointError, match="import-tf1"):
        warm_start(target, str(tmp_path))


def test_warm_start_from_a_training_run(tmp_path):
    """A model directory left by `tfcompact pretrain` (model + optimizer checkpoint) warm-starts
    a new model: weights only."""

    from tfcompact.models import build_pretraining_model
    from tfcompact.modeldir import read_model_dir, write_model_dir_config
    from tfcompact.optim import create_optimizer
    from tfcompact.train.checkpointing import RunCheckpoints, warm_start
    from train_helpers import VOCAB_SIZE
    from tfcompact.configs import tiny_config

    config = tiny_config("albert", vocab_size=VOCAB_SIZE)
    model = build_pretraining_model("albert", config)
    opt = create_optimizer("lamb", 1e-3, 0, 10)
    opt.build(model.trainable_variables)
    step, bad = tf.Variable(7, dtype=tf.int64), tf.Variable(0, dtype=tf.int64)
    run_dir = str(tmp_path / "run")
    write_model_dir_config(run_dir, "albert", config)
    RunCheckpoints(run_dir, model=model, optimizer=opt, step=step, nonfinite_in_a_row=bad,
                   keep=1).save()
    assert read_model_dir(run_dir).latest_checkpoint.endswith("ckpt-7")
    fresh = build_pretraining_model("albert", config)
    warm_start(fresh, run_dir)
    for a, b in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_checkpoints_under_a_relative_directory_are_found_once(tmp_path, monkeypatch):
    """The state file's paths are already joined with a relative directory: each checkpoint is
    named once, by its place in the directory (not <dir>/<dir>/ckpt-N)."""
    import tensorflow as tf

    from tfcompact.train.checkpointing import _found_prefixes

    monkeypatch.chdir(tmp_path)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)),
                                         "out/checkpoints", 3)
    manager.save(checkpoint_number=2)
    manager.save(checkpoint_number=4)
    assert _found_prefixes("out/checkpoints") == ["out/checkpoints/ckpt-4", "out/checkpoints/ckpt-2"]
    assert _found_prefixes(str(tmp_path / "out" / "checkpoints"))[0] == \
        str(tmp_path / "out" / "checkpoints" / "ckpt-4")
