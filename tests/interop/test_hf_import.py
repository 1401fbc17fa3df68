"""HuggingFace directories without torch or transformers: the key and config tables, ours -> HF
-> ours bit-identical through the CLI, and import-hf's all-or-nothing checks."""
import json
import sys

import numpy as np
import pytest
from conftest import make_model_dir
from safetensors.numpy import load_file, save_file

from tfcompact import modeldir
from tfcompact.configs import tiny_config
from tfcompact.errors import ConfigError
from tfcompact.interop import hf_names
from tfcompact.interop.huggingface import config_from_hf
from tfcompact.interop.name_maps import model_variables


# Keys as HF's modules name them (modeling_bert.py, modeling_albert.py, modeling_electra.py,
# modeling_mobilebert.py: attribute paths of BertForPreTraining & co.), written out by hand.
@pytest.mark.parametrize("arch,tf1_name,key,transpose", [
    ("bert", "bert/encoder/layer_3/attention/self/query/kernel",
     "bert.encoder.layer.3.attention.self.query.weight", True),
    ("bert", "bert/embeddings/LayerNorm/gamma", "bert.embeddings.LayerNorm.weight", False),
    ("bert", "cls/predictions/output_bias", "cls.predictions.bias", False),
    ("bert", "cls/seq_relationship/output_weights", "cls.seq_relationship.weight", False),
    ("albert", "bert/encoder/transformer/group_1/inner_group_0/ffn_1/intermediate/output/dense/bias",
     "albert.encoder.albert_layer_groups.1.albert_layers.0.ffn_output.bias", False),
    ("albert", "bert/encoder/transformer/group_0/inner_group_2/LayerNorm_1/beta",
     "albert.encoder.albert_layer_groups.0.albert_layers.2.full_layer_layer_norm.bias", False),
    ("albert", "bert/encoder/transformer/group_0/inner_group_0/LayerNorm/gamma",
     "albert.encoder.albert_layer_groups.0.albert_layers.0.attention.LayerNorm.weight", False),
    ("albert", "bert/encoder/transformer/group_0/inner_group_0/attention_1/output/dense/kernel",
     "albert.encoder.albert_layer_groups.0.albert_layers.0.attention.dense.weight", True),
    ("albert", "bert/pooler/dense/kernel", "albert.pooler.weight", True),
    ("albert", "cls/predictions/transform/LayerNorm/beta", "predictions.LayerNorm.bias", False),
    ("albert", "cls/seq_relationship/output_bias", "sop_classifier.classifier.bias", False),
    ("electra", "discriminator_predictions/dense_1/kernel",
     "discriminator_predictions.dense_prediction.weight", True),
    ("electra", "generator/encoder/layer_0/output/dense/bias", "electra.encoder.layer.0.output.dense.bias", False),
    ("electra", "generator_predictions/output_bias", "generator_lm_head.bias", False),
    ("mobilebert", "bert/encoder/layer_1/ffn_layer_2/output/FakeLayerNorm/gamma",
     "mobilebert.encoder.layer.1.ffn.2.output.LayerNorm.weight", False),
    ("mobilebert", "bert/encoder/layer_0/bottleneck/attention/dense/kernel",
     "mobilebert.encoder.layer.0.bottleneck.attention.dense.weight", True),
    ("mobilebert", "cls/predictions/extra_output_weights", "cls.predictions.dense.weight", True),
])
def test_hf_keys(arch, tf1_name, key, transpose):
    assert hf_names.hf_key(arch, tf1_name) == (key, transpose)


@pytest.mark.parametrize("arch,ours,theirs", [
    ("bert", "gelu", "gelu_new"), ("bert", "gelu_exact", "gelu"), ("albert", "gelu", "gelu_new"),
    ("electra", "gelu", "gelu"), ("electra", "gelu_new", "gelu_new"), ("mobilebert", "relu", "relu")])
def test_activation_names_both_ways(arch, ours, theirs):
    assert hf_names.hf_activation(arch, ours) == theirs
    assert hf_names.our_activation(arch, theirs, "x") == ours


@pytest.mark.parametrize("arch,overrides", [
    ("bert", {"hidden_act": "gelu_exact"}), ("albert", {"num_hidden_groups": 2, "inner_group_num": 3}),
    ("mobilebert", {"classifier_activation": True}), ("electra", {})])
