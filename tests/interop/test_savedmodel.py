"""`tfcompact export --format savedmodel`: the TF Hub text API, outputs equal to Keras (<=1e-5)
at several batch sizes and sequence lengths, the `mlm` signature, ELECTRA components, and
text -> embeddings with the two SavedModels in a process that never imports tfcompact."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import make_model_dir

from sm_helpers import features, keras_outputs
from tfcompact.interop.savedmodel import export_encoder

CASES = {"bert": ("bert", None)}


def check_against_keras(arch, config, model, encoder_dir):
    enc = tf.saved_model.load(str(encoder_dir))
    sig = enc.signatures["serving_default"]
    for batch, seq, seed in ((2, 16, 0), (3, 9, 1), (1, config.max_position_embeddings, 2)):
        ids, mask, types, positions = features(batch, seq, config.vocab_size, seed)
        ref = keras_outputs(model, arch, ids, mask, types, positions)
        got = enc({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types})
        served = sig(input_word_ids=tf.constant(ids), input_mask=tf.constant(mask),
                     input_type_ids=tf.constant(types))
        np.testing.assert_allclose(got["sequence_output"], ref["sequence_output"], atol=1e-5)
        np.testing.assert_allclose(got["pooled_output"], ref["pooled_output"], atol=1e-5)
        assert len(got["encoder_outputs"]) == config.num_hidden_layers
        for k in range(config.num_hidden_layers):
            np.testing.assert_allclose(got["encoder_outputs"][k], ref["hidden_states"][k + 1], atol=1e-5)
        assert served["encoder_outputs"].shape == (config.num_hidden_layers, batch, seq, config.hidden_size)
        np.testing.assert_allclose(served["encoder_outputs"][-1], ref["sequence_output"], atol=1e-5)
        np.testing.assert_allclose(served["pooled_output"], ref["pooled_output"], atol=1e-5)
        if arch != "electra":
            mlm = enc.signatures["mlm"](input_word_ids=tf.constant(ids), input_mask=tf.constant(mask),
                                        input_type_ids=tf.constant(types),
                                        masked_lm_positions=tf.constant(positions))
            assert mlm["mlm_logits"].shape == (batch, 3, config.vocab_size)
            np.testing.assert_allclose(mlm["mlm_logits"], ref["mlm_logits"], atol=1e-5)
    if arch == "electra":
        assert "mlm" not in enc.signatures  # the discriminator has no MLM head
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_position_embeddings"):
        ids, mask, types, _ = features(1, config.max_position_embeddings + 1, config.vocab_size, 3)
        enc({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types})


@pytest.fixture(scope="module", params=list(CASES))
def exported(request, tmp_path_factory):
    from tfcompact.cli import main

    arch, head = CASES[request.param]
    root = tmp_path_factory.mktemp(arch)
    d, config, model = make_model_dir(root, arch, sentence_head=head)
    out = root / "sm"
    assert main(["export", "--model_dir", d, "--format", "savedmodel", "--output", str(out),
                 "--seq_length", "16"]) == 0
    return arch, config, model, out


def test_outputs_equal_keras(exported):
    arch, config, model, out = exported
    assert sorted(os.listdir(out)) == ["encoder", "preprocessing", "vocab.txt"]
    check_against_keras(arch, config, model, out / "encoder")


def test_electra_generator_component(tmp_path):
    d, config, model = make_model_dir(tmp_path, "electra")
    out = tmp_path / "gen"
    export_encoder(model, "electra", config, str(out), component="generator")
    enc = tf.saved_model.load(str(out))
    ids, mask, types, positions = features(2, 12, config.vocab_size, 5)
    ref = keras_outputs(model, "electra", ids, mask, types, positions, component="generator")
    got = enc.mlm({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types,
                   "masked_lm_positions": positions})
    gen_hidden = config.generator_config().hidden_size
    assert got["sequence_output"].shape == (2, 12, gen_hidden)
    np.testing.assert_allclose(got["sequence_output"], ref["sequence_output"], atol=1e-5)
    np.testing.assert_allclose(got["mlm_logits"], ref["mlm_logits"], atol=1e-5)


TEXT_TO_EMBEDDINGS = r"""
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # the preprocessing model's tokenizer ops
pre = tf.saved_model.load(sys.argv[1] + "/preprocessing")
enc = tf.saved_model.load(sys.argv[1] + "/encoder")
texts = tf.constant(["\u4e00\u4e01\u4e03", "\u4e07"])
feats = pre(texts)
out = enc(feats)
served = enc.signatures["serving_default"](**feats)
print(json.dumps({"ids": feats["input_word_ids"].numpy().tolist(),
                  "pooled": out["pooled_output"].numpy().tolist(),
                  "diff": float(np.abs(served["pooled_output"].numpy() - out["pooled_output"].numpy()).max()),
                  "tfcompact": any(m.startswith("tfcompact") for m in sys.modules)}))
"""


def test_text_to_embeddings_without_tfcompact(exported):
    arch, config, model, out = exported
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-c", TEXT_TO_EMBEDDINGS, str(out)], capture_output=True,
                         text=True, env=env, cwd="/", timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["tfcompact"] is False
    # conftest's vocab: [PAD] [UNK] [CLS] [SEP] [MASK], then U+4E00.. from id 5
    assert got["ids"][0][:6] == [2, 5, 6, 8, 3, 0] and len(got["ids"][0]) == 16
    assert got["ids"][1][:4] == [2, 12, 3, 0]
    ids = np.array(got["ids"], np.int32)
    mask = (ids > 0).astype(np.int32)
    ref = model({"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids),
                 "masked_lm_positions": np.ones((2, 1), np.int32)}, training=False)
    np.testing.assert_allclose(got["pooled"], ref["pooled_output"], atol=1e-5)
    assert got["diff"] == 0.0
