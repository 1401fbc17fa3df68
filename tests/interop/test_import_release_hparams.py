"""`tfcompact import-tf1` of releases without a config file: an ELECTRA release described by
the hparams JSON its scripts take, and any release by `--preset`.

The ELECTRA "release" is our own TF1 export of a tiny random model, laid out as
ymcui/Chinese-ELECTRA ships its checkpoints (electra_model.*, vocab.txt, checkpoint; no
config JSON); the hparams describe it with model_hparam_overrides, as users of those scripts
give sizes that model_size cannot express.
"""
import json
import os

import numpy as np
import pytest

from tfcompact import modeldir
from tfcompact.configs import get_preset
from tfcompact.interop.tf1_checkpoint import write_tf1_checkpoint
from tfcompact.interop.tf1_names import tf1_variable_shapes

from conftest import make_model_dir, write_vocab


def weights(model):
    return {v.path: v.numpy() for v in model.weights if not v.path.endswith("seed_generator_state")}


def as_electra_release(cli, model_dir, out):
    """Export `model_dir` as TF1 and make it look like a Chinese-ELECTRA release: the
    checkpoint renamed electra_model.*, the config JSON files removed."""
    code, _, err = cli("export", "--model_dir", model_dir, "--format", "tf1", "--output", out)
    assert code == 0, err
    for name in os.listdir(out):
        if name.startswith("model.ckpt."):
            os.rename(out / name, out / name.replace("model.ckpt", "electra_model"))
    for name in ("electra_config.json", "generator_config.json", ".tfcompact-output.json", "checkpoint"):
        if (out / name).exists():
            os.remove(out / name)
    (out / "checkpoint").write_text('model_checkpoint_path: "electra_model"\n'
                                    'all_model_checkpoint_paths: "electra_model"\n')
    assert sorted(os.listdir(out)) == ["checkpoint", "electra_model.data-00000-of-00001",
                                       "electra_model.index", "vocab.txt"]
    return out


# (name, the tiny model's sizes, the hparams that describe it)
RELEASES = [
    # model_size small: E = 128 without saying so; heads 64 // 64 = 1 and FFN 4 * 64 = 256
    # derived from the overridden width; generator 0.5 * 64 = 32 wide, round(0.5 * 2) = 1 deep
    ("small", dict(embedding_size=128, num_attention_heads=1, intermediate_size=256,
                   generator_hidden_size=0.5, generator_layers=0.5),
     {"model_size": "small", "vocab_size": 300, "generator_hidden_size": 0.5,
      "generator_layers": 0.5, "learning_rate": 5e-4, "max_seq_length": 512,
      "model_hparam_overrides": {"hidden_size": 64, "num_hidden_layers": 2,
                                 "max_position_embeddings": 64}}),
    # model_size base: E = H (64); heads and FFN given in the overrides; default generator
    # (0.25 * 64 = 16 wide, 1 head, FFN 64, as deep)
    ("base", dict(embedding_size=64, num_attention_heads=4, intermediate_size=128),
     {"model_size": "base", "vocab_size": 300, "task_names": ["cmrc2018"], "do_train": True,
      "model_hparam_overrides": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                                 "intermediate_size": 128, "max_position_embeddings": 64}}),
]


@pytest.mark.parametrize("name,sizes,hparams", RELEASES, ids=[r[0] for r in RELEASES])
def test_electra_release_with_hparams_imports_exactly(tmp_path, cli, name, sizes, hparams):
    d, config, model = make_model_dir(tmp_path, "electra", **sizes)
    release = as_electra_release(cli, d, tmp_path / "chinese_electra_release")
    (tmp_path / "hparams.json").write_text(json.dumps(hparams, indent=2), encoding="utf-8")

    code, out, err = cli("import-tf1", "--arch", "electra", "--checkpoint", release,
                         "--config", tmp_path / "hparams.json", "--output", tmp_path / "imported")
    assert code == 0, err
    assert "imported" in out
    info = modeldir.read_model_dir(str(tmp_path / "imported"))
    assert info.config == config
    again = modeldir.load_pretraining_model(str(tmp_path / "imported"))
    w0, w1 = weights(model), weights(again)
    assert set(w0) == set(w1)
    for k in w0:
        np.testing.assert_array_equal(w0[k], w1[k], err_msg=k)


