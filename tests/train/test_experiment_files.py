"""Experiment files that start from another (`base:`), and where the shipped ones live."""
import pytest
import yaml

from tfcompact.errors import ConfigError
from tfcompact.train.experiment import list_experiment_files, load_experiment, tpu_configs_dir

BASE = {
    "name": "base_run",
    "model": {"preset": "albert_tiny_zh"},
    "data": {"train": "/data/train", "eval": "/data/eval", "shuffle_buffer": 100},
    "optimizer": {"name": "lamb", "learning_rate": 0.001, "warmup_steps": 10},
    "train": {"model_dir": "/m/base", "batch_size": 64, "total_steps": 100, "eval_steps": 5},
}


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_child_gives_only_what_differs(tmp_path):
    _write(tmp_path / "base.yaml", yaml.safe_dump(BASE))
    child = _write(tmp_path / "child.yaml", "base: base.yaml\nname: child_run\n"
                   "optimizer:\n  learning_rate: 0.0005\ntrain:\n  batch_size: 32\n")
    exp = load_experiment(str(child))
    assert exp.name == "child_run"
    assert exp.optimizer.learning_rate == 0.0005
    assert exp.optimizer.name == "lamb" and exp.optimizer.warmup_steps == 10  # kept from base
    assert exp.train.batch_size == 32 and exp.train.total_steps == 100
    assert exp.data.shuffle_buffer == 100
    assert exp.source == str(child)


def test_bases_chain_and_overrides_apply_last(tmp_path):
    _write(tmp_path / "a.yaml", yaml.safe_dump(BASE))
    _write(tmp_path / "b.yaml", "base: a.yaml\ntrain:\n  total_steps: 200\n")
    c = _write(tmp_path / "c.yaml", "base: b.yaml\ntrain:\n  batch_size: 16\n")
    exp = load_experiment(str(c), ["train.total_steps=300"])
    assert (exp.train.batch_size, exp.train.total_steps, exp.model.preset) == (16, 300, "albert_tiny_zh")


def test_error_in_a_base_value_names_the_base_file_and_line(tmp_path):
    bad = dict(BASE, optimizer=dict(BASE["optimizer"], learning_rate=-1.0))
    _write(tmp_path / "base.yaml", yaml.safe_dump(bad, sort_keys=False))
    child = _write(tmp_path / "child.yaml", "base: base.yaml\nname: child\n")
    line = next(i for i, text in enumerate((tmp_path / "base.yaml").read_text().splitlines(), 1)
                if "learning_rate" in text)
    with pytest.raises(ConfigError) as e:
        load_experiment(str(child))
    assert f"base.yaml:{line}" in str(e.value) and "optimizer.learning_rate" in str(e.value)
    assert str(e.value).startswith(str(child))


def test_missing_and_circular_bases_are_one_line_errors(tmp_path):
    child = _write(tmp_path / "child.yaml", "name: x\nbase: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"child.yaml:2: 'base' must name an experiment file"):
        load_experiment(str(child))
    _write(tmp_path / "p.yaml", "base: q.yaml\n")
    q = _write(tmp_path / "q.yaml", "base: p.yaml\n")
    with pytest.raises(ConfigError, match="includes this file again"):
        load_experiment(str(q))


def test_shipped_derived_files_are_short_and_resolve(tmp_path):
    """Every shipped file derived from another experiment gives fewer lines than it inherits
    and loads (a file whose base is a distillation recipe fragment is a whole experiment)."""
    derived = [f for f in list_experiment_files() if "base:" in f.read_text(encoding="utf-8")]
    assert len(derived) >= 20
    for f in derived:
        own = yaml.safe_load(f.read_text(encoding="utf-8"))
        exp = load_experiment(str(f))
        assert exp.name == own["name"] == f.stem
        if not str(own["base"]).startswith("distill/"):
            assert len(own) < 8, f


def test_accelerator_folder_holds_only_accelerator_experiments():
    for f in tpu_configs_dir().glob("*.yaml"):
        exp = load_experiment(str(f))
        assert exp.tpu.accelerator_type, f"{f.name} has no tpu.accelerator_type"
        assert exp.train.model_dir.startswith("gs://"), f.name
    cpu = load_experiment("cpu_smoke")
    assert not cpu.train.model_dir.startswith("gs://") and cpu.train.precision == "float32"
    assert not any(f.stem == "cpu_smoke" for f in tpu_configs_dir().glob("*.yaml"))
