"""Dense factory and the per-replica dropout."""
import os
import subprocess
import sys
import textwrap

import numpy as np

from tfcompact.layers.core import Dropout, dense


def test_dense_names_and_init():
    layer = dense(5, "query", initializer_range=0.02)
    layer.build((None, 400))
    assert [v.path for v in layer.weights] == ["query/kernel", "query/bias"]
    kernel = np.asarray(layer.kernel)
    assert kernel.shape == (400, 5) and np.abs(kernel).max() <= 0.04 + 1e-6  # truncated at 2 sigma
    assert 0.015 < kernel.std() < 0.02


def test_dropout_scales_kept_values_and_is_off_in_inference():
    x = np.ones((200, 100), "float32")
    layer = Dropout(0.25)
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    y = np.asarray(layer(x, training=True))
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    assert not np.array_equal(y, np.asarray(layer(x, training=True)))  # a new mask each call
    np.testing.assert_array_equal(np.asarray(Dropout(0.0)(x, training=True)), x)


def test_dropout_masks_differ_between_replicas():
    # Keras' own random ops draw identical numbers on every replica of a MirroredStrategy;
    # this layer must not. Run in a fresh process: logical devices must be set before TF starts.
    code = textwrap.dedent("""
        import os
        os.environ["KERAS_BACKEND"] = "tensorflow"
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from tfcompact.layers.core import Dropout
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            layer = Dropout(0.5, seed=3)
        run = tf.function(lambda: strategy.run(lambda: layer(tf.ones([64]), training=True)))
        a, b = [t.numpy() for t in strategy.experimental_local_results(run())]
        print("DIFFERENT" if (a != b).any() else "SAME")
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "DIFFERENT"
