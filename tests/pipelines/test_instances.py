"""Instances: lengths, NSP/SOP labels and what they mean, no lost or invented tokens."""
import numpy as np
import pytest

from pipelines import instances

SEQ = 32


def _doc(n_sent, base, rng):
    sents = []
    for s in range(n_sent):
        L = int(rng.integers(3, 12))
        ids = list(range(base + s * 100, base + s * 100 + L))  # distinct ids per sentence
        sents.append((ids, [True] * L))
    return instances.EncodedDocument.from_sentences(sents, SEQ - 3)


def test_from_sentences_cuts_long_sentences_at_word_starts():
    ids = list(range(1000, 1040))
    starts = [i % 4 == 0 for i in range(40)]
    doc = instances.EncodedDocument.from_sentences([(ids, starts)], 10)
    assert doc.ids.tolist() == ids
    lens = np.diff(doc.bounds)
    assert (lens <= 10).all() and lens.sum() == 40
    assert all(doc.starts[b] for b in doc.bounds[:-1])
    assert all(b % 4 == 0 for b in doc.bounds[:-1])


@pytest.mark.parametrize("task", ["sop", "nsp", "none"])
def test_lengths_and_labels(task):
    rng = np.random.default_rng(0)
    docs = [_doc(20, 10000 * (d + 1), rng) for d in range(6)]
    insts = []
    for i, d in enumerate(docs):
        others = [o for o in docs if o is not d]
        insts += instances.create_instances_from_document(
            d, np.random.default_rng(i), max_seq_length=SEQ, short_seq_prob=0.1, pair_task=task,
            random_document=(lambda r: others[int(r.integers(len(others)))]) if task == "nsp" else None)
    assert len(insts) > 30
    tokens, starts, maskable, segs, lengths, labels = instances.assemble_batch(insts, SEQ, 101, 102)
    assert (lengths <= SEQ).all()
    assert (tokens[:, 0] == 101).all()
    for r, inst in enumerate(insts):
        L = lengths[r]
        assert (tokens[r, L:] == 0).all() and tokens[r, L - 1] == 102
        a = inst.a_doc.ids[inst.a0:inst.a1]
        if task == "none":
            assert inst.b_doc is None and labels[r] == 0 and (segs[r] == 0).all()
            continue
        b = inst.b_doc.ids[inst.b0:inst.b1]
        assert len(a) and len(b)
        assert tokens[r, 1:1 + len(a)].tolist() == a.tolist()
        assert (segs[r, 2 + len(a):L] == 1).all() and (segs[r, :2 + len(a)] == 0).all()
        if task == "sop":
            # Label 1 <=> the segments are in reverse document order.
            assert inst.b_doc is inst.a_doc
            assert labels[r] == int(inst.b1 <= inst.a0)
        else:
            assert labels[r] == int(inst.b_doc is not inst.a_doc)
    if task != "none":
        assert 0.35 < labels.mean() < 0.65


def test_deterministic_given_seed():
    rng = np.random.default_rng(0)
    d = _doc(30, 5000, rng)
    kw = dict(max_seq_length=SEQ, short_seq_prob=0.2, pair_task="sop")
    a = instances.create_instances_from_document(d, np.random.default_rng(7), **kw)
    b = instances.create_instances_from_document(d, np.random.default_rng(7), **kw)
    assert [(i.a0, i.a1, i.b0, i.b1, i.label) for i in a] == [(i.a0, i.a1, i.b0, i.b1, i.label) for i in b]


def test_single_sentence_document_is_split_for_sop():
    d = instances.EncodedDocument.from_sentences([(list(range(100, 110)), [True] * 10)], SEQ - 3)
    insts = instances.create_instances_from_document(d, np.random.default_rng(0), max_seq_length=SEQ,
                                                     short_seq_prob=0.0, pair_task="sop")
    assert len(insts) == 1
    i = insts[0]
    first, second = sorted([(i.a0, i.a1), (i.b0, i.b1)])
    assert first[0] == 0 and first[1] == second[0] and second[1] == 10


def test_word_ids():
    starts = np.array([[True, True, False, True, True, True, False, True]])
    maskable = np.array([[False, True, True, True, False, True, True, False]])
    np.testing.assert_array_equal(instances.word_ids_batch(starts, maskable), [[-1, 0, 0, 1, -1, 2, 2, -1]])
