"""Segmenters are lossless and versioned; whole words from them group tokens for masking."""
import pytest

from tests.text.data_fixtures import bert_vocab_path
from tfcompact.errors import UserError
from tfcompact.text.segmenter import make_segmenter
from tfcompact.text.tokenizer import FullTokenizer

TEXT = "中共中央总书记、国家主席江泽民发表１９９８年新年讲话 iPhone 3.14%"


@pytest.mark.parametrize("name", ["jieba", "rjieba", "presegmented"])
def test_lossless_and_versioned(name):
    seg = make_segmenter(name)
    assert "".join(seg.cut(TEXT)) == TEXT
    d = seg.describe()
    assert d["name"] == name and d["version"]


def test_jieba_finds_words():
    words = make_segmenter("jieba").cut("国家主席江泽民发表新年讲话")
    assert "国家主席" in words or "国家" in words
    assert "讲话" in words


def test_presegmented_words_become_whole_words():
    tok = FullTokenizer(bert_vocab_path())
    seg = make_segmenter("presegmented")
    ids, starts = tok.encode_with_words("迈向 充满 希望 的 新 世纪", seg.cut)
    assert tok.vocab.convert_ids_to_tokens(ids) == list("迈向充满希望的新世纪")
    assert starts == [True, False, True, False, True, False, True, True, True, False]


def test_unknown_segmenter():
    with pytest.raises(UserError, match="unknown segmenter"):
        make_segmenter("ltp")


def test_jieba_dictionary_cache_gives_jieba_words(tmp_path, monkeypatch):
    """The converter's pickle cache of jieba's dictionary: written on first load, used on the
    second, ignored when corrupt; the words always equal jieba's own (HMM on)."""
    import jieba

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = "中共中央总书记、国家主席江泽民发表１９９８年新年讲话，韩国总统金大中访华。"
    expected = jieba.Tokenizer().lcut(text, HMM=True)
    first = make_segmenter("jieba")
    first.load()
    caches = list((tmp_path / "tfcompact").glob("jieba-*.pickle"))
    assert len(caches) == 1
    assert first.cut(text) == expected
    second = make_segmenter("jieba")
    second.load()
    assert second.cut(text) == expected
    caches[0].write_bytes(b"not a pickle")
    third = make_segmenter("jieba")
    third.load()
    assert third.cut(text) == expected
