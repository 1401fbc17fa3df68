"""BERT backbone and pretraining model: shapes, TF1-named variables, masking, dropout, XLA."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import backbone_part, make_batch, trainable_count
from tfcompact.configs import tiny_config
from tfcompact.interop.tf1_names import count_parameters, tf1_variable_shapes
from tfcompact.models import build_backbone, build_pretraining_model, variable_paths
from tfcompact.models.bert import build_bert_pretraining_model

B, S, P = 2, 16, 3


@pytest.mark.parametrize("preset", ["bert_base_zh", "roberta_wwm_ext_zh", "roberta_wwm_ext_large_zh"])
def test_backbone_and_pretraining_shapes(preset):
    config = tiny_config(preset)
    batch = make_batch(config, B, S, P)
    backbone = build_backbone(preset, config)
    out = backbone(backbone_part(batch))
    H, L, N = config.hidden_size, config.num_hidden_layers, config.num_attention_heads
    assert out["sequence_output"].shape == (B, S, H)
    assert out["pooled_output"].shape == (B, H)
    assert len(out["hidden_states"]) == L + 1 and all(h.shape == (B, S, H) for h in out["hidden_states"])
    assert len(out["attention_logits"]) == L and all(a.shape == (B, N, S, S) for a in out["attention_logits"])
    model = build_pretraining_model(preset, config)
    out = model(batch)
    assert out["mlm_logits"].shape == (B, P, config.vocab_size)
    assert out["sentence_logits"].shape == (B, 2)
    np.testing.assert_array_equal(np.asarray(out["hidden_states"][-1]), np.asarray(out["sequence_output"]))


def test_variable_paths_are_the_tf1_names_and_count_matches():
    config = tiny_config("bert")
    model = build_pretraining_model("bert", config)
    paths = variable_paths(model)
    assert paths == tf1_variable_shapes("bert", config)  # same names, shapes and order
    assert trainable_count(model) == count_parameters(("bert", config))
    backbone = build_backbone("bert", config)
    assert trainable_count(backbone) == count_parameters(("bert", config), scope="embeddings+encoder+pooler")


def test_padding_does_not_change_real_positions():
    config = tiny_config("bert")
    model = build_backbone("bert", config)
    real = 10
    short = make_batch(config, 1, real, 1)
    padded = {k: np.zeros((1, S), "int32") for k in ("input_ids", "input_mask", "segment_ids")}
    for k in padded:
        padded[k][:, :real] = short[k]
    padded["input_ids"][:, real:] = np.arange(real, S) + 7  # arbitrary ids under the padding
    a = model(backbone_part(short))
    b = model(padded)
    for h_short, h_pad in zip(a["hidden_states"], b["hidden_states"]):
        np.testing.assert_allclose(np.asarray(h_pad)[:, :real], np.asarray(h_short), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(b["pooled_output"]), np.asarray(a["pooled_output"]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(b["attention_logits"][0])[..., real:], -10000.0, atol=50.0)


def test_dropout_only_in_training():
    config = tiny_config("bert")
    model = build_pretraining_model("bert", config)
    batch = make_batch(config, B, S, P)
    a, b = model(batch)["mlm_logits"], model(batch)["mlm_logits"]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    c = model(batch, training=True)["mlm_logits"]
    assert not np.allclose(np.asarray(a), np.asarray(c), atol=1e-3)


def test_mlm_logits_equal_full_sequence_logits_at_positions():
    config = tiny_config("bert")
    model = build_pretraining_model("bert", config)
    batch = make_batch(config, B, S, P)
    out = model(batch)
    head = model.get_layer("predictions")
    every = np.tile(np.arange(S, dtype="int32"), (B, 1))
    full = np.asarray(head(out["sequence_output"], every))  # [B, S, V]
    expected = np.stack([full[b, batch["masked_lm_positions"][b]] for b in range(B)])
    np.testing.assert_allclose(np.asarray(out["mlm_logits"]), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.host_xla
def test_training_step_under_jit_compile_matches_eager():
    config = tiny_config("bert")
    model = build_pretraining_model("bert", config)
    batch = {k: tf.constant(v) for k, v in make_batch(config, B, S, P).items()}

    def loss_and_grads(inputs):
        with tf.GradientTape() as tape:
            out = model(inputs, training=False)
            logp = tf.nn.log_softmax(out["mlm_logits"])
            loss = -tf.reduce_mean(tf.gather(logp, inputs["masked_lm_ids"], batch_dims=2))
            loss += tf.reduce_mean(out["sentence_logits"] ** 2)
        return loss, tape.gradient(loss, model.trainable_variables)

    eager_loss, eager_grads = loss_and_grads(batch)
    xla_loss, xla_grads = tf.function(loss_and_grads, jit_compile=True)(batch)
    np.testing.assert_allclose(float(xla_loss), float(eager_loss), rtol=1e-4)
    assert all(g is not None for g in xla_grads)
    for g_x, g_e in zip(xla_grads, eager_grads):
        np.testing.assert_allclose(np.asarray(tf.convert_to_tensor(g_x)), np.asarray(tf.convert_to_tensor(g_e)),
                                   rtol=1e-3, atol=1e-5)


def test_name_prefixes_every_variable():
    config = tiny_config("bert")
    model = build_bert_pretraining_model(config, name="teacher")
    assert all(p.startswith(("teacher/bert/", "teacher/cls/")) for p in variable_paths(model))


def test_no_sentence_head():
    config = tiny_config("bert")
    model = build_pretraining_model("bert", config, sentence_head="none")
    assert "sentence_logits" not in model(make_batch(config, B, S, P))
    assert trainable_count(model) == count_parameters(("bert", config, "none"))
