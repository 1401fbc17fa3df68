"""Preflight: TPU paths, batch split, shards per host, data manifest against the model."""
import os

import pytest

from train_helpers import make_masked_data, tiny_experiment
from tfcompact.errors import ConfigError, DataError
from tfcompact.train.experiment import experiment_from_dict
from tfcompact.train.preflight import Placement
from tfcompact.train.plan import check_plan, make_plan
from tfcompact.train.tpu_software import tpu_topology


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_masked_data(str(tmp_path_factory.mktemp("data")), num_instances=32)


def _check(raw, data_dir, placement=Placement(False, 1, 1)):
    plan = make_plan(experiment_from_dict(raw, "exp.yaml"))
    check_plan(plan, placement)
    return plan.model.config


def test_matching_data_passes_and_vocab_size_comes_from_data(data_dir, tmp_path):
    config = _check(tiny_experiment(data_dir, str(tmp_path / "m")), data_dir)
    assert config.vocab_size == 120  # helpers.VOCAB_SIZE, via `vocab_size: data`


def test_vocab_mismatch_is_rejected(data_dir, tmp_path):
    raw = tiny_experiment(data_dir, str(tmp_path / "m"))
    raw["model"]["overrides"]["vocab_size"] = 21128
    with pytest.raises(DataError) as e:
        _check(raw, data_dir)
    assert "vocab_size 120 does not match the model's vocab_size 21128" in str(e.value)
    assert "manifest.json" in str(e.value)


def test_sequence_length_and_predictions_mismatch(data_dir, tmp_path):
    raw = tiny_experiment(data_dir, str(tmp_path / "m"))
    raw["data"]["max_seq_length"] = 64
    with pytest.raises(DataError, match="max_seq_length 32 does not match data.max_seq_length 64"):
        _check(raw, data_dir)
    raw = tiny_experiment(data_dir, str(tmp_path / "m"))
    raw["data"]["max_predictions_per_seq"] = 20
    with pytest.raises(DataError, match="max_predictions_per_seq 5 does not match"):
        _check(raw, data_dir)


def test_sequence_longer_than_positions(tmp_path):
    d = make_masked_data(str(tmp_path / "d"), num_instances=8, seq_length=32)
    raw = tiny_experiment(d, str(tmp_path / "m"))
    raw["model"]["overrides"]["max_position_embeddings"] = 16
    with pytest.raises(ConfigError, match="exceeds the model's max_position_embeddings 16"):
        _check(raw, d)


def test_missing_manifest(tmp_path):
    raw = tiny_experiment(str(tmp_path), str(tmp_path / "m"))
    with pytest.raises(DataError, match="no manifest.json"):
        _check(raw, str(tmp_path))


def test_batch_must_split_over_replicas(data_dir, tmp_path):
    raw = tiny_experiment(data_dir, str(tmp_path / "m"), batch_size=12)
    with pytest.raises(ConfigError, match="batch_size = 12 is the GLOBAL batch and must be divisible by the 8 replicas"):
        _check(raw, data_dir, Placement(False, 8, 1))


def test_tpu_needs_gcs_paths(data_dir, tmp_path):
    raw = tiny_experiment(data_dir, "gs://bucket/model")
    with pytest.raises(ConfigError, match=r"data.train = .*on a TPU every path must be gs://"):
        _check(raw, data_dir, Placement(True, 8, 1))
    raw = tiny_experiment(data_dir, str(tmp_path / "m"))
    with pytest.raises(ConfigError, match=r"train.model_dir = .*gs://"):
        _check(raw, data_dir, Placement(True, 8, 1))


def test_enough_shards_for_the_hosts(data_dir, tmp_path):
    raw = tiny_experiment(data_dir, str(tmp_path / "m"), batch_size=32)
    with pytest.raises(DataError, match="2 shard\\(s\\) for 4 hosts"):
        _check(raw, data_dir, Placement(False, 32, 4))


def test_accelerator_topology():
    assert tpu_topology("v3-8") == (8, 1)
    assert tpu_topology("v3-256") == (256, 32)
    assert tpu_topology("v4-32") == (16, 4)
    with pytest.raises(Exception, match="expected e.g. v3-8"):
        tpu_topology("tpu-big")


def test_cli_reports_one_line_and_exit_1(data_dir, tmp_path, capsys):
    from train_helpers import write_yaml
    from tfcompact.cli import main

    raw = tiny_experiment(data_dir, str(tmp_path / "m"))
    raw["model"]["overrides"]["vocab_size"] = 500
    path = write_yaml(str(tmp_path / "bad.yaml"), raw)
    assert main(["pretrain", "--config", path]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("tfcompact pretrain: error: data.train (")
    assert "vocab_size 120 does not match the model's vocab_size 500" in err
    assert "\n" not in err
    assert not os.path.exists(tmp_path / "m")  # nothing built or written


def test_sequence_sizes_come_from_the_data_when_the_experiment_leaves_them_out(data_dir, tmp_path):
    raw = tiny_experiment(data_dir, str(tmp_path / "m"))
    del raw["data"]["max_seq_length"], raw["data"]["max_predictions_per_seq"]
    exp = experiment_from_dict(raw, "exp.yaml")
    assert exp.data.max_seq_length is None
    plan = make_plan(exp)
    check_plan(plan, Placement(False, 1, 1))
    # make_masked_data writes length 32 and 5 predictions per sequence
    assert (plan.exp.data.max_seq_length, plan.exp.data.max_predictions_per_seq) == (32, 5)
    assert plan.manifests["data.train"]["max_seq_length"] == 32


def test_a_relative_model_dir_that_does_not_exist_yet_is_writable(tmp_path, monkeypatch):
    """`train.model_dir: finetune_output/sentiment` in a fresh working directory: the probe
    climbs to the working directory instead of writing into the missing folder."""
    from tfcompact.train.preflight import check_model_dir_writable

    monkeypatch.chdir(tmp_path)
    check_model_dir_writable("out")
    check_model_dir_writable("finetune_output/sentiment")
    assert list(tmp_path.iterdir()) == []  # nothing created
