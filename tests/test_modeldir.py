"""Model directories: tfcompact.json, vocab.txt, checkpoints; write, read, load round trips."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfcompact import modeldir
from tfcompact.configs import tiny_config
from tfcompact.errors import CheckpointError, ConfigError
from tfcompact.models import build_pretraining_model


def _vocab(tmp_path, n=300):
    path = tmp_path / "src_vocab.txt"
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(0x4E00 + i) for i in range(n - 5)]
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    return path


def _save(model, directory, step=1):
    ckpt = tf.train.Checkpoint(model=model, step=tf.Variable(step))
    return tf.train.CheckpointManager(ckpt, os.path.join(directory, "checkpoints"), max_to_keep=2).save()


def test_write_and_read(tmp_path):
    config = tiny_config("albert", layout="brightmart")
    vocab = _vocab(tmp_path)
    d = tmp_path / "model"
    path = modeldir.write_model_dir_config(d, "albert", config, preset="albert_tiny_zh", vocab_path=vocab)
    payload = json.loads(open(path, encoding="utf-8").read())
    assert payload["format_version"] == 1 and payload["arch"] == "albert"
    assert payload["preset"] == "albert_tiny_zh" and payload["config"]["layout"] == "brightmart"
    info = modeldir.read_model_dir(d)
    assert info.arch == "albert" and info.config == config and info.preset == "albert_tiny_zh"
    assert open(info.vocab_path, encoding="utf-8").read() == vocab.read_text(encoding="utf-8")
    assert info.latest_checkpoint is None
    assert not [f for f in os.listdir(d) if f.startswith(".tmp")]


@pytest.mark.parametrize(
    "arch, overrides",
    [("bert", {}), ("electra", {}), ("mobilebert", {}),  # MobileBERT: 3 stacked FFNs per layer
     ("albert", dict(num_hidden_groups=2, inner_group_num=2)), ("tinybert", {})],
)
def test_load_round_trip(tmp_path, arch, overrides):
    config = tiny_config(arch, **overrides)
    model = build_pretraining_model(arch, config)
    for v in model.trainable_variables:  # values a fresh model would not have
        v.assign(np.full(v.shape, 0.5, dtype=v.dtype))
    model.trainable_variables[0].assign(np.random.default_rng(0).normal(size=model.trainable_variables[0].shape))
    modeldir.write_model_dir_config(tmp_path, arch, config, vocab_path=_vocab(tmp_path))
    saved = _save(model, tmp_path)
    info = modeldir.read_model_dir(tmp_path)
    assert info.latest_checkpoint == saved
    loaded = modeldir.load_pretraining_model(tmp_path)
    before = {v.path: np.asarray(v.numpy()) for v in model.trainable_variables}
    after = {v.path: np.asarray(v.numpy()) for v in loaded.trainable_variables}
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def test_load_uses_preset_sentence_head(tmp_path):
    preset = "mobilebert_base_f2_zh"
    config = tiny_config(preset)
    model = build_pretraining_model(preset, config)
    modeldir.write_model_dir_config(tmp_path, "mobilebert", config, preset=preset)
    _save(model, tmp_path)
    loaded = modeldir.load_pretraining_model(tmp_path)
    assert "sentence_logits" not in loaded.output


def test_mismatched_checkpoint_is_refused(tmp_path):
    config = tiny_config("electra")
    _save(build_pretraining_model("electra", config), tmp_path)
    modeldir.write_model_dir_config(tmp_path, "electra", config.replace(num_hidden_layers=1))
    with pytest.raises(CheckpointError, match="variables"):
        modeldir.load_pretraining_model(tmp_path)


def test_no_checkpoint(tmp_path):
    modeldir.write_model_dir_config(tmp_path, "bert", tiny_config("bert"))
    with pytest.raises(CheckpointError, match="no checkpoint"):
        modeldir.load_pretraining_model(tmp_path)


def test_bad_directories(tmp_path):
    with pytest.raises(ConfigError, match="tfcompact.json"):
        modeldir.read_model_dir(tmp_path)
    (tmp_path / "tfcompact.json").write_text('{"format_version": 2, "arch": "bert", "config": {}}')
    with pytest.raises(ConfigError, match="format_version"):
        modeldir.read_model_dir(tmp_path)
    (tmp_path / "tfcompact.json").write_text('{"format_version": 1, "arch": "gpt", "config": {}}')
    with pytest.raises(ConfigError, match="arch"):
        modeldir.read_model_dir(tmp_path)
    (tmp_path / "tfcompact.json").write_text('{"format_version": 1,\n "arch": "bert", "config": {"vocab_size": 3, "hidden_sise": 4}}')
    with pytest.raises(ConfigError, match="hidden_sise"):
        modeldir.read_model_dir(tmp_path)
    (tmp_path / "tfcompact.json").write_text('{"format_version": 1,\n "arch": ')
    with pytest.raises(ConfigError, match=r"tfcompact.json:2"):
        modeldir.read_model_dir(tmp_path)


def test_write_rejects_wrong_config_or_preset(tmp_path):
    with pytest.raises(ConfigError, match="AlbertConfig"):
        modeldir.write_model_dir_config(tmp_path, "albert", tiny_config("bert"))
    with pytest.raises(ConfigError, match="preset"):
        modeldir.write_model_dir_config(tmp_path, "bert", tiny_config("bert"), preset="albert_tiny_zh")
    with pytest.raises(ConfigError, match="vocabulary"):
        modeldir.write_model_dir_config(tmp_path, "bert", tiny_config("bert"), vocab_path=tmp_path / "none.txt")


@pytest.mark.parametrize("scheme", ["local", "ram"])
def test_model_dir_on_any_tf_filesystem(tmp_path, monkeypatch, scheme):
    """Written, read and loaded through tf.io.gfile: ram:// stands in for gs:// (TPU runs)."""
    monkeypatch.chdir(tmp_path)  # a path mistaken for a local one would land here
    config = tiny_config("bert")
    vocab = _vocab(tmp_path)
    d = str(tmp_path / "model") if scheme == "local" else f"ram://modeldir-test-{os.getpid()}/model"
    path = modeldir.write_model_dir_config(d, "bert", config, vocab_path=str(vocab))
    assert path == d + "/tfcompact.json"
    with tf.io.gfile.GFile(path, "r") as fh:
        assert json.loads(fh.read())["arch"] == "bert"
    assert sorted(tf.io.gfile.listdir(d)) == ["tfcompact.json", "vocab.txt"]  # no temp files left
    if scheme == "ram":
        assert not os.path.exists(tmp_path / "ram:"), "ram:// path written to the local disk"
    model = build_pretraining_model("bert", config)
    batch = {"input_ids": tf.constant([[2, 7, 4, 3]]), "input_mask": tf.ones([1, 4], tf.int32),
             "segment_ids": tf.zeros([1, 4], tf.int32), "masked_lm_positions": tf.constant([[2]])}
    expected = model(batch, training=False)["mlm_logits"].numpy()
    _save(model, d)
    info = modeldir.read_model_dir(d)
    assert info.config == config and info.latest_checkpoint is not None
    with tf.io.gfile.GFile(info.vocab_path, "r") as fh:
        assert fh.read() == vocab.read_text(encoding="utf-8")
    loaded = modeldir.load_pretraining_model(d)
    np.testing.assert_allclose(loaded(batch, training=False)["mlm_logits"].numpy(), expected,
                               rtol=1e-5, atol=1e-6)
    # Rewriting is atomic and overwrites in place.
    modeldir.write_model_dir_config(d, "bert", config.replace(hidden_dropout_prob=0.0),
                                    vocab_path=str(vocab))
    assert modeldir.read_model_dir(d).config.hidden_dropout_prob == 0.0
    assert sorted(tf.io.gfile.listdir(d)) == ["checkpoints", "tfcompact.json", "vocab.txt"]