def test_config_round_trip(arch, overrides):
    config = tiny_config(arch, **overrides)
    d = hf_names.hf_config_dict(arch, config)
    g = hf_names.hf_config_dict(arch, config, component="generator") if arch == "electra" else None
    assert config_from_hf(json.loads(json.dumps(d)), "config.json", g, "gen/config.json") == (arch, config)


def test_config_refuses_what_hf_cannot_say():
    with pytest.raises(ConfigError, match="layout='brightmart'"):
        hf_names.hf_config_dict("albert", tiny_config("albert").replace(layout="brightmart"))
    d = hf_names.hf_config_dict("bert", tiny_config("bert"))
    with pytest.raises(ConfigError, match="position_embedding_type"):
        config_from_hf({**d, "position_embedding_type": "relative_key"}, "c.json")
    with pytest.raises(ConfigError, match="model_type.*'roberta'"):
        config_from_hf({**d, "model_type": "roberta"}, "c.json")


def _variables(model_dir):
    model = modeldir.load_pretraining_model(model_dir)
    return {p: v.numpy() for p, v in model_variables(model).items()}


@pytest.mark.parametrize("arch,head", [("bert", "nsp"), ("albert", "sop"), ("mobilebert", "nsp"),
                                       ("electra", None), ("bert", "none")])
def test_ours_hf_ours_is_bit_identical(tmp_path, cli, arch, head):
    d, config, _ = make_model_dir(tmp_path, arch, sentence_head=head, seed=3)
    args = ["import-hf", "--model_dir", tmp_path / "hf", "--output", tmp_path / "back"]
    code, out, err = cli("export", "--model_dir", d, "--format", "huggingface", "--output", tmp_path / "hf")
    assert code == 0, err
    if arch == "electra":
        code, out, err = cli("export", "--model_dir", d, "--format", "huggingface", "--component",
                             "generator", "--output", tmp_path / "gen")
        assert code == 0, err
        args += ["--generator", tmp_path / "gen"]
    code, out, err = cli(*args)
    assert code == 0, err
    before, after = _variables(d), _variables(str(tmp_path / "back"))
    assert sorted(before) == sorted(after)
    for path, value in before.items():
        if head == "none" and "/pooler/" in path:
            continue  # never trained without a sentence head, so never exported
        assert np.array_equal(value.view(np.uint32), after[path].view(np.uint32)), path
    if head == "none":
        assert "fresh initialisation" in out


@pytest.fixture
def hf_dir(tmp_path, cli):
    d, config, _ = make_model_dir(tmp_path, "bert", sentence_head="nsp", seed=4)
    code, _, err = cli("export", "--model_dir", d, "--format", "huggingface", "--output", tmp_path / "hf")
    assert code == 0, err
    return tmp_path / "hf"


def _edit_weights(hf_dir, edit):
    weights = load_file(str(hf_dir / "model.safetensors"))
    edit(weights)
    save_file(weights, str(hf_dir / "model.safetensors"), metadata={"format": "pt"})


def _import_error(cli, tmp_path, hf_dir, *extra):
    code, out, err = cli("import-hf", "--model_dir", hf_dir, "--output", tmp_path / "out", *extra)
    assert code != 0 and not (tmp_path / "out").exists()
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_missing_unused_misshapen_and_tied_weights_are_refused(tmp_path, cli, hf_dir):
    key = "bert.encoder.layer.1.output.dense.weight"
    _edit_weights(hf_dir, lambda w: w.pop(key))
    assert f"missing {key}" in _import_error(cli, tmp_path, hf_dir)
    _edit_weights(hf_dir, lambda w: w.update({key: np.zeros((64, 128), np.float32),
                                                "bert.encoder.layer.9.output.dense.bias": np.zeros(4, np.float32)}))
    assert "unused bert.encoder.layer.9.output.dense.bias" in _import_error(cli, tmp_path, hf_dir)
    _edit_weights(hf_dir, lambda w: (w.pop("bert.encoder.layer.9.output.dense.bias"),
                                     w.update({key: np.zeros((64, 127), np.float32)})))
    assert f"{key} [64, 127] does not fit" in _import_error(cli, tmp_path, hf_dir)
    _edit_weights(hf_dir, lambda w: w.update({key: np.zeros((64, 128), np.float32)}))
    # a tied copy that equals what it copies is accepted; one that differs is not
    _edit_weights(hf_dir, lambda w: w.update({"cls.predictions.decoder.bias": w["cls.predictions.bias"] + 1}))
    assert "cls.predictions.decoder.bias differs from cls.predictions.bias" in _import_error(cli, tmp_path, hf_dir)
    _edit_weights(hf_dir, lambda w: w.update({"cls.predictions.decoder.bias": w["cls.predictions.bias"],
                                                "bert.embeddings.position_ids": np.arange(64)[None]}))
    code, out, err = cli("import-hf", "--model_dir", hf_dir, "--output", tmp_path / "out")
    assert code == 0, err


