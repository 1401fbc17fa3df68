"""build-vocab: Chinese BERT layout, every CJK character seen, WordPiece for the rest."""
import os


from tests.text.data_fixtures import peoples_daily_text, run_on_tmpfs
from tfcompact import cli
from tfcompact.text.tokenizer import FullTokenizer, Vocab, packaged_vocab_path


def test_build_vocab_layout_and_coverage(tmp_path, capsys):
    corpus = peoples_daily_text(tmp_path, 30_000)
    with open(corpus, "a", encoding="utf-8") as f:
        f.write("\nThe quick brown fox jumps over the lazy dog 2024 times.\n")
    out = tmp_path / "vocab.txt"
    assert cli.main(["build-vocab", "--input", corpus, "--vocab_size", "3000", "--output", str(out)]) == 0
    vocab = Vocab.load(str(out))
    assert vocab.tokens[0] == "[PAD]" and vocab.tokens[1] == "[unused1]" and vocab.tokens[99] == "[unused99]"
    assert vocab.special_ids == {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
    assert len(set(vocab.tokens)) == len(vocab) <= 3000
    text = open(corpus, encoding="utf-8").read()
    cjk = {c for c in text if "\u4e00" <= c <= "\u9fff"}
    assert cjk <= set(vocab.tokens)
    assert not any(t.startswith("##") and "\u4e00" <= t[-1] <= "\u9fff" for t in vocab.tokens)
    tok = FullTokenizer(vocab)
    ids = [i for line in text.split("\n") for i in tok.tokenize_to_ids(line)]
    assert vocab.unk_id not in ids
    pieces = tok.tokenize("quickly foxes")
    assert pieces[0] in ("quick", "q") and any(p.startswith("##") for p in pieces)


def test_vocab_size_too_small(tmp_path, capsys):
    corpus = peoples_daily_text(tmp_path, 30_000)
    code = cli.main(["build-vocab", "--input", corpus, "--vocab_size", "300", "--output", str(tmp_path / "v.txt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "too small" in err[0]
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(corpus)]


def test_packaged_vocab():
    vocab = Vocab.load(packaged_vocab_path())
    assert vocab.special_ids["[MASK]"] == 103 and len(vocab) > 5000


def _one_line_error(code, err):
    assert code == 1 and len(err) == 1 and err[0].startswith("tfcompact build-vocab: error: "), err
    return err[0]


def test_existing_output_needs_overwrite_and_a_symlink_stays(tmp_path, capsys):
    corpus = peoples_daily_text(tmp_path, 10_000)
    target = tmp_path / "real_vocab.txt"
    target.write_text("old\n", encoding="utf-8")
    link = tmp_path / "vocab.txt"
    os.symlink(target.name, link)
    argv = ["build-vocab", "--input", corpus, "--vocab_size", "2000", "--output", str(link)]
    err = _one_line_error(cli.main(argv), capsys.readouterr().err.strip().splitlines())
    assert f"--output {link}: already exists (pass --overwrite to replace it)" in err
    assert target.read_text(encoding="utf-8") == "old\n"
    assert cli.main(argv + ["--overwrite"]) == 0
    assert os.path.islink(link) and Vocab.load(str(target)).tokens[0] == "[PAD]"
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(corpus), "real_vocab.txt", "vocab.txt"])


def test_full_disk(tmp_path):
    corpus = peoples_daily_text(tmp_path, 10_000)
    r = run_on_tmpfs(tmp_path, "", ["build-vocab", "--input", corpus, "--vocab_size", "2000",
                                    "--output", "$MNT/vocab.txt"], fill=True)
    err = _one_line_error(r["rc"], r["stderr"][-1:])
    assert "vocab.txt: cannot write (No space left on device)" in err
    assert r["after"] == r["before"] and list(r["before"]) == ["filler"]


def test_read_only_file_system(tmp_path):
    corpus = peoples_daily_text(tmp_path, 10_000)
    r = run_on_tmpfs(tmp_path, 'echo mine > "$MNT/notes.txt"',
                     ["build-vocab", "--input", corpus, "--vocab_size", "2000", "--output", "$MNT/vocab.txt"],
                     read_only=True)
    err = _one_line_error(r["rc"], r["stderr"][-1:])
    assert "--output" in err and "(read-only file system)" in err
    assert r["after"] == r["before"] and list(r["before"]) == ["notes.txt"]
