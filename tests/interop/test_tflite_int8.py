"""`tfcompact export --format tflite --quantize int8`: full-integer TFLite calibrated on real
text (People's Daily sentences tokenized with the model's own vocab), on a tiny ALBERT."""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import make_model_dir
from tfcompact.interop.tflite import (load_tflite_runner, read_sentences, representative_features,
                                      summarize_flatbuffer)
from tfcompact.text.tokenizer import FullTokenizer, packaged_vocab_path

SEQ, PREDICTIONS = 32, 4


def peoples_daily(first, last):
    """Sentences first..last-1 of the packaged People's Daily text (real Chinese)."""
    from pipelines.package_corpus import peoples_daily_gold_words

    return ["".join(w) for w in peoples_daily_gold_words(last)][first:]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tfcompact.cli import main

    root = tmp_path_factory.mktemp("int8")
    vocab_size = sum(1 for _ in open(packaged_vocab_path(), encoding="utf-8"))
    d, config, model = make_model_dir(root, "albert", sentence_head="none", vocab_size=vocab_size)
    shutil.copyfile(packaged_vocab_path(), os.path.join(d, "vocab.txt"))  # real Chinese tokens
    calib = root / "calib.txt"
    calib.write_text("\n".join(peoples_daily(0, 40)) + "\n", encoding="utf-8")
    common = ["export", "--model_dir", d, "--format", "tflite", "--seq_length", str(SEQ),
              "--num_predictions", str(PREDICTIONS)]
    assert main(common + ["--output", str(root / "fp32")]) == 0
    assert main(common + ["--output", str(root / "int8"), "--quantize", "int8",
                          "--representative_data", str(calib)]) == 0
    return root, d, calib


def test_int8_weights_and_activations(exported):
    root, _, _ = exported
    fp32, int8 = root / "fp32" / "model.tflite", root / "int8" / "model.tflite"
    s32, s8 = summarize_flatbuffer(str(fp32)), summarize_flatbuffer(str(int8))
    assert "INT8" not in s32.weight_bytes and s32.weight_bytes["FLOAT32"] > 0
    # every weight is stored as int8 (biases as int32, the int8 kernels' accumulator type)
    assert "FLOAT32" not in s8.weight_bytes, s8.weight_bytes
    # 4 bytes -> 1 byte per weight; the int32 biases are a small part
    assert s8.weight_bytes["INT8"] + s8.weight_bytes.get("INT32", 0) < 0.3 * s32.weight_bytes["FLOAT32"]
    assert os.path.getsize(int8) < 0.5 * os.path.getsize(fp32)
    # activations: float only where the int32 mask enters and where the outputs leave
    assert set(s8.float_ops()) <= {"CAST", "QUANTIZE", "DEQUANTIZE"}, s8.float_ops()
    kernels = {op: ins for (op, ins, _) in s8.ops}
    assert kernels["FULLY_CONNECTED"][:2] == ("INT8", "INT8")
    assert kernels["BATCH_MATMUL"] == ("INT8", "INT8") and kernels["SOFTMAX"] == ("INT8",)
    # the interpreter sees the same: int8 tensors with a scale, int32 id inputs
    interpreter, runner = load_tflite_runner(str(int8))
    details = interpreter.get_tensor_details()
    assert sum(d["dtype"] == np.int8 and d["quantization"][0] > 0 for d in details) > 20
    assert {v["dtype"] for v in runner.get_input_details().values()} == {np.int32}
    assert {v["dtype"] for v in runner.get_output_details().values()} == {np.float32}


