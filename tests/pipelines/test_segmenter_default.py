"""create-data's default segmenter: rjieba, or jieba (one warning) when rjieba cannot be imported.

rjieba is made unimportable in a child process by a directory on PYTHONPATH holding an
`rjieba.py` that raises ImportError, ahead of the installed package."""
import importlib.metadata
import json
import os
import subprocess
import sys

import pytest

from pipelines.create_data import ConvertConfig, run_conversion
from tests.text.data_fixtures import ROOT, peoples_daily_text
from tfcompact.text.tokenizer import packaged_vocab_path

STAND_IN_REASON = "stand-in rjieba of the test without its native library"
SETTINGS = ["--max_seq_length", "64", "--max_predictions_per_seq", "10", "--dupe_factor", "1",
            "--num_shards", "2", "--seed", "3"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return peoples_daily_text(tmp_path_factory.mktemp("pd_default_seg"), 20_000)


@pytest.fixture(scope="module")
def no_rjieba_env(tmp_path_factory):
    """Environment of a child process in which `import rjieba` fails."""
    shim = tmp_path_factory.mktemp("no_rjieba")
    (shim / "rjieba.py").write_text(f"raise ImportError({STAND_IN_REASON!r})\n", encoding="utf-8")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(shim), str(ROOT)]))


def _create_data(env, corpus, out, *flags):
    cmd = [sys.executable, "-m", "tfcompact.cli", "create-data", "--input", corpus,
           "--vocab", packaged_vocab_path(), "--output_dir", str(out), "--num_workers", "2",
           "--quiet", *SETTINGS, *flags]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, [line for line in proc.stderr.splitlines() if line.strip()]


def _manifest_and_shards(out):
    m = json.load(open(os.path.join(out, "manifest.json"), encoding="utf-8"))
    return m, [open(os.path.join(out, s["file"]), "rb").read() for s in m["shards"]]


def _explicit_jieba_shards(corpus, out):
    cfg = ConvertConfig(inputs=[corpus], vocab_path=packaged_vocab_path(), output_dir=str(out),
                        max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1,
                        num_shards=2, seed=3, segmenter="jieba")
    m = run_conversion(cfg, num_workers=1, progress=False)
    assert m["segmenter"] == {"name": "jieba", "version": importlib.metadata.version("jieba")}
    return _manifest_and_shards(out)[1]


def test_default_is_rjieba_with_jieba_words_on_peoples_daily(tmp_path, corpus):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    code, err = _create_data(env, corpus, tmp_path / "default")
    assert code == 0, err
    assert not [line for line in err if "rjieba" in line or "warning" in line]
    m, shards = _manifest_and_shards(tmp_path / "default")
    assert m["segmenter"] == {"name": "rjieba", "version": importlib.metadata.version("rjieba")}
    # rjieba and jieba cut People's Daily identically: the same instances, byte for byte.
    assert shards == _explicit_jieba_shards(corpus, tmp_path / "jieba")
    # A conversion made with jieba (the earlier default) is not resumed with rjieba: the error
    # says which segmenter made it.
    code, err = _create_data(env, corpus, tmp_path / "jieba")
    assert code == 1 and len(err) == 1, err
    assert "differs in segmenter" in err[0] and "segmented with --segmenter jieba" in err[0]


def test_default_falls_back_to_jieba_with_one_warning(tmp_path, corpus, no_rjieba_env):
    code, err = _create_data(no_rjieba_env, corpus, tmp_path / "fallback")
    assert code == 0, err
    mentions = [line for line in err if "rjieba" in line]
    assert len(mentions) == 1, err
    assert "warning" in mentions[0] and "segmenting with jieba" in mentions[0]
    assert STAND_IN_REASON in mentions[0]  # says why
    m, shards = _manifest_and_shards(tmp_path / "fallback")
    assert m["segmenter"] == {"name": "jieba", "version": importlib.metadata.version("jieba")}
    assert shards == _explicit_jieba_shards(corpus, tmp_path / "jieba")
    # the run record names what ran, so a rerun resumes instead of refusing other settings
    code, err = _create_data(no_rjieba_env, corpus, tmp_path / "fallback")
    assert code == 0, err


def test_explicit_rjieba_missing_is_a_one_line_error(tmp_path, corpus, no_rjieba_env):
    code, err = _create_data(no_rjieba_env, corpus, tmp_path / "out", "--segmenter", "rjieba")
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("tfcompact create-data: error: --segmenter rjieba:")
    assert STAND_IN_REASON in err[0] and "--segmenter jieba" in err[0]
    assert not (tmp_path / "out").exists()  # refused before the output directory was made


def test_explicit_jieba_runs_without_rjieba_and_without_warning(tmp_path, corpus, no_rjieba_env):
    code, err = _create_data(no_rjieba_env, corpus, tmp_path / "j", "--segmenter", "jieba")
    assert code == 0 and not [line for line in err if "rjieba" in line or "warning" in line], err
    m, _ = _manifest_and_shards(tmp_path / "j")
    assert m["segmenter"]["name"] == "jieba"


def test_token_masking_ignores_the_segmenter_setting(tmp_path, corpus):
    """Token masking segments nothing: a conversion recorded with a segmenter name (jieba, the
    earlier default) is resumed by a run naming none."""
    settings = dict(inputs=[corpus], vocab_path=packaged_vocab_path(), output_dir=str(tmp_path / "t"),
                    max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1, num_shards=2,
                    masking="token")
    first = run_conversion(ConvertConfig(segmenter="jieba", **settings), progress=False)
    assert first["segmenter"]["name"] == "none"
    assert run_conversion(ConvertConfig(**settings), progress=False) == first
    with pytest.raises(Exception, match="differs in seed"):
        run_conversion(ConvertConfig(seed=99, **settings), progress=False)
