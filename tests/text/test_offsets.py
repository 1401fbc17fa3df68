"""Piece offsets: the ids of tokenize_to_ids, and each piece's span in the original text."""
import pytest

from tfcompact.text.offsets import tokenize_with_offsets
from tfcompact.text.tokenizer import FullTokenizer, Vocab, packaged_vocab_path

TINY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "我", "买", "了", "iphone", "##12", "12",
        "cafe", "na", "##ive", ".", '"', "-", "，", "a", "b", "x", "##y", "##z"]

VARIED = [
    "我爱北京！Hello, iPhone12售价５９９９元，“好”…—ＡＢｃ café naïve 3.14%",
    "x\x00y\u200bz\tq\r\n 全角\u3000空格\u2028分行 ΣΑΣ İSTANBUL über 한국어 日本語のテキスト",
    "",
    "   \t ",
    "a" * 101 + " " + "b" * 100,
    "😂👍 ＠＃ ##ing [UNK] [MASK] ‘single’ —— cafe\u0301 Ǆemal",
    "１２月３１日，中共中央总书记、国家主席江泽民发表１９９８年新年讲话《迈向充满希望的新世纪》。",
    "GDP增长7.8%，iPhone12Pro售价5999元……",
]


def spans(tok, text):
    ids, starts, ends = tokenize_with_offsets(tok, text)
    return [(tok.vocab.tokens[i], text[s:e], s, e) for i, s, e in zip(ids, starts, ends)]


@pytest.fixture(scope="module")
def tiny():
    return FullTokenizer(Vocab(TINY), do_lower_case=True)


def test_hand_worked_spans(tiny):
    text = "我买了iPhone12，“Café”…"
    assert spans(tiny, text) == [
        ("我", "我", 0, 1), ("买", "买", 1, 2), ("了", "了", 2, 3),
        ("iphone", "iPhone", 3, 9), ("##12", "12", 9, 11), ("，", "，", 11, 12),
        ('"', "“", 12, 13), ("cafe", "Café", 13, 17), ('"', "”", 17, 18),
        (".", "…", 18, 19), (".", "…", 18, 19), (".", "…", 18, 19)]


def test_unknown_word_spans_the_whole_word(tiny):
    assert spans(tiny, "我 Xyzw 12") == [("我", "我", 0, 1), ("[UNK]", "Xyzw", 2, 6), ("12", "12", 7, 9)]
    assert spans(tiny, "naive XYZ") == [("na", "na", 0, 2), ("##ive", "ive", 2, 5),
                                        ("x", "X", 6, 7), ("##y", "Y", 7, 8), ("##z", "Z", 8, 9)]


def test_dropped_characters(tiny):
    # NUL and a zero-width space belong to no piece; a dropped combining mark stays with its letter.
    assert spans(tiny, "我\x00买\u200b了") == [("我", "我", 0, 1), ("买", "买", 2, 3), ("了", "了", 4, 5)]
    assert spans(tiny, "cafe\u0301 a") == [("cafe", "cafe\u0301", 0, 5), ("a", "a", 6, 7)]
    assert spans(tiny, "a\u3000b\u2028a") == [("a", "a", 0, 1), ("b", "b", 2, 3), ("a", "a", 4, 5)]


@pytest.mark.parametrize("lower", [True, False])
def test_round_trip_on_varied_text(lower):
    tok = FullTokenizer(packaged_vocab_path(), do_lower_case=lower)
    for text in VARIED:
        ids, starts, ends = tokenize_with_offsets(tok, text)
        assert ids == tok.tokenize_to_ids(text)
        assert len(starts) == len(ends) == len(ids)
        assert all(0 <= s < e <= len(text) for s, e in zip(starts, ends))
        assert starts == sorted(starts) and ends == sorted(ends)
        for k, (i, s, e) in enumerate(zip(ids, starts, ends)):
            piece = tok.vocab.tokens[i]
            span_norm = tok.normalize(text[s:e])
            if i == tok.vocab.unk_id:
                assert tok.wordpiece_ids(span_norm) == (tok.vocab.unk_id,), (text, s, e)
                continue
            bare = piece[2:] if piece.startswith("##") and len(piece) > 2 else piece
            shared = (k > 0 and starts[k - 1] == s) or (k + 1 < len(ids) and starts[k + 1] == s)
            if shared:  # pieces cut out of one character: … -> . . .
                assert bare in span_norm, (text, piece, text[s:e])
            else:
                assert span_norm == bare, (text, piece, text[s:e])


@pytest.mark.parametrize("lower", [True, False])
def test_random_mixtures_keep_ids_and_ordered_spans(lower):
    import random

    tok = FullTokenizer(packaged_vocab_path(), do_lower_case=lower)
    rng = random.Random(1)
    pool = (list("我爱北京售价元，。！“”‘’…—\u3000 \t\n\x00\u200b\u2028aBcDxyzİΣς0123456789")
            + ["e\u0301", "\u0301", "한", "Å", "ﬁ", "😂", "Ａ", "１"])
    for _ in range(2000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 25)))
        ids, starts, ends = tokenize_with_offsets(tok, text)
        assert ids == tok.tokenize_to_ids(text), text
        assert starts == sorted(starts) and ends == sorted(ends), text
        assert all(0 <= s < e <= len(text) for s, e in zip(starts, ends)), text