def test_int8_close_to_savedmodel_on_real_text(exported):
    """Sentences the calibration did not see. Tolerances from the int8 step: each quantized
    tensor is rounded to 1/255 of its calibrated range, a LayerNorm output's (about -6..6) to
    ~0.05, a mean rounding error of ~0.012; about 15 tensors are requantized per layer, so on 2
    layers ~30 partly independent errors give a mean |error| of ~0.012 * sqrt(30) ~ 0.07 on
    values of mean |value| ~0.8 (unit variance): under 15% of it, and a token vector keeps its
    direction (cosine near 1 / sqrt(1 + 0.1^2) > 0.98 on average). Random weights make the MLM
    logits nearly flat (top-1 decided by small margins), so the top-1 agreement bound is
    loose; tools/bench_tflite.py measures it on trained presets."""
    root, d, _ = exported
    _, runner = load_tflite_runner(str(root / "int8" / "model.tflite"))
    encoder = tf.saved_model.load(str(root / "int8" / "encoder"))
    tok = FullTokenizer(os.path.join(d, "vocab.txt"))
    spec = {k: tf.TensorSpec(v["shape"], tf.int32) for k, v in runner.get_input_details().items()}
    cos, err, size, agree = [], [], [], []
    for feed in representative_features(peoples_daily(200, 232), tok, spec):
        lite = runner(**feed)
        ref = encoder.mlm({k: tf.constant(v) for k, v in feed.items()})
        ref = {k: ref[k].numpy() for k in ("sequence_output", "mlm_logits")}
        seq, ref_seq = lite["sequence_output"][0], ref["sequence_output"][0]
        n = int(feed["input_mask"].sum())
        for a, b in zip(seq[:n], ref_seq[:n]):
            cos.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        err.append(np.abs(seq[:n] - ref_seq[:n]).mean())
        size.append(np.abs(ref_seq[:n]).mean())
        agree.extend(lite["mlm_logits"][0].argmax(-1) == ref["mlm_logits"][0].argmax(-1))
    assert min(cos) > 0.95 and np.mean(cos) > 0.98, (min(cos), np.mean(cos))
    assert np.mean(err) < 0.15 * np.mean(size), (np.mean(err), np.mean(size))
    assert np.mean(agree) >= 0.5, np.mean(agree)


def test_representative_features_by_hand(tmp_path):
    """Three lines -> three samples: [CLS] ids [SEP] padded, 15% of the tokens masked at evenly
    spread positions starting at an offset (the line index modulo the spacing)."""
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n甲\n乙\n丙\n丁\n", encoding="utf-8")
    text = tmp_path / "three.txt"
    text.write_text("甲乙\n" + "甲乙丙丁" * 3 + "甲乙\n" + "丙" * 25 + "\n", encoding="utf-8")
    sentences = read_sentences(str(text), 100)
    assert len(sentences) == 3
    assert read_sentences(str(text), 2) == sentences[:2]
    spec = {"input_word_ids": tf.TensorSpec([1, 20], tf.int32),
            "input_mask": tf.TensorSpec([1, 20], tf.int32),
            "input_type_ids": tf.TensorSpec([1, 20], tf.int32),
            "masked_lm_positions": tf.TensorSpec([1, 4], tf.int32)}
    feeds = representative_features(sentences, FullTokenizer(str(vocab)), spec)
    assert len(feeds) == 3
    # 2 tokens: round(0.3) -> 1 masked, spacing 2, offset 0 -> position 1
    assert feeds[0]["input_word_ids"].tolist() == [[2, 4, 6, 3] + [0] * 16]
    assert feeds[0]["input_mask"].tolist() == [[1] * 4 + [0] * 16]
    assert feeds[0]["masked_lm_positions"].tolist() == [[1, 0, 0, 0]]
    # 14 tokens: round(2.1) -> 2 masked, spacing 7, offset 1 % 7 -> positions 2, 9
    assert feeds[1]["input_word_ids"].tolist() == [[2, 5, 4, 7, 8, 5, 6, 7, 8, 4, 6, 7, 8, 5, 6, 3,
                                                    0, 0, 0, 0]]
    assert feeds[1]["masked_lm_positions"].tolist() == [[2, 9, 0, 0]]
    # 25 tokens cut to 18: round(2.7) -> 3 masked, spacing 6, offset 2 -> positions 3, 9, 15
    row = [2] + [7] * 18 + [3]
    for p in (3, 9, 15):
        row[p] = 4
    assert feeds[2]["input_word_ids"].tolist() == [row]
    assert feeds[2]["masked_lm_positions"].tolist() == [[3, 9, 15, 0]]
    assert feeds[2]["input_type_ids"].tolist() == [[0] * 20]
    # batch 2: the short last batch is filled with the first sample
    spec2 = {k: tf.TensorSpec([2, 20], tf.int32) for k in ("input_word_ids", "input_mask", "input_type_ids")}
    feeds2 = representative_features(sentences, FullTokenizer(str(vocab)), spec2)
    assert len(feeds2) == 2 and sorted(feeds2[1]) == sorted(spec2)
    assert feeds2[1]["input_word_ids"][1].tolist() == [2, 5, 6, 3] + [0] * 16


