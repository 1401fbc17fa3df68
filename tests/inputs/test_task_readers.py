"""Task readers on small files written here: the classification tables and JSON lines of the
Chinese benchmarks (ChnSentiCorp, LCQMC, XNLI, CLUE), SQuAD v1, CoNLL tags; every malformed
row a one-line error naming file and line (or JSON path); labels from the training split."""
import collections
import json

import pytest

from tfcompact.errors import ConfigError, DataError
from tfcompact.inputs import task_readers as tr
from tfcompact.tasks import SpanExample, TaggedExample, TextExample


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def read(path, fmt, **kw):
    return list(tr.read_classification(path, fmt, **kw))


# ------------------------------------------------------------------------------ tables

def test_chnsenticorp_layout_keeps_bare_quotes(tmp_path):
    path = write(tmp_path, "train.tsv", 'label\ttext_a\n1\t房间很"干净"\n\n0\t服务差 \n')
    assert read(path, "tsv") == [
        TextExample("train-2", '房间很"干净"', None, "1", f"{path}:2"),
        TextExample("train-4", "服务差", None, "0", f"{path}:4")]


def test_lcqmc_pair_layout_and_ids(tmp_path):
    path = write(tmp_path, "dev.tsv", "qid\ttext_a\ttext_b\tlabel\n7\t怎么办\t如何是好\t1\n")
    (e,) = read(path, "tsv")
    assert (e.guid, e.text_a, e.text_b, e.label) == ("7", "怎么办", "如何是好", "1")


def test_table_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.tsv"
    path.write_bytes("\ufefflabel\ttext_a\n1\t好\n".encode("utf-8"))
    assert [e.label for e in read(str(path), "tsv")] == ["1"]


@pytest.mark.parametrize("body, line, words", [
    ("1\t好\n0\t差\t多\n", 3, "3 tab-separated columns, the header has 2"),
    ("1\t好\n0\t \n", 3, "field 'text_a' is empty"),
    ("\t好\n", 2, "field 'label' is empty"),
    ("1\n", 2, "1 tab-separated columns"),
])
def test_malformed_rows_name_file_and_line(tmp_path, body, line, words):
    path = write(tmp_path, "bad.tsv", "label\ttext_a\n" + body)
    with pytest.raises(DataError) as e:
        read(path, "tsv")
    assert f"{path}:{line}:" in str(e.value) and words in str(e.value)
    assert "\n" not in str(e.value)


def test_header_without_known_columns(tmp_path):
    path = write(tmp_path, "t.tsv", "y\tq\n1\t好\n")
    with pytest.raises(DataError, match=rf"{path}:1: no text columns found \(has: y, q\)"):
        read(path, "tsv")
    # the generic layout: columns named by the user
    (e,) = read(path, "tsv", text_fields="q", label_field="y")
    assert (e.text_a, e.label) == ("好", "1")
    with pytest.raises(DataError, match=rf"{path}:1: no column 'z' in the header"):
        read(path, "tsv", text_fields="q", label_field="z")


def test_csv_quoted_fields(tmp_path):
    path = write(tmp_path, "t.csv", 'review,stars\n"好,很好",5\n"差",1\n')
    rows = read(path, "csv", text_fields=["review"], label_field="stars")
    assert [(e.text_a, e.label, e.source) for e in rows] == [
        ("好,很好", "5", f"{path}:2"), ("差", "1", f"{path}:3")]


def test_headerless_file_by_column_numbers(tmp_path):
    path = write(tmp_path, "lcqmc.txt", "喜欢打篮球吗\t爱打篮球吗\t1\n天气\t下雨\t0\n")
    rows = read(path, "tsv", text_fields="0,1", label_field="2")
    assert [(e.text_a, e.text_b, e.label) for e in rows] == [
        ("喜欢打篮球吗", "爱打篮球吗", "1"), ("天气", "下雨", "0")]
    with pytest.raises(ConfigError, match="needs the label's column number as --label_field"):
        read(path, "tsv", text_fields="0,1")
    # unlabelled: the label column is not needed
    assert [e.label for e in read(path, "tsv", text_fields="0,1", labelled=False)] == [None, None]


