"""Experiment YAMLs: every shipped config loads; bad keys and types are rejected by name."""
import pytest
import yaml

from tfcompact.errors import ConfigError
from tfcompact.train.experiment import (Experiment, apply_overrides, experiment_from_dict,
                                        list_experiment_files, load_experiment, tpu_configs_dir)

SHIPPED = list_experiment_files()


def test_shipped_configs_are_found():
    names = {p.stem for p in SHIPPED}
    assert "cpu_smoke" in names
    for expected in ("albert_tiny_zh_v3-8", "albert_xlarge_zh_v3-256", "electra_small_zh",
                     "electra_base_zh", "mobilebert_base_f4_zh_pkt", "mobilebert_large_f4_zh_main",
                     "mobilebert_base_f4_zh_teacher", "tinybert_4l_312_zh_general",
                     "bert_wwm_zh_len128"):
        assert expected in names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_config_loads_and_names_known_presets(path):
    from tfcompact.configs import get_preset

    exp = load_experiment(path)
    assert isinstance(exp, Experiment)
    assert exp.name == path.stem
    get_preset(exp.model.preset)
    if exp.distillation is not None:
        assert exp.distillation.teacher.checkpoint
        if exp.distillation.teacher.preset or not path.stem.endswith("_cpu"):
            get_preset(exp.distillation.teacher.preset)  # CPU examples: the quickstart's model
    if not path.stem.endswith("_cpu") and path.stem != "cpu_smoke":
        # Published recipes run on TPUs: every path must be on Cloud Storage.
        assert exp.train.model_dir.startswith("gs://")
        assert exp.data.train.startswith("gs://")
        assert exp.train.precision == "mixed_bfloat16"


def test_recipe_values_match_the_published_ones():
    albert = load_experiment(tpu_configs_dir() / "albert_base_zh_v3-256.yaml")
    assert (albert.optimizer.name, albert.optimizer.learning_rate) == ("lamb", 0.00176)
    assert (albert.train.batch_size, albert.train.total_steps) == (4096, 125000)
    assert (albert.data.max_seq_length, albert.optimizer.warmup_steps) == (512, 12500)
    electra = load_experiment(tpu_configs_dir() / "electra_small_zh.yaml")
    assert (electra.optimizer.name, electra.optimizer.learning_rate) == ("adamw", 5e-4)
    assert electra.data.max_predictions_per_seq == int((0.15 + 0.005) * 512)
    pkt = load_experiment(tpu_configs_dir() / "mobilebert_base_f4_zh_pkt.yaml")
    weights = {(m.name, m.loss): (m.weight, m.variance_weight, m.reduction, m.gates)
               for m in pkt.distillation.matches}
    # MobileBERT's factors: feature map 100/L, attention 1/L, mean 5000/L, variance 5/L, gated.
    assert weights == {("feature_map", "ln_mse"): (100.0, None, "mean", "progressive"),
                       ("attention", "attention_ce"): (1.0, None, "mean", "progressive"),
                       ("mean", "mean_var"): (5000.0, 5.0, "mean", "progressive")}
    assert pkt.distillation.copy_from_teacher
    lamb = load_experiment(tpu_configs_dir() / "mobilebert_base_f2_zh_pkt_lamb.yaml")
    assert (lamb.optimizer.name, lamb.distillation.layerwise_lr) == ("lamb", "progressive")
    assert lamb.optimizer.learning_rate == lamb.optimizer.end_learning_rate == 1.5e-3
    main = load_experiment(tpu_configs_dir() / "mobilebert_base_f2_zh_main.yaml")
    mlm = [m for m in main.distillation.matches if m.feature == "logits"]
    assert [(m.loss, m.ground_truth_ratio) for m in mlm] == [("soft_ce", 0.5)]
    tiny = load_experiment(tpu_configs_dir() / "tinybert_4l_312_zh_general.yaml")
    assert {(m.feature, m.loss, m.projection, m.teacher_layers) for m in tiny.distillation.matches
            } == {("attention", "attention_mse", "none", "uniform"),
                  ("hidden", "mse", "linear", "uniform")}


