"""Segmenters are lossless and versioned; whole words from them group tokens for masking."""
import os

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


TEXT2 = "中共中央总书记、国家主席江泽民发表１９９８年新年讲话，韩国总统金大中访华。"


def _honest_jieba_words(text):
    """jieba's words from its own word list (never from any cache)."""
    import jieba

    tok = jieba.Tokenizer()
    tok.FREQ, tok.total = tok.gen_pfdict(tok.get_dict_file())
    tok.initialized = True
    return tok.lcut(text, HMM=True)


def test_jieba_dictionary_cache_gives_jieba_words(tmp_path, monkeypatch, capsys):
    """The private cache of jieba's prefix dictionary: written on first load, used on the
    second; a damaged one is reported and rebuilt; the words always equal jieba's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    expected = _honest_jieba_words(TEXT2)
    first = make_segmenter("jieba")
    first.load()
    caches = list((tmp_path / "tfcompact").glob("jieba-*.prefix-dict"))
    assert len(caches) == 1
    assert oct((tmp_path / "tfcompact").stat().st_mode & 0o777) == oct(0o700)
    assert first.cut(TEXT2) == expected
    second = make_segmenter("jieba")
    second.load()
    assert second.cut(TEXT2) == expected
    assert capsys.readouterr().err == ""
    caches[0].write_bytes(caches[0].read_bytes()[:5000])  # truncated
    third = make_segmenter("jieba")
    third.load()
    assert third.cut(TEXT2) == expected
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is damaged" in err[0] and caches[0].name in err[0]
    assert make_segmenter("jieba").cut(TEXT2) == expected  # rebuilt: read silently again
    assert capsys.readouterr().err == ""


def test_no_code_runs_from_a_planted_cache(tmp_path, monkeypatch, capsys):
    """A pickle planted where the converter used to unpickle jieba's dictionary (and where the
    new cache lives) is never executed: the cache format is data only."""
    import pickle

    import jieba

    from tfcompact.text import segmenter

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    dict_path = os.path.join(os.path.dirname(os.path.abspath(jieba.__file__)), jieba.DEFAULT_DICT_NAME)
    st = os.stat(dict_path)
    cache = tmp_path / "tfcompact"
    cache.mkdir(mode=0o700)
    version = make_segmenter("jieba").version
    payload = pickle.dumps(Exploit())
    (cache / f"jieba-{version}-{st.st_size}-{st.st_mtime_ns}.pickle").write_bytes(payload)  # the old name
    (cache / segmenter._jieba_cache_name(dict_path, version)).write_bytes(payload)
    assert make_segmenter("jieba").cut(TEXT2) == _honest_jieba_words(TEXT2)
    assert not marker.exists()
    assert "is damaged (not a tfcompact jieba cache)" in capsys.readouterr().err


def test_cache_others_can_write_is_not_used(tmp_path, monkeypatch, capsys):
    """A well-formed cache with a poisoned dictionary is refused when another user could have
    written it (file writable by others, or another owner)."""
    import jieba

    from tfcompact.text import segmenter

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    expected = _honest_jieba_words(TEXT2)
    dict_path = os.path.join(os.path.dirname(os.path.abspath(jieba.__file__)), jieba.DEFAULT_DICT_NAME)
    seg = make_segmenter("jieba")
    path = tmp_path / "tfcompact" / segmenter._jieba_cache_name(dict_path, seg.version)
    path.parent.mkdir(mode=0o700)
    path.write_bytes(segmenter.encode_prefix_dict({"中": 1, "共": 1, "国": 1}, 3))  # every character a word
    os.chmod(path, 0o666)
    assert seg.cut(TEXT2) == expected
    err = capsys.readouterr().err
    assert "not using cache" in err and "writable by group or others" in err
    if os.geteuid() == 0:  # a file another user owns
        os.chmod(path, 0o644)
        os.chown(path, 65534, 65534)
        assert make_segmenter("jieba").cut(TEXT2) == expected
        assert "owned by uid 65534" in capsys.readouterr().err


def test_jieba_never_reads_the_shared_temp_cache(tmp_path, monkeypatch):
    """jieba's own cache is a marshal file in the shared temp directory (/tmp/jieba.cache) that
    any local user can plant; `cut` without `load` must not let jieba initialise from it."""
    import marshal
    import tempfile

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    with open(shared / "jieba.cache", "wb") as f:
        marshal.dump(({"中": 1, "共": 1}, 2), f)
    assert make_segmenter("jieba").cut(TEXT2) == _honest_jieba_words(TEXT2)


def test_cache_write_failure_is_reported(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    assert make_segmenter("jieba").cut(TEXT2) == _honest_jieba_words(TEXT2)
    err = capsys.readouterr().err
    assert "cannot write cache" in err and "later runs rebuild it" in err


def test_rjieba_cuts_chinese_as_jieba_and_joins_symbol_runs(tmp_path):
    """The documented agreement: the same words on People's Daily lines; on ASCII runs joined
    by symbols rjieba keeps one word where jieba splits at the symbols."""
    from tests.text.data_fixtures import peoples_daily_text

    jieba_cut, rjieba_cut = make_segmenter("jieba").cut, make_segmenter("rjieba").cut
    lines = open(peoples_daily_text(tmp_path, 150_000), encoding="utf-8").read().splitlines()
    assert len(lines) > 1000
    assert [rjieba_cut(line) for line in lines] == [jieba_cut(line) for line in lines]
    assert jieba_cut("办理check-in手续") == ["办理", "check", "-", "in", "手续"]
    assert rjieba_cut("办理check-in手续") == ["办理", "check-in", "手续"]


def test_no_segmenter_named_means_rjieba():
    from tfcompact.text.segmenter import resolve_segmenter

    assert make_segmenter().describe()["name"] == "rjieba" == resolve_segmenter(None)
    assert resolve_segmenter("jieba") == "jieba"


def test_rjieba_is_a_requirement_and_pinned_for_tpu_vms():
    """The default segmenter is installed with tfcompact, and the TPU VM lock pins it (and every
    other requirement of setup.py but TensorFlow's own, installed separately)."""
    import ast
    import re

    from tests.text.data_fixtures import ROOT
    from tfcompact.train.tpu_software import pinned_requirements

    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    (requires,) = [kw.value for kw in ast.walk(tree)
                   if isinstance(kw, ast.keyword) and kw.arg == "install_requires"]
    norm = lambda r: re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower().replace("_", "-")
    names = {norm(e.value) for e in requires.elts}
    pins = {norm(p): p for p in pinned_requirements()}
    assert "rjieba" in names and pins["rjieba"] == "rjieba==0.2.2"
    assert names - set(pins) == {"tensorflow", "tensorflow-text"}
