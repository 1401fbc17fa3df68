"""Schedule values at chosen steps, worked out by hand from BERT/ALBERT/ELECTRA optimization.py."""
import numpy as np
import pytest

import tfcompact  # noqa: F401
import keras
import tensorflow as tf

from tfcompact.errors import ConfigError
from tfcompact.optim import (
    AdamWeightDecay,
    Lamb,
    WarmupPolynomialDecay,
    create_optimizer,
    layer_index,
    layerwise_lr_decay_multipliers,
    pkt_background_lr,
    pkt_layer_learning_rate,
    pkt_learning_rate_multipliers,
)


def values(schedule, steps):
    return [float(schedule(tf.constant(s, tf.int64)).numpy()) for s in steps]


def test_warmup_replaces_the_decay_which_counts_from_step_zero():
    s = WarmupPolynomialDecay(1e-3, warmup_steps=10, total_steps=100)
    # step 0 -> 0; 5 -> half the peak; 10 -> decay already at 1 - 10/100 = 0.9 of the peak;
    # 50 -> 0.5; 100 and beyond -> end_lr 0.
    np.testing.assert_allclose(values(s, [0, 5, 9, 10, 50, 100, 150]),
                               [0.0, 5e-4, 9e-4, 9e-4, 5e-4, 0.0, 0.0], atol=1e-9)


def test_power_and_end_lr():
    s = WarmupPolynomialDecay(1.0, warmup_steps=0, total_steps=10, end_lr=0.1, power=2.0)
    # (1 - 0.1) * (1 - t/10)^2 + 0.1: t=0 -> 1.0, t=5 -> 0.9*0.25+0.1 = 0.325, t=10 -> 0.1
    np.testing.assert_allclose(values(s, [0, 5, 10, 20]), [1.0, 0.325, 0.1, 0.1], rtol=1e-6)


def test_electra_multiplies_warmup_into_the_decay():
    s = WarmupPolynomialDecay(1.0, warmup_steps=10, total_steps=100, warmup_mode="multiply")
    # t=5: (1 - 0.05) * 0.5 = 0.475; t=20: 0.8
    np.testing.assert_allclose(values(s, [0, 5, 20]), [0.0, 0.475, 0.8], rtol=1e-6)


def test_config_and_errors():
    s = WarmupPolynomialDecay(2e-4, 100, 1000, end_lr=1e-6, power=0.5, warmup_mode="multiply")
    clone = WarmupPolynomialDecay.from_config(s.get_config())
    assert values(clone, [7, 300]) == values(s, [7, 300])
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(s))
    assert isinstance(restored, WarmupPolynomialDecay)
    with pytest.raises(ConfigError, match="total_steps"):
        WarmupPolynomialDecay(1e-3, 10, 0)
    with pytest.raises(ConfigError, match="warmup_mode"):
        WarmupPolynomialDecay(1e-3, 10, 100, warmup_mode="cosine")


def test_create_optimizer():
    opt = create_optimizer("lamb", 1.76e-3, 3125, 125000)
    assert isinstance(opt, Lamb)
    assert opt.weight_decay_rate == 0.01 and opt.epsilon == 1e-6 and opt.clip_global_norm == 1.0
    assert not opt.bias_correction
    assert opt.layer_adaptation_exclusions == opt.weight_decay_exclusions
    assert isinstance(opt._learning_rate, WarmupPolynomialDecay)
    adamw = create_optimizer("adamw", 5e-4, 10000, 1000000, warmup_mode="multiply")
    assert isinstance(adamw, AdamWeightDecay)
    const = create_optimizer("lamb", 1.5e-3, 0, 100, constant_learning_rate=True)
    assert float(const.learning_rate.numpy()) == pytest.approx(1.5e-3)
    with pytest.raises(ConfigError, match="optimizer"):
        create_optimizer("sgd", 1e-3, 1, 10)


def test_layer_index_and_layerwise_decay():
    assert layer_index("electra/encoder/layer_11/attention/self/query/kernel") == 11
    assert layer_index("mobilebert/encoder/layer_2/ffn_layer_0/intermediate/dense/kernel") == 2
    assert layer_index("electra/embeddings/word_embeddings") is None
    mult = layerwise_lr_decay_multipliers(2, 0.8)
    # depth: embeddings 0, layer_0 1, layer_1 2, task head 4 -> 0.8 ** (4 - depth)
    assert mult("electra/embeddings/word_embeddings") == pytest.approx(0.8 ** 4)
    assert mult("electra/encoder/layer_0/output/dense/kernel") == pytest.approx(0.8 ** 3)
    assert mult("electra/encoder/layer_1/output/dense/kernel") == pytest.approx(0.8 ** 2)
    assert mult("task_specific/classifier/kernel") == 1.0


def test_pkt_background_and_layer_rates():
    p = 100
    # t = step mod 100: min(0.1 sqrt(1 - t/100) + 0.9, 10 t/100)
    got = [float(pkt_background_lr(tf.constant(s), p).numpy()) for s in (0, 1, 50, 150, 199)]
    expected = [0.0, 0.1, 0.1 * np.sqrt(0.5) + 0.9, 0.1 * np.sqrt(0.5) + 0.9,
                0.1 * np.sqrt(0.01) + 0.9]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    bg50 = 0.1 * np.sqrt(0.5) + 0.9
    # layer 1's phase is steps (100, 200]: 0 before, 3*bg during, 0.3*bg after.
    got = [float(pkt_layer_learning_rate(tf.constant(s), 1, p).numpy()) for s in (50, 100, 150, 250)]
    np.testing.assert_allclose(got, [0.0, 0.0, 3 * bg50, 0.3 * bg50], rtol=1e-6)
    mult = pkt_learning_rate_multipliers(p)
    assert mult("mobilebert/embeddings/word_embeddings") == 0.0
    fn = mult("mobilebert/encoder/layer_1/attention/self/query/kernel")
    assert float(fn(tf.constant(150, tf.int64)).numpy()) == pytest.approx(3 * bg50, rel=1e-6)
