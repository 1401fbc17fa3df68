"""Task features: hand-worked rows for each kind, windows, answer offsets, span and tag decoding,
and the tf.data pipeline (deterministic reshuffle, exact resume, padded evaluation batches)."""
import numpy as np
import pytest

from tfcompact.errors import DataError
from tfcompact.inputs import task_features as tf_
from tfcompact.tasks import SpanExample, TaggedExample, TaskSpec, TextExample, feature_names
from tfcompact.text.offsets import tokenize_with_offsets
from tfcompact.text.tokenizer import FullTokenizer, Vocab, packaged_vocab_path

TINY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "我", "买", "了", "什", "么", "价", "？",
        "售", "元", "。", "iphone", "##12", "##pro", "59", "##99", "a", "b", "c", "d", "e"]


@pytest.fixture(scope="module")
def tok():
    return FullTokenizer(Vocab(TINY), do_lower_case=True)


def ids(*tokens):
    return [TINY.index(t) for t in tokens]


def padded(values, length, fill=0):
    return list(values) + [fill] * (length - len(values))


# ------------------------------------------------------------------------------ classification

def test_single_text_row(tok):
    spec = TaskSpec(kind="classification", labels=["neg", "pos"], max_seq_length=8)
    enc = tf_.encode_examples("classification", [TextExample("g1", "我买了", None, "pos", "f:2")],
                              tok, spec, is_training=True)
    f = enc.features
    assert sorted(f) == sorted(feature_names("classification"))
    assert f["input_ids"].tolist() == [padded(ids("[CLS]", "我", "买", "了", "[SEP]"), 8)]
    assert f["input_mask"].tolist() == [[1] * 5 + [0] * 3]
    assert f["segment_ids"].tolist() == [[0] * 8]
    assert f["label_ids"].tolist() == [1] and f["label_ids"].dtype == np.int32
    assert f["example_weight"].tolist() == [1.0] and f["example_weight"].dtype == np.float32


def test_truncate_seq_pair_longest_first():
    a, b = list("abcde"), list("xy")
    tf_.truncate_seq_pair(a, b, 5)  # 7 -> a is longer twice
    assert (a, b) == (list("abc"), list("xy"))
    a, b = list("abc"), list("xyz")
    tf_.truncate_seq_pair(a, b, 5)  # a tie takes from b
    assert (a, b) == (list("abc"), list("xy"))
    a, b = list("abcd"), list("xyz")
    tf_.truncate_seq_pair(a, b, 4)  # 7: a, then a tie (3, 3) -> b, then a
    assert (a, b) == (list("ab"), list("xy"))


def test_pair_row_truncated_with_segments(tok):
    spec = TaskSpec(kind="classification", labels=["0", "1"], max_seq_length=8)
    ex = TextExample("g", "a b c d e", "我买", "0", "f:3")  # 5 pieces + 2
    enc = tf_.encode_examples("classification", [ex], tok, spec, is_training=True)
    # 5 pieces of room: a loses two pieces
    assert enc.features["input_ids"].tolist() == [
        ids("[CLS]", "a", "b", "c", "[SEP]", "我", "买", "[SEP]")]
    assert enc.features["segment_ids"].tolist() == [[0, 0, 0, 0, 0, 1, 1, 1]]


def test_unknown_and_missing_labels(tok):
    spec = TaskSpec(kind="classification", labels=["neg", "pos"], max_seq_length=8)
    with pytest.raises(DataError, match=r"dev\.tsv:7: label 'maybe' is not one of"):
        tf_.encode_examples("classification", [TextExample("g", "我", None, "maybe", "dev.tsv:7")],
                            tok, spec, is_training=False)
    with pytest.raises(DataError, match=r"train\.tsv:2: no label"):
        tf_.encode_examples("classification", [TextExample("g", "我", None, None, "train.tsv:2")],
                            tok, spec, is_training=True)
    enc = tf_.encode_examples("classification", [TextExample("g", "我", None, None, "t:1")],
                              tok, spec, is_training=False)
    assert enc.features["label_ids"].tolist() == [0]


# ------------------------------------------------------------------------------ tagging

