"""`tfcompact export --format savedmodel`: the TF Hub text API, outputs equal to Keras (<=1e-5)
at several batch sizes and sequence lengths, the `mlm` signature, and text -> embeddings with the two SavedModels in a process that never imports tfcompact."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_model_dir
from tfcompact.interop.output_dir import MARKER

from sm_helpers import check_against_keras

CASES = {"bert": ("bert", None)}


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
    assert sorted(os.listdir(out)) == [MARKER, "encoder", "preprocessing", "vocab.txt"]
    check_against_keras(arch, config, model, out / "encoder")


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
