"""LAMB and AdamWeightDecay against a numpy implementation of ALBERT's / BERT's update rule."""
import contextlib

import numpy as np
import pytest

import tfcompact  # noqa: F401  (sets the Keras backend)
import keras
import tensorflow as tf

from tfcompact.optim import AdamWeightDecay, Lamb

EXCLUDE = ("LayerNorm", "layer_norm", "FakeLayerNorm", "no_norm", "bias")


def make_variable(path, value):
    """A Keras variable whose full path is `path` (scopes one per path component)."""
    parts = path.split("/")
    with contextlib.ExitStack() as stack:
        for part in parts[:-1]:
            stack.enter_context(keras.name_scope(part))
        return keras.Variable(np.asarray(value, np.float32), name=parts[-1])


def reference_step(state, grads, t, lr, *, wd, decay, adapt, bias_correction, clip,
                   beta_1=0.9, beta_2=0.999, eps=1e-6, trust_ratio=True, mult=None):
    """ALBERT lamb_optimizer.py / BERT AdamWeightDecayOptimizer, written from the formula."""
    grads = [np.asarray(g, np.float64) for g in grads]
    norm = np.sqrt(sum(np.sum(g * g) for g in grads))
    if clip is not None:
        grads = [g * clip / max(norm, clip) for g in grads]
    for i, g in enumerate(grads):
        w, m, v = state[i]
        s = 1.0 if mult is None else mult[i]
        gate = 1.0 if s > 0 else 0.0
        m = gate * (beta_1 * m + (1 - beta_1) * g)
        v = gate * (beta_2 * v + (1 - beta_2) * g * g)
        m_hat, v_hat = m, v
        if bias_correction:
            m_hat = m / (1 - beta_1 ** t)
            v_hat = v / (1 - beta_2 ** t)
        u = m_hat / (np.sqrt(v_hat) + eps)
        if decay[i] and wd:
            u = u + gate * wd * w
        r = 1.0
        if trust_ratio and adapt[i]:
            wn, un = np.linalg.norm(w), np.linalg.norm(u)
            r = wn / un if (wn > 0 and un > 0) else 1.0
        state[i] = (w - s * r * lr * u, m, v)
    return norm


# path, shape, decayed, adapted (default exclusions = the weight-decay list)
VARIABLES = [
    ("encoder/layer_0/attention/self/query/kernel", (3, 4), True, True),
    ("encoder/layer_0/attention/self/query/bias", (4,), False, False),
    ("encoder/layer_0/attention/output/LayerNorm/gamma", (4,), False, False),
    ("encoder/layer_0/output/FakeLayerNorm/beta", (4,), False, False),
    ("encoder/embeddings/layer_norm/gamma", (4,), False, False),
    ("encoder/layer_1/no_norm/gamma", (4,), False, False),
    ("encoder/zero_init/kernel", (2, 3), True, True),  # ||w|| = 0 -> trust ratio 1
]