def test_unlabelled_table_without_label_column(tmp_path):
    path = write(tmp_path, "test.tsv", "text_a\n好\n")
    assert read(path, "tsv", labelled=False) == [TextExample("test-2", "好", None, None, f"{path}:2")]
    with pytest.raises(DataError, match="no label column found"):
        read(path, "tsv")


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "gbk.tsv"
    path.write_bytes("label\ttext_a\n1\t好\n".encode("utf-8") + "0\t差\n".encode("gbk"))
    with pytest.raises(DataError, match=rf"{path}:3: not UTF-8"):
        read(str(path), "tsv")


# ------------------------------------------------------------------------------ XNLI

XNLI_HEADER = "language\tgold_label\tsentence1_binary_parse\tsentence1\tsentence2\tpairID\n"


def test_xnli_keeps_chinese_rows(tmp_path):
    path = write(tmp_path, "xnli.dev.tsv", XNLI_HEADER
                 + "en\tneutral\t( x )\tA man.\tA person.\t1\n"
                 + "zh\tentailment\t( x )\t他来了。\t有人来了。\t2\n"
                 + "de\tneutral\t( x )\tEin Mann.\tEine Person.\t3\n"
                 + "zh\tcontradiction\t( x )\t天晴。\t下雨。\t4\n")
    counts = collections.Counter()
    rows = list(tr.read_classification(path, "xnli", counts=counts))
    assert [(e.text_a, e.text_b, e.label, e.source) for e in rows] == [
        ("他来了。", "有人来了。", "entailment", f"{path}:3"),
        ("天晴。", "下雨。", "contradiction", f"{path}:5")]
    assert counts[tr.SKIPPED_LANGUAGE] == 2
    assert tr.describe_counts(path, counts) == f"{path}: 2 {tr.SKIPPED_LANGUAGE}"


def test_xnli_without_chinese_or_language_column(tmp_path):
    path = write(tmp_path, "en.tsv", XNLI_HEADER + "en\tneutral\t( x )\tA.\tB.\t1\n")
    with pytest.raises(DataError, match="no row with language zh"):
        read(path, "xnli")
    path = write(tmp_path, "plain.tsv", "sentence1\tsentence2\tgold_label\n天晴。\t下雨。\tneutral\n")
    with pytest.raises(DataError, match=rf"{path}:1: no 'language' column"):
        read(path, "xnli")
    # the same file as a plain table: ChineseGLUE's XNLI layout
    assert [e.label for e in read(path, "tsv")] == ["neutral"]


def test_xnli_mt_training_spelling(tmp_path):
    path = write(tmp_path, "multinli.train.zh.tsv",
                 "premise\thypo\tlabel\n他来了\t有人来了\tentailment\n天晴\t下雨\tcontradictory\n")
    assert [e.label for e in read(path, "tsv")] == ["entailment", "contradiction"]


# ------------------------------------------------------------------------------ JSON lines

def jsonl(*rows) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def test_clue_single_and_pair_tasks(tmp_path):
    tnews = write(tmp_path, "tnews.json", jsonl(
        {"label": "102", "label_desc": "news_entertainment", "sentence": "新片上映", "keywords": ""}))
    assert read(tnews, "clue") == [TextExample("tnews-1", "新片上映", None, "102", f"{tnews}:1")]
    afqmc = write(tmp_path, "afqmc.json", jsonl(
        {"sentence1": "花呗怎么还", "sentence2": "花呗如何还款", "label": 1}))
    (e,) = read(afqmc, "clue")
    assert (e.text_a, e.text_b, e.label) == ("花呗怎么还", "花呗如何还款", "1")


def test_ocnli_rows_without_gold_label_are_skipped_and_counted(tmp_path):
    path = write(tmp_path, "ocnli.json", jsonl(
        {"sentence1": "一", "sentence2": "二", "label": "neutral", "id": 0},
        {"sentence1": "三", "sentence2": "四", "label": "-", "id": 1},
        {"sentence1": "五", "sentence2": "六", "label": "entailment", "id": 2}))
    counts = collections.Counter()
    rows = list(tr.read_classification(path, "clue", counts=counts))
    assert [(e.guid, e.label) for e in rows] == [("0", "neutral"), ("2", "entailment")]
    assert counts[tr.SKIPPED_NO_GOLD] == 1


