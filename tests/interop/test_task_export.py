"""Deployable exports of fine-tuned directories: the raw-text SavedModel of each task kind,
loaded in a process that never imports tfcompact, predicts what the Python path predicts
(FullTokenizer featurisation + the Keras task model + the Python decoding); the encoder-only
export is the fine-tuned backbone; TFLite passes its label gate; failures leave nothing."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfcompact import modeldir
from tfcompact.configs import tiny_config
from tfcompact.inputs.task_features import decode_spans, decode_tags, encode_examples
from tfcompact.interop.output_dir import MARKER
from tfcompact.interop.task_export import (
    export_task_savedmodel,
    extract_entities,
    label_tables,
    tokenize_with_offsets,
)
from tfcompact.interop.tflite import load_tflite_runner
from tfcompact.metrics.tagging import extract_entities as python_entities
from tfcompact.models import build_backbone
from tfcompact.models.tasks import build_task_model, task_backbone
from tfcompact.tasks import (
    BEST_DIR,
    SpanExample,
    TaggedExample,
    TaskSpec,
    TextExample,
    write_task_spec,
)
from tfcompact.text.offsets import tokenize_with_offsets as python_offsets
from tfcompact.text.tokenizer import (
    FullTokenizer,
    Vocab,
    make_tf_tokenizer,
    packaged_vocab_path,
)

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-PER"]
TEXTS = [
    "他说：“iPhone12 很好…”今天",
    "",
    "张三 在北京天安门广场看升旗仪式，非常激动，李四也在。",
    "Café cafe\u0301 ok\u200bx 1949年10月1日到2024年，共75年",
]
QUESTIONS = ["北京在哪", "", "谁“看”升旗仪式了？谁看了呢", "what is it"]
PAIRS = ["天安门", "好", "", "ok"]


def mixed_texts(count, seed):
    """Texts mixing Chinese, Latin/digit runs, spaces, curly quotes, ellipses, accents."""
    rng = np.random.default_rng(seed)
    pool = list("北京天安门广场看升旗仪式张三李四今天很好的了，。：") + [
        " ", "“", "”", "…", "iPhone", "12", "abc", "2024", "é", "e\u0301", "-"]
    return ["".join(rng.choice(pool, size=rng.integers(1, 40))) for _ in range(count)]


# hand-written cases first, then random mixtures (long ones run over several windows)
TEXTS += mixed_texts(8, 0)
QUESTIONS += mixed_texts(8, 1)
PAIRS += mixed_texts(8, 2)


def randomize(model, seed):
    """Distinct weights, heads large enough that the predictions vary along a text."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        if "seed_generator" in v.path:
            continue
        head = "classifier" in v.path or "span_head" in v.path
        value = (1.0 if head else 0.1) * rng.standard_normal(v.shape)
        if v.path.endswith("gamma"):
            value = 1.0 + 0.1 * rng.standard_normal(v.shape)
        v.assign(value.astype(v.dtype))


def make_task_dir(root, arch, kind, labels, seed, **spec_fields):
    """A fine-tuned directory: tfcompact.json + vocab.txt + task.json + best/ checkpoint."""
    vocab = packaged_vocab_path()
    config = tiny_config(arch, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                         vocab_size=len(Vocab.load(vocab)), max_position_embeddings=64)
    model = build_task_model(build_backbone(arch, config), arch, config, kind, len(labels))
    randomize(model, seed)
    d = os.path.join(str(root), f"{kind}_model")
    modeldir.write_model_dir_config(d, arch, config, vocab_path=vocab)
    spec = TaskSpec(kind=kind, labels=list(labels), **spec_fields)
    write_task_spec(d, spec)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), os.path.join(d, BEST_DIR),
                               max_to_keep=1).save()
    return d, model, spec


SERVE = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the tokenizer ops
texts, questions, pairs = (json.loads(a) for a in sys.argv[4:7])
def run(path, signature="serving_default", **inputs):
    sig = tf.saved_model.load(path).signatures[signature]
    out = sig(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: [x.decode() if isinstance(x, bytes) else x for x in v.numpy().ravel().tolist()]
            + [list(v.shape)] for k, v in out.items()}
