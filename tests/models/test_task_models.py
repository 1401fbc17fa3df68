"""Task models: every architecture x kind builds over the backbone it is given (same variables),
each head computes what its original's fine-tuning code computes, dropout only in training
and reseedable."""
import math

import numpy as np
import pytest
import tensorflow as tf

from conftest import backbone_part, make_batch
from tfcompact.architectures import ARCHITECTURES
from tfcompact.configs import tiny_config
from tfcompact.errors import ConfigError
from tfcompact.models import build_backbone, build_pretraining_model, get_backbone
from tfcompact.models.tasks import (
    TASK_OUTPUTS,
    build_task_model,
    default_head_dropout,
    task_backbone,
)
from tfcompact.tasks import TASK_KINDS
from tfcompact.train.loop import seed_state_variables

B, S, C = 2, 12, 3
NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="module")
def backbones():
    """One tiny backbone per architecture, without backbone dropout (only heads drop out)."""
    found = {}
    for arch in ARCHITECTURES:
        config = tiny_config(arch, **NO_DROPOUT)
        found[arch] = (config, build_backbone(arch, config))
    return found


def _inputs(config, seed=0):
    return backbone_part(make_batch(config, B, S, pad=3, seed=seed))


def _weights(model, path):
    matches = [v for v in model.variables if v.path == path]
    assert len(matches) == 1, [v.path for v in model.variables if not v.path.startswith(("bert", "electra"))]
    return matches[0].numpy().astype(np.float64)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("kind", TASK_KINDS)
def test_every_architecture_and_kind_builds_with_the_contract_shapes(arch, kind, backbones):
    config, backbone = backbones[arch]
    model = build_task_model(backbone, arch, config, kind, C)
    batch = make_batch(config, B, S, pad=3)
    batch["label_ids"] = np.zeros([B], "int32")  # extra batch keys are ignored
    out = model(batch, training=False)
    assert tuple(out) == TASK_OUTPUTS[kind]
    expected = {"classification": (B, C), "tagging": (B, S, C), "span": (B, S)}[kind]
    for key in TASK_OUTPUTS[kind]:
        assert tuple(out[key].shape) == expected, key
    # The backbone is wrapped, not copied: every one of its variables is the model's.
    model_ids = {id(v) for v in model.variables}
    assert all(id(v) in model_ids for v in backbone.variables)
    assert task_backbone(model) is backbone
    assert not any("/" in layer.name for layer in model.layers)


def test_a_restored_pretraining_backbone_carries_its_weights_in():
    config = tiny_config("albert", **NO_DROPOUT)
    pretraining = build_pretraining_model("albert", config)
    backbone = get_backbone(pretraining)
    model = build_task_model(backbone, "albert", config, "tagging", C, backbone_outputs=True)
    inputs = _inputs(config)
    embeddings = [v for v in pretraining.variables if v.path.endswith("word_embeddings")][0]
    embeddings.assign(embeddings + 1.0)  # a change made through the pretraining model...
    expected = pretraining({**inputs, "masked_lm_positions": np.ones([B, 1], "int32")})
    got = model(inputs)  # ...is seen by the task model
    np.testing.assert_allclose(got["sequence_output"], expected["sequence_output"], atol=1e-6)


def _bert_style_logits(model, pooled, name="classifier"):
    w, b = _weights(model, f"{name}/output_weights"), _weights(model, f"{name}/output_bias")
    return pooled @ w.T + b


@pytest.mark.parametrize("arch", ["bert", "albert", "mobilebert"])
def test_classifier_is_dropout_then_output_weights_over_the_pooled_output(arch, backbones):
    config, backbone = backbones[arch]
    model = build_task_model(backbone, arch, config, "classification", C)
    inputs = _inputs(config)
    pooled = backbone(inputs)["pooled_output"].numpy().astype(np.float64)
    assert _weights(model, "classifier/output_weights").shape == (C, config.hidden_size)
    np.testing.assert_allclose(model(inputs)["logits"], _bert_style_logits(model, pooled),
                               atol=1e-5)
    assert default_head_dropout(arch, "classification") == 0.1
    assert [l.rate for l in model.layers if l.name == "classifier_dropout"] == [0.1]


