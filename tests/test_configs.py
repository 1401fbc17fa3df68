"""Configs: original field names, released files load unchanged, bad values rejected, presets."""
import dataclasses
import json
import os

import pytest

from tfcompact import configs
from tfcompact.architectures import ARCHITECTURES
from tfcompact.configs import (AlbertConfig, BertConfig, ElectraConfig, MobileBertConfig,
                               PRESETS, config_from_dict, get_preset, tiny_config)
from tfcompact.errors import ConfigError

# Released files, written by hand with the fields of the originals.
CHINESE_BERT_CONFIG = {  # chinese_L-12_H-768_A-12/bert_config.json
    "attention_probs_dropout_prob": 0.1, "directionality": "bidi", "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
    "intermediate_size": 3072, "max_position_embeddings": 512, "num_attention_heads": 12,
    "num_hidden_layers": 12, "pooler_fc_size": 768, "pooler_num_attention_heads": 12,
    "pooler_num_fc_layers": 3, "pooler_size_per_head": 128,
    "pooler_type": "first_token_transform", "type_vocab_size": 2, "vocab_size": 21128,
}
BRIGHTMART_ALBERT_TINY = {  # brightmart/albert_zh albert_config/albert_config_tiny.json
    "attention_probs_dropout_prob": 0.0, "directionality": "bidi", "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0, "hidden_size": 312, "embedding_size": 128,
    "initializer_range": 0.02, "intermediate_size": 1248, "max_position_embeddings": 512,
    "num_attention_heads": 12, "num_hidden_layers": 4, "pooler_fc_size": 768,
    "pooler_num_attention_heads": 12, "pooler_num_fc_layers": 3, "pooler_size_per_head": 128,
    "pooler_type": "first_token_transform", "type_vocab_size": 2, "vocab_size": 21128,
    "ln_type": "postln",
}
GOOGLE_ALBERT_BASE = {  # google-research/albert albert_base/albert_config.json (ints for dropout)
    "attention_probs_dropout_prob": 0, "hidden_act": "gelu", "hidden_dropout_prob": 0,
    "embedding_size": 128, "hidden_size": 768, "initializer_range": 0.02,
    "intermediate_size": 3072, "max_position_embeddings": 512, "num_attention_heads": 12,
    "num_hidden_layers": 12, "num_hidden_groups": 1, "net_structure_type": 0, "gap_size": 0,
    "num_memory_blocks": 0, "inner_group_num": 1, "down_scale_factor": 1,
    "type_vocab_size": 2, "vocab_size": 30000,
}
MOBILEBERT_OPT = {  # uncased_L-24_H-128_B-512_A-4_F-4_OPT.json
    "attention_probs_dropout_prob": 0.1, "hidden_act": "relu", "hidden_dropout_prob": 0.0,
    "embedding_size": 128, "hidden_size": 512, "initializer_range": 0.02,
    "intermediate_size": 512, "intra_bottleneck_size": 128, "key_query_shared_bottleneck": True,
    "max_position_embeddings": 512, "normalization_type": "no_norm", "num_attention_heads": 4,
    "num_feedforward_networks": 4, "num_hidden_layers": 24, "trigram_input": True,
    "type_vocab_size": 2, "use_bottleneck": True, "use_bottleneck_attention": False,
    "vocab_size": 30522, "classifier_activation": False,
}
TINYBERT_4L = {  # TinyBERT General_TinyBERT_4L_312D config.json (+ fit_size)
    "attention_probs_dropout_prob": 0.1, "cell": {}, "emb_size": 312, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "hidden_size": 312, "initializer_range": 0.02,
    "intermediate_size": 1200, "max_position_embeddings": 512, "num_attention_heads": 12,
    "num_hidden_layers": 4, "pre_trained": "", "structure": [], "training": "",
    "type_vocab_size": 2, "vocab_size": 30522, "fit_size": 768,
}
ELECTRA_SMALL_ZH = {  # an ELECTRA BertConfig with embedding_size
    "attention_probs_dropout_prob": 0.1, "embedding_size": 128, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "hidden_size": 256, "initializer_range": 0.02,
    "intermediate_size": 1024, "max_position_embeddings": 512, "num_attention_heads": 4,
    "num_hidden_layers": 12, "type_vocab_size": 2, "vocab_size": 21128,
}

