"""Masking: whole words only, labels are plain ids, 15 % and 80/10/10, n-gram lengths."""
import numpy as np
import pytest

from pipelines import instances, masking
from pipelines.package_corpus import peoples_daily_gold_words
from tests.text.data_fixtures import bert_vocab_path
from tfcompact.text.segmenter import make_segmenter
from tfcompact.text.tokenizer import FullTokenizer

SEQ = 128
PREDS = 20


@pytest.fixture(scope="module")
def tok():
    return FullTokenizer(bert_vocab_path())


@pytest.fixture(scope="module")
def batch(tok):
    """Instances from gold-segmented People's Daily sentences (words separated by spaces)."""
    seg = make_segmenter("presegmented")
    sents = [tok.encode_with_words(" ".join(words), seg.cut) for words in peoples_daily_gold_words(1500)]
    doc = instances.EncodedDocument.from_sentences(sents, SEQ - 3)
    insts = []
    for d in range(3):
        insts += instances.create_instances_from_document(
            doc, np.random.default_rng(d), max_seq_length=SEQ, short_seq_prob=0.1, pair_task="sop")
    return instances.assemble_batch(insts, SEQ, tok.vocab.cls_id, tok.vocab.sep_id)


def _cfg(tok, mode, preds=PREDS):
    return masking.MaskingConfig(mode=mode, max_predictions_per_seq=preds, mask_id=tok.vocab.mask_id,
                                 replacement_ids=tok.vocab.replacement_ids)


def _mask(tokens, starts, maskable, lengths, rng, cfg):
    """static_mask_batch with per-row position/label arrays (cut to each row's count)."""
    out, pos, lab, counts = masking.static_mask_batch(tokens, starts, maskable, lengths, rng, cfg)
    assert (pos[np.arange(pos.shape[1])[None, :] >= counts[:, None]] == 0).all()
    return out, [pos[r, :c] for r, c in enumerate(counts)], [lab[r, :c] for r, c in enumerate(counts)]


def _words(starts_row, maskable_row):
    wid = np.where(maskable_row, np.cumsum(starts_row & maskable_row) - 1, -1)
    return wid


def test_whole_words_only_one_draw_per_word(tok, batch):
    tokens, starts, maskable, segs, lengths, labels = batch
    assert len(tokens) > 500
    out, positions, lm_ids = _mask(tokens, starts, maskable, lengths,
                                                np.random.default_rng(0), _cfg(tok, "wwm"))
    multi_char_words = 0
    for r in range(len(tokens)):
        wid = _words(starts[r], maskable[r])
        chosen = set(positions[r].tolist())
        for w in set(wid[list(chosen)].tolist()):
            pos = np.flatnonzero(wid == w)
            assert set(pos.tolist()) <= chosen, "a word is masked only in part"
            multi_char_words += len(pos) > 1
            kinds = {"mask" if out[r, p] == tok.vocab.mask_id else
                     "keep" if out[r, p] == tokens[r, p] else "random" for p in pos}
            if "mask" in kinds:
                assert kinds == {"mask"}, "80/10/10 drawn per piece instead of per word"
        assert list(positions[r]) == sorted(positions[r])
        np.testing.assert_array_equal(lm_ids[r], tokens[r, positions[r]])
        assert len(positions[r]) <= PREDS
    assert multi_char_words > 1000


def _cjk_continuation_ids(vocab):
    return np.array([i for i, t in enumerate(vocab.tokens)
                     if t.startswith("##") and len(t) == 3 and 0x4E00 <= ord(t[2]) <= 0x9FFF])


def test_labels_are_plain_ids_never_continuations(tok, batch):
    """No `##字` id anywhere (albert_zh's defect); labels are exactly the input ids."""
    tokens, starts, maskable, segs, lengths, labels = batch
    bad = _cjk_continuation_ids(tok.vocab)
    assert len(bad) > 7000  # the Chinese vocab has ##字 for most common characters
    assert not np.isin(tokens, bad).any()
    for mode in ("wwm", "ngram", "token"):
        out, positions, lm_ids = _mask(tokens, starts, maskable, lengths,
                                                    np.random.default_rng(1), _cfg(tok, mode))
        allids = np.concatenate(lm_ids)
        assert allids.size > 0
        assert not np.isin(allids, bad).any(), mode
        for r in range(len(tokens)):
            np.testing.assert_array_equal(lm_ids[r], tokens[r, positions[r]])
        assert (allids < len(tok.vocab)).all()
        assert not np.isin(allids, [0, 100, 101, 102, 103]).any()


