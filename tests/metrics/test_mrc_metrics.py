"""CMRC 2018 / DRCD EM and F1 on hand-made cases, each worked out by hand from the rules of the
official scorer (cmrc2018_evaluate.py): its punctuation list, one segment per Chinese
character, NLTK-style words for the runs between them, F1 from the longest common contiguous
run of segments, the best reference, a missing prediction scored 0 and counted."""
import json

import pytest

from tfcompact.errors import DataError
from tfcompact.metrics import mrc


def scores(reference, prediction):
    return mrc.question_scores([reference], prediction)


# ------------------------------------------------------------------ normalisation and EM

def test_punctuation_only_differences_are_an_exact_match():
    assert scores("北京大学", "“北京大学”。") == (1, 1.0)
    assert scores("1998年", "（1998年）") == (1, 1.0)  # full-width brackets are on the list
    assert scores("上海，浦东", "上海浦东") == (1, 1.0)  # full-width comma
    assert scores("iphone-12", "iPhone12") == (1, 1.0)  # "-" removed, case folded


def test_ascii_period_is_not_on_the_scorers_list():
    # "北京." keeps its period: EM 0; segments 北 京 . against 北 京: lcs 2, P 2/3, R 1,
    # F1 = 2 * 2/3 * 1 / (2/3 + 1) = 0.8.
    em, f1 = scores("北京", "北京.")
    assert em == 0
    assert f1 == pytest.approx(0.8, abs=1e-12)


def test_full_width_brackets_off_the_list_are_segments():
    # 【 and 】 are not on the list: each is a run of its own, so 4 segments against 2:
    # lcs 2, P 1/2, R 1 -> F1 2/3; EM 0.
    em, f1 = scores("北京", "【北京】")
    assert em == 0
    assert f1 == pytest.approx(2 / 3, abs=1e-12)


def test_whitespace_inside_an_answer_breaks_em_but_not_f1():
    assert scores("北京大学", "北京 大学") == (0, 1.0)
    assert scores("北京大学", "  北京大学\n") == (1, 1.0)  # surrounding whitespace is stripped


def test_ellipsis_is_kept_because_the_list_names_it_as_two_characters():
    assert mrc.remove_punctuation("等等……") == "等等……"


# ------------------------------------------------------------------ segmentation and F1

def test_mixed_chinese_and_latin_segmentation():
    assert mrc.mixed_segmentation("iPhone12发布") == ["iphone12", "发", "布"]
    assert mrc.mixed_segmentation("iPhone 12发布") == ["iphone", "12", "发", "布"]
    assert mrc.mixed_segmentation("售价$3.88（约50%）") == ["售", "价", "$", "3.88", "约",
                                                          "50", "%"]
    assert mrc.mixed_segmentation("1,000公里") == ["1,000", "公", "里"]


def test_latin_run_kept_together_scores_zero_against_its_spaced_form():
    # [iphone12, 发, 布] and [iphone, 12] share no segment.
    assert scores("iphone 12", "iPhone12发布") == (0, 0.0)
    # [iphone, 12, 发, 布] against [iphone, 12]: lcs 2, P 1/2, R 1 -> F1 2/3.
    em, f1 = scores("iphone 12", "iPhone 12发布")
    assert em == 0
    assert f1 == pytest.approx(2 / 3, abs=1e-12)


def test_f1_uses_the_longest_common_contiguous_run_not_a_subsequence():
    # 北 大 against 北 京 大 学: the longest common contiguous run is one segment,
    # P 1/2, R 1/4 -> F1 = 2 * 1/8 / (3/4) = 1/3.
    em, f1 = scores("北京大学", "北大")
    assert em == 0
    assert f1 == pytest.approx(1 / 3, abs=1e-12)
    assert mrc.lcs_length(list("abcxbcd"), list("zbcdz")) == 3