def run_case(cls, *, wd, bias_correction, clip, steps=4, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    values = []
    for path, shape, _, _ in VARIABLES:
        values.append(np.zeros(shape) if "zero_init" in path else rng.normal(size=shape))
    variables = [make_variable(p, v) for (p, *_), v in zip(VARIABLES, values)]
    opt = cls(learning_rate=0.01, weight_decay_rate=wd, bias_correction=bias_correction,
              global_clipnorm=clip, **kwargs)
    state = [(v.astype(np.float64), np.zeros_like(v), np.zeros_like(v)) for v in values]
    decay = [d for _, _, d, _ in VARIABLES]
    adapt = [a for _, _, _, a in VARIABLES]
    norms = []
    for t in range(1, steps + 1):
        # Steps 1 and 3 have a large gradient (clipped), 2 and 4 a small one.
        scale = 3.0 if t % 2 else 0.05
        grads = [scale * rng.normal(size=shape) for _, shape, _, _ in VARIABLES]
        opt.apply_gradients([(tf.constant(g, tf.float32), v) for g, v in zip(grads, variables)])
        norms.append(reference_step(state, grads, t, 0.01, wd=wd, decay=decay, adapt=adapt,
                                    bias_correction=bias_correction, clip=clip,
                                    trust_ratio=cls is Lamb))
        np.testing.assert_allclose(float(opt.gradient_norm.numpy()), norms[-1], rtol=1e-5)
        for var, (w, _, _) in zip(variables, state):
            np.testing.assert_allclose(var.numpy(), w, rtol=2e-5, atol=2e-6, err_msg=var.path)
    return opt, variables, state


@pytest.mark.parametrize("cls", [Lamb, AdamWeightDecay])
@pytest.mark.parametrize("wd", [0.0, 0.01])
@pytest.mark.parametrize("bias_correction", [False, True])
def test_update_matches_numpy(cls, wd, bias_correction):
    opt, variables, state = run_case(cls, wd=wd, bias_correction=bias_correction, clip=1.0)
    # Moments too.
    for i, var in enumerate(variables):
        np.testing.assert_allclose(opt._adam_m[i].numpy(), state[i][1], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(opt._adam_v[i].numpy(), state[i][2], rtol=1e-5, atol=1e-9)


def test_without_clipping_differs_and_matches_numpy():
    _, variables, _ = run_case(Lamb, wd=0.01, bias_correction=False, clip=None)
    _, clipped, _ = run_case(Lamb, wd=0.01, bias_correction=False, clip=1.0)
    # LAMB's trust ratio cancels the gradient scale for adapted variables but not for the
    # excluded ones (bias, LayerNorm): clipping must show there.
    assert not np.allclose(variables[1].numpy(), clipped[1].numpy())


def test_lamb_update_size_is_trust_ratio_times_lr_for_adapted_variable():
    # Hand check: one step, no decay, no bias correction: u = g(1-b1)/(sqrt((1-b2) g^2)+eps)
    # ~= 0.1/sqrt(0.001) * sign(g) elementwise; the trust ratio scales ||lr*r*u|| to lr*||w||.
    w0 = np.array([[3.0, 4.0]])  # ||w|| = 5
    var = make_variable("encoder/dense/kernel", w0)
    opt = Lamb(learning_rate=0.1, weight_decay_rate=0.0, global_clipnorm=None)
    opt.apply_gradients([(tf.constant([[0.2, -0.1]]), var)])
    step = w0 - var.numpy()
    np.testing.assert_allclose(np.linalg.norm(step), 0.1 * 5.0, rtol=1e-5)
    np.testing.assert_allclose(step / np.linalg.norm(step), [[1 / np.sqrt(2), -1 / np.sqrt(2)]],
                               rtol=1e-4)


def test_zero_update_norm_gives_ratio_one():
    # A variable excluded from decay but adapted, with zero gradient: ||u|| = 0 -> ratio 1, no NaN.
    var = make_variable("encoder/dense/bias", [1.0, 2.0])
    opt = Lamb(learning_rate=0.1, exclude_from_layer_adaptation=())
    opt.apply_gradients([(tf.zeros([2]), var)])
    np.testing.assert_array_equal(var.numpy(), [1.0, 2.0])


def test_zero_gradient_with_weight_decay_shrinks_by_lr():
    # m = v = 0, u = wd*w, r = ||w|| / (wd ||w||) = 1/wd  =>  w <- w - lr*w.
    var = make_variable("encoder/dense/kernel", [[1.0, -2.0]])
    opt = Lamb(learning_rate=0.1, weight_decay_rate=0.01)
    opt.apply_gradients([(tf.zeros([1, 2]), var)])
    np.testing.assert_allclose(var.numpy(), [[0.9, -1.8]], rtol=1e-6)


def test_exclusion_patterns_use_full_paths():
    opt = Lamb(0.1)
    assert opt.use_weight_decay_for("bert/encoder/layer_3/attention/self/query/kernel")
    assert not opt.use_weight_decay_for("bert/encoder/layer_3/attention/output/LayerNorm/gamma")
    assert not opt.use_weight_decay_for("mobilebert/layer_0/bottleneck/input/FakeLayerNorm/beta")
    assert not opt.use_weight_decay_for("encoder/layer_0/output_layer_norm/gamma")
    assert not opt.use_weight_decay_for("cls/predictions/output_bias")
    # The variable is named "gamma"; only its path says it is a NoNorm.
    var = make_variable("encoder/no_norm/gamma", [1.0])
    opt.build([var])
    assert opt._decay_flags == [False] and opt._adapt_flags == [False]
    # Layer adaptation defaults to the weight-decay list; an explicit list replaces it.
    custom = Lamb(0.1, exclude_from_layer_adaptation=["teacher"])
    assert custom.use_layer_adaptation_for("encoder/LayerNorm/gamma")
    assert not custom.use_layer_adaptation_for("teacher/encoder/dense/kernel")
    assert not Lamb(0.1, weight_decay_rate=0.0).use_weight_decay_for("encoder/dense/kernel")
    assert not AdamWeightDecay(0.1).use_layer_adaptation_for("encoder/dense/kernel")


def test_learning_rate_multipliers_and_gate():
    rng = np.random.default_rng(3)
    paths = ["encoder/layer_0/dense/kernel", "encoder/layer_1/dense/kernel", "head/dense/kernel"]
    values = [rng.normal(size=(2, 3)) for _ in paths]
    variables = [make_variable(p, v) for p, v in zip(paths, values)]
    # layer_0 half speed; layer_1 frozen until step index 2, then 2x; the head at full speed.
    schedule = lambda step: tf.where(step >= 2, 2.0, 0.0)  # noqa: E731
    opt = Lamb(learning_rate=0.01, learning_rate_multipliers={"layer_0": 0.5, "layer_1": schedule})
    state = [(v, np.zeros_like(v), np.zeros_like(v)) for v in values]
    for step in range(4):
        grads = [rng.normal(size=(2, 3)) for _ in paths]
        opt.apply_gradients([(tf.constant(g, tf.float32), v) for g, v in zip(grads, variables)])
        mult = [0.5, 2.0 if step >= 2 else 0.0, 1.0]
        reference_step(state, grads, step + 1, 0.01, wd=0.01, decay=[True] * 3,
                       adapt=[True] * 3, bias_correction=False, clip=1.0, mult=mult)
        for var, (w, _, _) in zip(variables, state):
            np.testing.assert_allclose(var.numpy(), w, rtol=2e-5, atol=2e-6)
        if step < 2:
            np.testing.assert_array_equal(variables[1].numpy(), values[1].astype(np.float32))
            np.testing.assert_array_equal(opt._adam_m[1].numpy(), 0.0)


@pytest.mark.host_xla
def test_uses_learning_rate_schedule_and_runs_under_xla():
    from tfcompact.optim import WarmupPolynomialDecay

    var = make_variable("encoder/dense/kernel", [[1.0, 2.0]])
    opt = Lamb(WarmupPolynomialDecay(0.1, warmup_steps=2, total_steps=10))

    @tf.function(jit_compile=True)
    def step(g):
        opt.apply_gradients([(g, var)])

    step(tf.constant([[1.0, 1.0]]))  # step 0: warm-up lr 0 -> no change
    np.testing.assert_array_equal(var.numpy(), [[1.0, 2.0]])
    step(tf.constant([[1.0, 1.0]]))  # step 1: lr 0.05
    assert not np.allclose(var.numpy(), [[1.0, 2.0]])
    assert int(opt.iterations.numpy()) == 2


def test_checkpoint_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    values = [rng.normal(size=(3, 2)), rng.normal(size=(2,))]
    paths = ["a/dense/kernel", "a/dense/bias"]

    def make():
        variables = [make_variable(p, v) for p, v in zip(paths, values)]
        return variables, Lamb(learning_rate=0.01)

    grads = [[tf.constant(rng.normal(size=v.shape), tf.float32) for v in values] for _ in range(3)]
    variables, opt = make()
    for g in grads[:2]:
        opt.apply_gradients(zip(g, variables))
    path = tf.train.Checkpoint(variables=variables, optimizer=opt).write(str(tmp_path / "ckpt"))

    restored_vars, restored_opt = make()
    restored_opt.build(restored_vars)
    tf.train.Checkpoint(variables=restored_vars, optimizer=restored_opt).read(path).assert_consumed()
    assert int(restored_opt.iterations.numpy()) == 2
    for a, b in zip(opt.variables, restored_opt.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    opt.apply_gradients(zip(grads[2], variables))
    restored_opt.apply_gradients(zip(grads[2], restored_vars))
    for a, b in zip(variables, restored_vars):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_config_round_trip():
    opt = Lamb(learning_rate=0.002, weight_decay_rate=0.02, exclude_from_layer_adaptation=["x"],
               learning_rate_multipliers={"layer_0": 0.5}, bias_correction=True)
    clone = Lamb.from_config(opt.get_config())
    assert clone.weight_decay_exclusions == opt.weight_decay_exclusions
    assert clone.layer_adaptation_exclusions == ("x",)
    assert clone.learning_rate_multipliers == {"layer_0": 0.5}
    assert clone.bias_correction and clone.weight_decay_rate == 0.02
    with pytest.raises(ValueError):
        Lamb(0.1, weight_decay=0.1)


@pytest.mark.parametrize("cls", [Lamb, AdamWeightDecay])
def test_nonfinite_gradient_step_is_skipped(cls):
    var = make_variable("encoder/dense/kernel", [[1.0, 2.0]])
    opt = cls(learning_rate=0.1)
    opt.apply_gradients([(tf.constant([[0.5, -0.5]]), var)])
    before = [var.numpy().copy()] + [s.numpy().copy() for s in opt._adam_m + opt._adam_v]
    opt.apply_gradients([(tf.constant([[np.nan, 1.0]]), var)])
    after = [var.numpy()] + [s.numpy() for s in opt._adam_m + opt._adam_v]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert np.isnan(opt.gradient_norm.numpy()) and int(opt.iterations.numpy()) == 2
    # Without the guard the NaN reaches the weights, as in the original code.
    unguarded = cls(learning_rate=0.1, skip_nonfinite=False)
    var2 = make_variable("encoder/dense/kernel", [[1.0, 2.0]])
    unguarded.apply_gradients([(tf.constant([[np.inf, 1.0]]), var2)])
    assert not np.all(np.isfinite(var2.numpy()))