def test_csl_keywords_and_abstract(tmp_path):
    path = write(tmp_path, "csl.json", jsonl(
        {"id": 5, "abst": "研究了水稻的生长。", "keyword": ["水稻", "生长"], "label": "1"}))
    (e,) = read(path, "clue")
    assert (e.guid, e.text_a, e.text_b, e.label) == ("5", "水稻 生长", "研究了水稻的生长。", "1")


def test_clue_test_file_without_labels(tmp_path):
    path = write(tmp_path, "test.json", jsonl({"id": 9, "sentence": "好看"}))
    assert read(path, "clue", labelled=False) == [TextExample("9", "好看", None, None, f"{path}:1")]


def test_generic_jsonl_fields(tmp_path):
    path = write(tmp_path, "mine.jsonl", jsonl({"q": "甲", "d": "乙", "y": True}))
    with pytest.raises(DataError, match=rf"{path}:1: field 'y': expected a label"):
        read(path, "jsonl", text_fields="q,d", label_field="y")
    path = write(tmp_path, "mine2.jsonl", jsonl({"q": "甲", "d": "乙", "y": 3}, {"q": "丙", "y": 4}))
    with pytest.raises(DataError, match=rf"{path}:2: field 'd' missing"):
        read(path, "jsonl", text_fields="q,d", label_field="y")


@pytest.mark.parametrize("text, words", [
    ('{"sentence": "好", "label": "1"\n', "invalid JSON"),
    ('["好", "1"]\n', "expected a JSON object, got list"),
    ('{"sentence": 5, "label": "1"}\n', "field 'sentence': expected text, got 5"),
    ('{"sentence": "好", "label": null}\n', "field 'label': expected a label"),
])
def test_malformed_json_lines(tmp_path, text, words):
    path = write(tmp_path, "bad.json", jsonl({"sentence": "好", "label": "0"}) + "\n" + text)
    with pytest.raises(DataError) as e:
        read(path, "clue")
    assert str(e.value).startswith(f"{path}:3: ") and words in str(e.value)


# ------------------------------------------------------------------------------ labels

def test_classification_labels_from_training_split(tmp_path):
    train = [TextExample(str(i), "字", None, y) for i, y in enumerate(["10", "2", "1", "2"])]
    assert tr.collect_labels(train, "classification") == ["1", "2", "10"]
    words = [TextExample("0", "字", None, y) for y in ["neutral", "contradiction", "entailment"]]
    assert tr.collect_labels(words, "classification") == ["contradiction", "entailment", "neutral"]
    dev = write(tmp_path, "dev.tsv", "label\ttext_a\n1\t好\n3\t差\n")
    with pytest.raises(DataError) as e:
        tr.check_labels(tr.read_examples("classification", dev), ["1", "2", "10"], dev)
    assert str(e.value) == f"{dev}:3: label '3' is not one of the training labels (1, 2, 10)"


def test_no_labels_in_training_split():
    with pytest.raises(DataError, match="no labelled classification examples"):
        tr.collect_labels([TextExample("0", "字", None, None)], "classification")


# ------------------------------------------------------------------------------ SQuAD v1

def squad(*qas, context="北京是中国的首都，北京很大。"):
    return {"version": "v1.0", "data": [{"title": "t", "paragraphs": [
        {"context": context, "qas": list(qas)}]}]}


def qa(qid, question="首都是哪里？", answers=(("北京", 0),)):
    return {"id": qid, "question": question,
            "answers": [{"text": t, "answer_start": s} for t, s in answers]}


def write_squad(tmp_path, doc, name="cmrc.json"):
    return write(tmp_path, name, json.dumps(doc, ensure_ascii=False))


def test_squad_questions(tmp_path):
    path = write_squad(tmp_path, squad(qa("Q1"), qa("Q2", "哪里很大？", (("北京", 9), ("北京很大", 9)))))
    rows = list(tr.read_squad(path))
    assert rows[0] == SpanExample("Q1", "首都是哪里？", "北京是中国的首都，北京很大。", (("北京", 0),),
                                  f"{path}: data[0].paragraphs[0].qas[0]")
    assert rows[1].answers == (("北京", 9), ("北京很大", 9))