RELEASED = [
    ("bert", CHINESE_BERT_CONFIG),
    ("albert", BRIGHTMART_ALBERT_TINY),
    ("albert", GOOGLE_ALBERT_BASE),
    ("mobilebert", MOBILEBERT_OPT),
    ("tinybert", TINYBERT_4L),
    ("electra", ELECTRA_SMALL_ZH),
]


def _write(tmp_path, name, d):
    path = tmp_path / name
    path.write_text(json.dumps(d, indent=2), encoding="utf-8")
    return path


@pytest.mark.parametrize("arch,released", RELEASED)
def test_released_config_files_load_unchanged(tmp_path, arch, released):
    path = _write(tmp_path, "config.json", released)
    cfg = configs.config_from_json_file(arch, path)
    written = cfg.to_dict()
    # every key of the released file comes back with the same value
    for key, value in released.items():
        assert key in written, key
        assert written[key] == value, key
    # written again and read again: the same config
    out = tmp_path / "out.json"
    cfg.to_json_file(out)
    assert type(cfg).from_json_file(out) == cfg
    assert json.loads(out.read_text(encoding="utf-8")) == written


def test_chinese_bert_config_round_trips_exactly(tmp_path):
    cfg = BertConfig.from_json_file(_write(tmp_path, "bert_config.json", CHINESE_BERT_CONFIG))
    assert cfg.to_dict() == CHINESE_BERT_CONFIG
    assert cfg.directionality == "bidi" and cfg.pooler_num_fc_layers == 3


def test_values_of_released_files():
    tiny = AlbertConfig.from_dict(BRIGHTMART_ALBERT_TINY)
    assert (tiny.embedding_size, tiny.hidden_size, tiny.ln_type, tiny.layout) == (128, 312, "postln", "google")
    mb = MobileBertConfig.from_dict(MOBILEBERT_OPT)
    assert mb.true_hidden_size == 128 and mb.normalization_type == "no_norm"
    tb = BertConfig.from_dict(TINYBERT_4L)
    assert tb.fit_size == 768 and tb.cell == {} and tb.structure == []
    google = AlbertConfig.from_dict(GOOGLE_ALBERT_BASE)
    assert google.hidden_dropout_prob == 0.0 and isinstance(google.hidden_dropout_prob, float)


def test_every_field_written_explicitly():
    written = MobileBertConfig(vocab_size=100).to_dict()
    for key in ("key_query_shared_bottleneck", "use_bottleneck_attention", "normalization_type",
                "trigram_input", "classifier_activation", "num_feedforward_networks",
                "intra_bottleneck_size", "embedding_size", "use_bottleneck"):
        assert key in written
    assert written["key_query_shared_bottleneck"] is True
    albert = AlbertConfig(vocab_size=100).to_dict()
    for key in ("embedding_size", "num_hidden_groups", "inner_group_num", "ln_type", "layout",
                "layers_to_keep", "down_scale_factor", "net_structure_type", "gap_size"):
        assert key in albert
    # ELECTRA: embedding_size None means hidden_size, and is written as a number
    electra = ElectraConfig(vocab_size=100, hidden_size=256, num_attention_heads=4)
    assert electra.to_dict()["embedding_size"] == 256
    assert electra.to_dict()["generator_hidden_size"] == 0.25


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_config_round_trips(tmp_path, name):
    preset = PRESETS[name]
    d = preset.config.to_dict()
    again = config_from_dict(preset.arch, d)
    assert again == preset.config
    assert again.to_dict() == d
    path = tmp_path / "cfg.json"
    again.to_json_file(path)
    assert configs.config_from_json_file(preset.arch, path) == preset.config
    assert sorted(os.listdir(tmp_path)) == ["cfg.json"]  # no temp file left behind


