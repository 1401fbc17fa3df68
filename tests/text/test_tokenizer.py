"""Tokenizer: hand-written ids on mixed text, Python == tensorflow-text, SavedModel, Vocab checks."""
import json
import os

import pytest
import tensorflow as tf

from tests.text.data_fixtures import bert_vocab_path
from tfcompact.errors import DataError
from tfcompact.text.tokenizer import FullTokenizer, Vocab, make_tf_tokenizer

MIXED = "我爱北京！Hello, iPhone12售价５９９９元，“好”…—ＡＢｃ café naïve 3.14%"
# Ids = (line number in bert_chinese_vocab.txt) - 1, looked up by hand with grep -n -x:
# 我 爱 北 京 ！ hello , iphone ##12 售 价 ５ ##９ ##９ ##９ 元 ， " 好 " . . . - ａ ##ｂ ##ｃ
# cafe na ##ive 3 . 14 %
MIXED_IDS = [2769, 4263, 1266, 776, 8013, 8701, 117, 8210, 8455, 1545, 817, 8033, 9174, 9174, 9174,
             1039, 8024, 107, 1962, 107, 119, 119, 119, 118, 8051, 12641, 10675, 8377, 11469, 8857,
             124, 119, 8122, 110]

MORE = [
    MIXED,
    "x\x00y\u200bz\tq\r\n 全角\u3000空格\u2028分行 ΣΑΣ İSTANBUL über 한국어 日本語のテキスト",
    "",
    "   \t ",
    "a" * 101 + " " + "b" * 100,
    "😂👍 ＠＃ ##ing [UNK] [MASK] ‘single’ ——",
    "１２月３１日，中共中央总书记、国家主席江泽民发表１９９８年新年讲话《迈向充满希望的新世纪》。",
]


@pytest.fixture(scope="module")
def vocab_path():
    return bert_vocab_path()


@pytest.fixture(scope="module")
def py_tok(vocab_path):
    return FullTokenizer(vocab_path, do_lower_case=True)


@pytest.fixture(scope="module")
def tf_tok(vocab_path):
    return make_tf_tokenizer(vocab_path, do_lower_case=True)


def test_hand_written_ids(py_tok):
    assert py_tok.tokenize_to_ids(MIXED) == MIXED_IDS


def test_control_chars_and_ideographic_space(py_tok):
    # NUL and zero-width space (Cf) vanish, U+3000 splits words; 'xyz' is line 11267.
    assert py_tok.tokenize_to_ids("x\x00y\u200bz\u3000全") == [11266, 1059]


def test_curly_quotes_normalised_not_nfkc(py_tok):
    toks = py_tok.tokenize("“好”，Ａ")
    assert toks == ['"', "好", '"', "，", "ａ"]  # full-width comma and letter kept


def test_python_and_tf_paths_agree(py_tok, tf_tok):
    got = tf_tok.tokenize(tf.constant(MORE)).to_list()
    for text, ids in zip(MORE, got):
        assert py_tok.tokenize_to_ids(text) == ids, text
    assert got[0] == MIXED_IDS


def test_tf_tokenizer_in_savedmodel(tmp_path, tf_tok):
    path = str(tmp_path / "tok")
    tf.saved_model.save(tf_tok, path)
    loaded = tf.saved_model.load(path)
    assert loaded.tokenize(tf.constant([MIXED])).to_list()[0] == MIXED_IDS


def test_encode_with_words_keeps_ids_and_groups_words(py_tok):
    words = ["我", "爱", "北京", "iPh", "one12", "。"]  # a segmenter cutting inside a word
    text = "".join(words)
    ids, starts = py_tok.encode_with_words(text, cut=lambda norm: ["我", "爱", "北京", "iph", "one12", "。"])
    assert ids == py_tok.tokenize_to_ids(text)
    # 我 | 爱 | 北 京 | iphone ##12 (merged: the cut fell inside one basic token) | 。
    assert starts == [True, True, True, False, True, False, True]