def test_checkpoint_state_is_strict_latest_checkpoint_is_not(tmp_path):
    config = tiny_config("bert")
    modeldir.write_model_dir_config(tmp_path, "bert", config)
    saved = _save(build_pretraining_model("bert", config), tmp_path)
    assert modeldir.checkpoint_state(tmp_path) == saved == modeldir.latest_checkpoint(tmp_path)
    os.remove(saved + ".index")  # named by the state file, gone from disk
    assert modeldir.checkpoint_state(tmp_path) == saved
    assert modeldir.latest_checkpoint(tmp_path) is None
    state = tmp_path / "checkpoints" / "checkpoint"
    for garbage in (b"ckpt ckpt\n", b"\xff\xfe\x00", b'all_model_checkpoint_paths: "ckpt-1"\n'):
        state.write_bytes(garbage)
        with pytest.raises(CheckpointError, match="checkpoints/checkpoint: damaged checkpoint state file"):
            modeldir.checkpoint_state(tmp_path)
        assert modeldir.latest_checkpoint(tmp_path) is None


def test_damaged_tensors_are_found_before_restoring(tmp_path):
    """A flipped byte anywhere in the data file (also in tensors a restore skips) is an error."""
    config = tiny_config("bert")
    modeldir.write_model_dir_config(tmp_path, "bert", config)
    saved = _save(build_pretraining_model("bert", config), tmp_path)
    data = saved + ".data-00000-of-00001"
    raw = bytearray(open(data, "rb").read())
    raw[-3] ^= 0xFF  # the last tensor written
    open(data, "wb").write(bytes(raw))
    with pytest.raises(CheckpointError, match="damaged checkpoint: cannot read"):
        modeldir.load_pretraining_model(tmp_path)