def test_tinybert_classifier_reads_relu_of_the_pooled_output(backbones):
    config, backbone = backbones["tinybert"]
    model = build_task_model(backbone, "tinybert", config, "classification", C)
    inputs = _inputs(config)
    pooled = backbone(inputs)["pooled_output"].numpy().astype(np.float64)
    assert (pooled < 0).any()  # tanh pooler: relu changes something
    np.testing.assert_allclose(model(inputs)["logits"],
                               _bert_style_logits(model, np.maximum(pooled, 0.0)), atol=1e-5)
    # No dropout in TinyBERT's classifier: training and inference agree (backbone dropout 0).
    np.testing.assert_allclose(model(inputs, training=True)["logits"], model(inputs)["logits"],
                               atol=1e-6)


@pytest.mark.parametrize("classifier_activation", [True, False])
def test_mobilebert_classifier_activation_decides_the_tanh_pooler(classifier_activation):
    config = tiny_config("mobilebert", classifier_activation=classifier_activation, **NO_DROPOUT)
    backbone = build_backbone("mobilebert", config)
    model = build_task_model(backbone, "mobilebert", config, "classification", C)
    inputs = _inputs(config)
    cls = backbone(inputs)["sequence_output"].numpy()[:, 0].astype(np.float64)
    if classifier_activation:  # tanh(dense([CLS])) as BERT's pooler
        pooled = np.tanh(cls @ _weights(model, "bert/pooler/dense/kernel")
                         + _weights(model, "bert/pooler/dense/bias"))
    else:  # the raw [CLS] vector, no pooler variables at all
        assert not [v for v in model.variables if "pooler" in v.path]
        pooled = cls
    np.testing.assert_allclose(model(inputs)["logits"], _bert_style_logits(model, pooled),
                               atol=1e-5)


def _gelu_erf(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def test_electra_original_classifier_is_one_dense_layer_over_the_cls_vector(backbones):
    config, backbone = backbones["electra"]
    model = build_task_model(backbone, "electra", config, "classification", C,
                             electra_head="electra")
    inputs = _inputs(config)
    cls = backbone(inputs)["sequence_output"].numpy()[:, 0].astype(np.float64)
    kernel, bias = _weights(model, "classifier/kernel"), _weights(model, "classifier/bias")
    assert kernel.shape == (config.hidden_size, C)
    np.testing.assert_allclose(model(inputs)["logits"], cls @ kernel + bias, atol=1e-5)
    assert not [v for v in model.trainable_variables if "classifier_dense" in v.path]


def test_electra_transformers_head_is_dense_gelu_dense(backbones):
    config, backbone = backbones["electra"]
    model = build_task_model(backbone, "electra", config, "classification", C,
                             electra_head="transformers")
    dense_kernel = [v for v in model.variables if v.path == "classifier_dense/kernel"][0]
    dense_kernel.assign(dense_kernel * 30.0)  # pre-activations of order 1: the GELU forms differ
    # and an output layer large enough that their difference shows whatever the random weights
    out = [v for v in model.variables if v.path == "classifier/kernel"][0]
    out.assign(out * 100.0)
    inputs = _inputs(config)
    cls = backbone(inputs)["sequence_output"].numpy()[:, 0].astype(np.float64)
    pre = cls @ _weights(model, "classifier_dense/kernel") + _weights(model, "classifier_dense/bias")
    out_kernel, out_bias = _weights(model, "classifier/kernel"), _weights(model, "classifier/bias")
    expected = _gelu_erf(pre) @ out_kernel + out_bias
    assert _weights(model, "classifier_dense/kernel").shape == (config.hidden_size,) * 2
    got = model(inputs)["logits"].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-5)
    # ELECTRA's GELU is the erf form, not BERT's tanh approximation.
    tanh_form = 0.5 * pre * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (pre + 0.044715 * pre ** 3)))
    assert np.abs(got - (tanh_form @ out_kernel + out_bias)).max() > 1e-4
    assert [l.name for l in model.layers if "dropout" in l.name] == [
        "classifier_dropout", "classifier_dropout_1"]


@pytest.mark.parametrize("arch", ["bert", "electra"])
def test_tagging_projects_every_position(arch, backbones):
    config, backbone = backbones[arch]
    model = build_task_model(backbone, arch, config, "tagging", C)
    inputs = _inputs(config)
    seq = backbone(inputs)["sequence_output"].numpy().astype(np.float64)
    if arch == "electra":
        expected = seq @ _weights(model, "classifier/kernel") + _weights(model, "classifier/bias")
        assert default_head_dropout(arch, "tagging") == 0.0
    else:
        expected = _bert_style_logits(model, seq)
        assert default_head_dropout(arch, "tagging") == 0.1
    np.testing.assert_allclose(model(inputs)["logits"], expected, atol=1e-5)


