"""TinyBERT students: BERT backbone plus fit_dense (H_student -> H_teacher)."""
import numpy as np
import pytest

from conftest import backbone_part, make_batch, trainable_count
from tfcompact.configs import PRESETS, tiny_config
from tfcompact.interop.tf1_names import count_parameters
from tfcompact.models import build_backbone, build_pretraining_model, build_tinybert_student, variable_paths

B, S, P = 2, 16, 3
TINYBERT_PRESETS = sorted(n for n, p in PRESETS.items() if p.arch == "tinybert")


@pytest.mark.parametrize("preset", TINYBERT_PRESETS)
def test_preset_pretraining_model(preset):
    config = tiny_config(preset, hidden_size=32, num_attention_heads=2, fit_size=48)
    model = build_pretraining_model(preset, config)
    out = model(make_batch(config, B, S, P))
    assert out["mlm_logits"].shape == (B, P, config.vocab_size)
    assert out["sentence_logits"].shape == (B, 2)
    fit = out["fit_hidden_states"]
    assert len(fit) == config.num_hidden_layers + 1 and all(f.shape == (B, S, 48) for f in fit)
    fit_params = 32 * 48 + 48
    assert trainable_count(model) == count_parameters(("tinybert", config)) + fit_params
    assert variable_paths(model)["fit_dense/kernel"] == (32, 48)


def test_student_fit_dense_projects_every_hidden_state():
    config = tiny_config("tinybert", hidden_size=32, num_attention_heads=2, fit_size=64)
    student = build_tinybert_student(config)
    out = student(backbone_part(make_batch(config, B, S, P)))
    fit_dense = student.get_layer("fit_dense")
    W, b = np.asarray(fit_dense.kernel), np.asarray(fit_dense.bias)
    assert W.shape == (32, 64)
    for h, f in zip(out["hidden_states"], out["fit_hidden_states"]):
        np.testing.assert_allclose(np.asarray(f), np.asarray(h) @ W + b, rtol=1e-4, atol=1e-4)


def test_backbone_is_plain_bert():
    config = tiny_config("tinybert")
    tiny = variable_paths(build_backbone("tinybert", config))
    bert = variable_paths(build_backbone("bert", config))
    assert tiny == bert