@pytest.fixture(scope="module")
def electra_release(tmp_path_factory):
    """A tiny ELECTRA release (no config), its hparams.json, and a 21128-line vocabulary."""
    from tfcompact.cli import main

    root = tmp_path_factory.mktemp("release")
    d, config, _ = make_model_dir(root, "electra")
    assert main(["export", "--model_dir", d, "--format", "tf1", "--output", str(root / "rel")]) == 0
    os.remove(root / "rel" / "electra_config.json")
    os.remove(root / "rel" / "generator_config.json")
    hparams = {"model_size": "base", "vocab_size": 300, "embedding_size": 32,
               "model_hparam_overrides": {"hidden_size": 64, "num_hidden_layers": 2,
                                          "num_attention_heads": 4, "intermediate_size": 128,
                                          "max_position_embeddings": 64}}
    (root / "hparams.json").write_text(json.dumps(hparams), encoding="utf-8")
    write_vocab(root / "zh_vocab.txt", 21128)
    return root


def one_line_error(result, output, *pieces):
    code, out, err = result
    assert code != 0, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("tfcompact import-tf1: error: "), err
    for p in pieces:
        assert p in lines[0], lines[0]
    assert not os.path.exists(output)
    return lines[0]


def import_args(root, *extra, arch="electra", output="out"):
    return ("import-tf1", "--arch", arch, "--checkpoint", root / "rel" / "model.ckpt",
            "--output", root / output, *extra)


def test_hparams_fixture_imports(electra_release, cli):
    root = electra_release
    code, _, err = cli(*import_args(root, "--config", root / "hparams.json", output="ok"))
    assert code == 0, err


def edited_hparams(root, name, change):
    d = json.loads((root / "hparams.json").read_text(encoding="utf-8"))
    change(d)
    path = root / name
    path.write_text(json.dumps(d), encoding="utf-8")
    return path


def test_unknown_model_size(electra_release, cli):
    root = electra_release
    path = edited_hparams(root, "medium.json", lambda d: d.update(model_size="medium"))
    one_line_error(cli(*import_args(root, "--config", path, output="o1")), root / "o1",
                   "medium.json", "'model_size'", "small, base, large")


def test_hparams_key_typo(electra_release, cli):
    root = electra_release
    path = edited_hparams(root, "typo.json", lambda d: d.update(generator_hiden_size=0.5))
    one_line_error(cli(*import_args(root, "--config", path, output="o2")), root / "o2",
                   "typo.json", "'generator_hiden_size'", "did you mean 'generator_hidden_size'")
    path = edited_hparams(root, "typo2.json",
                          lambda d: d["model_hparam_overrides"].update(num_hiden_layers=2))
    one_line_error(cli(*import_args(root, "--config", path, output="o3")), root / "o3",
                   "typo2.json", "model_hparam_overrides.num_hiden_layers")


def test_hparams_of_another_size(electra_release, cli):
    """Hparams that do not describe the checkpoint: the vocabulary size first (one line with
    both numbers), then the shapes."""
    root = electra_release
    path = edited_hparams(root, "vocab.json", lambda d: d.update(vocab_size=21128))
    one_line_error(cli(*import_args(root, "--config", path, "--vocab", root / "zh_vocab.txt",
                                    output="o4")),
                   root / "o4", "electra/embeddings/word_embeddings has 300 rows",
                   "vocab.json says vocab_size=21128")
    path = edited_hparams(root, "small.json", lambda d: d.update(model_size="small", embedding_size=128))
    one_line_error(cli(*import_args(root, "--config", path, output="o5")), root / "o5",
                   "does not match an electra model with", "small.json", "shape mismatch")


