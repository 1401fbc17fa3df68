"""LAMB (+ gradient accumulation) on a 2-replica MirroredStrategy equals one replica.

Logical CPU devices must be configured before TensorFlow initialises its devices, so the
comparison runs in a fresh subprocess (other test modules in the same pytest process may
already have initialised TensorFlow).
"""

import numpy as np

from tests.two_replicas import run_two_replicas


SCRIPT = r'''
    import keras
    from tfcompact.optim import GradientAccumulator, Lamb, WarmupPolynomialDecay

    GLOBAL_BATCH, STEPS = 8, 3
    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH * STEPS, 5)).astype("float32")
    y = (10.0 * rng.normal(size=(GLOBAL_BATCH * STEPS, 1))).astype("float32")  # big: clipping
    init = None

    def build():
        global init
        inputs = keras.Input((5,))
        h = keras.layers.Dense(4, name="dense")(inputs)
        h = keras.layers.LayerNormalization(name="LayerNorm")(h)
        model = keras.Model(inputs, keras.layers.Dense(1, name="head")(h))
        if init is None:
            init = [np.asarray(w) for w in model.get_weights()]
        model.set_weights(init)
        return model

    def run(strategy, micro_batches):
        with strategy.scope():
            model = build()
            opt = Lamb(WarmupPolynomialDecay(0.05, warmup_steps=1, total_steps=10))
            opt.build(model.trainable_variables)
            acc = GradientAccumulator(model.trainable_variables, micro_batches)
        micro = GLOBAL_BATCH // micro_batches
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(micro, drop_remainder=True)
        it = iter(strategy.experimental_distribute_dataset(ds))

        def micro_step(batch):
            features, labels = batch
            with tf.GradientTape() as tape:
                # Each replica's share of the mean over the micro-batch's global size.
                loss = tf.reduce_sum(tf.square(model(features) - labels)) / micro
            acc.accumulate(tape.gradient(loss, model.trainable_variables))

        @tf.function
        def train_step(iterator):
            for _ in tf.range(micro_batches):
                strategy.run(micro_step, args=(next(iterator),))
            strategy.run(acc.apply_gradients, args=(opt,))

        norms = []
        for _ in range(STEPS):
            train_step(it)
            norms.append(float(opt.gradient_norm.numpy()))
        return ([w.tolist() for w in model.get_weights()], norms, int(opt.iterations.numpy()),
                [w.tolist() for w in init])

    devices = ["/cpu:0", "/cpu:1"]
    results = {
        "single": run(tf.distribute.get_strategy(), 1),
        "mirrored": run(tf.distribute.MirroredStrategy(devices), 1),
        "mirrored_accumulated": run(tf.distribute.MirroredStrategy(devices), 2),
        "single_accumulated": run(tf.distribute.get_strategy(), 4),
    }
    print("RESULT " + json.dumps(results))
'''


def test_two_replicas_equal_one_replica(tmp_path):
    results = run_two_replicas(tmp_path, SCRIPT)
    single_w, single_norms, single_steps, init = results["single"]
    assert single_steps == 3
    assert min(single_norms) > 1.0  # the global-norm clip was active at every step
    assert max(np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in zip(single_w, init)) > 1e-3
    for key in ("mirrored", "mirrored_accumulated", "single_accumulated"):
        weights, norms, steps, _ = results[key]
        assert steps == 3, key
        for a, b in zip(weights, single_w):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6, err_msg=key)
        np.testing.assert_allclose(norms, single_norms, rtol=1e-5, err_msg=key)