def test_tagging_labels_on_first_pieces_only(tok):
    spec = TaskSpec(kind="tagging", labels=["O", "B-X", "I-X"], max_seq_length=10)
    ex = TaggedExample("s", ("我", "iPhone12", "\x00", " ", "了"), ("O", "B-X", "I-X", "O", "B-X"), "n:1")
    enc = tf_.encode_examples("tagging", [ex], tok, spec, is_training=True)
    f, meta = enc.features, enc.meta
    # 我 | iphone ##12 | (control char: no pieces) [UNK] | (space) [UNK] | 了
    assert f["input_ids"].tolist() == [padded(
        ids("[CLS]", "我", "iphone", "##12", "[UNK]", "[UNK]", "了", "[SEP]"), 10)]
    assert f["label_weights"].tolist() == [[0, 1, 1, 0, 1, 1, 1, 0, 0, 0]]
    assert f["label_ids"].tolist() == [[0, 0, 1, 0, 2, 0, 1, 0, 0, 0]]
    assert meta.word_index.tolist() == [[-1, 0, 1, -1, 2, 3, 4, -1, -1, -1]]
    assert meta.example_index.tolist() == [0] and meta.num_words.tolist() == [5]
    assert tf_.decode_tags(meta, f["label_ids"], spec.labels) == [["O", "B-X", "I-X", "O", "B-X"]]


def test_word_windows_by_hand():
    assert tf_.word_windows([1, 2, 1, 1, 2, 1, 1], 6) == [(0, 4), (4, 7)]
    assert tf_.word_windows([5, 1], 4) == [(0, 1), (1, 2)]  # a too-long word alone
    assert tf_.word_windows([], 6) == [(0, 0)]


def test_long_sentence_is_cut_into_windows_that_map_back(tok):
    spec = TaskSpec(kind="tagging", labels=["O", "B", "I"], max_seq_length=8)  # 6 pieces a row
    words = ("我", "iPhone12", "买", "了", "iPhone12", "了", "我")  # pieces 1 2 1 1 | 2 1 1
    tags = ("B", "I", "O", "B", "I", "O", "B")
    short = TaggedExample("t", ("了",), ("I",), "n:9")
    enc = tf_.encode_examples("tagging", [TaggedExample("s", words, tags, "n:1"), short],
                              tok, spec, is_training=True)
    f, meta = enc.features, enc.meta
    assert meta.example_index.tolist() == [0, 0, 1]
    assert meta.word_index.tolist() == [[-1, 0, 1, -1, 2, 3, -1, -1],
                                        [-1, 4, -1, 5, 6, -1, -1, -1],
                                        [-1, 0, -1, -1, -1, -1, -1, -1]]
    assert f["input_ids"][1].tolist() == padded(ids("[CLS]", "iphone", "##12", "了", "我", "[SEP]"), 8)
    assert tf_.decode_tags(meta, f["label_ids"], spec.labels) == [list(tags), ["I"]]
    # Logits [N, S, L] decode too; every word gets exactly its own prediction.
    logits = np.zeros(f["label_ids"].shape + (3,), np.float32)
    logits[..., 2] = 1.0
    assert tf_.decode_tags(meta, logits, spec.labels) == [["I"] * 7, ["I"]]


def test_tag_errors(tok):
    spec = TaskSpec(kind="tagging", labels=["O", "B"], max_seq_length=8)
    with pytest.raises(DataError, match=r"dev\.txt:40: tag 'B-LOC' is not one of"):
        tf_.encode_examples("tagging", [TaggedExample("s", ("我",), ("B-LOC",), "dev.txt:40")],
                            tok, spec, is_training=False)
    with pytest.raises(DataError, match=r"x:3: 2 words but 1 tags"):
        tf_.encode_examples("tagging", [TaggedExample("s", ("我", "了"), ("O",), "x:3")],
                            tok, spec, is_training=True)


# ------------------------------------------------------------------------------ span

CONTEXT = "iPhone12Pro售价5999元。"
# pieces: iphone[0,6) ##12[6,8) ##pro[8,11) 售[11,12) 价[12,13) 59[13,15) ##99[15,17) 元[17,18) 。[18,19)
PIECE_STARTS = [0, 6, 8, 11, 12, 13, 15, 17, 18]
PIECE_ENDS = [6, 8, 11, 12, 13, 15, 17, 18, 19]


def span_spec(**kw):
    return TaskSpec(kind="span", labels=[], max_seq_length=kw.pop("max_seq_length", 12),
                    doc_stride=kw.pop("doc_stride", 2), max_query_length=3, **kw)


