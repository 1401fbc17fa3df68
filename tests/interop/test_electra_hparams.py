"""ELECTRA release hparams -> ElectraConfig (tfcompact/interop/release_config.py).

Expected sizes are worked out by hand from google-research/electra: `util/training_utils.py`
get_bert_config (small 256 x 12, base 768 x 12, large 1024 x 24; heads = max(1, H // 64),
FFN = 4 H unless model_hparam_overrides sets them), `configure_pretraining.py` (vocab 30522,
embedding 128 for small else H, generator_hidden_size 0.25, generator_layers 1.0) and
`run_pretraining.py` get_generator_config; the Chinese generator sizes are those of
ymcui/Chinese-ELECTRA's config/*_generator_config.json files.
"""
import json

import pytest

from tfcompact.configs import ElectraConfig
from tfcompact.errors import ConfigError
from tfcompact.interop.release_config import (electra_config_from_hparams, is_electra_hparams,
                                              load_release_config)


def sizes(config):
    """(vocab, H, L, heads, FFN, E) of a config."""
    return (config.vocab_size, config.hidden_size, config.num_hidden_layers,
            config.num_attention_heads, config.intermediate_size, config.embedding_size)


# hparams, discriminator (vocab, H, L, heads, FFN, E), generator (H, L, heads, FFN)
CASES = {
    # ELECTRA-Small as google-research released it: a full-width generator
    "google_small": ({"model_size": "small", "generator_hidden_size": 1.0},
                     (30522, 256, 12, 4, 1024, 128), (256, 12, 4, 1024)),
    # Chinese-ELECTRA small: 21128 words, generator 1/4 wide: 64 wide, 1 head, FFN 256
    "zh_small": ({"model_size": "small", "vocab_size": 21128},
                 (21128, 256, 12, 4, 1024, 128), (64, 12, 1, 256)),
    # Chinese small-ex: 24 layers through the overrides, E = 256 given at the top level
    "zh_small_ex": ({"model_size": "small", "vocab_size": 21128, "embedding_size": 256,
                     "model_hparam_overrides": {"num_hidden_layers": 24}},
                    (21128, 256, 24, 4, 1024, 256), (64, 24, 1, 256)),
    # base: E = H = 768; generator 768 / 4 = 192 wide, 192 // 64 = 3 heads, FFN 768
    "zh_base": ({"model_size": "base", "vocab_size": 21128},
                (21128, 768, 12, 12, 3072, 768), (192, 12, 3, 768)),
    # large: generator 1024 / 4 = 256 wide, 4 heads, FFN 1024, as deep (24)
    "zh_large": ({"model_size": "large", "vocab_size": 21128},
                 (21128, 1024, 24, 16, 4096, 1024), (256, 24, 4, 1024)),
    # the paper's base generator (1/3): round(768 * 0.33333) = round(255.99744) = 256
    "base_third": ({"model_size": "base", "generator_hidden_size": 0.33333},
                   (30522, 768, 12, 12, 3072, 768), (256, 12, 4, 1024)),
    # hidden_size overridden: heads 512 // 64 = 8, FFN 2048 derived from the new width;
    # half as deep a generator: round(12 * 0.5) = 6
    "override_hidden": ({"model_size": "base", "generator_layers": 0.5,
                         "model_hparam_overrides": {"hidden_size": 512}},
                        (30522, 512, 12, 8, 2048, 512), (128, 6, 2, 512)),
    # heads and FFN set in the overrides win over the derived ones; vocab_size in the
    # overrides wins over the top-level one (the overrides are applied last)
    "override_all": ({"model_size": "small", "vocab_size": 21128,
                      "model_hparam_overrides": {"hidden_size": 96, "num_attention_heads": 3,
                                                 "intermediate_size": 200, "vocab_size": 500}},
                     (500, 96, 12, 3, 200, 128), (24, 12, 1, 96)),
    # no model_size: ELECTRA's default, small
    "default_size": ({"learning_rate": 5e-4},
                     (30522, 256, 12, 4, 1024, 128), (64, 12, 1, 256)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_sizes_as_electra_derives_them(name):
    hparams, disc, gen = CASES[name]
    config = electra_config_from_hparams(hparams, source="hparams.json")
    assert isinstance(config, ElectraConfig)
    assert sizes(config) == disc
    g = config.generator_config()
    assert (g.hidden_size, g.num_hidden_layers, g.num_attention_heads, g.intermediate_size) == gen
    assert g.embedding_size == disc[5]  # the embeddings are shared


def test_bert_config_fields_in_overrides():
    config = electra_config_from_hparams(
        {"model_size": "base", "model_hparam_overrides": {
            "max_position_embeddings": 1024, "hidden_act": "relu", "type_vocab_size": 4,
            "hidden_dropout_prob": 0.2, "attention_probs_dropout_prob": 0.0,
            "initializer_range": 0.01}})
    assert (config.max_position_embeddings, config.hidden_act, config.type_vocab_size) == (1024, "relu", 4)
    assert (config.hidden_dropout_prob, config.attention_probs_dropout_prob,
            config.initializer_range) == (0.2, 0.0, 0.01)
    # BertConfig's defaults otherwise (model/modeling.py)
    plain = electra_config_from_hparams({"model_size": "base"})
    assert (plain.max_position_embeddings, plain.hidden_act, plain.type_vocab_size) == (512, "gelu", 2)


def test_training_keys_are_ignored():
    """The Chinese-ELECTRA README's fine-tuning hparams example (params_cmrc2018.json) and
    pretraining keys: the same model as model_size + vocab_size alone."""
    finetune = {"task_names": ["cmrc2018"], "max_seq_length": 512, "vocab_size": 21128,
                "model_size": "small", "do_train": True, "do_eval": True, "write_test_outputs": True,
                "num_train_epochs": 2, "learning_rate": 3e-4, "train_batch_size": 32,
                "eval_batch_size": 32}
    pretrain = {"model_size": "small", "vocab_size": 21128, "num_train_steps": 1000000,
                "mask_prob": 0.15, "use_tpu": True, "tpu_name": "t", "do_lower_case": False,
                "untied_generator": True, "debug": False}
    want = electra_config_from_hparams({"model_size": "small", "vocab_size": 21128})
    assert electra_config_from_hparams(finetune) == want
    assert electra_config_from_hparams(pretrain) == want


def test_detection():
    assert is_electra_hparams({"model_size": "small"})
    assert is_electra_hparams({"learning_rate": 1e-4, "vocab_size": 21128})
    assert is_electra_hparams({"model_hparam_overrides": {}})
    # a config (ours or BertConfig's fields) is not hparams, even with the generator fractions
    assert not is_electra_hparams({"vocab_size": 300, "hidden_size": 64, "embedding_size": 32,
                                   "generator_hidden_size": 0.25, "generator_layers": 1.0})
    assert not is_electra_hparams([1, 2])


@pytest.mark.parametrize("hparams,pieces", [
    ({"model_size": "medium"}, ["'model_size'", "small, base, large", "'medium'"]),
    ({"model_size": ["small"]}, ["'model_size'"]),
    ({"model_size": "small", "generator_hiden_size": 0.5},
     ["unknown ELECTRA hparam 'generator_hiden_size'", "did you mean 'generator_hidden_size'"]),
    ({"model_size": "small", "colour": "red"}, ["unknown ELECTRA hparam 'colour'"]),
    ({"model_size": "small", "hidden_size": 512}, ["'hidden_size'", "model_hparam_overrides"]),
    ({"model_size": "small", "model_hparam_overrides": {"num_hiden_layers": 4}},
     ["model_hparam_overrides.num_hiden_layers", "did you mean 'num_hidden_layers'"]),
    ({"model_size": "small", "model_hparam_overrides": {"embedding_size": 64}},
     ["model_hparam_overrides.embedding_size", "top level"]),
    ({"model_size": "small", "model_hparam_overrides": [1]}, ["'model_hparam_overrides'"]),
    ({"model_size": "small", "untied_generator_embeddings": True}, ["'untied_generator_embeddings'"]),
    ({"model_size": "small", "uniform_generator": True}, ["'uniform_generator'"]),
    ({"model_size": "small", "electra_objective": False}, ["'electra_objective'"]),
    ({"model_size": "small", "debug": True}, ["'debug'"]),
    ({"model_size": "small", "generator_hidden_size": 1.5}, ["'generator_hidden_size'"]),
    ({"model_size": "small", "vocab_size": "many"}, ["'vocab_size'"]),
])
def test_bad_hparams(hparams, pieces):
    with pytest.raises(ConfigError) as e:
        electra_config_from_hparams(hparams, source="rel/hparams.json")
    message = str(e.value)
    assert "\n" not in message and message.startswith("rel/hparams.json"), message
    for p in pieces:
        assert p in message, message


def test_load_release_config(tmp_path):
    hp = tmp_path / "hparams.json"
    hp.write_text(json.dumps({"model_size": "base", "vocab_size": 21128}), encoding="utf-8")
    assert sizes(load_release_config("electra", str(hp))) == (21128, 768, 12, 12, 3072, 768)
    with pytest.raises(ConfigError, match="ELECTRA hparams .*--arch electra"):
        load_release_config("bert", str(hp))
    # an original-format config still loads as before
    cfg = tmp_path / "electra_config.json"
    ElectraConfig(vocab_size=300, hidden_size=64, num_attention_heads=1, intermediate_size=256,
                  embedding_size=32).to_json_file(str(cfg))
    assert sizes(load_release_config("electra", str(cfg))) == (300, 64, 12, 1, 256, 32)
    bad = tmp_path / "broken.json"
    bad.write_text('{"model_size": ', encoding="utf-8")
    with pytest.raises(ConfigError, match="broken.json:1: invalid JSON"):
        load_release_config("electra", str(bad))
