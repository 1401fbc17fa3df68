"""Two replicas (MirroredStrategy over logical CPU devices) train exactly like one replica with
the same global batch. Logical devices must exist before TensorFlow initialises, so each run
is its own process (`tfcompact pretrain --cpu_replicas 2`)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from train_helpers import make_masked_data, tiny_experiment, write_yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _start(config, replicas):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.Popen([sys.executable, "-m", "tfcompact.cli", "pretrain", "--config", config,
                             "--cpu_replicas", str(replicas)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_replicas_match_one_replica(tmp_path):
    data_dir = make_masked_data(str(tmp_path / "data"), num_instances=64)
    configs = {}
    for replicas in (1, 2):
        raw = tiny_experiment(data_dir, str(tmp_path / f"r{replicas}"), total_steps=8,
                              steps_per_loop=2, checkpoint_every=8, batch_size=8)
        configs[replicas] = write_yaml(str(tmp_path / f"r{replicas}.yaml"), raw)
    procs = {r: _start(configs[r], r if r > 1 else 0) for r in (1, 2)}
    for r, p in procs.items():
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        assert f"{r} replica(s)" in out
        if r == 2:
            assert "global batch 8 = 4 per replica x 2 replicas" in out
    one = json.load(open(tmp_path / "r1" / "summary.json"))
    two = json.load(open(tmp_path / "r2" / "summary.json"))
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert len(one["history"]) == len(two["history"]) == 4
    for h1, h2 in zip(one["history"], two["history"]):
        for key in ("loss", "mlm_loss", "sop_loss", "mlm_accuracy", "sop_accuracy",
                    "gradient_norm"):
            assert h2[key] == pytest.approx(h1[key], rel=1e-5, abs=1e-6), key
    import tensorflow as tf

    r1 = tf.train.load_checkpoint(str(tmp_path / "r1" / "checkpoints" / "ckpt-8"))
    r2 = tf.train.load_checkpoint(str(tmp_path / "r2" / "checkpoints" / "ckpt-8"))
    names = [n for n, _ in tf.train.list_variables(str(tmp_path / "r1" / "checkpoints" / "ckpt-8"))
             if n != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert len(names) > 20
    for n in names:
        np.testing.assert_allclose(r1.get_tensor(n), r2.get_tensor(n), rtol=1e-4, atol=1e-6,
                                   err_msg=n)