def test_hparams_for_another_arch(electra_release, cli):
    root = electra_release
    one_line_error(cli(*import_args(root, "--config", root / "hparams.json", arch="bert", output="o6")),
                   root / "o6", "ELECTRA hparams", "--arch electra")


def test_preset_of_another_arch(electra_release, cli):
    root = electra_release
    one_line_error(cli(*import_args(root, "--preset", "albert_tiny_zh", output="o7")), root / "o7",
                   "--preset albert_tiny_zh is an albert model, not --arch electra")
    one_line_error(cli(*import_args(root, "--preset", "electra_smal_zh", output="o8")), root / "o8",
                   "--preset electra_smal_zh", "electra_small_zh")


def test_preset_vocab_mismatches(electra_release, cli):
    """electra_small_zh has vocab_size 21128: a 300-line vocab.txt is refused, and with a
    21128-line one the checkpoint's 300-row word embeddings are; each names both numbers."""
    root = electra_release
    assert get_preset("electra_small_zh").config.vocab_size == 21128
    one_line_error(cli(*import_args(root, "--preset", "electra_small_zh", output="o9")), root / "o9",
                   "rel/vocab.txt: 300 entries but preset electra_small_zh says vocab_size=21128")
    one_line_error(cli(*import_args(root, "--preset", "electra_small_zh", "--vocab", root / "zh_vocab.txt",
                                    output="o10")),
                   root / "o10", "electra/embeddings/word_embeddings has 300 rows",
                   "preset electra_small_zh says vocab_size=21128")


@pytest.mark.parametrize("extra", [(), ("--config", "hparams.json", "--preset", "electra_small_zh")],
                         ids=["neither", "both"])
def test_exactly_one_of_config_and_preset(electra_release, capsys, extra):
    """Neither or both is a usage error (argparse's: exit 2, the usage and one error line)."""
    from tfcompact.cli import main

    root = electra_release
    argv = [str(a) for a in import_args(root, output="o11")]
    argv += [str(root / e) if e.endswith(".json") else e for e in extra]
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's exit, when the command line lets it through
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: tfcompact import-tf1")
    assert "--config" in err.splitlines()[-1] and "--preset" in err.splitlines()[-1]
    assert not os.path.exists(root / "o11")


def test_import_with_preset(tmp_path, cli):
    """albert_tiny_zh, the smallest preset (4M parameters), at full size: a checkpoint written
    from numpy by TF1 name (as the release's own trainer left it, with global_step) imports
    with --preset and no config file; the model directory records the preset."""
    preset = get_preset("albert_tiny_zh")
    shapes = tf1_variable_shapes("albert", preset.config)
    rng = np.random.default_rng(3)
    arrays = {n: (0.02 * rng.standard_normal(s)).astype(np.float32) for n, s in shapes.items()}
    release = tmp_path / "albert_tiny_zh"
    release.mkdir()
    write_tf1_checkpoint(str(release), {**arrays, "global_step": np.int64(1000)})
    write_vocab(release / "vocab.txt", 21128)

    code, out, err = cli("import-tf1", "--arch", "albert", "--preset", "albert_tiny_zh",
                         "--checkpoint", release, "--output", tmp_path / "m")
    assert code == 0, err
    assert f"imported {len(arrays)} variables" in out
    info = modeldir.read_model_dir(str(tmp_path / "m"))
    assert (info.arch, info.preset, info.sentence_head) == ("albert", "albert_tiny_zh", "sop")
    assert info.config == preset.config
    model = modeldir.load_pretraining_model(str(tmp_path / "m"))
    got = {v.path: v.numpy() for v in model.weights}
    for name in ("bert/embeddings/word_embeddings",
                 "bert/encoder/transformer/group_0/inner_group_0/ffn_1/intermediate/dense/kernel",
                 "cls/seq_relationship/output_weights"):
        np.testing.assert_array_equal(got[name], arrays[name])