def test_doc_windows_by_hand():
    assert tf_.doc_windows(10, 4, 3) == [(0, 4), (3, 4), (6, 4)]
    assert tf_.doc_windows(10, 4, 2) == [(0, 4), (2, 4), (4, 4), (6, 4)]
    assert tf_.doc_windows(9, 6, 2) == [(0, 6), (2, 6), (4, 5)]
    assert tf_.doc_windows(3, 4, 2) == [(0, 3)]
    assert tf_.doc_windows(0, 4, 2) == [(0, 0)]
    for n, room, stride in [(1, 1, 1), (17, 5, 3), (50, 7, 7), (50, 7, 20), (33, 10, 1)]:
        windows = tf_.doc_windows(n, room, stride)
        covered = {p for s, length in windows for p in range(s, s + length)}
        assert covered == set(range(n)) and all(length <= room for _, length in windows)


def test_max_context_by_hand():
    # pieces 0-4 and 3-7; piece 3: window 0 has min(3 left, 1 right) = 1, window 1 min(0, 4) = 0;
    # piece 4: window 0 min(4, 0) = 0, window 1 min(1, 3) = 1
    assert tf_.max_context_windows([(0, 5), (3, 5)], 8).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # piece 2 in pieces 0-3 (min(2, 1) = 1) and 1-5 (min(1, 3) = 1): the longer window wins
    assert tf_.max_context_windows([(0, 4), (1, 5)], 6)[2] == 1
    # piece 3 in pieces 0-3 and 3-6 (0 either way, as long): the first one
    assert tf_.max_context_windows([(0, 4), (3, 4)], 7)[3] == 0
    assert tf_.max_context_windows([(0, 0)], 0).tolist() == []


def test_offsets_of_the_tiny_context(tok):
    assert tokenize_with_offsets(tok, CONTEXT) == (
        ids("iphone", "##12", "##pro", "售", "价", "59", "##99", "元", "。"), PIECE_STARTS, PIECE_ENDS)


def test_span_rows_positions_and_meta_by_hand(tok):
    ex = SpanExample("q1", "什么价？", CONTEXT, (("5999元", 13),), "cmrc.json:4")
    enc = tf_.encode_examples("span", [ex], tok, span_spec(), is_training=True)
    f, meta = enc.features, enc.meta
    # question cut to 3 pieces; room 12 - 3 - 3 = 6; windows pieces 0-5, 2-7, 4-8 (stride 2)
    q = ids("[CLS]", "什", "么", "价", "[SEP]")
    assert f["input_ids"].tolist() == [
        q + ids("iphone", "##12", "##pro", "售", "价", "59", "[SEP]"),
        q + ids("##pro", "售", "价", "59", "##99", "元", "[SEP]"),
        padded(q + ids("售", "价", "59", "##99", "元", "。", "[SEP]")[1:], 12)]
    assert f["segment_ids"][2].tolist() == [0] * 5 + [1] * 6 + [0]
    # answer = pieces 5..7 (59 ##99 元): not wholly in window 0; row position = piece - start + 5
    assert f["start_positions"].tolist() == [0, 8, 6]
    assert f["end_positions"].tolist() == [0, 10, 8]
    assert meta.example_index.tolist() == [0, 0, 0]
    assert meta.char_start[0].tolist() == [-1] * 5 + PIECE_STARTS[:6] + [-1]
    assert meta.char_end[1].tolist() == [-1] * 5 + PIECE_ENDS[2:8] + [-1]
    # max context (worked by hand): 0,1 -> w0; 2: w0 min(2,3)=2 vs w1 min(0,5)=0 -> w0;
    # 3: w0 min(3,2)=2, w1 min(1,4)=1 -> w0; 4: w0 1, w1 2, w2 0 -> w1; 5: w1 2.06 > w2 1.05;
    # 6: w1 1, w2 2 -> w2; 7, 8 -> w2
    owner = {}
    for row, (start, length) in enumerate([(0, 6), (2, 6), (4, 5)]):
        for k in range(length):
            if meta.token_is_max_context[row, 5 + k]:
                assert start + k not in owner
                owner[start + k] = row
    assert owner == {0: 0, 1: 0, 2: 0, 3: 0, 4: 1, 5: 1, 6: 2, 7: 2, 8: 2}
    assert not meta.token_is_max_context[:, :5].any() and not meta.token_is_max_context[:, 11].any()


