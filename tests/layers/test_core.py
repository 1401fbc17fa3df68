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


def test_dense_matches_keras_dense_on_3d_inputs_and_under_bfloat16():
    import keras
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(3, 7, 16)).astype("float32")
    ours = dense(8, "ffn", activation="relu")
    ours.build((None, 7, 16))
    plain = keras.layers.Dense(8, activation="relu")
    plain.build((None, 7, 16))
    plain.set_weights(ours.get_weights())
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(plain(x)), rtol=1e-6, atol=1e-6)
    # unknown leading dimensions (a functional model's batch) keep the output's shape
    f = tf.function(lambda t: ours(t), input_signature=[tf.TensorSpec([None, None, 16])])
    assert f(x).shape == (3, 7, 8)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(ours(x) ** 2)
    grads = tape.gradient(loss, ours.trainable_variables)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(plain(x) ** 2)
    for a, b in zip(grads, tape.gradient(loss, plain.trainable_variables)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
    half = dense(8, "half", activation=None)
    half.dtype_policy = keras.DTypePolicy("mixed_bfloat16")
    half.build((None, 16))
    assert half(x[0]).dtype == tf.bfloat16 and half.kernel.dtype == "float32"


def test_dropout_rates_and_gradient_follow_the_mask():
    import tensorflow as tf

    x = tf.ones((400, 250))
    for rate in (0.1, 0.5, 0.9):
        y = np.asarray(Dropout(rate)(x, training=True))
        assert abs((y == 0).mean() - rate) < 0.01, rate
    layer = Dropout(0.3)
    w = tf.Variable(tf.fill((50, 40), 2.0))
    with tf.GradientTape() as tape:
        y = layer(w, training=True)
        loss = tf.reduce_sum(y)
    grad = np.asarray(tape.gradient(loss, w))
    kept = np.asarray(y) != 0
    np.testing.assert_allclose(grad[kept], 1 / 0.7, rtol=1e-6)  # d(x/keep)/dx where kept
    assert (grad[~kept] == 0).all()
    assert (np.asarray(Dropout(1.0)(x, training=True)) == 0).all()
