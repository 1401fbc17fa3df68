"""Dynamic whole-word masking: whole words only, rates, 80/10/10, piece cap, epochs, seeds."""
import os

import numpy as np
import pytest
import tensorflow as tf

from tfcompact.inputs import pretraining as readers
from tfcompact.inputs.manifest import build_manifest, write_manifest
from tfcompact.inputs.dynamic_masking import (DynamicMaskingConfig, dynamic_mask_batch,
                                              element_keys, select_words)
from tfcompact.errors import ConfigError

VOCAB = 300
SPECIAL = (0, 1, 2, 3, 4)  # [PAD] [UNK] [CLS] [SEP] [MASK]
MASK = 4
SEQ = 64


def make_batch(rng, batch, seq=SEQ, max_word_len=4):
    """Random rows: [CLS] words... [SEP] padding; word_ids index whole words (-1 elsewhere)."""
    ids = np.zeros((batch, seq), np.int32)
    word_ids = np.full((batch, seq), -1, np.int32)
    for b in range(batch):
        n = int(rng.integers(8, seq + 1))
        ids[b, 0], ids[b, n - 1] = 2, 3
        ids[b, 1:n - 1] = rng.integers(5, VOCAB, n - 2)
        pos, word = 1, 0
        while pos < n - 1:
            for _ in range(int(rng.integers(1, max_word_len + 1))):
                if pos < n - 1:
                    word_ids[b, pos] = word
                    pos += 1
            word += 1
    return ids, word_ids


def config(max_pred, **kw):
    return DynamicMaskingConfig(vocab_size=VOCAB, mask_id=MASK, max_predictions_per_seq=max_pred,
                                special_ids=SPECIAL, **kw)


def run_mask(ids, word_ids, cfg, seed=0, start=0):
    keys = element_keys(seed, tf.range(start, start + ids.shape[0], dtype=tf.int64))
    out = dynamic_mask_batch(tf.constant(ids), tf.constant(word_ids), keys, cfg)
    return {k: v.numpy() for k, v in out.items()}


def greedy_reference(lengths, scores, k, cap):
    """google-research/bert's loop: visit words by score, skip those that do not fit."""
    chosen = np.zeros(len(lengths), bool)
    count = pieces = 0
    for w in np.argsort(scores, kind="stable"):
        if lengths[w] == 0 or count >= k:
            continue
        if pieces + lengths[w] > cap:
            continue
        chosen[w] = True
        count += 1
        pieces += lengths[w]
    return chosen


def test_select_words_equals_sequential_greedy():
    rng = np.random.default_rng(0)
    batch, width = 400, 40
    lengths = rng.integers(0, 5, (batch, width)).astype(np.int32)  # words of 1..4 pieces
    scores = rng.random((batch, width)).astype(np.float32)
    ks = rng.integers(0, 15, batch).astype(np.int32)
    for cap in (1, 5, 9, 20):
        got = select_words(tf.constant(lengths), tf.constant(scores), tf.constant(ks),
                           cap).numpy()
        for b in range(batch):
            np.testing.assert_array_equal(
                got[b], greedy_reference(lengths[b], scores[b], ks[b], cap), err_msg=f"{b} {cap}")


def test_select_words_long_words_never_exceed_cap():
    rng = np.random.default_rng(1)
    lengths = rng.integers(0, 12, (200, 30)).astype(np.int32)
    scores = rng.random((200, 30)).astype(np.float32)
    ks = np.full(200, 10, np.int32)
    got = select_words(tf.constant(lengths), tf.constant(scores), tf.constant(ks), 7).numpy()
    assert ((got * lengths).sum(1) <= 7).all()
    assert (got.sum(1) <= 10).all()
    assert not (got & (lengths == 0)).any()


def _word_table(ids, word_ids, out):
    """Per (row, word): chosen (has labels), and which kind of replacement it got."""
    rows = []
    for b in range(ids.shape[0]):
        labelled = {int(p) for p, w in zip(out["masked_lm_positions"][b],
                                           out["masked_lm_weights"][b]) if w > 0}
        for word in np.unique(word_ids[b][word_ids[b] >= 0]):
            pos = np.nonzero(word_ids[b] == word)[0]
            rows.append((b, word, pos, [p in labelled for p in pos]))
    return rows


def test_whole_words_only_labels_and_specials():
    rng = np.random.default_rng(2)
    ids, word_ids = make_batch(rng, 64)
    out = run_mask(ids, word_ids, config(20))
    for b, word, pos, labelled in _word_table(ids, word_ids, out):
        assert all(labelled) or not any(labelled), (b, word)
        if not any(labelled):
            np.testing.assert_array_equal(out["input_ids"][b, pos], ids[b, pos])
        else:  # one decision per word: all [MASK] or none
            masked = out["input_ids"][b, pos] == MASK
            assert masked.all() or not masked.any(), (b, word)
    # Specials and padding untouched and never labelled.
    special = word_ids < 0
    np.testing.assert_array_equal(out["input_ids"][special], ids[special])
    for b in range(ids.shape[0]):
        w = out["masked_lm_weights"][b] > 0
        pos = out["masked_lm_positions"][b][w]
        assert (word_ids[b, pos] >= 0).all()
        assert (np.diff(pos) > 0).all()  # increasing, no duplicates
        np.testing.assert_array_equal(out["masked_lm_ids"][b][w], ids[b, pos])  # plain ids
        assert (out["masked_lm_ids"][b][~w] == 0).all()
        assert (out["masked_lm_positions"][b][~w] == 0).all()


