"""MobileBERT and the IB-BERT teacher: presets, -6 masking, pooled [CLS], decoder, counts."""
import numpy as np
import pytest

from conftest import backbone_part, make_batch, trainable_count
from tfcompact.configs import PRESETS, get_preset, tiny_config
from tfcompact.interop.tf1_names import count_parameters, tf1_variable_shapes
from tfcompact.models import build_backbone, build_pretraining_model, variable_paths

B, S, P = 2, 16, 3
MOBILEBERT_PRESETS = sorted(n for n, p in PRESETS.items() if p.arch == "mobilebert")


@pytest.mark.parametrize("preset", MOBILEBERT_PRESETS)
def test_preset_shapes_names_and_counts(preset):
    config = tiny_config(preset)
    model = build_pretraining_model(preset, config)
    out = model(make_batch(config, B, S, P))
    H, L = config.hidden_size, config.num_hidden_layers
    assert out["sequence_output"].shape == (B, S, H) and out["pooled_output"].shape == (B, H)
    assert len(out["hidden_states"]) == L + 1 and len(out["attention_logits"]) == L
    assert out["attention_logits"][0].shape == (B, config.num_attention_heads, S, S)
    assert out["mlm_logits"].shape == (B, P, config.vocab_size)
    head = get_preset(preset).sentence_head
    assert ("sentence_logits" in out) == (head != "none")
    assert variable_paths(model) == tf1_variable_shapes("mobilebert", config, sentence_head=head)
    assert trainable_count(model) == count_parameters(("mobilebert", config, head))


def test_english_student_has_extra_output_weights_and_nsp():
    config = tiny_config("mobilebert")  # E=32 < H=64
    model = build_pretraining_model("mobilebert", config)
    paths = variable_paths(model)
    assert paths["cls/predictions/extra_output_weights"] == (config.vocab_size, config.hidden_size - config.embedding_size)
    assert paths["cls/seq_relationship/output_weights"] == (2, config.hidden_size)
    assert "bert/pooler/dense/kernel" not in paths
    assert trainable_count(model) == count_parameters(("mobilebert", config))


def test_padding_logits_are_minus_six():
    config = tiny_config("mobilebert")
    model = build_backbone("mobilebert", config)
    batch = backbone_part(make_batch(config, 2, S, P, pad=5))
    out = model(batch)
    for logits in out["attention_logits"]:
        np.testing.assert_array_equal(np.asarray(logits)[1, :, :, S - 5:], -6.0)
        assert np.all(np.asarray(logits)[0] != -6.0)


def test_padding_content_does_not_reach_the_masked_logits():
    # With -6 masking the scores of padded keys are replaced, whatever the padded tokens are;
    # (their values still get weight e^-6/Z, as in the original, so outputs may move slightly).
    config = tiny_config("mobilebert")
    model = build_backbone("mobilebert", config)
    batch = backbone_part(make_batch(config, 2, S, P, pad=5))
    other = {k: v.copy() for k, v in batch.items()}
    other["input_ids"][1, S - 5:] = 31
    a, b = model(batch), model(other)
    np.testing.assert_array_equal(np.asarray(a["attention_logits"][0])[1, ..., S - 5:],
                                  np.asarray(b["attention_logits"][0])[1, ..., S - 5:])


def test_pooled_output_is_raw_cls_without_classifier_activation():
    config = tiny_config("mobilebert")
    out = build_backbone("mobilebert", config)(backbone_part(make_batch(config, B, S, P)))
    np.testing.assert_array_equal(np.asarray(out["pooled_output"]), np.asarray(out["sequence_output"])[:, 0])
    config = tiny_config("mobilebert", classifier_activation=True)
    model = build_backbone("mobilebert", config)
    out = model(backbone_part(make_batch(config, B, S, P)))
    assert "bert/pooler/dense/kernel" in variable_paths(model)
    assert np.all(np.abs(np.asarray(out["pooled_output"])) <= 1.0)


def test_teacher_scope_and_shapes():
    config = tiny_config("ibbert_teacher")
    model = build_backbone("ibbert_teacher", config, name="teacher")
    paths = variable_paths(model)
    assert all(p.startswith("teacher/bert/") for p in paths)
    Bw, H = config.intra_bottleneck_size, config.hidden_size
    assert paths["teacher/bert/encoder/layer_0/attention/self/query/kernel"] == (H, Bw)
    assert paths["teacher/bert/encoder/layer_0/output/bottleneck/dense/kernel"] == (Bw, H)
    assert "teacher/bert/encoder/layer_0/attention/output/LayerNorm/gamma" in paths
    expected = tf1_variable_shapes("mobilebert", config, pretraining=False, prefix="teacher/")
    assert paths == expected


def test_stacked_ffns_present():
    config = tiny_config("mobilebert_base_f4_zh")
    paths = variable_paths(build_backbone("mobilebert_base_f4_zh", config))
    for j in range(config.num_feedforward_networks - 1):
        assert f"bert/encoder/layer_1/ffn_layer_{j}/output/FakeLayerNorm/gamma" in paths
    assert f"bert/encoder/layer_1/ffn_layer_{config.num_feedforward_networks - 1}/intermediate/dense/kernel" not in paths
