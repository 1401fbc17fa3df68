"""build_backbone / build_pretraining_model by architecture or preset, and their errors."""
import numpy as np
import pytest

from conftest import make_batch
from tfcompact.configs import get_preset, resolve_model, tiny_config
from tfcompact.errors import ConfigError
from tfcompact.models import (
    ElectraPretrainer,
    build_backbone,
    build_pretraining_model,
    get_backbone,
    variable_paths,
)


def test_resolve_by_arch_and_preset():
    config = tiny_config("albert")
    r = resolve_model("albert", config)
    assert (r.arch, r.config) == ("albert", config)
    r = resolve_model("albert_tiny_zh")
    assert r.arch == "albert" and r.config == get_preset("albert_tiny_zh").config and r.preset.name == "albert_tiny_zh"
    r = resolve_model(get_preset("electra_small_zh"), tiny_config("electra_small_zh"))
    assert r.arch == "electra" and r.config.hidden_size == 64


def test_errors_name_what_is_wrong():
    with pytest.raises(ConfigError, match="needs a config"):
        build_backbone("bert")
    with pytest.raises(ConfigError, match="MobileBertConfig"):
        build_backbone("mobilebert", tiny_config("bert"))
    with pytest.raises(ConfigError, match="unknown preset"):
        build_backbone("bert_tiny_zh_typo")
    with pytest.raises(ConfigError, match="sentence_head"):
        build_pretraining_model("bert", tiny_config("bert"), sentence_head="mlm")
    with pytest.raises(ConfigError, match="ELECTRA"):
        build_pretraining_model("electra", tiny_config("electra"), sentence_head="nsp")


def test_default_sentence_heads():
    assert "sentence_logits" in build_pretraining_model("albert", tiny_config("albert")).output
    zh = build_pretraining_model("mobilebert_base_f2_zh", tiny_config("mobilebert_base_f2_zh"))
    assert "sentence_logits" not in zh.output


def test_get_backbone():
    model = build_pretraining_model("bert", tiny_config("bert"))
    backbone = get_backbone(model)
    assert backbone.name == "bert" and "bert/pooler/dense/kernel" in variable_paths(backbone)
    electra = build_pretraining_model("electra", tiny_config("electra"))
    assert isinstance(electra, ElectraPretrainer) and get_backbone(electra) is electra.discriminator


def test_pretraining_model_ignores_extra_batch_keys():
    config = tiny_config("bert")
    model = build_pretraining_model("bert", config)
    batch = make_batch(config)
    batch["masked_lm_weights"] = np.ones_like(batch["masked_lm_ids"], dtype="float32")
    batch["next_sentence_labels"] = np.zeros((2, 1), "int32")
    reordered = dict(reversed(list(batch.items())))
    a, b = model(batch), model(reordered)
    np.testing.assert_array_equal(np.asarray(a["mlm_logits"]), np.asarray(b["mlm_logits"]))


@pytest.mark.parametrize(
    "arch, overrides",
    [("bert", {}), ("tinybert", {}), ("albert", dict(num_hidden_groups=2, inner_group_num=2)),
     ("albert", dict(layout="brightmart")), ("electra", {}), ("mobilebert", {}), ("ibbert_teacher", {})],
)
def test_checkpoint_holds_every_variable(tmp_path, arch, overrides):
    # tf.train.Checkpoint follows attributes, not Keras layer lists: every variable must be reachable.
    import tensorflow as tf

    from tfcompact.modeldir import checkpoint_model_variable_count

    model = build_pretraining_model(arch, tiny_config(arch, **overrides))
    prefix = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    assert checkpoint_model_variable_count(prefix) == len({id(v) for v in model.weights})
