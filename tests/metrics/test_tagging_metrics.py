"""Entity extraction and entity-level precision/recall/F1 on hand-made cases, worked out from
seqeval's default (conlleval-compatible) rules: an entity is right only when type, start and
end all match; an I- after O or after another type starts an entity; BIOES singles and ends."""
import random

import pytest

from tfcompact.errors import DataError
from tfcompact.metrics import tagging


def entities(tags):
    return tagging.extract_entities(tags)


def test_bio_entities_end_exclusive():
    assert entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]
    assert entities(["O", "O"]) == []
    assert entities([]) == []


def test_entity_at_sentence_end():
    assert entities(["O", "B-ORG", "I-ORG"]) == [("ORG", 1, 3)]


def test_i_without_b_starts_an_entity():
    assert entities(["I-LOC"]) == [("LOC", 0, 1)]
    assert entities(["O", "I-PER", "I-PER", "O"]) == [("PER", 1, 3)]


def test_type_change_and_b_after_b_split_entities():
    assert entities(["B-PER", "I-LOC", "I-LOC"]) == [("PER", 0, 1), ("LOC", 1, 3)]
    assert entities(["B-PER", "B-PER"]) == [("PER", 0, 1), ("PER", 1, 2)]
    assert entities(["I-PER", "B-PER", "I-PER"]) == [("PER", 0, 1), ("PER", 1, 3)]


def test_bioes_singles_and_ends():
    assert entities(["S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "O"]) == [
        ("PER", 0, 1), ("LOC", 1, 4), ("LOC", 4, 5)]
    assert entities(["E-PER", "E-PER"]) == [("PER", 0, 1), ("PER", 1, 2)]
    # B E is one entity; an I after E starts the next one.
    assert entities(["B-PER", "E-PER", "I-PER"]) == [("PER", 0, 2), ("PER", 2, 3)]


def test_split_tag():
    assert tagging.split_tag("B-PER") == ("B", "PER")
    assert tagging.split_tag("O") == ("O", "_")
    assert tagging.split_tag("I-ORG-X") == ("I", "ORG-X")
    with pytest.raises(DataError, match="empty tag"):
        tagging.split_tag("")


REFS = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"], ["B-ORG", "I-ORG", "I-ORG", "O"]]
# PER right; LOC cut short (partial overlap: wrong); ORG tagged as PER (type mismatch: wrong).
PREDS = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-PER", "I-PER", "I-PER", "O"]]


def test_partial_overlaps_and_type_mismatches_count_as_wrong():
    result = tagging.entity_scores(REFS, PREDS)
    # 1 correct of 3 predicted and of 3 reference entities.
    assert result["precision"] == pytest.approx(1 / 3, abs=1e-15)
    assert result["recall"] == pytest.approx(1 / 3, abs=1e-15)
    assert result["f1"] == pytest.approx(1 / 3, abs=1e-15)
    # 5 of 9 tags equal: B I O B of sentence 1 and the final O of sentence 2.
    assert result["accuracy"] == pytest.approx(5 / 9, abs=1e-15)


def test_per_type_breakdown():
    per_type = tagging.entity_scores(REFS, PREDS)["per_type"]
    assert list(per_type) == ["LOC", "ORG", "PER"]
    # PER: 1 correct, 2 predicted, 1 true -> P 1/2, R 1, F1 2/3.
    assert per_type["PER"] == {"precision": 0.5, "recall": 1.0,
                               "f1": pytest.approx(2 / 3, abs=1e-15), "support": 1}
    assert per_type["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # ORG: never predicted -> precision 0/0 -> 0.
    assert per_type["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_entities_do_not_cross_sentences():
    # Alone, [B-PER, I-PER] is one entity; split over two sentences it is two.
    result = tagging.entity_scores([["B-PER", "I-PER"]], [["B-PER", "I-PER"]])
    assert result["f1"] == 1.0
    split = tagging.entity_scores([["B-PER"], ["I-PER"]], [["B-PER"], ["I-PER"]])
    assert split["per_type"]["PER"]["support"] == 2


def test_empty_predictions_score_zero_not_an_error():
    result = tagging.entity_scores(REFS, [["O"] * len(r) for r in REFS])
    assert (result["precision"], result["recall"], result["f1"]) == (0.0, 0.0, 0.0)
    # No entity anywhere: every score is 0 (0/0 -> 0), as seqeval reports it.
    nothing = tagging.entity_scores([["O", "O"]], [["O", "O"]])
    assert (nothing["precision"], nothing["recall"], nothing["f1"]) == (0.0, 0.0, 0.0)
    assert nothing["accuracy"] == 1.0


def test_mismatched_lengths_are_one_line_errors():
    with pytest.raises(DataError, match="sentence 1: 4 reference tags but 3 predicted"):
        tagging.entity_scores(REFS, [PREDS[0], PREDS[1][:3]])
    with pytest.raises(DataError, match="2 reference sentences but 1 predicted"):
        tagging.entity_scores(REFS, PREDS[:1])
    with pytest.raises(DataError, match="no tags"):
        tagging.token_accuracy([[]], [[]])


def test_agrees_with_seqeval_when_it_is_installed():
    seqeval = pytest.importorskip("seqeval.metrics")
    rng = random.Random(0)
    tags = ["O", "O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "I-ORG"]
    for _ in range(300):
        refs = [[rng.choice(tags) for _ in range(rng.randint(1, 7))] for _ in range(3)]
        preds = [[rng.choice(tags) for _ in r] for r in refs]
        got = tagging.entity_scores(refs, preds)
        assert got["precision"] == seqeval.precision_score(refs, preds, zero_division=0)
        assert got["recall"] == seqeval.recall_score(refs, preds, zero_division=0)
        assert got["f1"] == seqeval.f1_score(refs, preds, zero_division=0)
        assert got["accuracy"] == seqeval.accuracy_score(refs, preds)