def test_squad_offset_off_by_some(tmp_path):
    # "北京" is at 0 and at 9; the answer claims 8 (context[8:10] == "，北")
    path = write_squad(tmp_path, squad(qa("Q7", answers=(("北京", 8),))))
    with pytest.raises(DataError) as e:
        list(tr.read_squad(path, repair=False))
    message = str(e.value)
    assert message.startswith(f"{path}: data[0].paragraphs[0].qas[0].answers[0].answer_start: question Q7")
    assert "'，北'" in message
    counts = collections.Counter()
    (row,) = tr.read_squad(path, counts=counts)
    assert row.answers == (("北京", 9),) and counts[tr.REPAIRED_OFFSETS] == 1


def test_squad_answer_not_in_context(tmp_path):
    path = write_squad(tmp_path, squad(qa("Q3", answers=(("上海", 0),))))
    with pytest.raises(DataError, match=r"answers\[0\]\.text: the answer '上海' of question Q3 does not occur"):
        list(tr.read_squad(path))


def test_squad_questions_without_answers(tmp_path):
    path = write_squad(tmp_path, squad(qa("Q1"), qa("Q2", answers=())))
    with pytest.raises(DataError, match=rf"{path}: data\[0\]\.paragraphs\[0\]\.qas\[1\]\.answers: question Q2 has no answer"):
        list(tr.read_squad(path))
    del_answers = squad({"id": "Q3", "question": "问？"})
    path = write_squad(tmp_path, del_answers, "test.json")
    assert [r.answers for r in tr.read_squad(path, labelled=False)] == [()]
    v2 = squad(dict(qa("Q4", answers=()), is_impossible=True))
    with pytest.raises(DataError, match="SQuAD v2"):
        list(tr.read_squad(write_squad(tmp_path, v2, "v2.json"), labelled=False))


@pytest.mark.parametrize("bad, where", [
    (qa("Q1", answers=(("北京", "0"),)), "qas[0].answers[0].answer_start: expected int"),
    ({"id": "Q1", "answers": []}, "qas[0].question: missing"),
    ({"id": None, "question": "问"}, "qas[0].id: expected str or int"),
])
def test_squad_field_errors_name_the_json_path(tmp_path, bad, where):
    path = write_squad(tmp_path, squad(bad))
    with pytest.raises(DataError) as e:
        list(tr.read_squad(path))
    assert str(e.value).startswith(f"{path}: data[0].paragraphs[0].{where}")


def test_squad_duplicate_ids_and_invalid_json(tmp_path):
    path = write_squad(tmp_path, squad(qa("Q1"), qa("Q1")))
    with pytest.raises(DataError, match=r"question id 'Q1' appears twice \(first at data\[0\]"):
        list(tr.read_squad(path))
    path = write(tmp_path, "broken.json", '{"data": [\n  {"paragraphs": ]}')
    with pytest.raises(DataError, match=rf"{path}:2: invalid JSON"):
        list(tr.read_squad(path))


# ------------------------------------------------------------------------------ CoNLL

CONLL = "-DOCSTART- -X- O\n\n张 B-PER\n三 I-PER\n在 O\n\n北 B-LOC\n京 I-LOC\n"


def test_conll_sentences(tmp_path):
    path = write(tmp_path, "ner.txt", CONLL)
    assert list(tr.read_conll(path)) == [
        TaggedExample("ner-3", ("张", "三", "在"), ("B-PER", "I-PER", "O"), f"{path}:3"),
        TaggedExample("ner-7", ("北", "京"), ("B-LOC", "I-LOC"), f"{path}:7")]
    assert [e.tags for e in tr.read_conll(path, labelled=False)] == [None, None]


def test_conll_more_columns_take_the_last_as_tag(tmp_path):
    path = write(tmp_path, "c.txt", "北\tNR\tB-LOC\n京\tNR\tI-LOC\n")
    assert [e.tags for e in tr.read_conll(path)] == [("B-LOC", "I-LOC")]


def test_conll_one_column_and_bad_tag(tmp_path):
    path = write(tmp_path, "one.txt", "张 B-PER\n三\n")
    with pytest.raises(DataError, match=rf"{path}:2: one column '三'"):
        list(tr.read_conll(path))
    assert [e.words for e in tr.read_conll(path, labelled=False)] == [("张", "三")]
    path = write(tmp_path, "bad.txt", "张 B-PER\n三 I_PER\n")
    with pytest.raises(DataError, match=rf"{path}:2: tag 'I_PER'"):
        list(tr.read_conll(path))