def test_calibration_file_is_used(exported, tmp_path, cli):
    """The summary counts the file's sentences, and other text gives other int8 ranges."""
    root, d, calib = exported
    three = tmp_path / "three.txt"
    three.write_text("\n".join(peoples_daily(100, 103)) + "\n", encoding="utf-8")
    code, out, err = cli("export", "--model_dir", d, "--format", "tflite", "--quantize", "int8",
                         "--seq_length", SEQ, "--num_predictions", PREDICTIONS,
                         "--representative_data", three, "--output", tmp_path / "lite3")
    assert code == 0, err
    assert f"calibrated on 3 sentences of {three}" in out
    assert (tmp_path / "lite3" / "model.tflite").read_bytes() != (root / "int8" / "model.tflite").read_bytes()
    # --representative_samples takes the first N sentences
    assert len(read_sentences(str(calib), 7)) == 7 and len(read_sentences(str(calib), 1000)) == 40


@pytest.mark.parametrize("make, flags, expect", [
    (None, ["--representative_data", "missing.txt"], "--representative_data missing.txt: no such file"),
    (b"", [], "empty.txt:1: no text"),
    (b"\n  \n\n", [], "empty.txt:1: no text"),
    (b"\xe4\xb8\x80\n\xff\xfe\x80bad\n", [], "empty.txt:2: invalid UTF-8"),
    (None, ["--quantize", "dynamic", "--representative_data", "x.txt"],
     "--representative_data x.txt applies to --format tflite --quantize int8 only"),
    (None, ["--representative_samples", "0"], "--representative_samples 0: expected at least 1"),
])
def test_bad_calibration_inputs(exported, tmp_path, monkeypatch, cli, make, flags, expect):
    root, d, _ = exported
    monkeypatch.chdir(tmp_path)
    if make is not None:
        (tmp_path / "empty.txt").write_bytes(make)
        flags = ["--representative_data", "empty.txt"] + flags
    argv = ["export", "--model_dir", d, "--format", "tflite", "--output", "out"]
    if "--quantize" not in flags:
        argv += ["--quantize", "int8"]
    code, _, err = cli(*argv, *flags)
    assert code == 1 and expect in err and len(err.strip().splitlines()) == 1, err
    assert not os.path.exists(tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == (["empty.txt"] if make is not None else [])


def test_int8_refused_for_fine_tuned_directory(exported, tmp_path, cli):
    """A fine-tuned directory (task.json) is refused before anything loads: its TFLite path has
    no calibration text yet (task_export would need one), and nothing is written."""
    root, d, _ = exported
    task = tmp_path / "task_model"
    shutil.copytree(d, task)
    (task / "task.json").write_text("{}\n", encoding="utf-8")
    code, _, err = cli("export", "--model_dir", task, "--format", "tflite", "--quantize", "int8",
                       "--output", tmp_path / "out")
    assert code == 1 and "fine-tuned directory" in err and "--quantize int8" in err, err
    assert not os.path.exists(tmp_path / "out")