@pytest.mark.parametrize("answer,offset,first,last", [
    ("5999元", 13, 5, 7), ("99", 15, 6, 6), ("12", 6, 1, 1),
    ("Phone1", 1, 0, 1),  # starts and ends inside pieces: the pieces containing them
    ("Pro售", 8, 2, 3), ("。", 18, 8, 8)])
def test_answer_pieces_by_hand(answer, offset, first, last):
    ex = SpanExample("q", "?", CONTEXT, ((answer, offset),), "s")
    assert tf_.answer_pieces(ex, PIECE_STARTS, PIECE_ENDS, True) == (first, last)


def test_answer_errors(tok):
    bad = SpanExample("q", "什么", CONTEXT, (("5999", 12),), "cmrc.json:9")
    with pytest.raises(DataError, match=r"cmrc\.json:9: answer '5999' is not at character 12"):
        tf_.encode_examples("span", [bad], tok, span_spec(), is_training=True)
    enc = tf_.encode_examples("span", [bad], tok, span_spec(), is_training=False)
    assert enc.features["start_positions"].tolist() == [0, 0]  # room 7: windows 0-6, 2-8
    with pytest.raises(DataError, match=r"x:1: answer ' ' covers no token"):
        tf_.answer_pieces(SpanExample("q", "?", "我 了", ((" ", 1),), "x:1"), [0, 2], [1, 3], True)


MIXED = ("2018年iPhone XS Max售价8699元起，比iPhone8贵了约3000元。“测试”……Café "
         "naïve\u3000Ｗｉｆｉ６\x00第2.5代 GDP增长7.8%")


def test_answer_offsets_on_mixed_text_contain_the_answer_exactly():
    tok = FullTokenizer(packaged_vocab_path())
    _, starts, ends = tokenize_with_offsets(tok, MIXED)
    checked = 0
    for offset in range(len(MIXED)):
        for length in range(1, 8):
            answer = MIXED[offset:offset + length]
            # answers begin and end with characters of some piece (not a space, not NUL)
            if len(answer) < length or not all(map(tok.tokenize_to_ids, (answer[0], answer[-1]))):
                continue
            ex = SpanExample("q", "?", MIXED, ((answer, offset),), "s")
            first, last = tf_.answer_pieces(ex, starts, ends, True)
            # the pieces' span contains the answer, and neither end piece could be dropped
            assert starts[first] <= offset and ends[last] >= offset + length, (answer, offset)
            assert ends[first] > offset and starts[last] < offset + length, (answer, offset)
            checked += 1
    assert checked > 300


MIXED_ANSWERS = ("iPhone XS Max", "8699元", "3000", "Café", "7.8%", "“测试”", "2.5代", "Ｗｉｆｉ６")


def test_answers_map_onto_feature_rows_through_long_windows():
    tok = FullTokenizer(packaged_vocab_path())
    # the question is cut to 4 pieces: 17 context pieces a window, a new window every 3
    spec = TaskSpec(kind="span", labels=[], max_seq_length=24, doc_stride=3, max_query_length=4)
    answers = [(text, MIXED.index(text)) for text in MIXED_ANSWERS]
    examples = [SpanExample(f"q{i}", "价格多少？", MIXED, (a,), f"s:{i}") for i, a in enumerate(answers)]
    enc = tf_.encode_examples("span", examples, tok, spec, is_training=True)
    f, meta = enc.features, enc.meta
    found = set()
    for row in range(enc.num_features):
        e = meta.example_index[row]
        s, t = f["start_positions"][row], f["end_positions"][row]
        if s == 0:
            assert t == 0
            continue
        assert MIXED[meta.char_start[row, s]:meta.char_end[row, t]] == answers[e][0]
        found.add(int(e))
    assert found == set(range(len(answers)))


def one_hot_logits(enc):
    """Logits 10 at each row's gold start/end, -10 elsewhere."""
    n, s = enc.features["input_ids"].shape
    start = np.full((n, s), -10.0, np.float32)
    end = np.full((n, s), -10.0, np.float32)
    start[np.arange(n), enc.features["start_positions"]] = 10.0
    end[np.arange(n), enc.features["end_positions"]] = 10.0
    return start, end