def test_to_json_file_replaces_atomically(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("old", encoding="utf-8")
    BertConfig(vocab_size=10, hidden_size=64, num_attention_heads=4).to_json_file(path)
    assert json.loads(path.read_text(encoding="utf-8"))["hidden_size"] == 64
    assert sorted(os.listdir(tmp_path)) == ["c.json"]


BAD = [
    (BertConfig, {"vocab_size": 100, "hidden_size": "768"}, "hidden_size"),
    (BertConfig, {"vocab_size": 100, "hidden_size": 100}, "hidden_size"),  # 100 % 12
    (BertConfig, {"vocab_size": 100, "hidden_size": 0}, "hidden_size"),
    (BertConfig, {"vocab_size": -5}, "vocab_size"),
    (BertConfig, {"vocab_size": 100, "num_hidden_layers": True}, "num_hidden_layers"),
    (BertConfig, {"vocab_size": 100, "hidden_act": "gelux"}, "hidden_act"),
    (BertConfig, {"vocab_size": 100, "hidden_dropout_prob": 1.5}, "hidden_dropout_prob"),
    (BertConfig, {"vocab_size": 100, "hidden_dim": 768}, "hidden_dim"),
    (BertConfig, {"hidden_size": 768}, "vocab_size"),
    (AlbertConfig, {"vocab_size": 100, "num_hidden_layers": 12, "num_hidden_groups": 5}, "num_hidden_layers"),
    (AlbertConfig, {"vocab_size": 100, "ln_type": "sandwich"}, "ln_type"),
    (AlbertConfig, {"vocab_size": 100, "layout": "pytorch"}, "layout"),
    (AlbertConfig, {"vocab_size": 100, "embedding_size": -1}, "embedding_size"),
    (AlbertConfig, {"vocab_size": 100, "layout": "brightmart", "num_hidden_groups": 2}, "num_hidden_groups"),
    (ElectraConfig, {"vocab_size": 100, "generator_hidden_size": 0.0}, "generator_hidden_size"),
    (ElectraConfig, {"vocab_size": 100, "generator_hidden_size": 1.5}, "generator_hidden_size"),
    (ElectraConfig, {"vocab_size": 100, "generator_layers": 0}, "generator_layers"),
    (MobileBertConfig, {"vocab_size": 100, "intra_bottleneck_size": 130}, "intra_bottleneck_size"),
    (MobileBertConfig, {"vocab_size": 100, "normalization_type": "batch_norm"}, "normalization_type"),
    (MobileBertConfig, {"vocab_size": 100, "trigram_input": "yes"}, "trigram_input"),
    (MobileBertConfig, {"vocab_size": 100, "embedding_size": 1024}, "embedding_size"),
    (MobileBertConfig, {"vocab_size": 100, "num_feedforward_networks": 0}, "num_feedforward_networks"),
]


@pytest.mark.parametrize("cls,d,field_name", BAD)
def test_bad_config_rejected_naming_field_and_file(tmp_path, cls, d, field_name):
    path = _write(tmp_path, "bad_config.json", d)
    with pytest.raises(ConfigError) as info:
        cls.from_json_file(path)
    message = str(info.value)
    assert f"'{field_name}'" in message
    assert str(path) in message
    assert "\n" not in message


def test_invalid_json_and_missing_file_name_the_path(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n "vocab_size": 10,\n}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.json:3"):
        BertConfig.from_json_file(path)
    with pytest.raises(ConfigError, match="missing.json"):
        BertConfig.from_json_file(tmp_path / "missing.json")


def test_replace_checks_and_rejects_unknown_fields():
    cfg = BertConfig(vocab_size=100)
    assert cfg.replace(hidden_size=96).hidden_size == 96
    with pytest.raises(ConfigError, match="hidden_size"):
        cfg.replace(hidden_size=97)
    with pytest.raises(ConfigError, match="hidden_szie"):
        cfg.replace(hidden_szie=96)


def test_generator_config_matches_chinese_electra_table():
    # recipes.md: generator hidden/heads/FFN small 64/1/256, base 192/3/768, large 256/4/1024
    for name, expected in [("electra_small_zh", (64, 1, 256, 12)), ("electra_small_ex_zh", (64, 1, 256, 24)),
                           ("electra_base_zh", (192, 3, 768, 12)), ("electra_large_zh", (256, 4, 1024, 24))]:
        cfg = PRESETS[name].config
        gen = cfg.generator_config()
        assert (gen.hidden_size, gen.num_attention_heads, gen.intermediate_size,
                gen.num_hidden_layers) == expected, name
        assert gen.embedding_size == cfg.embedding_size
    # English base: a 1/3-width generator of 768 is 256 wide (rounded, not truncated to 255)
    third = ElectraConfig(vocab_size=100, generator_hidden_size=1 / 3).generator_config()
    assert third.hidden_size == 256 and third.num_attention_heads == 4


PRESET_SHAPES = {  # name: (layers, hidden, heads, intermediate), from recipes.md
    "albert_tiny_zh": (4, 312, 12, 1248), "albert_small_zh": (6, 384, 12, 1536),
    "albert_base_zh": (12, 768, 12, 3072), "albert_large_zh": (24, 1024, 16, 4096),
    "albert_xlarge_zh": (24, 2048, 32, 8192), "albert_xxlarge_zh": (12, 4096, 64, 16384),
    "electra_small_zh": (12, 256, 4, 1024), "electra_small_ex_zh": (24, 256, 4, 1024),
    "electra_base_zh": (12, 768, 12, 3072), "electra_large_zh": (24, 1024, 16, 4096),
    "mobilebert_base_f2_zh": (12, 768, 12, 512), "mobilebert_base_f4_zh": (12, 768, 12, 512),
    "mobilebert_large_f2_zh": (24, 1024, 16, 512), "mobilebert_large_f4_zh": (24, 1024, 16, 512),
    "ibbert_teacher": (24, 512, 4, 4096),
    "tinybert_4l_312_zh": (4, 312, 12, 1200), "tinybert_6l_768_zh": (6, 768, 12, 3072),
    "bert_base_zh": (12, 768, 12, 3072), "roberta_wwm_ext_zh": (12, 768, 12, 3072),
    "roberta_wwm_ext_large_zh": (24, 1024, 16, 4096),
}


def test_presets_are_the_published_models():
    assert set(PRESETS) == set(PRESET_SHAPES)
    for name, shape in PRESET_SHAPES.items():
        c = PRESETS[name].config
        assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == shape, name
        assert c.vocab_size == 21128, name
        assert PRESETS[name].source and PRESETS[name].params_scope
    for name in ("albert_tiny_zh", "albert_small_zh", "albert_base_zh", "albert_large_zh",
                 "albert_xlarge_zh", "albert_xxlarge_zh"):
        c = PRESETS[name].config
        assert c.embedding_size == 128 and c.hidden_dropout_prob == 0.0
        assert c.ln_type == ("preln" if name == "albert_xxlarge_zh" else "postln")
    assert [PRESETS[f"electra_{n}_zh"].config.embedding_size for n in ("small", "small_ex", "base", "large")] \
        == [128, 256, 768, 1024]
    for name, b, ffn, bottleneck_attention in [("mobilebert_base_f2_zh", 144, 2, True),
                                               ("mobilebert_base_f4_zh", 144, 4, False),
                                               ("mobilebert_large_f2_zh", 128, 2, True),
                                               ("mobilebert_large_f4_zh", 128, 4, False)]:
        c = PRESETS[name].config
        assert (c.intra_bottleneck_size, c.num_feedforward_networks, c.use_bottleneck_attention) == \
            (b, ffn, bottleneck_attention)
        assert c.embedding_size == c.hidden_size and c.trigram_input
        assert c.hidden_act == "relu" and c.normalization_type == "no_norm"
        assert c.classifier_activation is False and PRESETS[name].sentence_head == "none"
    teacher = PRESETS["ibbert_teacher"].config
    assert (teacher.intra_bottleneck_size, teacher.embedding_size, teacher.normalization_type,
            teacher.use_bottleneck_attention, teacher.key_query_shared_bottleneck) == \
        (1024, 128, "layer_norm", False, False)
    assert PRESETS["mobilebert_base_f2_zh"].teacher == "roberta_wwm_ext_zh"
    assert PRESETS["mobilebert_large_f4_zh"].teacher == "roberta_wwm_ext_large_zh"


def test_get_preset_suggests_close_names():
    assert get_preset("albert_tiny_zh").arch == "albert"
    with pytest.raises(ConfigError, match="albert_tiny_zh"):
        get_preset("albert_tiny")


@pytest.mark.parametrize("name", sorted(PRESETS) + list(ARCHITECTURES))
def test_tiny_config_keeps_structure(name):
    cfg = tiny_config(name)
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads,
            cfg.intermediate_size, cfg.vocab_size, cfg.max_position_embeddings) == (2, 64, 4, 128, 300, 64)
    if name in PRESETS:
        original = PRESETS[name].config
        assert type(cfg) is type(original)
        if hasattr(original, "embedding_size"):
            assert cfg.embedding_size == (64 if original.embedding_size == original.hidden_size else 32)
        for flag in ("ln_type", "layout", "use_bottleneck_attention", "key_query_shared_bottleneck",
                     "num_feedforward_networks", "normalization_type", "hidden_act", "trigram_input"):
            if hasattr(original, flag):
                assert getattr(cfg, flag) == getattr(original, flag), flag
    if isinstance(cfg, MobileBertConfig):
        assert cfg.intra_bottleneck_size == 32
    if isinstance(cfg, AlbertConfig) and name == "albert":
        assert cfg.embedding_size == 32
    assert tiny_config(name, num_hidden_layers=3).num_hidden_layers == 3