def test_mask_rate_is_15_percent_of_words():
    rng = np.random.default_rng(3)
    ids, word_ids = make_batch(rng, 300)
    out = run_mask(ids, word_ids, config(SEQ))  # cap never binds
    total_words = total_chosen = 0
    for b in range(ids.shape[0]):
        n_words = len(np.unique(word_ids[b][word_ids[b] >= 0]))
        pos = out["masked_lm_positions"][b][out["masked_lm_weights"][b] > 0]
        n_chosen = len(np.unique(word_ids[b, pos]))
        assert n_chosen == max(1, int(np.round(0.15 * n_words))), b
        total_words += n_words
        total_chosen += n_chosen
    assert abs(total_chosen / total_words - 0.15) < 0.02


def test_80_10_10_per_word():
    rng = np.random.default_rng(4)
    ids, word_ids = make_batch(rng, 1000)
    out = run_mask(ids, word_ids, config(SEQ))
    kinds = {"mask": 0, "random": 0, "keep": 0}
    replaced = []
    for b, word, pos, labelled in _word_table(ids, word_ids, out):
        if not any(labelled):
            continue
        new = out["input_ids"][b, pos]
        if (new == MASK).all():
            kinds["mask"] += 1
        elif (new == ids[b, pos]).all():
            kinds["keep"] += 1  # includes the rare random draw equal to the original
        else:
            kinds["random"] += 1
            replaced.extend(new[new != ids[b, pos]].tolist())
    n = sum(kinds.values())
    assert n > 2000
    # Binomial standard deviations at n=2000: 0.0089 (p=0.8), 0.0067 (p=0.1); allow 4 sigma.
    assert abs(kinds["mask"] / n - 0.8) < 0.036
    assert abs(kinds["random"] / n - 0.1) < 0.027
    assert abs(kinds["keep"] / n - 0.1) < 0.027
    replaced = np.array(replaced)
    assert not np.isin(replaced, SPECIAL).any()
    assert replaced.min() >= 0 and replaced.max() < VOCAB
    # Random ids spread over the non-special vocabulary.
    assert len(np.unique(replaced)) > 0.5 * (VOCAB - len(SPECIAL)) * min(1, len(replaced) / 600)


def test_piece_cap_without_dropped_labels():
    rng = np.random.default_rng(5)
    ids, word_ids = make_batch(rng, 200, max_word_len=6)
    cfg = config(5)
    out = run_mask(ids, word_ids, cfg)
    assert out["masked_lm_positions"].shape == (200, 5)
    for b, word, pos, labelled in _word_table(ids, word_ids, out):
        changed = out["input_ids"][b, pos] != ids[b, pos]
        # Every altered piece has a label, and words are labelled whole.
        assert not (changed & ~np.array(labelled)).any(), (b, word)
        assert all(labelled) or not any(labelled)
    assert (out["masked_lm_weights"].sum(1) <= 5).all()
    # The cap binds here, yet rows still get words (at least one word of <= 5 pieces exists).
    assert (out["masked_lm_weights"].sum(1) >= 1).all()


def test_token_masking_picks_single_tokens():
    rng = np.random.default_rng(6)
    ids, word_ids = make_batch(rng, 100)
    out = run_mask(ids, word_ids, config(SEQ, whole_word=False))
    for b in range(ids.shape[0]):
        n_tokens = int((word_ids[b] >= 0).sum())
        n_labels = int(out["masked_lm_weights"][b].sum())
        assert n_labels == max(1, int(np.round(0.15 * n_tokens)))


def test_same_key_same_mask_other_key_other_mask():
    rng = np.random.default_rng(7)
    ids, word_ids = make_batch(rng, 32)
    a = run_mask(ids, word_ids, config(20), seed=1)
    b = run_mask(ids, word_ids, config(20), seed=1)
    c = run_mask(ids, word_ids, config(20), seed=2)
    d = run_mask(ids, word_ids, config(20), seed=1, start=32)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    diff_c = (a["masked_lm_positions"] != c["masked_lm_positions"]).any(1).mean()
    diff_d = (a["masked_lm_positions"] != d["masked_lm_positions"]).any(1).mean()
    assert diff_c > 0.8 and diff_d > 0.8
    # A row's mask does not depend on the other rows of its batch.
    half = run_mask(ids[:16], word_ids[:16], config(20), seed=1)
    for k in half:
        np.testing.assert_array_equal(half[k], a[k][:16])


