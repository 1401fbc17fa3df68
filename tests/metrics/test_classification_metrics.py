"""Accuracy and macro-F1 on hand-made cases, worked out from scikit-learn's definition
(f1_score(average="macro", zero_division=0)): the classes seen in references or predictions,
per-class F1 = 2 tp / (true + predicted), 0 for a class never predicted correctly."""
import pytest

from tfcompact.errors import DataError
from tfcompact.metrics import classification as cls


def test_accuracy():
    assert cls.accuracy(["pos", "neg", "pos", "neg"], ["pos", "pos", "pos", "neg"]) == 0.75
    assert cls.accuracy([1, 2, 3], [1, 2, 3]) == 1.0


def test_per_class_by_hand():
    refs = ["a", "a", "a", "b", "b", "c"]
    preds = ["a", "a", "b", "b", "c", "c"]
    # a: tp 2, true 3, predicted 2 -> P 1, R 2/3, F1 4/5.
    # b: tp 1, true 2, predicted 2 -> P 1/2, R 1/2, F1 1/2.
    # c: tp 1, true 1, predicted 2 -> P 1/2, R 1, F1 2/3.
    report = cls.per_class_scores(refs, preds)
    assert list(report) == ["a", "b", "c"]
    assert report["a"] == {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1": 0.8,
                           "support": 3}
    assert report["b"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert report["c"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3),
                           "support": 1}
    assert cls.macro_f1(refs, preds) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3, abs=1e-15)


def test_a_class_only_predicted_counts_with_f1_zero():
    # refs only a; predictions invent b: a tp 1, true 2, pred 1 -> F1 2/3; b F1 0.
    refs, preds = ["a", "a"], ["a", "b"]
    assert cls.macro_f1(refs, preds) == pytest.approx((2 / 3 + 0) / 2, abs=1e-15)
    assert cls.per_class_scores(refs, preds)["b"] == {"precision": 0.0, "recall": 0.0,
                                                      "f1": 0.0, "support": 0}


def test_a_class_never_predicted_has_precision_zero_not_an_error():
    refs, preds = ["a", "b", "b"], ["b", "b", "b"]
    # a: tp 0, pred 0 -> P 0 (zero_division 0), R 0, F1 0. b: tp 2, true 2, pred 3 -> 4/5.
    assert cls.per_class_scores(refs, preds)["a"]["precision"] == 0.0
    assert cls.macro_f1(refs, preds) == pytest.approx(0.4, abs=1e-15)


def test_given_labels_include_unseen_classes():
    # With the task's labels [0, 1, 2], class 2 (never seen) adds an F1 of 0 to the mean.
    refs, preds = [0, 1, 1, 0], [0, 1, 0, 0]
    # 0: tp 2, true 2, pred 3 -> 4/5. 1: tp 1, true 2, pred 1 -> 2/3.
    assert cls.macro_f1(refs, preds) == pytest.approx((0.8 + 2 / 3) / 2, abs=1e-15)
    assert cls.macro_f1(refs, preds, labels=[0, 1, 2]) == pytest.approx((0.8 + 2 / 3) / 3,
                                                                         abs=1e-15)


def test_classification_scores_and_report_text():
    result = cls.classification_scores(["x", "y"], ["x", "x"])
    assert result["accuracy"] == 0.5
    # x: tp 1, true 1, pred 2 -> 2/3; y: 0.
    assert result["macro_f1"] == pytest.approx(1 / 3, abs=1e-15)
    text = cls.format_report(result["per_class"])
    assert text.splitlines()[1].split() == ["x", "50.00", "100.00", "66.67", "1"]


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(DataError, match="2 references but 1 predictions"):
        cls.accuracy(["a", "b"], ["a"])
    with pytest.raises(DataError, match="no examples"):
        cls.macro_f1([], [])
    with pytest.raises(DataError, match="mix types"):
        cls.macro_f1(["1", 1], [1, 1])


# ------------------------------------------------------------------ the dispatcher

def test_score_dispatches_every_task_kind():
    from tfcompact import metrics, tasks

    assert metrics.KINDS == tasks.TASK_KINDS
    result = metrics.score("classification", ["a", "b", "b"], ["a", "b", "a"])
    # a: tp 1, true 1, pred 2 -> 2/3; b: tp 1, true 2, pred 1 -> 2/3.
    assert result["accuracy"] == pytest.approx(2 / 3, abs=1e-15)
    assert result["macro_f1"] == pytest.approx(2 / 3, abs=1e-15)
    for kind in metrics.KINDS:  # every dev metric a task can be judged by is reported
        assert set(tasks.METRICS[kind]) <= set(_example_scores(metrics, kind))


def _example_scores(metrics, kind):
    if kind == "classification":
        return metrics.score(kind, ["a"], ["a"])
    if kind == "tagging":
        return metrics.score(kind, [["B-PER", "O"]], [["B-PER", "O"]])
    return metrics.score(kind, {"q": ["北京"]}, {"q": "北京"})


def test_score_options_and_kinds_are_checked():
    from tfcompact import metrics
    from tfcompact.errors import ConfigError

    assert metrics.score("classification", [0], [0], labels=[0, 1])["macro_f1"] == 0.5
    with pytest.raises(ConfigError, match="expected one of classification, tagging, span"):
        metrics.score("ranking", [0], [0])
    with pytest.raises(ConfigError, match="tagging scores: unknown option labels"):
        metrics.score("tagging", [["O"]], [["O"]], labels=["O"])


def test_format_scores_prints_percents_and_counts():
    from tfcompact import metrics

    line = metrics.format_scores({"em": 0.25, "f1": 0.5, "total": 4, "skipped": 1,
                                  "per_type": {}}, digits=1)
    assert line == "em 25.0  f1 50.0  total 4  skipped 1"