def test_bad_directories(tmp_path, cli, hf_dir):
    assert "config.json: not found" in _import_error(cli, tmp_path, tmp_path)
    (hf_dir / "vocab.txt").write_text("[PAD]\n[UNK]\n", encoding="utf-8")
    assert "2 entries" in _import_error(cli, tmp_path, hf_dir)
    (hf_dir / "model.safetensors").write_bytes(b"not a safetensors file")
    assert "cannot read safetensors" in _import_error(cli, tmp_path, hf_dir)
    (hf_dir / "config.json").write_text("{", encoding="utf-8")
    assert "config.json: not valid JSON" in _import_error(cli, tmp_path, hf_dir)
    err = _import_error(cli, tmp_path, hf_dir, "--generator", hf_dir)
    assert "not valid JSON" in err


def test_electra_needs_its_generator_with_the_same_embeddings(tmp_path, cli):
    d, config, _ = make_model_dir(tmp_path, "electra", seed=6)
    for component in ("discriminator", "generator"):
        code, _, err = cli("export", "--model_dir", d, "--format", "huggingface", "--component", component,
                           "--output", tmp_path / component)
        assert code == 0, err
    assert "--generator" in _import_error(cli, tmp_path, tmp_path / "discriminator")
    _edit_weights(tmp_path / "generator", lambda w: w.update(
        {"electra.embeddings.word_embeddings.weight": w["electra.embeddings.word_embeddings.weight"] * 2}))
    err = _import_error(cli, tmp_path, tmp_path / "discriminator", "--generator", tmp_path / "generator")
    assert "share their embeddings" in err
    gen = json.loads((tmp_path / "generator" / "config.json").read_text())
    (tmp_path / "generator" / "config.json").write_text(json.dumps({**gen, "num_attention_heads": 2}))
    err = _import_error(cli, tmp_path, tmp_path / "discriminator", "--generator", tmp_path / "generator")
    assert "field 'num_attention_heads': 2" in err


def test_export_flags_that_do_not_apply(tmp_path, cli):
    d, _, _ = make_model_dir(tmp_path, "bert", seed=1)
    code, _, err = cli("export", "--model_dir", d, "--format", "huggingface", "--seq_length", "16",
                       "--output", tmp_path / "hf")
    assert code != 0 and "--seq_length 16 applies to --format savedmodel and tflite" in err
    code, _, err = cli("export", "--model_dir", d, "--format", "huggingface", "--component", "generator",
                       "--output", tmp_path / "hf")
    assert code != 0 and "only ELECTRA" in err


def test_pytorch_bin_without_torch_says_what_to_do(tmp_path, cli, hf_dir, monkeypatch):
    (hf_dir / "model.safetensors").rename(hf_dir / "pytorch_model.bin")
    monkeypatch.setitem(sys.modules, "torch", None)  # as on a machine without torch
    err = _import_error(cli, tmp_path, hf_dir)
    assert "pytorch_model.bin: reading pytorch_model.bin needs torch" in err


def test_sharded_safetensors(tmp_path, cli, hf_dir):
    weights = load_file(str(hf_dir / "model.safetensors"))
    keys = sorted(weights)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, part in shards.items():
        save_file({k: weights[k] for k in part}, str(hf_dir / name), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: name for name, part in shards.items() for k in part}}
    (hf_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    (hf_dir / "model.safetensors").unlink()
    code, out, err = cli("import-hf", "--model_dir", hf_dir, "--output", tmp_path / "out")
    assert code == 0, err
    code, out, err = cli("export", "--model_dir", tmp_path / "out", "--format", "huggingface",
                         "--output", tmp_path / "back")
    assert code == 0, err
    back = load_file(str(tmp_path / "back" / "model.safetensors"))
    assert sorted(back) == keys and all(np.array_equal(back[k], weights[k]) for k in keys)