def _write_unmasked(directory, n, rng):
    ids, word_ids = make_batch(rng, n, seq=32)
    path = os.path.join(directory, "data-00000-of-00001.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for i in range(n):
            ids[i, 1] = 10 + i  # identity of the example
            feats = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=v.tolist()))
                     for k, v in (("input_ids", ids[i]), ("input_mask", (ids[i] > 0) * 1),
                                  ("segment_ids", ids[i] * 0), ("word_ids", word_ids[i]),
                                  ("next_sentence_labels", np.array([0])))}
            w.write(tf.train.Example(features=tf.train.Features(feature=feats))
                    .SerializeToString(deterministic=True))
    write_manifest(directory, build_manifest(
        schema="unmasked", max_seq_length=32, max_predictions_per_seq=6, vocab_size=VOCAB,
        vocab_md5="", do_lower_case=True,
        special_ids={"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4},
        masking="none", pair_task="none", dupe_factor=1, seed=0,
        segmenter={"name": "test", "version": "0"},
        shards=[{"file": os.path.basename(path), "num_instances": n}], inputs=[],
        created_by="test"))


def _masks_by_epoch(directory, seed, n, epochs):
    ds = readers.pretraining_dataset(directory, 4, is_training=True, seed=seed, shuffle_buffer=8)
    result = [dict() for _ in range(epochs)]
    for i, batch in enumerate(ds.take(epochs * n // 4)):
        epoch = i * 4 // n
        pos = batch["masked_lm_positions"].numpy()
        w = batch["masked_lm_weights"].numpy()
        ids = batch["input_ids"].numpy()
        for row in range(4):
            # input_ids[1] may itself be masked; identify the example by its label if so.
            labels = dict(zip(pos[row][w[row] > 0], batch["masked_lm_ids"].numpy()[row]))
            uid = int(labels.get(1, ids[row, 1])) - 10
            result[epoch][uid] = tuple(pos[row][w[row] > 0])
    return result


def test_fresh_mask_every_epoch_reproducible_per_seed(tmp_path):
    _write_unmasked(str(tmp_path), 40, np.random.default_rng(8))
    a = _masks_by_epoch(str(tmp_path), 3, 40, 3)
    b = _masks_by_epoch(str(tmp_path), 3, 40, 3)
    assert a == b
    for e in range(3):
        assert sorted(a[e]) == list(range(40))
    differs = np.mean([a[0][u] != a[1][u] for u in range(40)])
    assert differs > 0.7
    c = _masks_by_epoch(str(tmp_path), 4, 40, 1)
    assert np.mean([a[0][u] != c[0][u] for u in range(40)]) > 0.7


def test_config_errors_and_manifest_defaults():
    with pytest.raises(ConfigError, match="mask_id"):
        DynamicMaskingConfig(vocab_size=10, mask_id=10, max_predictions_per_seq=2)
    with pytest.raises(ConfigError, match="masked_lm_prob"):
        DynamicMaskingConfig(vocab_size=10, mask_id=4, max_predictions_per_seq=2,
                             masked_lm_prob=0.0)
    cfg = DynamicMaskingConfig.from_manifest(
        {"vocab_size": VOCAB, "max_predictions_per_seq": 7,
         "special_ids": {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}})
    assert (cfg.mask_id, cfg.max_predictions_per_seq) == (103, 7)
    assert not {0, 100, 101, 102, 103} & set(cfg.replacement_ids())
    assert len(cfg.replacement_ids()) == VOCAB - 5


def test_token_budget_like_bert():
    # rate_unit="tokens": min(cap, max(1, round(0.15 * tokens))) pieces, words skipped whole.
    rng = np.random.default_rng(9)
    ids, word_ids = make_batch(rng, 200, max_word_len=1)  # one piece per word: budget is exact
    out = run_mask(ids, word_ids, config(8, rate_unit="tokens"))
    for b in range(ids.shape[0]):
        n_tokens = int((word_ids[b] >= 0).sum())
        assert out["masked_lm_weights"][b].sum() == min(8, max(1, int(np.round(0.15 * n_tokens))))
    ids, word_ids = make_batch(rng, 200, max_word_len=4)
    out = run_mask(ids, word_ids, config(8, rate_unit="tokens"))
    for b, word, pos, labelled in _word_table(ids, word_ids, out):
        assert all(labelled) or not any(labelled)
    budget = np.minimum(8, np.maximum(1, np.round(0.15 * (word_ids >= 0).sum(1))))
    assert (out["masked_lm_weights"].sum(1) <= budget).all()
    with pytest.raises(ConfigError, match="rate_unit"):
        config(8, rate_unit="chars")


def test_replacements_from_vocab_are_ordinary_tokens(tmp_path):
    tokens = ["[PAD]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<S>", "的", "是",
              "##的", "a", "##b"]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    manifest = {"vocab_size": len(tokens), "max_predictions_per_seq": 3,
                "special_ids": {"[PAD]": 0, "[UNK]": 2, "[CLS]": 3, "[SEP]": 4, "[MASK]": 5}}
    cfg = DynamicMaskingConfig.from_manifest(manifest, str(vocab))
    assert cfg.replacement_ids() == [7, 8, 10]  # 的 是 a
    with pytest.raises(ConfigError, match="vocab_size"):
        DynamicMaskingConfig.from_manifest(dict(manifest, vocab_size=99), str(vocab))
