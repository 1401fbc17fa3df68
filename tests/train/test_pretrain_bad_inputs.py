"""`tfcompact pretrain` with bad input and damaged files: one line naming the field or file,
exit 1, inputs untouched; damaged checkpoints are skipped for the newest intact one (and the
run still ends bit-identical to an uninterrupted one); a changed model is refused."""
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from train_helpers import make_masked_data, tiny_experiment, write_yaml
from tfcompact.cli import main


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_masked_data(str(tmp_path_factory.mktemp("data")), num_instances=64)


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
    """An uninterrupted 6-step run with checkpoints at steps 3 and 6."""
    root = tmp_path_factory.mktemp("ref")
    path = write_yaml(str(root / "exp.yaml"), tiny_experiment(data_dir, str(root / "model")))
    assert main(["pretrain", "--config", path]) == 0
    return root / "model"


def _tree(root) -> dict:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _run(tmp_path, data_dir, model_dir, *sets):
    path = write_yaml(str(tmp_path / "exp.yaml"), tiny_experiment(data_dir, str(model_dir)))
    args = ["pretrain", "--config", path]
    for s in sets:
        args += ["--set", s]
    return main(args)


def _model_tensors(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
            if n.startswith("model/")}


def _last_err(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


@pytest.mark.parametrize("override,key", [
    ("optimizer.learning_rate=nan", "optimizer.learning_rate"),
    ("optimizer.learning_rate=.inf", "optimizer.learning_rate"),
    ("optimizer.beta_2=1.5", "optimizer.beta_2"),
    ("optimizer.epsilon=0", "optimizer.epsilon"),
    ("optimizer.clip_norm=-1", "optimizer.clip_norm"),
    ("optimizer.weight_decay_rate=-0.1", "optimizer.weight_decay_rate"),
    ("optimizer.end_learning_rate=1", "optimizer.end_learning_rate"),
    ("model.overrides.initializer_range=.nan", "initializer_range"),
    ("train.batch_size=-8", "train.batch_size"),
])
def test_nonsense_hyperparameters_are_refused_before_anything_runs(
        override, key, data_dir, tmp_path, capsys):
    assert _run(tmp_path, data_dir, tmp_path / "model", override) == 1
    last = _last_err(capsys)
    assert last.startswith("tfcompact pretrain: error: ") and key in last
    assert not (tmp_path / "model").exists()


def test_a_batch_that_cannot_fit_is_refused_with_an_estimate(data_dir, tmp_path, capsys):
    # 2 M examples of length 32: far beyond any machine this runs on.
    assert _run(tmp_path, data_dir, tmp_path / "model", "train.batch_size=2000000") == 1
    last = _last_err(capsys)
    assert "train.batch_size = 2000000 cannot fit: about" in last and "GiB" in last
    assert not (tmp_path / "model").exists()


def _damage_copy(reference, tmp_path, damage):
    model = tmp_path / "model"
    shutil.copytree(reference, model)
    for name in ("summary.json",):
        os.remove(model / name)
    damage(model / "checkpoints")
    return model


def _delete_index(ckpt):
    os.remove(ckpt / "ckpt-6.index")


def _truncate_data(ckpt):
    data = next(p for p in ckpt.iterdir() if p.name.startswith("ckpt-6.data"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


def _flip_byte(ckpt):
    data = next(p for p in ckpt.iterdir() if p.name.startswith("ckpt-6.data"))
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 3] ^= 0x40
    data.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", [_delete_index, _truncate_data, _flip_byte],
                         ids=["index-deleted", "data-truncated", "byte-flipped"])
def test_damaged_latest_checkpoint_falls_back_and_ends_bit_identical(
        damage, reference, data_dir, tmp_path, capsys):
    model = _damage_copy(reference, tmp_path, damage)
    assert _run(tmp_path, data_dir, model) == 0
    captured = capsys.readouterr()  # warnings on stderr, progress on stdout
    assert "warning: checkpoint " in captured.err and "ckpt-6 is damaged" in captured.err
    assert "resumed from " in captured.out and "ckpt-3 at step 3" in captured.out
    got = _model_tensors(model / "checkpoints" / "ckpt-6")
    want = _model_tensors(reference / "checkpoints" / "ckpt-6")
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_garbled_state_file_still_resumes_from_the_files(reference, data_dir, tmp_path, capsys):
    model = _damage_copy(reference, tmp_path,
                         lambda c: (c / "checkpoint").write_bytes(b"\x00garbage{{{\n"))
    assert _run(tmp_path, data_dir, model) == 0
    out = capsys.readouterr().out
    assert "ckpt-6 at step 6" in out and "already at step 6" in out


def test_all_checkpoints_damaged_stops_instead_of_restarting(reference, data_dir, tmp_path,
                                                             capsys):
    def damage(ckpt):
        for p in ckpt.iterdir():
            if ".data-" in p.name:
                p.write_bytes(p.read_bytes()[:10])

    model = _damage_copy(reference, tmp_path, damage)
    before = _tree(model)
    assert _run(tmp_path, data_dir, model) == 1
    last = _last_err(capsys)
    assert last.startswith("tfcompact pretrain: error: ") and "none intact" in last
    assert "ckpt-6" in last and "move the directory away" in last
    assert _tree(model) == before


def test_a_changed_model_is_refused_and_the_model_directory_untouched(
        reference, data_dir, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(reference, model)
    before = _tree(model)
    # ALBERT shares its layer weights: 3 layers would restore silently from a 2-layer run.
    assert _run(tmp_path, data_dir, model, "model.overrides.num_hidden_layers=3",
                "train.total_steps=9") == 1
    last = _last_err(capsys)
    assert "differs from the one that wrote the checkpoints" in last
    assert "num_hidden_layers 2 -> 3" in last and "tfcompact.json" in last
    assert _tree(model) == before


def test_leftover_temp_directory_of_an_interrupted_save_is_removed(reference, data_dir,
                                                                   tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(reference, model)
    leftover = model / "checkpoints" / "ckpt-9_temp_0123abcd"
    (leftover / "part-00000-of-00001").mkdir(parents=True)
    assert _run(tmp_path, data_dir, model) == 0
    assert f"removed {leftover}" in capsys.readouterr().out
    assert not leftover.exists()


def test_model_dir_that_is_a_file_is_one_line(data_dir, tmp_path, capsys):
    target = tmp_path / "model"
    target.write_text("not a directory")
    assert _run(tmp_path, data_dir, target) == 1
    last = _last_err(capsys)
    assert last.startswith(f"tfcompact pretrain: error: train.model_dir {target}: cannot write")
    assert target.read_text() == "not a directory"


def test_weights_gone_non_finite_are_never_saved(data_dir, tmp_path, capsys):
    # A finite but absurd learning rate with no clipping: the first update (about 3 x lr)
    # overflows float32 to Inf; the loss then goes NaN and every later step is skipped.
    code = _run(tmp_path, data_dir, tmp_path / "model", "optimizer.name=adamw",
                "optimizer.learning_rate=3e38", "optimizer.clip_norm=null",
                "train.max_nonfinite_steps=100")
    assert code == 1
    last = _last_err(capsys)
    assert "NaN/Inf" in last and "last good checkpoint none" in last
    ckpt = tmp_path / "model" / "checkpoints"
    assert not ckpt.exists() or not any(p.name.endswith(".index") for p in ckpt.iterdir())


def _copy_data(data_dir, tmp_path):
    dst = tmp_path / "data"
    shutil.copytree(data_dir, dst)
    return dst


def _flip_shard_byte(data):
    shard = sorted(p for p in data.iterdir() if p.name.endswith(".tfrecord"))[1]
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0x10  # inside a record: its CRC no longer matches
    shard.write_bytes(bytes(raw))
    return shard


@pytest.mark.parametrize("verify", [True, False], ids=["verify_data", "met-in-training"])
def test_a_damaged_shard_is_named_not_a_tensorflow_traceback(verify, data_dir, tmp_path, capsys):
    data = _copy_data(data_dir, tmp_path)
    shard = _flip_shard_byte(data)
    path = write_yaml(str(tmp_path / "exp.yaml"),
                      tiny_experiment(str(data), str(tmp_path / "model"), total_steps=20))
    args = ["pretrain", "--config", path] + (["--verify_data"] if verify else [])
    assert main(args) == 1
    last = _last_err(capsys)
    assert last.startswith("tfcompact pretrain: error: ") and shard.name in last
    if verify:
        assert not (tmp_path / "model").exists()


def test_a_truncated_shard_is_refused_before_training(data_dir, tmp_path, capsys):
    data = _copy_data(data_dir, tmp_path)
    manifest = json.loads((data / "manifest.json").read_text())
    for entry in manifest["shards"]:  # sizes as create-data records them
        entry["bytes"] = (data / entry["file"]).stat().st_size
    (data / "manifest.json").write_text(json.dumps(manifest))
    shard = sorted(p for p in data.iterdir() if p.name.endswith(".tfrecord"))[0]
    shard.write_bytes(shard.read_bytes()[:100])
    assert _run(tmp_path, str(data), tmp_path / "model") == 1
    last = _last_err(capsys)
    assert shard.name in last and "100 bytes" in last
    assert not (tmp_path / "model").exists()


def test_a_vocabulary_other_than_the_datas_is_refused(data_dir, tmp_path, capsys):
    data = _copy_data(data_dir, tmp_path)
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["vocab_md5"] = "0" * 32  # the data says it was made with another vocabulary
    (data / "manifest.json").write_text(json.dumps(manifest))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                               + [f"t{i}" for i in range(115)]) + "\n")
    assert _run(tmp_path, str(data), tmp_path / "model", f"data.vocab={vocab}") == 1
    last = _last_err(capsys)
    assert f"data.vocab {vocab} is not the vocabulary data.train was made with" in last
