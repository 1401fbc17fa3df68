"""Name tables, both ways: every Keras variable has exactly one TF1 name and back, and
Keras -> TF1 checkpoint -> Keras is bit-exact for every architecture at tiny size."""
import numpy as np
import pytest
import tensorflow as tf

from tfcompact.configs import tiny_config
from tfcompact.errors import ConfigError
from tfcompact.interop import name_maps
from tfcompact.interop.tf1_checkpoint import read_tf1_variables, write_tf1_checkpoint
from tfcompact.models import build_pretraining_model

CASES = {
    "bert": ("bert", {}),
    "tinybert": ("tinybert", {}),
    "albert_google": ("albert", {}),
    "albert_brightmart": ("albert", {"layout": "brightmart"}),
    "electra": ("electra", {}),
    "mobilebert": ("mobilebert", {}),
    "mobilebert_ln_pooler": ("mobilebert", {"normalization_type": "layer_norm",
                                            "classifier_activation": True,
                                            "key_query_shared_bottleneck": False,
                                            "num_feedforward_networks": 2}),
}


def build(case):
    arch, overrides = CASES[case]
    config = tiny_config(arch, **overrides)
    return arch, config, build_pretraining_model(arch, config)


def test_transforms_round_trip_by_hand():
    w = np.arange(6, dtype=np.float32).reshape(3, 2)  # a Dense kernel [H=3, 2]
    e = name_maps.NameEntry("cls/seq_relationship/output_weights", "x", "transpose", (2, 3), (3, 2))
    np.testing.assert_array_equal(e.to_tf1(w), [[0, 2, 4], [1, 3, 5]])
    np.testing.assert_array_equal(e.to_keras(e.to_tf1(w)), w)
    k3 = np.arange(24, dtype=np.float32).reshape(4, 2, 3)  # einsum kernel [H, heads, head_size]
    r = name_maps.NameEntry("bert/encoder/layer_0/attention/self/query/kernel", "x", "reshape",
                            (4, 6), (4, 2, 3))
    assert r.to_tf1(k3).shape == (4, 6) and r.to_tf1(k3)[1, 3] == k3[1, 1, 0]
    np.testing.assert_array_equal(r.to_keras(r.to_tf1(k3)), k3)
    assert name_maps._transform_for("cls/seq_relationship/output_weights", (2, 8), (8, 2)) == "transpose"
    assert name_maps._transform_for("cls/predictions/extra_output_weights", (30, 8), (8, 30)) == "transpose"
    assert name_maps._transform_for("bert/pooler/dense/kernel", (8, 4), (4, 8)) is None


@pytest.mark.parametrize("case", list(CASES))
def test_table_covers_model_both_ways(case):
    arch, config, model = build(case)
    table = name_maps.name_table(arch, config, model)
    paths = {v.path for v in model.weights if not v.path.endswith("seed_generator_state")}
    table_paths = [e.keras_path for e in table]
    assert len(set(table_paths)) == len(table_paths)
    assert set(table_paths) == paths
    names = [e.tf1_name for e in table]
    assert len(set(names)) == len(names)
    for e in table:
        assert tuple(model_var(model, e.keras_path).shape) == e.keras_shape


def model_var(model, path):
    return next(v for v in model.weights if v.path == path)


def test_hand_written_names():
    """Spot checks against /work/shared/reference/tf1_names.md, written out by hand."""
    arch, config, model = build("electra")
    names = {e.tf1_name: e.tf1_shape for e in name_maps.name_table(arch, config, model)}
    assert names["discriminator_predictions/dense_1/kernel"] == (64, 1)
    assert names["generator_predictions/output_bias"] == (300,)
    assert names["electra/embeddings_project/kernel"] == (32, 64)
    assert not any("pooler" in n for n in names)
    assert not any(n.startswith("generator/embeddings/") for n in names)  # shared embeddings
    arch, config, model = build("mobilebert")
    names = {e.tf1_name: e.tf1_shape for e in name_maps.name_table(arch, config, model)}
    assert names["cls/predictions/extra_output_weights"] == (300, 64 - 32)
    assert names["bert/encoder/layer_1/ffn_layer_2/output/FakeLayerNorm/gamma"] == (32,)
    assert names["bert/encoder/layer_1/output/dense/kernel"] == (128, 32)
    assert names["bert/embeddings/embedding_transformation/kernel"] == (3 * 32, 64)
    assert "bert/pooler/dense/kernel" not in names
    assert names["cls/predictions/transform/LayerNorm/gamma"] == (64,)
    arch, config, model = build("albert_brightmart")
    names = {e.tf1_name: e.tf1_shape for e in name_maps.name_table(arch, config, model)}
    assert names["bert/embeddings/word_embeddings_2"] == (32, 64)
    assert names["bert/encoder/layer_shared/output/dense/kernel"] == (128, 64)
    arch, config, model = build("bert")
    names = {e.tf1_name: e.tf1_shape for e in name_maps.name_table(arch, config, model)}
    assert names["cls/seq_relationship/output_weights"] == (2, 64)


@pytest.mark.parametrize("case", list(CASES))
def test_keras_tf1_keras_bit_exact(case, tmp_path):
    arch, config, model = build(case)
    table = name_maps.name_table(arch, config, model)
    # distinct values everywhere so a swapped pair of names cannot go unnoticed
    rng = np.random.default_rng(0)
    for v in model.weights:
        if not v.path.endswith("seed_generator_state"):
            v.assign(rng.standard_normal(v.shape).astype(v.dtype))
    tensors = name_maps.keras_to_tf1(model, table)
    prefix = write_tf1_checkpoint(str(tmp_path), tensors)
    listed = tf.train.list_variables(prefix)
    assert sorted(listed) == sorted((e.tf1_name, list(e.tf1_shape)) for e in table)
    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    assert set(reader.get_variable_to_shape_map()) == {e.tf1_name for e in table}
    assert tf.train.latest_checkpoint(str(tmp_path)) == prefix

    _, _, fresh = build(case)
    name_maps.tf1_to_keras(fresh, name_maps.name_table(arch, config, fresh),
                           read_tf1_variables(prefix))
    before = {v.path: v.numpy() for v in model.weights}
    for v in fresh.weights:
        if v.path in before and not v.path.endswith("seed_generator_state"):
            np.testing.assert_array_equal(v.numpy(), before[v.path], err_msg=v.path)


def test_table_mismatch_is_reported():
    arch, config, model = build("bert")
    other = tiny_config("bert", intermediate_size=96)
    with pytest.raises(ConfigError, match="intermediate/dense/kernel"):
        name_maps.name_table(arch, other, model)