def test_unknown_architecture():
    with pytest.raises(ConfigError, match="albert"):
        config_from_dict("alberta", {"vocab_size": 10})


def test_huggingface_config_is_named_as_such():
    hf = dict(CHINESE_BERT_CONFIG, model_type="bert", layer_norm_eps=1e-12)
    with pytest.raises(ConfigError, match="HuggingFace"):
        BertConfig.from_dict(hf, source="config.json")


@pytest.mark.parametrize("arch", ["bert", "albert", "electra", "mobilebert", "tinybert"])
def test_written_keys_are_every_field_once_in_the_release_order(arch):
    config = tiny_config(arch)
    order = config.key_order()
    assert sorted(order) == sorted(f.name for f in dataclasses.fields(config))
    written = list(json.loads(config.to_json_string()))
    assert written == [k for k in order if k in written]
    assert written[0] == "vocab_size"
    if hasattr(config, "embedding_size"):
        assert written[1] == "embedding_size"  # ALBERT/ELECTRA/MobileBERT files put it second
    assert type(config).from_dict(json.loads(config.to_json_string())) == config


def test_config_file_on_a_remote_file_system_loads_through_tensorflow():
    """model.config_file may be on gs://; TensorFlow's in-memory file system (ram://) stands
    in for it here: the same gfile code path, no network."""
    import tensorflow as tf

    config = tiny_config("albert")
    path = "ram://configs/albert_config.json"
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(config.to_json_string())
    assert configs.config_from_json_file("albert", path) == config
    with pytest.raises(ConfigError, match="ram://configs/missing.json: cannot read config file"):
        configs.config_from_json_file("albert", "ram://configs/missing.json")


def test_config_file_that_is_not_text_is_one_line_error(tmp_path):
    path = tmp_path / "bert_config.json"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ConfigError, match=r"bert_config.json: not UTF-8 text \(byte 0\)"):
        configs.config_from_json_file("bert", path)