def test_chinese_range_is_the_scorers():
    # U+9FA5 is the last character it splits; U+9FA6 joins a run like a Latin letter.
    assert mrc.mixed_segmentation("\u9fa5\u9fa5") == ["\u9fa5", "\u9fa5"]
    assert mrc.mixed_segmentation("\u9fa6\u9fa6") == ["\u9fa6\u9fa6"]


def test_several_references_take_the_best():
    em, f1 = mrc.question_scores(["北京", "北京大学"], "北京大学")
    assert (em, f1) == (1, 1.0)
    # 北 京 大: against 北京 lcs 2, P 2/3, R 1 -> 0.8; against 北京大学 lcs 3, P 1, R 3/4
    # -> 6/7. The best is 6/7.
    em, f1 = mrc.question_scores(["北京", "北京大学"], "北京大")
    assert em == 0
    assert f1 == pytest.approx(6 / 7, abs=1e-12)


def test_empty_prediction():
    assert scores("北京", "") == (0, 0.0)
    # An answer of punctuation alone normalises to "": the empty prediction matches it
    # exactly, but has no segment in common (F1 0), as the scorer counts it.
    assert scores("。", "") == (1, 0.0)


def test_word_rules_for_latin_runs():
    tokens = mrc.word_tokenize
    assert tokens("it's") == ["it", "'s"]
    assert tokens("can't") == ["ca", "n't"]
    assert tokens("cannot") == ["can", "not"]
    assert tokens("u.s.") == ["u.s", "."]  # only a final period is split off
    assert tokens("a,b 1,000") == ["a", ",", "b", "1,000"]
    assert tokens('"ok"') == ["``", "ok", "''"]
    assert tokens("(1998)") == ["(", "1998", ")"]
    assert tokens("  ") == []


def test_word_rules_agree_with_nltk_when_it_is_installed():
    nltk_tokenize = pytest.importorskip("nltk.tokenize")
    reference = nltk_tokenize.NLTKWordTokenizer()
    texts = ["$3.88 (roughly 3,36 euros)", "'hello' world", "rock 'n' roll", "a...b--c",
             "x\u2014y z", "gonna wanna gimme", "'tis 'twas", "50% off!", "«q» “q” ‘q’",
             "we'll y'all i'm", "a:b 10:30 a:", "end.", "end.) ", '"a" (\'b\')', "more'n d'ye"]
    for text in texts:
        assert mrc.word_tokenize(text) == reference.tokenize(text), text


# ------------------------------------------------------------------ over a dataset

def test_evaluate_averages_over_every_question_including_missing_ones():
    references = {"q1": ["北京"], "q2": ["上海"], "q3": ["北京大学"], "q4": ["广州"]}
    predictions = {"q1": "北京。", "q2": "上海市", "q3": "北大", "q5": "ignored"}
    # q1: EM 1, F1 1. q2: EM 0; 上 海 市 against 上 海: P 2/3, R 1 -> 0.8.
    # q3: EM 0, F1 1/3 (above). q4: no prediction, 0 and 0.
    result = mrc.evaluate(references, predictions)
    assert result["total"] == 4
    assert result["skipped"] == 1
    assert result["em"] == pytest.approx(1 / 4, abs=1e-12)
    assert result["f1"] == pytest.approx((1 + 0.8 + 1 / 3) / 4, abs=1e-12)


def test_evaluate_without_questions_is_an_error():
    with pytest.raises(DataError, match="no questions"):
        mrc.evaluate({}, {"q1": "北京"})
    with pytest.raises(DataError, match="q1"):
        mrc.evaluate({"q1": []}, {"q1": "北京"})


# ------------------------------------------------------------------ files

def test_write_predictions_is_the_official_submission_json(tmp_path):
    path = tmp_path / "predictions.json"
    mrc.write_predictions(str(path), {"DEV_0_QUERY_0": "北京大学", "DEV_0_QUERY_1": ""})
    raw = path.read_bytes().decode("utf-8")
    assert "北京大学" in raw  # the characters themselves, not \u escapes
    assert json.loads(raw) == {"DEV_0_QUERY_0": "北京大学", "DEV_0_QUERY_1": ""}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.json"]
