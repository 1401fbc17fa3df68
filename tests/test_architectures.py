"""The architecture table: every record resolves, builds, and its models carry the TF1 names."""
import dataclasses
import math

import pytest

from tfcompact.architectures import ARCHITECTURES, SENTENCE_HEADS, get_architecture, load
from tfcompact.configs import PRESETS, get_preset, resolve_model, tiny_config
from tfcompact.errors import ConfigError
from tfcompact.interop.name_maps import model_variables
from tfcompact.interop.tf1_names import tf1_variable_shapes


def test_each_architecture_is_one_record_named_by_its_key():
    assert list(ARCHITECTURES) == ["bert", "albert", "electra", "mobilebert", "tinybert"]
    for name, record in ARCHITECTURES.items():
        assert record.name == name
        assert record.sentence_head in SENTENCE_HEADS
        assert record.has_sentence_head or record.sentence_head == "none"
        assert record.config_file.endswith("_config.json")
    assert {p.arch for p in PRESETS.values()} <= set(ARCHITECTURES)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_every_reference_resolves(name):
    record = ARCHITECTURES[name]
    assert dataclasses.is_dataclass(record.config_class)
    for ref in (record.backbone, record.pretraining, record.tf1_names):
        assert callable(load(ref)), ref


def test_unknown_architecture_names_the_close_one():
    with pytest.raises(ConfigError, match=r"arch: unknown architecture 'alberta'.*did you mean albert"):
        get_architecture("alberta", where="arch")


def _paths_and_sizes(model) -> dict:
    return {path: math.prod(v.shape) for path, v in model_variables(model).items()}


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_record_builders_make_the_tf1_names(name):
    record = ARCHITECTURES[name]
    config = tiny_config(name)
    head = record.sentence_head
    model = record.build_pretraining_model(config, sentence_head=head, name=None, seed=1)
    tf1 = record.tf1_variable_shapes(config, True, head, "all")
    assert _paths_and_sizes(model) == {n: math.prod(s) for n, s in tf1.items()}
    backbone = record.build_backbone(config, name=None)
    tf1_backbone = tf1_variable_shapes(name, config, pretraining=False)
    assert _paths_and_sizes(backbone) == {n: math.prod(s) for n, s in tf1_backbone.items()}


def test_resolve_model_defaults_and_overrides():
    r = resolve_model("albert_tiny_zh")
    assert (r.arch, r.sentence_head, r.preset_name) == ("albert", "sop", "albert_tiny_zh")
    assert resolve_model("mobilebert", tiny_config("mobilebert")).sentence_head == "nsp"
    assert resolve_model("mobilebert_base_f2_zh").sentence_head == "none"
    assert resolve_model("bert_base_zh", sentence_head="none").sentence_head == "none"
    changed = r.with_overrides({"num_hidden_layers": 2})
    assert changed.config.num_hidden_layers == 2 and changed.preset is None
    assert changed.sentence_head == "sop"
    assert r.with_overrides({}) is r


def test_resolve_model_reads_a_config_file(tmp_path):
    path = tmp_path / "bert_config.json"
    tiny_config("bert").to_json_file(path)
    r = resolve_model("tinybert", str(path))
    assert r.arch == "tinybert" and r.config == tiny_config("bert")


@pytest.mark.parametrize("args, kwargs, message", [
    (("bert",), {}, r"^architecture 'bert' needs a config, or pass a preset name \(bert_base_zh"),
    (("mobilebert", tiny_config("bert")), {}, "needs a MobileBertConfig, got BertConfig"),
    (("albert_tiny",), {}, r"unknown preset 'albert_tiny' and no such architecture.*albert_tiny_zh"),
    (("bert", tiny_config("bert"), "mlm"), {}, r"sentence_head: expected one of nsp, sop, none"),
    (("electra_small_zh", None, "nsp"), {}, "ELECTRA has no sentence-level head"),
    (("bert",), {"where": "exp.yaml: model"}, r"^exp.yaml: model: architecture 'bert' needs"),
])
def test_resolve_model_errors(args, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        resolve_model(*args, **kwargs)


def test_override_errors_start_with_where():
    r = resolve_model("albert_tiny_zh")
    with pytest.raises(ConfigError, match=r"^x.yaml: model.overrides.hidden_sise: not a field of AlbertConfig"):
        r.with_overrides({"hidden_sise": 3}, where="x.yaml: model.overrides")
    with pytest.raises(ConfigError, match=r"^x.yaml: model.overrides: .*'hidden_size' must be a multiple"):
        r.with_overrides({"hidden_size": 100}, where="x.yaml: model.overrides")
    assert get_preset("albert_tiny_zh").config.hidden_size == 312
