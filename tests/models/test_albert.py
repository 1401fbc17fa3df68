"""ALBERT: both checkpoint layouts, parameter sharing, pre-LN, SOP head, counts."""
import numpy as np
import pytest

from conftest import backbone_part, make_batch, trainable_count
from tfcompact.configs import PRESETS, tiny_config
from tfcompact.interop.tf1_names import count_parameters, tf1_variable_shapes
from tfcompact.models import build_backbone, build_pretraining_model, variable_paths

B, S, P = 2, 16, 3
ALBERT_PRESETS = sorted(n for n, p in PRESETS.items() if p.arch == "albert")


@pytest.mark.parametrize("preset", ALBERT_PRESETS)
def test_preset_shapes_and_counts(preset):
    config = tiny_config(preset)
    model = build_pretraining_model(preset, config)
    out = model(make_batch(config, B, S, P))
    H, L = config.hidden_size, config.num_hidden_layers
    assert out["sequence_output"].shape == (B, S, H)
    assert out["pooled_output"].shape == (B, H)
    assert len(out["hidden_states"]) == L + 1 and len(out["attention_logits"]) == L
    assert out["attention_logits"][0].shape == (B, config.num_attention_heads, S, S)
    assert out["mlm_logits"].shape == (B, P, config.vocab_size)
    assert out["sentence_logits"].shape == (B, 2)  # SOP
    assert trainable_count(model) == count_parameters(("albert", config))


@pytest.mark.parametrize(
    "overrides",
    [dict(), dict(layout="brightmart"), dict(ln_type="preln"), dict(layout="brightmart", ln_type="preln"),
     dict(num_hidden_groups=2, inner_group_num=2)],
)
def test_variable_paths_are_the_tf1_names(overrides):
    config = tiny_config("albert", **overrides)
    model = build_pretraining_model("albert", config)
    assert variable_paths(model) == tf1_variable_shapes("albert", config)
    backbone = build_backbone("albert", config)
    assert trainable_count(backbone) == count_parameters(("albert", config), scope="embeddings+encoder+pooler")


def test_one_group_shares_every_layer():
    shallow = build_backbone("albert", tiny_config("albert", num_hidden_layers=2))
    deep = build_backbone("albert", tiny_config("albert", num_hidden_layers=6))
    assert len(deep.trainable_variables) == len(shallow.trainable_variables)
    assert trainable_count(deep) == trainable_count(shallow)
    assert sum("/group_0/inner_group_0/attention_1/self/query/kernel" in p for p in variable_paths(deep)) == 1


def test_one_group_per_layer_shares_nothing():
    L = 3
    shared = build_backbone("albert", tiny_config("albert", num_hidden_layers=L))
    unshared = build_backbone("albert", tiny_config("albert", num_hidden_layers=L, num_hidden_groups=L))
    per_layer = trainable_count(shared) - count_parameters(
        ("albert", tiny_config("albert", num_hidden_layers=L)), scope="embeddings+pooler")
    assert trainable_count(unshared) == trainable_count(shared) + (L - 1) * per_layer
    groups = [unshared.get_layer(f"group_{g}") for g in range(L)]
    assert len({id(g) for g in groups}) == L


def test_shared_layer_is_applied_repeatedly():
    config = tiny_config("albert", num_hidden_layers=3)
    model = build_backbone("albert", config)
    batch = backbone_part(make_batch(config, B, S, P))
    out = model(batch)
    group = model.get_layer("group_0")
    h = out["hidden_states"][1]
    for n in (2, 3):
        h, _ = group(h, input_mask=batch["input_mask"])
        np.testing.assert_allclose(np.asarray(h), np.asarray(out["hidden_states"][n]), rtol=1e-5, atol=1e-5)


def test_google_layout_maps_e_to_h_in_the_encoder():
    config = tiny_config("albert")
    paths = variable_paths(build_backbone("albert", config))
    E, H = config.embedding_size, config.hidden_size
    assert paths["bert/embeddings/position_embeddings"] == (config.max_position_embeddings, E)
    assert paths["bert/encoder/embedding_hidden_mapping_in/kernel"] == (E, H)


def test_brightmart_layout_names():
    config = tiny_config("albert", layout="brightmart")
    paths = variable_paths(build_pretraining_model("albert", config))
    E, H = config.embedding_size, config.hidden_size
    assert paths["bert/embeddings/word_embeddings_2"] == (E, H)
    assert paths["bert/embeddings/position_embeddings"] == (config.max_position_embeddings, H)
    assert "bert/encoder/layer_shared/attention/self/query/kernel" in paths
    assert paths["cls/predictions/transform/dense/kernel"] == (H, H)


def test_padding_does_not_change_real_positions():
    config = tiny_config("albert")
    model = build_backbone("albert", config)
    batch = backbone_part(make_batch(config, 2, S, P, pad=5))
    other = {k: v.copy() for k, v in batch.items()}
    other["input_ids"][1, S - 5:] = 17
    other["segment_ids"][1, S - 5:] = 1
    a, b = model(batch), model(other)
    np.testing.assert_allclose(np.asarray(a["sequence_output"])[1, :S - 5],
                               np.asarray(b["sequence_output"])[1, :S - 5], rtol=1e-4, atol=1e-4)
