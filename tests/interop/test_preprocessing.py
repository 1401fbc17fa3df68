"""Preprocessing SavedModel: ids equal the Python tokenizer's, packing matches BERT's layout,
and it loads in a process that never imports tfcompact."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfcompact.interop.preprocessing import export_preprocessing_savedmodel
from tfcompact.text.tokenizer import FullTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "我", "爱", "北", "京", "天", "安", "门",
         "今", "日", "好", "hello", "world", "##s", "的", "，", "。", "a", "##b"]
TEXTS = ["我爱北京天安门", "Hello worlds，今日好。", "ab 我", ""]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("pre")
    vocab = d / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    out = str(d / "preprocessing")
    export_preprocessing_savedmodel(str(vocab), out, do_lower_case=True, seq_length=8)
    return str(vocab), out


def expected_features(tok, texts_a, texts_b, seq_length):
    """google-research/bert packing: [CLS] a [SEP] (b [SEP]), longest-first truncation."""
    rows = []
    for i, a in enumerate(texts_a):
        ta = tok.tokenize_to_ids(a)
        tb = tok.tokenize_to_ids(texts_b[i]) if texts_b else None
        budget = seq_length - (3 if tb is not None else 2)
        if tb is None:
            ta = ta[:budget]
        else:
            # round robin: both keep min(len, budget/2-ish): fill alternately
            ka = kb = 0
            while ka + kb < budget and (ka < len(ta) or kb < len(tb)):
                if ka < len(ta):
                    ka += 1
                if ka + kb < budget and kb < len(tb):
                    kb += 1
            ta, tb = ta[:ka], tb[:kb]
        ids = [2] + ta + [3]
        types = [0] * len(ids)
        if tb is not None:
            ids += tb + [3]
            types += [1] * (len(tb) + 1)
        pad = seq_length - len(ids)
        rows.append((ids + [0] * pad, [1] * len(ids) + [0] * pad, types + [0] * pad))
    return [np.array([r[k] for r in rows], np.int32) for k in range(3)]


def test_ids_equal_python_tokenizer(exported):
    vocab, out = exported
    pre = tf.saved_model.load(out)
    tok = FullTokenizer(vocab, do_lower_case=True)
    got = pre.tokenize(tf.constant(TEXTS))
    assert got.to_list() == [tok.tokenize_to_ids(t) for t in TEXTS]
    assert tok.tokenize_to_ids("我爱北京") == [5, 6, 7, 8]


def test_single_and_pair_packing(exported):
    vocab, out = exported
    pre = tf.saved_model.load(out)
    tok = FullTokenizer(vocab, do_lower_case=True)
    feats = pre(tf.constant(TEXTS))
    want = expected_features(tok, TEXTS, None, 8)
    for key, w in zip(("input_word_ids", "input_mask", "input_type_ids"), want):
        np.testing.assert_array_equal(feats[key].numpy(), w)
    for n in (6, 16):
        pair = pre.preprocess_pair(tf.constant(TEXTS), tf.constant(TEXTS[::-1]), tf.constant(n))
        want = expected_features(tok, TEXTS, TEXTS[::-1], n)
        for key, w in zip(("input_word_ids", "input_mask", "input_type_ids"), want):
            np.testing.assert_array_equal(pair[key].numpy(), w)
    # the hand-checked first row: [CLS] 我 爱 北 京 天 安 [SEP]
    assert feats["input_word_ids"].numpy()[0].tolist() == [2, 5, 6, 7, 8, 9, 10, 3]
    assert os.path.isfile(os.path.join(out, "assets", "vocab.txt"))


SUBPROCESS = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the tokenizer ops
pre = tf.saved_model.load(sys.argv[1])
sig = pre.signatures["serving_default"]
out = sig(text=tf.constant(["我爱北京天安门"]))
pair = pre.signatures["serving_pair"](text_a=tf.constant(["我爱"]), text_b=tf.constant(["北京"]))
packed = pre.bert_pack_inputs([pre.tokenize(tf.constant(["今日"]))], tf.constant(5))
print(json.dumps({"single": out["input_word_ids"].numpy().tolist(),
                  "pair_types": pair["input_type_ids"].numpy().tolist(),
                  "packed": packed["input_word_ids"].numpy().tolist(),
                  "tfcompact": any(m.startswith("tfcompact") for m in sys.modules)}))
"""


def test_loads_without_tfcompact(exported):
    _, out = exported
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-c", SUBPROCESS, out], capture_output=True, text=True,
                         env=env, cwd="/", timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["single"] == [[2, 5, 6, 7, 8, 9, 10, 3]]
    assert got["pair_types"] == [[0, 0, 0, 0, 1, 1, 1, 0]]
    assert got["packed"] == [[2, 12, 13, 3, 0]]
    assert got["tfcompact"] is False