def test_decode_spans_recovers_gold_from_every_window():
    tok = FullTokenizer(packaged_vocab_path())
    spec = TaskSpec(kind="span", labels=[], max_seq_length=24, doc_stride=3, max_query_length=4)
    answers = [(text, MIXED.index(text)) for text in MIXED_ANSWERS]
    examples = [SpanExample(f"q{i}", "价格多少？", MIXED, (a,), f"s:{i}") for i, a in enumerate(answers)]
    enc = tf_.encode_examples("span", examples, tok, spec, is_training=True)
    assert enc.num_features > 3 * len(examples)  # several windows each
    start, end = one_hot_logits(enc)
    predictions, nbest = tf_.decode_spans(examples, enc.meta, start, end, n_best_size=5)
    assert predictions == {f"q{i}": a[0] for i, a in enumerate(answers)}
    for guid, best in nbest.items():
        assert best[0]["text"] == predictions[guid] and best[0]["start_logit"] == 10.0
        assert abs(sum(b["probability"] for b in best) - 1.0) < 1e-6
        assert len({b["text"] for b in best}) == len(best) <= 5


def test_decode_spans_respects_max_answer_length(tok):
    ex = SpanExample("q1", "什么价？", CONTEXT, (("5999元", 13),), "s")  # 3 pieces
    spec = span_spec(max_seq_length=20)  # one window
    enc = tf_.encode_examples("span", [ex], tok, spec, is_training=False)
    start, end = one_hot_logits(enc)
    assert tf_.decode_spans([ex], enc.meta, start, end, max_answer_length=3)[0] == {"q1": "5999元"}
    # only the top start and end are tried and they are 3 pieces apart: nothing valid
    preds, nbest = tf_.decode_spans([ex], enc.meta, start, end, n_best_size=1, max_answer_length=2)
    assert preds == {"q1": ""} and [b["text"] for b in nbest["q1"]] == [""]
    preds, nbest = tf_.decode_spans([ex], enc.meta, start, end, n_best_size=20, max_answer_length=2)
    # the gold start or the gold end with the other side at -10 (all score 0)
    assert preds["q1"] in {"59", "5999", "99元", "元"}
    one_or_two = {CONTEXT[PIECE_STARTS[i]:PIECE_ENDS[j]] for i in range(9) for j in (i, i + 1) if j < 9}
    assert len(nbest["q1"]) == 17 and {b["text"] for b in nbest["q1"]} == one_or_two


def test_decode_spans_needs_max_context_start():
    """Hand-made meta: the best-scoring span of row 0 starts at a piece scored by row 1."""
    ex = SpanExample("q", "?", "abcdef", (), "s")
    meta = tf_.SpanMeta(example_index=np.array([0, 0], np.int32),
                        char_start=np.array([[-1, 0, 1, 2, -1], [-1, 2, 3, 4, -1]], np.int32),
                        char_end=np.array([[-1, 1, 2, 3, -1], [-1, 3, 4, 5, -1]], np.int32),
                        token_is_max_context=np.array([[0, 1, 1, 0, 0], [0, 1, 1, 1, 0]], bool))
    start = np.array([[0, 0, 0, 9, 0], [0, 0, 5, 0, 0]], np.float32)  # row 0 prefers char 2
    end = np.array([[0, 0, 0, 9, 0], [0, 0, 0, 5, 0]], np.float32)
    preds, nbest = tf_.decode_spans([ex], meta, start, end, n_best_size=2)
    assert preds == {"q": "de"}  # row 1: start char 3 to end char 5
    assert nbest["q"][0] == {"text": "de", "probability": nbest["q"][0]["probability"],
                             "start_logit": 5.0, "end_logit": 5.0}


def test_empty_context_and_wrong_example_type(tok):
    ex = SpanExample("q", "什么", "", (), "s")
    enc = tf_.encode_examples("span", [ex], tok, span_spec(), is_training=False)
    assert enc.num_features == 1 and (enc.meta.char_start == -1).all()
    start, end = one_hot_logits(enc)
    assert tf_.decode_spans([ex], enc.meta, start, end)[0] == {"q": ""}
    with pytest.raises(DataError, match=r"f:1: a span task reads SpanExamples, got TextExample"):
        tf_.encode_examples("span", [TextExample("g", "a", None, None, "f:1")], tok, span_spec(), True)