def test_bmes_reads_as_bioes(tmp_path):
    path = write(tmp_path, "resume.txt", "南 B-ORG\n京 M-ORG\n大 M-ORG\n学 E-ORG\n张 S-PER\n")
    counts = collections.Counter()
    (e,) = tr.read_conll(path, counts=counts)
    assert e.tags == ("B-ORG", "I-ORG", "I-ORG", "E-ORG", "S-PER") and counts[tr.BMES_TAGS] == 2
    assert tr.tag_scheme(e.tags) == "BIOES"
    tr.check_tags(e, "BIOES")


def tagged(tags, source="f.txt:10"):
    return TaggedExample("x", tuple("字" * len(tags)), tuple(tags), source)


@pytest.mark.parametrize("tags, scheme, line, words", [
    (["O", "I-PER"], "BIO", 11, "'I-PER' after 'O'"),
    (["B-LOC", "I-PER"], "BIO", 11, "'I-PER' after 'B-LOC'"),
    (["S-PER"], "BIO", 10, "not a BIO tag"),
    (["B-PER", "O"], "BIOES", 11, "a BIOES entity ends with E-PER"),
    (["B-PER", "I-PER"], "BIOES", 11, "ends inside a BIOES entity"),
    (["E-PER"], "BIOES", 10, "'E-PER' after 'O'"),
    (["S-PER", "I-PER"], "BIOES", 11, "'I-PER' after 'S-PER'"),
])
def test_check_tags_rejects(tags, scheme, line, words):
    with pytest.raises(DataError) as e:
        tr.check_tags(tagged(tags), scheme)
    assert str(e.value).startswith(f"f.txt:{line}: ") and words in str(e.value)


@pytest.mark.parametrize("tags, scheme", [
    (["B-PER", "I-PER", "O", "B-LOC", "B-LOC"], "BIO"),
    (["B-PER", "I-PER", "E-PER", "S-LOC", "O", "B-LOC", "E-LOC"], "BIOES"),
])
def test_check_tags_accepts(tags, scheme):
    tr.check_tags(tagged(tags), scheme)


def test_tagging_labels_and_unseen_tags(tmp_path):
    train = [tagged(["B-PER", "I-PER", "O", "B-LOC"]), tagged(["B-ORG", "O"])]
    assert tr.collect_labels(train, "tagging") == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert tr.collect_labels([tagged(["S-PER", "B-LOC", "E-LOC"])], "tagging") == [
        "O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"]
    dev = write(tmp_path, "dev.txt", "北 B-LOC\n京 I-LOC\n\n某 B-MISC\n")
    labels = tr.collect_labels(train, "tagging")
    with pytest.raises(DataError, match=rf"{dev}:4: tag 'B-MISC' is not one of the training labels \(O, B-LOC"):
        tr.check_labels(tr.read_examples("tagging", dev), labels, dev)
    bioes = write(tmp_path, "bioes.txt", "张 S-PER\n")
    with pytest.raises(DataError, match=rf"{bioes}:1: tag 'S-PER' is not one of the training labels"):
        tr.check_labels(tr.read_examples("tagging", bioes), labels, bioes)


# ------------------------------------------------------------------------------ dispatcher

def test_read_examples_dispatches_and_checks_formats(tmp_path):
    conll = write(tmp_path, "a.txt", "北 B-LOC\n")
    assert len(list(tr.read_examples("tagging", conll))) == 1
    doc = write_squad(tmp_path, squad(qa("Q1")))
    assert [e.guid for e in tr.read_examples("span", doc, "squad")] == ["Q1"]
    clue = write(tmp_path, "a.json", jsonl({"sentence": "好", "label": 1}))
    assert [e.label for e in tr.read_examples("classification", clue)] == ["1"]
    with pytest.raises(ConfigError, match="--task_format squad reads span files, not classification"):
        tr.read_examples("classification", clue, "squad")
    with pytest.raises(ConfigError, match="--task_format 'xml': expected one of tsv, csv"):
        tr.read_examples("classification", clue, "xml")
    assert tr.default_format("classification", "x/train.csv") == "csv"
    assert tr.default_format("classification", "x/train.tsv") == "tsv"
    assert tr.default_format("span", "x/train.json") == "squad"
    with pytest.raises(DataError, match="not found"):
        list(tr.read_examples("tagging", str(tmp_path / "missing.txt")))
