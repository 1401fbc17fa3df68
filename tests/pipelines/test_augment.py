"""`tfcompact augment`: whole-word MLM data augmentation, on a tiny random ALBERT whose MLM
output bias is rigged so that 们 (bias 21) and then 我 (bias 20) win every masked position.

With that rig the replacements are worked out by hand: a one-character word becomes 们 (我 if
it is 们); for a two-character word the products rank 们们 > 们我 = 我们 > 我我, and of these
only 我们 is a jieba word, so with the dictionary filter (top_k 1) every two-character word
becomes 我们 and without it 们们.
"""
import json
import os
import shutil
import sys

import numpy as np
import pytest

from pipelines import augment as aug
from tfcompact import cli
from tfcompact.inputs.task_readers import read_examples
from tfcompact.tasks import SpanExample, TaggedExample, TextExample
from tfcompact.text.segmenter import make_segmenter
from tests.train import task_helpers as th

TEXT_CHARS = "他们我喜欢北京在工作大家上海李四去谁公司银行张三美丽"
RIG = {"们": 21.0, "我": 20.0}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A pretraining model directory with the rigged MLM output bias (latest checkpoint)."""
    import tensorflow as tf

    from tfcompact import modeldir

    root = tmp_path_factory.mktemp("augment_model")
    tokens = th.SPECIAL + list(dict.fromkeys(TEXT_CHARS + "".join(th.FILLER))) + ["，", "。", "？"]
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    path = th.make_pretrained_dir(str(root / "model"), str(vocab))
    model = modeldir.load_pretraining_model(path)
    (bias,) = [v for v in model.weights if v.path.endswith("predictions/output_bias")]
    values = np.zeros(bias.shape, np.float32)
    for ch, b in RIG.items():
        values[tokens.index(ch)] = b
    bias.assign(values)
    tf.train.Checkpoint(model=model).save(os.path.join(path, modeldir.CHECKPOINT_DIR, "ckpt"))
    return path


def run(model_dir, tmp_path, kind, text, name="in", **overrides):
    """Augment `text` (written to a file of `kind`'s format); the output's examples."""
    ext = {"classification": "tsv", "tagging": "conll", "span": "json"}[kind]
    src = tmp_path / f"{name}.{ext}"
    src.parent.mkdir(exist_ok=True)
    src.write_text(text, encoding="utf-8")
    out = tmp_path / f"{name}.out"
    settings = dict(num_copies=3, replace_prob=1.0, top_k=1, max_seq_length=32, batch_size=4,
                    num_workers=1)
    settings.update(overrides)
    counts = aug.augment_file(aug.AugmentConfig(**settings), model_dir, str(src), str(out), kind)
    fmt = {"classification": "jsonl"}.get(kind, "")
    return list(read_examples(kind, str(out), fmt)), counts, out


def test_classification_words_replaced_by_dictionary_words(model_dir, tmp_path):
    rows = "label\ttext_a\n1\t他们喜欢北京\n0\t他们在北京工作，大家喜欢上海。\n"
    got, counts, _ = run(model_dir, tmp_path, "classification", rows)
    assert [(e.guid, e.text_a, e.label) for e in got] == [
        ("in-2", "他们喜欢北京", "1"),
        ("in-2-aug1", "我们我们我们", "1"),
        ("in-3", "他们在北京工作，大家喜欢上海。", "0"),
        # 在 (one character) -> 们; punctuation is never a candidate
        ("in-3-aug1", "我们们我们我们，我们我们我们。", "0")]
    # copies 2 and 3 equal copy 1 (p = 1, one candidate each): dropped
    assert (counts["examples"], counts["copies written"], counts["duplicates dropped"],
            counts["words replaced"]) == (2, 2, 4, 3 + 7)


def test_without_dictionary_the_best_product_wins(model_dir, tmp_path):
    rows = "label\ttext_a\n1\t我们喜欢北京\n"
    got, _, _ = run(model_dir, tmp_path, "classification", rows, dictionary_words=False)
    # 们们 is no word but has the highest product; the original 我们 is never proposed for itself
    assert [e.text_a for e in got] == ["我们喜欢北京", "们们们们们们"]


def test_pairs_keep_both_texts_and_label(model_dir, tmp_path):
    rows = "text_a\ttext_b\tlabel\n他们喜欢北京\t谁在上海\tyes\n"
    got, _, out = run(model_dir, tmp_path, "classification", rows)
    assert [(e.text_a, e.text_b, e.label) for e in got] == [
        ("他们喜欢北京", "谁在上海", "yes"), ("我们我们我们", "们们我们", "yes")]
    assert json.loads(out.read_text(encoding="utf-8").splitlines()[1]) == {
        "id": "in-2-aug1", "text_a": "我们我们我们", "text_b": "们们我们", "label": "yes"}


def test_tagging_replaces_only_words_tagged_o(model_dir, tmp_path):
    sentences = [[("李", "B-PER"), ("四", "I-PER"), ("去", "O"), ("上", "B-LOC"), ("海", "I-LOC"),
                  ("工", "O"), ("作", "O")],
                 # a two-character CoNLL token and a Latin one are never replaced
                 [("他们", "O"), ("喜", "O"), ("欢", "O"), ("NBA", "B-ORG")]]
    text = "\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences) + "\n"
    got, _, _ = run(model_dir, tmp_path, "tagging", text)
    assert [(e.words, e.tags) for e in got] == [
        (tuple("李四去上海工作"), ("B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "O")),
        (tuple("李四们上海我们"), ("B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "O")),
        (("他们", "喜", "欢", "NBA"), ("O", "O", "O", "B-ORG")),
        (("他们", "我", "们", "NBA"), ("O", "O", "O", "B-ORG"))]


def test_span_answers_untouched_offsets_valid(model_dir, tmp_path):
    context = "他们在北京工作，大家喜欢上海。"
    doc = {"version": "v1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": [
        {"id": "q1", "question": "谁喜欢北京？", "answers": [{"text": "北京", "answer_start": 3}]},
        {"id": "q2", "question": "大家喜欢哪里？", "answers": [{"text": "上海", "answer_start": 12}]},
    ]}]}]}
    got, counts, _ = run(model_dir, tmp_path, "span", json.dumps(doc, ensure_ascii=False))
    # the shared context's 7 words (each question protects one) are masked once, plus 3 + 3
    assert counts["mlm queries"] == 7 + 3 + 3
    assert [(e.guid, e.question, e.context, e.answers) for e in got] == [
        ("q1", "谁喜欢北京？", context, (("北京", 3),)),
        ("q1-aug1", "们我们我们？", "我们们北京我们，我们我们我们。", (("北京", 3),)),
        ("q2", "大家喜欢哪里？", context, (("上海", 12),)),
        # 哪里 is a word of jieba's: -> 我们
        ("q2-aug1", "我们我们我们？", "我们们我们我们，我们我们上海。", (("上海", 12),))]
    for e in got:
        for text, start in e.answers:
            assert e.context[start:start + len(text)] == text


def test_decode_beam_search_by_hand():
    """`MlmCandidates.decode` on hand-made per-position log-probabilities (no model)."""
    mlm = aug.MlmCandidates.__new__(aug.MlmCandidates)
    mlm.tokens = ["[PAD]", "美", "丽", "人", "我"]
    mlm.cfg = aug.AugmentConfig(top_k=3)
    mlm.per_position = 4
    mlm.dictionary = aug.Dictionary({"美": 5, "美丽": 9, "丽": 4, "丽人": 3, "人": 2, "我": 1, "我美": 0})
    values = np.array([[-0.5, -1.0, -2.0, -3.0], [-0.1, -1.0, -1.5, -4.0]])
    ids = np.array([[2, 1, 3, 4], [2, 3, 1, 4]])  # position 0: 丽 美 人 我; position 1: 丽 人 美 我
    # products: 丽丽 -0.6 (no word), 丽人 -1.5, 美丽 -1.1, ...; the original 美丽 excluded
    assert mlm.decode(values, ids, "美丽") == ["丽人"]
    assert mlm.decode(values, ids, "我们") == ["美丽", "丽人"]
    mlm.dictionary = None
    assert mlm.decode(values, ids, "我们") == ["丽丽", "美丽", "丽人"]  # -0.6, -1.1, -1.5
    # one character: no dictionary, ties broken by the lower token id
    tied = np.array([[-1.0, -1.0, -2.0, -3.0]])
    assert mlm.decode(tied, np.array([[2, 1, 3, 4]]), "人") == ["美", "丽", "我"]
    assert mlm.decode(tied, np.array([[2, 1, 3, 4]]), "美") == ["丽", "人", "我"]


def sentiment_text(n=12):
    texts = ["他们在北京工作，大家喜欢上海。", "公司在北京", "银行喜欢上海", "张三去上海工作"]
    rows = th.sentiment_rows(n, seed=3)
    return "label\ttext_a\n" + "".join(f"{label}\t{texts[i % 4]}{text}\n"
                                      for i, (label, text) in enumerate(rows))


def test_replacements_are_whole_segmenter_words(model_dir, tmp_path):
    got, counts, _ = run(model_dir, tmp_path, "classification", sentiment_text(),
                         num_copies=5, replace_prob=0.5, top_k=4)
    cut = make_segmenter("jieba").cut
    words = aug.jieba_dictionary()
    originals = {e.guid: e for e in got if "-aug" not in e.guid}
    assert len(originals) == 12 and counts["copies written"] == len(got) - 12 > 12
    replaced = 0
    for e in got:
        if "-aug" not in e.guid:
            continue
        original = originals[e.guid.split("-aug")[0]]
        assert e.label == original.label and len(e.text_a) == len(original.text_a)
        pos = 0
        for word in cut(original.text_a):
            new = e.text_a[pos:pos + len(word)]
            if new != word:
                replaced += 1
                assert all(aug.is_cjk_char(ord(c)) for c in word + new), (word, new)
                assert len(word) == 1 or words.is_word(new), (word, new)
            pos += len(word)
    assert replaced == counts["words replaced"]


def test_same_seed_same_output_whatever_batch_and_workers(model_dir, tmp_path):
    text = sentiment_text()
    settings = dict(num_copies=4, replace_prob=0.5, top_k=3)
    *_, a = run(model_dir, tmp_path, "classification", text, "a/in", batch_size=4, num_workers=1, **settings)
    *_, b = run(model_dir, tmp_path, "classification", text, "b/in", batch_size=7, num_workers=2, **settings)
    *_, c = run(model_dir, tmp_path, "classification", text, "c/in", seed=1, **settings)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_copies_are_sampled_per_word_with_probability_p():
    """`sample_copies` alone: p = 1 replaces every word, p small almost none; duplicates of the
    original or of an earlier copy are dropped."""
    words = [[(0, 2, ["我们"]), (2, 1, ["们", "我"])]]
    cfg = aug.AugmentConfig(num_copies=6, replace_prob=1.0)
    copies, duplicates = aug.sample_copies(["他们在"], words, cfg, aug.example_rng(1, 0))
    assert {texts[0] for _, texts, _ in copies} <= {"我们们", "我们我"}
    assert len(copies) + duplicates == 6 and all(r == 2 for _, _, r in copies)
    cfg = aug.AugmentConfig(num_copies=6, replace_prob=1e-9)
    assert aug.sample_copies(["他们在"], words, cfg, aug.example_rng(1, 0)) == ([], 6)


def test_example_fields_mark_what_may_change():
    span = SpanExample("q", "问", "他们在北京", (("北京", 3),))
    assert [f.allowed for f in aug.example_fields(span)] == [(True,), (True,) * 3 + (False,) * 2]
    tagged = TaggedExample("t", ("我", "NBA", "x", "京"), ("O", "O", "O", "B-LOC"))
    (field,) = aug.example_fields(tagged)
    # NBA and x meet without an ideograph: a space between them
    assert field.text == "我NBA x京"
    assert field.owner == (0, 1, 1, 1, -1, 2, 3)
    assert field.allowed == (True, False, False, False, False, True, False)
    pair = TextExample("g", "甲乙", "丙", "1")
    assert [f.text for f in aug.example_fields(pair)] == ["甲乙", "丙"]


def cli_args(model_dir, src, out, *extra):
    return ["augment", "--model_dir", model_dir, "--input", str(src), "--output", str(out),
            "--kind", "classification", "--num_copies", "2", "--max_seq_length", "32",
            "--num_workers", "1", *extra]


def test_command_overwrite_and_one_line_errors(model_dir, tmp_path, capsys):
    src = tmp_path / "in.tsv"
    src.write_text("label\ttext_a\n1\t他们喜欢北京\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert cli.main(cli_args(model_dir, src, out)) == 0
    assert "1 examples" in capsys.readouterr().out
    first = out.read_bytes()

    def error(*argv):
        assert cli.main(list(argv)) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        return lines[-1]

    assert "already exists (pass --overwrite" in error(*cli_args(model_dir, src, out))
    assert cli.main(cli_args(model_dir, src, out, "--overwrite")) == 0
    assert out.read_bytes() == first
    capsys.readouterr()
    fresh = tmp_path / "fresh.jsonl"
    assert "--replace_prob 1.5: expected a probability" in error(
        *cli_args(model_dir, src, fresh, "--replace_prob", "1.5"))
    assert "--top_k 0: expected at least 1" in error(*cli_args(model_dir, src, fresh, "--top_k", "0"))
    assert "--segmenter 'pkuseg'" in error(*cli_args(model_dir, src, fresh, "--segmenter", "pkuseg"))
    assert "--max_seq_length 100: the model" in error(
        *cli_args(model_dir, src, fresh, "--max_seq_length", "100"))
    kind = cli_args(model_dir, src, fresh)
    kind[kind.index("classification")] = "sorting"
    assert "--kind: expected one of classification" in error(*kind)
    assert "is also an --input file" in error(*cli_args(model_dir, src, src, "--overwrite"))
    bad = tmp_path / "bad.tsv"
    bad.write_text("label\ttext_a\n1\t他们喜欢北京\n0\t北京\textra\n", encoding="utf-8")
    assert f"{bad}:3: 3 tab-separated columns, the header has 2" in error(*cli_args(model_dir, bad, fresh))
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    os.remove(broken / "vocab.txt")
    assert "vocab.txt: cannot read vocabulary" in error(*cli_args(str(broken), src, fresh))
    assert "tfcompact.json: not found" in error(*cli_args(str(tmp_path), src, fresh))
    assert not fresh.exists()
    assert sorted(os.listdir(tmp_path)) == ["bad.tsv", "in.tsv", "model", "out.jsonl"]


def test_default_segmenter_is_rjieba_and_falls_back_to_jieba(model_dir, tmp_path, monkeypatch, capsys):
    """No segmenter named: rjieba; when it cannot be imported, jieba with one warning line.
    Both give the words of --segmenter jieba on this Chinese text, hence the same output."""
    from tfcompact.errors import UserError
    from tfcompact.text import user_cache

    text = sentiment_text()
    settings = dict(num_copies=3, replace_prob=0.5, top_k=3)
    *_, explicit = run(model_dir, tmp_path, "classification", text, "j/in", segmenter="jieba", **settings)
    *_, default = run(model_dir, tmp_path, "classification", text, "d/in", **settings)
    assert default.read_bytes() == explicit.read_bytes()
    assert not [line for line in capsys.readouterr().err.splitlines() if "rjieba" in line]
    monkeypatch.setitem(sys.modules, "rjieba", None)  # `import rjieba` raises ImportError now
    monkeypatch.setattr(user_cache, "_WARNED", set())
    *_, fallback = run(model_dir, tmp_path, "classification", text, "f/in", **settings)
    *_, again = run(model_dir, tmp_path, "classification", text, "g/in", num_workers=2, **settings)
    warned = [line for line in capsys.readouterr().err.splitlines() if "rjieba" in line]
    assert len(warned) == 1 and "warning: segmenting with jieba" in warned[0], warned
    assert fallback.read_bytes() == again.read_bytes() == explicit.read_bytes()
    with pytest.raises(UserError, match="^--segmenter rjieba: the rjieba package cannot be imported"):
        run(model_dir, tmp_path, "classification", text, "r/in", segmenter="rjieba", **settings)