@pytest.mark.parametrize("arch", ["albert", "electra"])
def test_span_head_is_run_squad_output_weights_split_into_start_and_end(arch, backbones):
    config, backbone = backbones[arch]
    model = build_task_model(backbone, arch, config, "span", 0)
    inputs = _inputs(config)
    seq = backbone(inputs)["sequence_output"].numpy().astype(np.float64)
    w, b = _weights(model, "span_head/output_weights"), _weights(model, "span_head/output_bias")
    assert w.shape == (2, config.hidden_size)
    out = model(inputs)
    np.testing.assert_allclose(out["start_logits"], seq @ w[0] + b[0], atol=1e-5)
    np.testing.assert_allclose(out["end_logits"], seq @ w[1] + b[1], atol=1e-5)
    np.testing.assert_allclose(model(inputs, training=True)["start_logits"],
                               out["start_logits"], atol=1e-6)  # no dropout in run_squad


def _reseed(model, value):
    for i, v in enumerate(seed_state_variables(model)):
        v.assign(np.array([value, i]).astype(v.dtype))


def test_head_dropout_only_in_training_and_reproducible_from_the_seed(backbones):
    config, backbone = backbones["bert"]
    model = build_task_model(backbone, "bert", config, "tagging", C, head_dropout=0.5)
    assert len(seed_state_variables(model)) > len(seed_state_variables(backbone))
    inputs = _inputs(config)
    eval_a, eval_b = model(inputs)["logits"], model(inputs, training=False)["logits"]
    np.testing.assert_array_equal(eval_a, eval_b)
    _reseed(model, 7)
    train_a = model(inputs, training=True)["logits"].numpy()
    _reseed(model, 7)
    train_b = model(inputs, training=True)["logits"].numpy()
    _reseed(model, 8)
    train_c = model(inputs, training=True)["logits"].numpy()
    np.testing.assert_array_equal(train_a, train_b)
    assert np.abs(train_a - eval_a.numpy()).max() > 1e-3
    assert np.abs(train_a - train_c).max() > 1e-3


def test_head_dropout_zero_adds_no_dropout_layer(backbones):
    config, backbone = backbones["bert"]
    model = build_task_model(backbone, "bert", config, "classification", C, head_dropout=0.0)
    assert not [l for l in model.layers if "dropout" in l.name]


@pytest.mark.parametrize("change,message", [
    (dict(kind="regression"), "expected one of classification"),
    (dict(num_labels=0), "at least 1 label"),
    (dict(arch="bertt"), "unknown architecture"),
    (dict(electra_head="tanh"), "electra_head"),
    (dict(head_dropout=1.0), "head_dropout"),
])
def test_bad_arguments_are_one_line_config_errors(change, message, backbones):
    config, backbone = backbones["bert"]
    args = dict(arch="bert", kind="classification", num_labels=C)
    args.update(change)
    options = {k: args.pop(k) for k in ("electra_head", "head_dropout") if k in args}
    with pytest.raises(ConfigError, match=message):
        build_task_model(backbone, args["arch"], config, args["kind"], args["num_labels"],
                         **options)


def test_span_model_takes_no_labels_and_its_name(backbones):
    config, backbone = backbones["bert"]
    model = build_task_model(backbone, "bert", config, "span", 0, name="squad")
    assert model.name == "squad"
    assert [v.shape for v in model.trainable_variables if v.path.startswith("span_head")] == [
        (2, config.hidden_size), (2,)]


def test_a_checkpoint_of_a_task_model_restores_into_a_fresh_one(tmp_path):
    config = tiny_config("mobilebert", **NO_DROPOUT)
    model = build_task_model(build_backbone("mobilebert", config), "mobilebert", config,
                             "span", 0)
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    fresh = build_task_model(build_backbone("mobilebert", config), "mobilebert", config,
                             "span", 0)
    inputs = _inputs(config)
    assert np.abs(fresh(inputs)["end_logits"] - model(inputs)["end_logits"]).max() > 1e-4
    tf.train.Checkpoint(model=fresh).restore(path).assert_existing_objects_matched()
    np.testing.assert_allclose(fresh(inputs)["end_logits"], model(inputs)["end_logits"],
                               atol=1e-6)