print(json.dumps({
    "classification": run(sys.argv[1], text=texts, text_b=pairs),
    "single": run(sys.argv[1], "serving_single", text=texts),
    "tagging": run(sys.argv[2], text=texts),
    "span": run(sys.argv[3], question=questions, context=texts),
    "tfcompact": [m for m in sys.modules if m.startswith("tfcompact")]}))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tfcompact.cli import main

    root = tmp_path_factory.mktemp("task_export")
    dirs = {
        "classification": make_task_dir(root, "bert", "classification", ["neg", "pos", "mid"], 0,
                                        max_seq_length=16, text_fields=["a", "b"]),
        "tagging": make_task_dir(root, "electra", "tagging", TAGS, 1, max_seq_length=12),
        "span": make_task_dir(root, "albert", "span", [], 2, max_seq_length=24,
                              max_query_length=6, doc_stride=5, max_answer_length=4, n_best_size=5),
    }
    outputs = {k: root / f"{k}_export" for k in dirs}
    assert main(["export", "--model_dir", dirs["classification"][0], "--format", "savedmodel",
                 "--output", str(outputs["classification"])]) == 0
    export_task_savedmodel(dirs["tagging"][0], str(outputs["tagging"]))
    assert main(["export", "--model_dir", dirs["span"][0], "--format", "tflite",
                 "--output", str(outputs["span"])]) == 0
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run(
        [sys.executable, "-c", SERVE, str(outputs["classification"] / "task"),
         str(outputs["tagging"]), str(outputs["span"] / "task"), json.dumps(TEXTS),
         json.dumps(QUESTIONS), json.dumps(PAIRS)],
        capture_output=True, text=True, env=env, cwd="/", timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    served = json.loads(res.stdout.strip().splitlines()[-1])
    return root, dirs, outputs, served


def rows(flat_with_shape):
    """A served output back to nested lists ([values..., shape])."""
    *values, shape = flat_with_shape
    return np.array(values, dtype=object if values and isinstance(values[0], str) else None
                    ).reshape(shape).tolist()


def keras_outputs(model, features):
    out = model({k: features[k] for k in ("input_ids", "input_mask", "segment_ids")},
                training=False)
    return {k: v.numpy() for k, v in out.items()}


def test_served_without_tfcompact(exported):
    _, _, outputs, served = exported
    assert served["tfcompact"] == []
    assert sorted(os.listdir(outputs["classification"])) == sorted(
        [MARKER, "encoder", "preprocessing", "task", "task.json", "vocab.txt"])
    assert sorted(os.listdir(outputs["span"])) == [MARKER, "model.tflite", "task"]
    assert os.path.isfile(outputs["tagging"] / "assets" / "task.json")


@pytest.mark.parametrize("signature", ["classification", "single"])
def test_classification_matches_python(exported, signature):
    _, dirs, _, served = exported
    d, model, spec = dirs["classification"]
    tokenizer = FullTokenizer(os.path.join(d, "vocab.txt"))
    pairs = PAIRS if signature == "classification" else [None] * len(TEXTS)
    examples = [TextExample(str(i), a, b, None) for i, (a, b) in enumerate(zip(TEXTS, pairs))]
    encoded = encode_examples("classification", examples, tokenizer, spec, False)
    assert encoded.features["input_mask"].sum(1).max() == spec.max_seq_length  # some were cut
    logits = keras_outputs(model, encoded.features)["logits"]
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    got = served[signature]
    np.testing.assert_allclose(rows(got["probabilities"]), probabilities, atol=1e-5)
    assert rows(got["label_ids"]) == probabilities.argmax(-1).tolist()
    assert rows(got["labels"]) == [spec.labels[i] for i in probabilities.argmax(-1)]


def test_tagging_matches_python(exported):
    _, dirs, _, served = exported
    d, model, spec = dirs["tagging"]
    tokenizer = FullTokenizer(os.path.join(d, "vocab.txt"))
    # the words: every character that tokenizes to something (not the spaces, not U+200B)
    words = [[(i, c) for i, c in enumerate(t) if tokenizer.tokenize_to_ids(c)] for t in TEXTS]
    examples = [TaggedExample(str(k), tuple(c for _, c in w), None) for k, w in enumerate(words)]
    encoded = encode_examples("tagging", examples, tokenizer, spec, False)
    assert encoded.num_features > len(TEXTS) + 2  # long texts were cut into windows
    tags = decode_tags(encoded.meta, keras_outputs(model, encoded.features)["logits"], spec.labels)
    got = served["tagging"]
    served_tags, served_ids = rows(got["tags"]), rows(got["tag_ids"])
    for k, text in enumerate(TEXTS):
        expected = [""] * len(text)
        for (i, _), tag in zip(words[k], tags[k]):
            expected[i] = tag
        assert served_tags[k][:len(text)] == expected
        assert all(t == "" for t in served_tags[k][len(text):])
        assert served_ids[k][:len(text)] == [spec.labels.index(t) if t else -1 for t in expected]
        entities = [(type_, words[k][a][0], words[k][b - 1][0] + 1)
                    for type_, a, b in python_entities(tags[k])]
        n = got["num_entities"][k]
        assert n == len(entities)
        found = list(zip(rows(got["entity_types"])[k], rows(got["entity_starts"])[k],
                         rows(got["entity_ends"])[k], rows(got["entity_texts"])[k]))
        assert found[:n] == [(t, a, b, text[a:b]) for t, a, b in entities]
        assert all(f == ("", -1, -1, "") for f in found[n:])
    assert sum(got["num_entities"][:-1]) > 5


def test_entities_by_hand():
    """seqeval's rules on hand-worked rows: I- after O starts an entity, E-/S- end one, a type
    change ends and starts one, the sentence end closes the last."""
    tables = label_tables(TAGS)
    rows_ = [["B-PER", "I-PER", "O", "I-LOC", "E-LOC", "S-PER", "B-LOC", "I-PER"],
             [], ["O"], ["I-PER", "I-PER"], ["E-LOC", "E-LOC"]]
    ids = tf.ragged.constant([[TAGS.index(t) for t in r] for r in rows_], dtype=tf.int32,
                             row_splits_dtype=tf.int64)
    row, type_id, first, last = (x.numpy().tolist() for x in extract_entities(ids, tables))
    got = [(r, tables[2][t], a, b) for r, t, a, b in zip(row, type_id, first, last)]
    assert got == [(0, "PER", 0, 1), (0, "LOC", 3, 4), (0, "PER", 5, 5), (0, "LOC", 6, 6),
                   (0, "PER", 7, 7), (3, "PER", 0, 1), (4, "LOC", 0, 0), (4, "LOC", 1, 1)]


def test_span_matches_python(exported):
    _, dirs, _, served = exported
    d, model, spec = dirs["span"]
    tokenizer = FullTokenizer(os.path.join(d, "vocab.txt"))
    examples = [SpanExample(str(i), q, c, ()) for i, (q, c) in enumerate(zip(QUESTIONS, TEXTS))]
    encoded = encode_examples("span", examples, tokenizer, spec, False)
    assert encoded.num_features > len(TEXTS) + 2  # long contexts were cut into windows
    out = keras_outputs(model, encoded.features)
    answers, nbest = decode_spans(examples, encoded.meta, out["start_logits"], out["end_logits"],
                                  spec.n_best_size, spec.max_answer_length)
    got = served["span"]
    assert rows(got["answer"]) == [answers[str(i)] for i in range(len(TEXTS))]
    for i, text in enumerate(TEXTS):
        start, end = rows(got["start"])[i], rows(got["end"])[i]
        if answers[str(i)]:
            assert text[start:end] == answers[str(i)]
            best = nbest[str(i)][0]
            assert rows(got["score"])[i] == pytest.approx(best["start_logit"] + best["end_logit"],
                                                          abs=1e-4)
        else:
            assert (start, end, rows(got["score"])[i]) == (-1, -1, -np.inf)
    assert answers["1"] == "" and sum(bool(a) for a in answers.values()) >= 2


def test_offsets_through_normalisation():
    """Piece spans in the original text: curly quotes and the ellipsis are one character each
    however many pieces they become, a Latin/digit run keeps its characters."""
    vocab = packaged_vocab_path()
    tokenizer = FullTokenizer(vocab)
    text = "“iPhone12”…好"
    ids, starts, ends = (x[0].numpy().tolist() for x in tokenize_with_offsets(
        make_tf_tokenizer(vocab), tf.constant([text])))
    assert ids == tokenizer.tokenize_to_ids(text)
    # “ -> '"' is character 0; the run iPhone12 is characters 1..8; ” is 9; … (three dots) is
    # 10 for all three pieces; 好 is 11
    assert (starts[0], ends[0]) == (0, 1)
    assert starts[1] == 1 and ends[len(ids) - 6] == 9
    assert list(zip(starts, ends))[-5:] == [(9, 10), (10, 11), (10, 11), (10, 11), (11, 12)]
    texts = TEXTS + ["ΟΔΟΣ İstanbul ２０２４", "x\u0301\u0301y", "a" * 120 + " 中", "\t 我们 "]
    ids, starts, ends = tokenize_with_offsets(make_tf_tokenizer(vocab), tf.constant(texts))
    for k, t in enumerate(texts):
        assert (ids[k].numpy().tolist(), starts[k].numpy().tolist(),
                ends[k].numpy().tolist()) == python_offsets(tokenizer, t)


def test_encoder_is_the_finetuned_backbone(exported):
    _, dirs, outputs, _ = exported
    _, model, _ = dirs["classification"]
    encoder = tf.saved_model.load(str(outputs["classification"] / "encoder"))
    ids = np.array([[101, 2769, 4263, 102, 0]], np.int32)
    mask, types = (ids > 0).astype(np.int32), np.zeros_like(ids)
    got = encoder({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types})
    ref = task_backbone(model)({"input_ids": ids, "input_mask": mask, "segment_ids": types},
                               training=False)
    np.testing.assert_allclose(got["pooled_output"], ref["pooled_output"], atol=1e-5)


def test_tflite_gate(exported, cli):
    _, dirs, outputs, _ = exported
    _, model, spec = dirs["span"]
    _, runner = load_tflite_runner(str(outputs["span"] / "model.tflite"))
    shapes = {k: tuple(v["shape"]) for k, v in runner.get_input_details().items()}
    assert shapes == {k: (1, spec.max_seq_length)
                      for k in ("input_word_ids", "input_mask", "input_type_ids")}
    ids = np.array([[2] + list(range(700, 720)) + [3, 0, 0]], np.int32)
    mask, types = (ids > 0).astype(np.int32), np.zeros_like(ids)
    lite = runner(input_word_ids=ids, input_mask=mask, input_type_ids=types)
    ref = model({"input_ids": ids, "input_mask": mask, "segment_ids": types}, training=False)
    np.testing.assert_allclose(lite["start_logits"], ref["start_logits"], atol=1e-4)
    code, out, err = cli("check-tflite", "--tflite", outputs["span"] / "model.tflite",
                         "--savedmodel", outputs["span"] / "task", "--num_batches", "1",
                         "--min_agreement", "1")
    assert code == 0 and "predicted label agreement: 1.0000" in out, out + err


def test_bad_exports_leave_nothing(exported, cli):
    root, dirs, _, _ = exported
    d = dirs["tagging"][0]
    for flags, message in ((["--format", "tf1"], "--format tf1: a fine-tuned directory"),
                           (["--format", "savedmodel", "--component", "generator"], "--component"),
                           (["--format", "savedmodel", "--quantize", "fp16"], "--quantize fp16"),
                           (["--format", "tflite", "--quantize", "int4"], "--quantize int4"),
                           (["--format", "savedmodel", "--do_lower_case", "false"],
                            "do_lower_case"),
                           (["--format", "tflite", "--seq_length", "65"], "--seq_length 65")):
        code, _, err = cli("export", "--model_dir", d, "--output", root / "bad", *flags)
        assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
        assert not os.path.exists(root / "bad")
    # a failure inside the write (no vocabulary to build the tokenizer from): nothing left
    broken = root / "broken"
    shutil.copytree(d, broken)
    os.remove(broken / "vocab.txt")
    before = set(os.listdir(root))
    code, _, err = cli("export", "--model_dir", broken, "--format", "savedmodel",
                       "--output", root / "out")
    assert code == 1 and "vocab.txt" in err and len(err.strip().splitlines()) == 1, err
    assert set(os.listdir(root)) == before