# ------------------------------------------------------------------------------ tf.data

def row_features(n, seq=3):
    """Features whose input_ids row r is all r, so each batch shows which rows it holds."""
    rows = np.repeat(np.arange(n, dtype=np.int32)[:, None], seq, axis=1)
    return {"input_ids": rows, "input_mask": np.ones_like(rows), "segment_ids": np.zeros_like(rows),
            "example_weight": np.ones((n,), np.float32), "label_ids": np.arange(n, dtype=np.int32)}


def batches(ds, count):
    out = []
    for batch in ds.take(count):
        assert np.all(batch["input_ids"].numpy() == batch["label_ids"].numpy()[:, None])
        out.append(batch["label_ids"].numpy().tolist())
    return out


def test_training_reshuffles_every_epoch_deterministically():
    ds = tf_.task_dataset(row_features(12), 4, is_training=True, seed=7)
    for name, spec in ds.element_spec.items():
        assert spec.shape.is_fully_defined() and spec.shape[0] == 4, name
    got = batches(ds, 9)  # three epochs of three batches
    epochs = [[r for b in got[i:i + 3] for r in b] for i in (0, 3, 6)]
    assert all(sorted(e) == list(range(12)) for e in epochs)
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2] and epochs[0] != list(range(12))
    assert batches(tf_.task_dataset(row_features(12), 4, is_training=True, seed=7), 9) == got
    assert batches(tf_.task_dataset(row_features(12), 4, is_training=True, seed=8), 9) != got


@pytest.mark.parametrize("pipelines", [1, 2])
def test_skip_batches_resumes_exactly(pipelines):
    import tensorflow as tf

    features = row_features(10)  # 10 rows, batch 4: batches run across epoch boundaries
    for pid in range(pipelines):
        ctx = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=pid)
        full = batches(tf_.task_dataset(features, 4, is_training=True, seed=3, input_context=ctx), 12)
        assert all(r % pipelines == pid for b in full for r in b)  # pipeline i owns rows i, i+n, ...
        for k in (1, 2, 3, 5, 8):
            resumed = tf_.task_dataset(features, 4, is_training=True, seed=3, input_context=ctx,
                                       skip_batches=k)
            assert batches(resumed, 12 - k) == full[k:], (pid, k)


def test_evaluation_pads_the_last_batch_with_zero_weight_copies():
    ds = tf_.task_dataset(row_features(10), 4, is_training=False, seed=None)
    assert all(s.shape.is_fully_defined() for s in ds.element_spec.values())
    got = [(b["label_ids"].numpy().tolist(), b["example_weight"].numpy().tolist()) for b in ds]
    assert [ids for ids, _ in got][:2] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert got[2][0][:2] == [8, 9] and got[2][1] == [1.0, 1.0, 0.0, 0.0]
    assert len(got) == 3 and all(w == [1.0] * 4 for _, w in got[:2])
    assert tf_.eval_feature_indices(10, 4).tolist() == list(range(10)) + [-1, -1]


def test_evaluation_shards_predict_every_row_once():
    import tensorflow as tf

    seen = []
    for pid in range(3):
        ctx = tf.distribute.InputContext(num_input_pipelines=3, input_pipeline_id=pid)
        ds = tf_.task_dataset(row_features(10), 2, is_training=False, seed=0, input_context=ctx)
        rows = [(r, w) for b in ds for r, w in zip(b["label_ids"].numpy().tolist(),
                                                    b["example_weight"].numpy().tolist())]
        assert len(rows) == 4  # ceil(10 / 3) = 4 rows for the largest share: 2 batches each
        assert [r if w else -1 for r, w in rows] == tf_.eval_feature_indices(10, 2, ctx).tolist()
        seen += [r for r, w in rows if w == 1.0]
    assert sorted(seen) == list(range(10))


def test_dataset_argument_errors():
    from tfcompact.errors import ConfigError

    with pytest.raises(ConfigError, match="skip_batches"):
        tf_.task_dataset(row_features(4), 2, is_training=False, seed=0, skip_batches=1)
    with pytest.raises(DataError, match="no examples"):
        tf_.task_dataset(row_features(0), 2, is_training=True, seed=0)
    with pytest.raises(ConfigError, match="batch_size"):
        tf_.task_dataset(row_features(4), 0, is_training=True, seed=0)