def test_vocab_md5_and_specials(vocab_path):
    v = Vocab.load(vocab_path)
    assert len(v) == 21128
    assert v.md5 == "3b5b76c4aef48ecf8cb3abaafe960f09"
    assert v.special_ids == {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
    assert not v.is_continuation[v.replacement_ids].any()


def test_vocab_missing_special_names_file_and_token(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n好\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"vocab\.txt.*\[MASK\]"):
        Vocab.load(str(p))


def test_vocab_unreadable(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        Vocab.load(str(tmp_path / "nope.txt"))
    p = tmp_path / "bad.txt"
    p.write_bytes(b"[PAD]\n\xff\xfe\n")
    with pytest.raises(DataError, match="not UTF-8"):
        Vocab.load(str(p))


def test_vocab_duplicate_token_names_both_lines(tmp_path):
    """Two ids for one token: one of them could never be produced; refused, not ignored."""
    p = tmp_path / "vocab.txt"
    p.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n好\n的\n好\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"vocab\.txt:8: duplicate token '好' \(first on line 6\)"):
        Vocab.load(str(p))
    p.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"vocab\.txt: vocabulary is empty"):
        Vocab.load(str(p))


def test_char_class_cache_damaged_or_foreign_is_rebuilt(tmp_path, monkeypatch, capsys):
    """The Unicode class cache (JSON in the private cache dir) is used only when it is ours and
    well-formed; otherwise a warning names it and the classes are scanned again."""
    from tfcompact.text import tokenizer, user_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    expected = tokenizer._scan_char_classes()
    path = tmp_path / "tfcompact" / tokenizer._char_class_cache_name()
    for content, mode, warning in [("{not json", 0o644, "is damaged"),
                                   ('{"punct": "a"}', 0o644, "is damaged"),
                                   (json.dumps({**expected, "punct": "x"}), 0o666, "writable by group or others")]:
        tokenizer._char_classes.cache_clear()
        path.parent.mkdir(mode=0o700, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        os.chmod(path, mode)
        assert tokenizer._char_classes() == expected
        assert warning in capsys.readouterr().err
    tokenizer._char_classes.cache_clear()
    assert user_cache.read_private(path.name) == json.dumps(expected).encode()  # rewritten, ours


def test_encode_with_words_all_single_character_tokens(py_tok):
    """Sentences of CJK characters and punctuation only (the per-character fast path): ids by
    hand from the vocab, curly quotes normalised, a character outside the vocab is [UNK]."""
    v = py_tok.vocab
    text = "“我爱北京。”你好！"
    ids, starts = py_tok.encode_with_words(text, cut=lambda norm: ['"', "我", "爱", "北京", "。", '"', "你好", "！"])
    expected = [v.token_to_id[c] for c in ['"', "我", "爱", "北", "京", "。", '"', "你", "好", "！"]]
    assert ids == expected == py_tok.tokenize_to_ids(text)
    assert starts == [True, True, True, True, False, True, True, True, False, True]
    ids, starts = py_tok.encode_with_words("我𠀾。")  # U+2003E: CJK Extension B, not in the vocab
    assert ids == [v.token_to_id["我"], v.unk_id, v.token_to_id["。"]] and starts == [True] * 3


def test_encode_with_words_mixed_runs_without_spaces(py_tok):
    """Characters that are tokens by themselves mixed with multi-character words (digits,
    Latin letters, several WordPiece pieces): whole-word flags by hand."""
    text = "我有3.14个iphone12。"
    words = ["我", "有", "3.14", "个", "iphone12", "。"]
    ids, starts = py_tok.encode_with_words(text, cut=lambda norm: words)
    assert ids == py_tok.tokenize_to_ids(text)
    phone = len(py_tok.wordpiece_ids("iphone12"))
    assert phone >= 2
    # 我 | 有 | 3 . 14 | 个 | iphone ##12... | 。
    assert starts == [True, True, True, False, False, True] + [True] + [False] * (phone - 1) + [True]
    # A segmenter word boundary inside a basic token merges it with the next word.
    ids2, starts2 = py_tok.encode_with_words("ab12北京", cut=lambda norm: ["ab", "12北", "京"])
    assert ids2 == py_tok.tokenize_to_ids("ab12北京")
    assert starts2[-2:] == [True, True] and starts2[0] is True