def test_mask_rate_and_80_10_10(tok, batch):
    tokens, starts, maskable, segs, lengths, labels = batch
    out, positions, lm_ids = _mask(tokens, starts, maskable, lengths,
                                                np.random.default_rng(2), _cfg(tok, "wwm", preds=64))
    n_pred = sum(len(p) for p in positions)
    # 15 % of the sequence length (incl. [CLS]/[SEP]); whole words may leave the budget short.
    expected = sum(max(1, round(L * 0.15)) for L in lengths)
    assert 0.9 * expected <= n_pred <= expected
    # One draw per word: count words by their action.
    counts = {"mask": 0, "keep": 0, "random": 0}
    for r in range(len(tokens)):
        wid = _words(starts[r], maskable[r])
        for w in set(wid[positions[r]].tolist()):
            p = np.flatnonzero(wid == w)[0]
            kind = ("mask" if out[r, p] == tok.vocab.mask_id else
                    "keep" if out[r, p] == tokens[r, p] else "random")
            counts[kind] += 1
    total = sum(counts.values())
    assert total > 5000
    # Random replacements equal to the original are counted as "keep": ~1/|pool| of 10 %.
    assert abs(counts["mask"] / total - 0.8) < 0.02
    assert abs(counts["keep"] / total - 0.1) < 0.015
    assert abs(counts["random"] / total - 0.1) < 0.015


def test_cap_never_truncates_a_word():
    # Words of 3 pieces each, budget 4: only one word fits, never 4 pieces of two words.
    cfg = masking.MaskingConfig(mode="wwm", max_predictions_per_seq=4, mask_id=103,
                                replacement_ids=np.array([500, 501]))
    tokens = np.array([[101] + list(range(1000, 1030)) + [102]])
    starts = np.zeros_like(tokens, dtype=bool)
    starts[0, 1::3] = True
    maskable = np.zeros_like(starts)
    maskable[0, 1:31] = True
    for seed in range(20):
        _, positions, _ = _mask(tokens, starts, maskable, np.array([32]),
                                             np.random.default_rng(seed), cfg)
        p = positions[0]
        assert len(p) == 3 and p[2] - p[0] == 2 and (p[0] - 1) % 3 == 0


def test_ngram_length_distribution():
    rng = np.random.default_rng(3)
    ns = []
    for _ in range(300):
        # 400 one-piece words, a small budget: overlaps are rare, so the drawn n shows.
        spans = masking.choose_ngram_spans([1] * 400, 40, rng, max_ngram=3)
        ns += [n for _, n in spans]
    freq = np.bincount(ns, minlength=4)[1:] / len(ns)
    np.testing.assert_allclose(freq, [6 / 11, 3 / 11, 2 / 11], atol=0.02)


def test_ngram_spans_cover_whole_words(tok, batch):
    tokens, starts, maskable, segs, lengths, labels = batch
    cfg = _cfg(tok, "ngram")
    for r in range(50):
        L = lengths[r]
        out, pos, lab = masking.mask_sequence(tokens[r, :L].tolist(), starts[r, :L].tolist(),
                                              maskable[r, :L].tolist(), np.random.default_rng(r), cfg)
        wid = _words(starts[r, :L], maskable[r, :L])
        for w in set(wid[pos].tolist()):
            assert set(np.flatnonzero(wid == w).tolist()) <= set(pos)
        assert len(pos) <= PREDS and lab == [tokens[r, p] for p in pos]


def test_sequence_and_batch_paths_agree_on_rules(tok, batch):
    """mask_sequence (per instance) obeys the same budget as static_mask_batch."""
    tokens, starts, maskable, segs, lengths, labels = batch
    cfg = _cfg(tok, "wwm")
    for r in range(30):
        L = lengths[r]
        _, pos, _ = masking.mask_sequence(tokens[r, :L].tolist(), starts[r, :L].tolist(),
                                          maskable[r, :L].tolist(), np.random.default_rng(r), cfg)
        assert 0 < len(pos) <= masking.num_predictions(L, cfg)


def test_batch_greedy_matches_a_plain_loop_per_row():
    """The vectorised word choice equals the rule written as a loop: visit words in the order of
    a stable sort of the random keys, take a word if its pieces still fit the budget."""
    from pipelines.masking import _greedy_take, _random_order

    g = np.random.default_rng(5)
    for S in (16, 128, 2048):
        n = 40
        keys = g.random((n, S))
        num_words = g.integers(0, S + 1, size=n)
        wlen = np.zeros((n, S), dtype=np.int64)
        for r in range(n):
            wlen[r, :num_words[r]] = g.integers(1, 5, size=num_words[r])
        budget = g.integers(1, 25, size=n)
        order = _random_order(keys, np.arange(S)[None, :] >= num_words[:, None])
        chosen = _greedy_take(order, wlen, num_words, budget)
        for r in range(n):
            ref_order = sorted(range(num_words[r]), key=lambda w: keys[r, w])
            assert order[r, :num_words[r]].tolist() == ref_order
            count, expect = 0, set()
            for w in ref_order:
                if count + wlen[r, w] <= budget[r]:
                    expect.add(w)
                    count += wlen[r, w]
            assert set(np.flatnonzero(chosen[r]).tolist()) == expect