def test_base_takes_a_list_of_files_merged_in_order(tmp_path):
    (tmp_path / "a.yaml").write_text("model: {preset: albert_tiny_zh}\ntrain: {batch_size: 8}\n")
    (tmp_path / "b.yaml").write_text("train: {batch_size: 16, total_steps: 5}\n")
    p = tmp_path / "exp.yaml"
    p.write_text("base: [a.yaml, b.yaml]\nname: exp\ndata: {train: /d}\ntrain: {total_steps: 7}\n")
    exp = load_experiment(p)
    assert (exp.model.preset, exp.train.batch_size, exp.train.total_steps) == (
        "albert_tiny_zh", 16, 7)


def _write(tmp_path, text):
    p = tmp_path / "exp.yaml"
    p.write_text(text, encoding="utf-8")
    return p


GOOD = """\
name: t
model:
  preset: albert_tiny_zh
data:
  train: /data/train
train:
  model_dir: /tmp/m
  batch_size: 8
"""


def test_unknown_key_names_key_file_and_line(tmp_path):
    p = _write(tmp_path, GOOD + "  batchsize: 16\n")
    with pytest.raises(ConfigError) as e:
        load_experiment(p)
    msg = str(e.value)
    assert f"{p}:9" in msg and "'train.batchsize'" in msg and "batch_size" in msg
    assert "\n" not in msg


def test_unknown_section_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'trainer'"):
        load_experiment(_write(tmp_path, GOOD + "trainer: {}\n"))


def test_wrong_type_names_field_and_line(tmp_path):
    p = _write(tmp_path, GOOD.replace("batch_size: 8", "batch_size: eight"))
    with pytest.raises(ConfigError, match=r"exp.yaml:8: 'train.batch_size' must be an integer, got 'eight'"):
        load_experiment(p)
    p = _write(tmp_path, GOOD + "  jit_compile: 3\n")
    with pytest.raises(ConfigError, match=r"'train.jit_compile' must be true/false"):
        load_experiment(p)


def test_values_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"'optimizer.name' must be one of lamb, adamw"):
        load_experiment(_write(tmp_path, GOOD + "optimizer: {name: sgd}\n"))
    with pytest.raises(ConfigError, match=r"'train.precision'"):
        load_experiment(_write(tmp_path, GOOD.replace("batch_size: 8", "precision: fp8")))
    with pytest.raises(ConfigError, match=r"'model' needs exactly one of 'preset' or 'config_file'"):
        load_experiment(_write(tmp_path, GOOD.replace("preset: albert_tiny_zh", "arch: albert")))
    with pytest.raises(ConfigError, match=r"'train.eval_steps' needs data.eval"):
        load_experiment(_write(tmp_path, GOOD + "  eval_steps: 3\n"))


def test_set_overrides_use_dotted_keys_and_yaml_values(tmp_path):
    p = _write(tmp_path, GOOD)
    exp = load_experiment(p, ["train.batch_size=64", "optimizer.learning_rate=1e-4",
                              "model.overrides.num_hidden_layers=2", "data.eval=null",
                              "train.jit_compile=true"])
    assert exp.train.batch_size == 64
    assert exp.optimizer.learning_rate == pytest.approx(1e-4)
    assert exp.model.overrides == {"num_hidden_layers": 2}
    assert exp.data.eval is None and exp.train.jit_compile is True
    with pytest.raises(ConfigError, match=r"\(--set train.batchsize=3\): unknown key 'train.batchsize'"):
        load_experiment(p, ["train.batchsize=3"])
    with pytest.raises(ConfigError, match=r"expected dotted.key=value"):
        load_experiment(p, ["train.batch_size"])


def test_apply_overrides_does_not_touch_the_input():
    raw = {"train": {"batch_size": 8}}
    out = apply_overrides(raw, ["train.batch_size=16", "tpu.zone=us-central1-a"])
    assert raw == {"train": {"batch_size": 8}}
    assert out == {"train": {"batch_size": 16}, "tpu": {"zone": "us-central1-a"}}


def test_round_trip_through_yaml(tmp_path):
    exp = load_experiment(tpu_configs_dir() / "mobilebert_base_f4_zh_main.yaml")
    again = experiment_from_dict(yaml.safe_load(yaml.safe_dump(exp.to_dict())), "again")
    assert again == exp


def test_shipped_name_lookup_suggests_close_names():
    assert load_experiment("cpu_smoke").name == "cpu_smoke"
    with pytest.raises(ConfigError, match="did you mean cpu_smoke"):
        load_experiment("cpu_smok")
