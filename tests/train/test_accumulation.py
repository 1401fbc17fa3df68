"""Gradient accumulation: A micro-batches of B/A give the same update as one batch of B."""
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _train(data_dir, strategy, batch, accumulation, steps, init_weights=None):

    from tfcompact.inputs.pretraining import pretraining_dataset
    from tfcompact.configs import tiny_config
    from tfcompact.models import build_pretraining_model
    from tfcompact.optim import create_optimizer
    from tfcompact.train.loop import TrainLoop
    from tfcompact.objectives.pretraining import pretraining_objective

    config = tiny_config("bert", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                         vocab_size=120)
    with strategy.scope():
        model = build_pretraining_model("bert", config, sentence_head="nsp")
        if init_weights is not None:
            model.set_weights(init_weights)
        start = model.get_weights()
        opt = create_optimizer("adamw", 1e-2, 0, 1000)

    def dataset(ctx):
        per_replica = ctx.get_per_replica_batch_size(batch)
        return pretraining_dataset(data_dir, per_replica, is_training=False, input_context=ctx,
                                   repeat=False)

    spec = pretraining_dataset(data_dir, 1, is_training=False).element_spec
    loop = TrainLoop(strategy, model, opt, pretraining_objective("bert"), spec, seed=3,
                     loss_is_replica_share=True, accumulation_steps=accumulation)
    metrics = loop.train(iter(strategy.distribute_datasets_from_function(dataset)), steps)
    return start, model.get_weights(), int(loop.step.numpy()), metrics


def compare(data_dir, strategy):
    """Max |w_accumulated - w_big_batch| and the size of the update, after 2 optimizer steps."""
    start, big, step_big, m_big = _train(data_dir, strategy, 32, 1, 2)
    _, acc, step_acc, m_acc = _train(data_dir, strategy, 16, 2, 2, init_weights=start)
    assert step_big == step_acc == 2
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(acc, big))
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(big, start))
    return diff, moved, m_big["loss"], m_acc["loss"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    sys.path.insert(0, HERE)
    from train_helpers import make_masked_data

    # 64 instances: two optimizer steps of 32 (per shard order kept: one shard).
    return make_masked_data(str(tmp_path_factory.mktemp("acc")), num_instances=64, num_shards=1)


def test_two_micro_batches_of_16_equal_one_batch_of_32(data_dir):
    import tensorflow as tf

    diff, moved, loss_big, loss_acc = compare(data_dir, tf.distribute.get_strategy())
    assert moved > 1e-3  # the weights really changed (lr 1e-2, two steps)
    assert diff < 2e-5, (diff, moved)
    assert loss_acc == pytest.approx(loss_big, rel=1e-5)


def test_two_micro_batches_under_two_replicas(data_dir):
    """Same check under a 2-replica MirroredStrategy on logical CPUs (its own process)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, HERE]))
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), data_dir], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    diff, moved, loss_big, loss_acc = map(float, proc.stdout.strip().splitlines()[-1].split())
    assert moved > 1e-3
    assert diff < 2e-5, (diff, moved)
    assert loss_acc == pytest.approx(loss_big, rel=1e-5)


def test_accumulation_steps_is_validated(tmp_path):
    from tfcompact.errors import ConfigError
    from tfcompact.train.experiment import load_experiment
    from tfcompact.train.preflight import Placement, check_batch

    with pytest.raises(ConfigError, match="train.gradient_accumulation_steps"):
        load_experiment("cpu_smoke", ["train.gradient_accumulation_steps=0"])
    exp = load_experiment("cpu_smoke", ["train.gradient_accumulation_steps=3"])
    assert exp.train.gradient_accumulation_steps == 3
    with pytest.raises(ConfigError, match="gradient_accumulation_steps"):
        check_batch(exp, Placement(False, 2, 1))  # 32 is not a multiple of 3 x 2 replicas
    check_batch(load_experiment("cpu_smoke", ["train.gradient_accumulation_steps=2"]),
                Placement(False, 2, 1))


if __name__ == "__main__":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import tfcompact  # noqa: F401  (Keras backend)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    print(*compare(sys.argv[1], strategy))


def test_interrupted_accumulating_run_resumes_exactly(tmp_path, data_dir):
    """Stop after the first loop, restart: same final weights as an uninterrupted run (the input
    position skips start_step x A micro-batches; dropout seeds follow step and micro-batch)."""
    import tensorflow as tf

    from train_helpers import tiny_experiment, write_yaml
    from tfcompact.train.experiment import load_experiment
    from tfcompact.train.pretrain import RunOptions, run_pretraining

    def experiment(name):
        raw = tiny_experiment(data_dir, str(tmp_path / name), total_steps=4, steps_per_loop=2,
                              checkpoint_every=2, gradient_accumulation_steps=2)
        raw["model"]["overrides"].update(hidden_dropout_prob=0.1)
        return load_experiment(write_yaml(str(tmp_path / f"{name}.yaml"), raw))

    quiet = RunOptions(log=lambda line: None)
    straight = run_pretraining(experiment("straight"), quiet)
    first = run_pretraining(experiment("resumed"), RunOptions(log=lambda line: None, max_loops=1))
    assert first["status"] == "interrupted" and first["step"] == 2
    second = run_pretraining(experiment("resumed"), quiet)
    assert second["start_step"] == 2 and second["step"] == straight["step"] == 4

    def variables(name):
        prefix = tf.train.latest_checkpoint(str(tmp_path / name / "checkpoints"))
        reader = tf.train.load_checkpoint(prefix)
        return {n: reader.get_tensor(n) for n, _ in tf.train.list_variables(prefix)
                if n != "_CHECKPOINTABLE_OBJECT_GRAPH"}

    a, b = variables("straight"), variables("resumed")
    assert set(a) == set(b) and len(a) > 20
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
