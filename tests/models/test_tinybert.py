"""TinyBERT students: plain BERT networks; the distillation projection is not in the model."""
import pytest

from conftest import make_batch, trainable_count
from tfcompact.configs import PRESETS, tiny_config
from tfcompact.interop.tf1_names import count_parameters
from tfcompact.models import build_backbone, build_pretraining_model, variable_paths

B, S, P = 2, 16, 3
TINYBERT_PRESETS = sorted(n for n, p in PRESETS.items() if p.arch == "tinybert")


@pytest.mark.parametrize("preset", TINYBERT_PRESETS)
def test_preset_pretraining_model(preset):
    config = tiny_config(preset, hidden_size=32, num_attention_heads=2, fit_size=48)
    model = build_pretraining_model(preset, config)
    out = model(make_batch(config, B, S, P))
    assert out["mlm_logits"].shape == (B, P, config.vocab_size)
    assert out["sentence_logits"].shape == (B, 2)
    assert "fit_hidden_states" not in out
    assert trainable_count(model) == count_parameters(("tinybert", config))
    assert not any("fit_dense" in p for p in variable_paths(model))


def test_backbone_is_plain_bert():
    config = tiny_config("tinybert")
    tiny = variable_paths(build_backbone("tinybert", config))
    bert = variable_paths(build_backbone("bert", config))
    assert tiny == bert
