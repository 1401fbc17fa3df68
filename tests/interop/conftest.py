"""Helpers shared by the interop tests: tiny model directories with random weights."""
import os

import numpy as np
import pytest
import tensorflow as tf

from tfcompact import modeldir
from tfcompact.configs import tiny_config
from tfcompact.models import build_pretraining_model


def write_vocab(path, size):
    """A BERT-layout vocab of `size` lines: specials, then CJK characters, then ## pieces."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += [chr(0x4E00 + i) for i in range(size - len(tokens) - 20)]
    tokens += [f"##{chr(0x4E00 + i)}" for i in range(20)]
    assert len(tokens) == size
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return str(path)


def randomize(model, seed=0):
    """Distinct values in every variable, at the scale of a trained model (gamma near 1)."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        if not v.path.endswith("seed_generator_state"):
            value = 0.05 * rng.standard_normal(v.shape)
            if v.path.endswith("gamma"):
                value += 1.0
            v.assign(value.astype(v.dtype))


def make_model_dir(root, arch, *, sentence_head=None, optimizer=None, seed=0, **overrides):
    """root/<arch>: tfcompact.json + vocab.txt + checkpoints/ of a tiny random model."""
    config = tiny_config(arch, **overrides)
    model = build_pretraining_model(arch, config, sentence_head=sentence_head)
    randomize(model, seed)
    d = os.path.join(str(root), f"{arch}_model")
    os.makedirs(d, exist_ok=True)
    vocab = write_vocab(root / f"{arch}_vocab.txt", config.vocab_size)
    modeldir.write_model_dir_config(d, arch, config, vocab_path=vocab, sentence_head=sentence_head)
    objects = {"model": model}
    if optimizer is not None:
        objects["optimizer"] = optimizer
    tf.train.CheckpointManager(tf.train.Checkpoint(**objects), os.path.join(d, "checkpoints"),
                               max_to_keep=1).save()
    return d, config, model


@pytest.fixture
def cli(capsys):
    """Run `tfcompact ...` in-process; returns (exit code, stdout, stderr)."""
    from tfcompact.cli import main

    def run(*argv):
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err
    return run
