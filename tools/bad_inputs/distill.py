"""Bad inputs for the distillation commands: `tfcompact distill` and `tfcompact augment`.

Distillation configs that cannot describe a stage (no `distillation:` section, the old
`distillation.kind` key, a loss the feature has not, a projection of attention scores, a
negative weight, unknown gates, no matches, a `base:` recipe that does not exist, an unknown
`distillation.vocab`), task stages whose student and teacher cannot be paired (a teacher that
was never fine-tuned or was fine-tuned for other labels, another vocabulary, hidden widths
without a projection, other head counts, layer counts `uniform` cannot map), and augmentation
runs with a model, an input or an output they cannot use.

The models come from the tasks area's base (`bad_inputs.tasks.base()`: a tiny ALBERT
pretraining directory `pretrained/`, 2 layers, hidden 32, 2 heads, and `finetuned/`, a
2-label classifier fine-tuned from it). Pretraining stages also need data: `stage_base()` makes
it once per catalogue run with the real `create-data` on the tiny vocabulary, and writes the
teacher's config as `teacher.json`. A case copies what it needs into its own directory,
writes its config there (absolute paths, so that the error names exactly what the case wrote)
and returns the argv.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable

from bad_inputs.common import Case, Path, corpus, tfcompact
from bad_inputs.tasks import (
    BAD_ROW_5,
    CHARS,
    NER,
    ROWS,
    VOCAB,
    base,
    conll,
    copy,
    task_config,
    tsv,
    write,
)

_STAGE: dict[str, Path] = {}


def recipe(name: str) -> str:
    """The absolute path of a shipped distillation recipe (tpu_configs/distill/NAME.yaml)."""
    from tfcompact.train.experiment import tpu_configs_dir

    return str(tpu_configs_dir() / "distill" / f"{name}.yaml")


# ------------------------------------------------------------------------------ pretraining stage

def stage_base() -> Path:
    """Pretraining data made with the base's vocabulary (data/) and the teacher's config
    (teacher.json), beside the tasks base; built on first use, removed at exit."""
    if "root" not in _STAGE:
        from tfcompact import modeldir

        root = Path(tempfile.mkdtemp(prefix="tfcompact-bad-distill-base-"))
        atexit.register(shutil.rmtree, root, True)
        shared = base()
        tfcompact("create-data", "--input", str(corpus(root)), "--vocab",
                  str(shared / "vocab.txt"), "--output_dir", str(root / "data"),
                  "--max_seq_length", "32", "--max_predictions_per_seq", "5", "--num_shards", "1",
                  "--dupe_factor", "1", "--num_workers", "1", "--quiet")
        modeldir.read_model_dir(str(shared / "pretrained")).config.to_json_file(
            str(root / "teacher.json"))
        _STAGE["root"] = root
    return _STAGE["root"]


# The stage's layout is fixed so that cases can name its lines (stage.yaml:N): `base` is line
# 1, `distillation:` line 20, `distillation.teacher.checkpoint` line 24; {rest} starts line 25.
STAGE = """\
{base}
name: bad_input_distill
model:
  preset: albert_tiny_zh
  overrides: {{vocab_size: data, num_hidden_layers: 2, hidden_size: 32, num_attention_heads: 2,
              intermediate_size: 64, embedding_size: 16, max_position_embeddings: 64}}
data:
  train: {data}
  max_seq_length: 32
  max_predictions_per_seq: 5
optimizer:
  name: lamb
  learning_rate: 0.01
train:
  model_dir: {model_dir}
  batch_size: 8
  total_steps: 2
  steps_per_loop: 1
  checkpoint_every: 2
distillation:
  teacher:
    arch: albert
    config_file: {teacher_json}
    checkpoint: {teacher}
{rest}"""

TINYBERT_GENERAL = "tinybert_general"


def stage(rest: str = "", *args: str, base_recipe: str | None = TINYBERT_GENERAL
          ) -> Callable[[Path], list[str]]:
    """A pretraining distillation stage: TinyBERT's general recipe (`base:`) for a student of the
    teacher's size, with `rest` appended to the distillation section."""
    def argv(tmp: Path) -> list[str]:
        shared = stage_base()
        shutil.copytree(shared / "data", tmp / "data")
        shutil.copyfile(shared / "teacher.json", tmp / "teacher.json")
        copy(tmp, "pretrained")
        base_line = f"base: {recipe(base_recipe)}" if base_recipe else "# no base"
        config = STAGE.format(
            base=base_line, data=tmp / "data", model_dir=tmp / "model",
            teacher_json=tmp / "teacher.json", teacher=tmp / "pretrained", rest=rest)
        path = write(tmp, "stage.yaml", config)
        return ["distill", "--config", str(path), *args]
    return argv


def _with_finetuned(make: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
    """`make`, with the base's fine-tuned classifier copied in beside it."""
    def argv(tmp: Path) -> list[str]:
        copy(tmp, "finetuned")
        return make(tmp)
    return argv


def matches(*entries: str) -> str:
    """A `distillation.matches` list (replacing the recipe's) of flow-style entries."""
    return "  matches:\n" + "".join(f"    - {{{e}}}\n" for e in entries)


def without_distillation(tmp: Path) -> list[str]:
    """The stage with its distillation section cut off: a plain pretraining experiment."""
    argv = stage(base_recipe=None)(tmp)
    path = Path(argv[2])
    path.write_text(path.read_text(encoding="utf-8").split("distillation:")[0], encoding="utf-8")
    return argv


# ------------------------------------------------------------------------------ task stage

# Appended to the tasks area's task.yaml (18 lines): `distillation:` is line 19.
TASK_DISTILLATION = """\
distillation:
{teacher}{matches}"""
INTERMEDIATE = matches("feature: attention, loss: attention_mse",
                       "feature: hidden, loss: mse, projection: linear, projection_name: fit_dense")


def albert_student(**sizes: int) -> tuple[str, ...]:
    """`--set`s for a randomly initialised ALBERT student of the base's vocabulary: the
    teacher's sizes except `sizes`."""
    config = {"vocab_size": len(VOCAB), "num_hidden_layers": 2, "hidden_size": 32,
              "num_attention_heads": 2, "intermediate_size": 64, "embedding_size": 16,
              "max_position_embeddings": 64}
    config.update(sizes)
    inline = ", ".join(f"{k}: {v}" for k, v in config.items())
    return ("--set", "model.init=null", "--set", "model.preset=albert_tiny_zh",
            "--set", f"model.overrides={{{inline}}}", "--set", "model.vocab=vocab.txt")


def task_stage(*args: str, teacher: str = "finetuned", match_text: str = INTERMEDIATE,
               files: dict[str, str | bytes] | None = None, command: str = "distill",
               section: bool = True, damage: Callable[[Path], object] | None = None
               ) -> Callable[[Path], list[str]]:
    """A task distillation stage: the base's pretrained student (model.init), its fine-tuned
    classifier as the teacher, the base's train/dev splits; `files` written over them, then
    `damage(tmp)`."""
    def argv(tmp: Path) -> list[str]:
        for name in ("pretrained", "finetuned", "train.tsv", "dev.tsv", "vocab.txt"):
            copy(tmp, name)
        if damage:
            damage(tmp)
        for name, data in (files or {}).items():
            write(tmp, name, data)
        line = f"  teacher: {tmp / teacher}\n" if teacher else "  hard_label_weight: 0.0\n"
        extra = TASK_DISTILLATION.format(teacher=line, matches=match_text) if section else ""
        config = task_config(tmp, init="pretrained", extra=extra, absolute=True)
        return [command, "--config", str(config), *args]
    return argv


THREE_LABELS = tsv(ROWS + [("2", CHARS[14:19])] * 4)
OTHER_VOCAB = "".join(t + "\n" for t in VOCAB + ["甲", "乙", "丙"])


# ------------------------------------------------------------------------------ augment

def augment(*args: str, model: str = "pretrained", input: str = "train.tsv",
            output: str = "aug.jsonl", kind: str = "classification",
            files: dict[str, str | bytes] | None = None) -> Callable[[Path], list[str]]:
    """An augmentation of the base's train.tsv with its pretrained model (sizes it can take),
    `files` written first, `args` appended (argparse keeps the last of a repeated flag)."""
    def argv(tmp: Path) -> list[str]:
        if model in ("pretrained", "finetuned"):
            copy(tmp, model)
        copy(tmp, "train.tsv")
        for name, data in (files or {}).items():
            write(tmp, name, data)
        return ["augment", "--model_dir", model, "--input", input, "--output", output,
                "--kind", kind, "--max_seq_length", "32", "--num_copies", "2",
                "--num_workers", "1", *args]
    return argv


CASES = [
    # -- distill: the configuration of a pretraining stage -------------------------------------
    Case("distill: a pretraining experiment without a distillation section",
         without_distillation, "stage.yaml: no distillation section"),
    Case("distill: old key distillation.kind", stage("  kind: tinybert_general\n"),
         "stage.yaml: distillation.kind is no longer read"),
    Case("distill: matches[0].loss kl for feature hidden",
         stage(matches("feature: hidden, loss: kl")),
         "'distillation.matches[0].loss' must be one of mse, ln_mse, mean_var, cos, mmd for "
         "feature hidden, got 'kl'"),
    Case("distill: matches[1].feature hiddens",
         stage(matches("feature: attention, loss: attention_mse", "feature: hiddens")),
         "'distillation.matches[1].feature' must be one of hidden, embeddings, attention, logits"),
    Case("distill: linear projection of attention scores",
         stage(matches("feature: attention, loss: attention_mse, projection: linear")),
         "'distillation.matches[0].projection' linear projections apply to hidden states"),
    Case("distill: negative weight", stage(matches("feature: hidden, loss: mse, weight: -0.5")),
         "'distillation.matches[0].weight' must be >= 0, got -0.5"),
    Case("distill: gates layerwise", stage(matches("feature: hidden, loss: mse, gates: layerwise")),
         "'distillation.matches[0].gates' must be one of none, progressive, got 'layerwise'"),
    Case("distill: empty matches (line 25)", stage("  matches: []\n"),
         "stage.yaml:25: 'distillation.matches' needs at least one match"),
    Case("distill: no matches at all", stage(base_recipe=None),
         "'distillation.matches' needs at least one match"),
    Case("distill: base names a recipe that does not exist (line 1)",
         stage(base_recipe="tinybert_genral"),
         "stage.yaml:1: 'base' must name an experiment file"),
    Case("distill: distillation.vocab other (line 25)", stage("  vocab: other\n"),
         "stage.yaml:25: 'distillation.vocab' must be same or map_tokens, got 'other'"),
    Case("distill: distillation.vocab other by --set",
         stage("", "--set", "distillation.vocab=other"),
         "(--set distillation.vocab=other): 'distillation.vocab' must be same or map_tokens"),
    Case("distill: hard_label_weight nan", stage("  hard_label_weight: .nan\n"),
         "stage.yaml:25: 'distillation.hard_label_weight' must be a finite number"),
    Case("distill: --teacher a directory that does not exist", stage("", "--teacher", "nowhere"),
         "nowhere"),
    Case("distill: --teacher a fine-tuned directory for a pretraining stage",
         _with_finetuned(stage("", "--teacher", "finetuned")),
         "distillation.teacher.checkpoint finetuned"),
    Case("distill: --seeds 2 for a pretraining stage", stage("", "--seeds", "2"),
         "--seeds 2: only task distillation stages run several seeds"),
    # -- distill: a task stage against its models ----------------------------------------------
    Case("distill: task stage without distillation.teacher",
         task_stage(teacher=""), "task.yaml: 'distillation.teacher' is required"),
    Case("distill: task stage with the old distillation.kind",
         task_stage(match_text="  kind: tinybert_task\n"),
         "task.yaml: distillation.kind is no longer read"),
    Case("distill: teacher is a pretraining directory, not a fine-tuned one",
         task_stage(teacher="pretrained"), "pretrained is not a fine-tuned model directory"),
    Case("distill: --teacher a directory that does not exist (task stage)",
         task_stage("--teacher", "nowhere"),
         "distillation.teacher nowhere is not a fine-tuned model directory"),
    Case("distill: teacher fine-tuned for labels 0/1, the task has 0/1/2",
         task_stage(files={"train.tsv": THREE_LABELS}), "was fine-tuned for labels ['0', '1']"),
    Case("distill: vocab map_tokens with a teacher without vocab.txt",
         task_stage(match_text="  vocab: map_tokens\n" + INTERMEDIATE,
                    damage=lambda tmp: (tmp / "finetuned" / "vocab.txt").unlink()),
         "distillation.vocab map_tokens needs the student's and the teacher's vocab.txt"),
    Case("distill: student with another vocabulary than the teacher",
         task_stage(*albert_student(vocab_size=len(VOCAB) + 3),
                    files={"vocab.txt": OTHER_VOCAB}),
         "the teacher's vocabulary"),
    Case("distill: hidden widths 16 vs 32 with projection none",
         task_stage(*albert_student(hidden_size=16, intermediate_size=32),
                    match_text=matches("feature: hidden, loss: mse")),
         "distillation.matches[0]: student layer 0 is 16 wide, teacher layer 0 32: add "
         "'projection: linear'"),
    Case("distill: attention match with 4 student heads, 2 teacher heads",
         task_stage(*albert_student(num_attention_heads=4),
                    match_text=matches("feature: attention, loss: attention_mse")),
         "distillation.matches[0]: attention matches need as many heads in the student (4) as "
         "in the teacher (2)"),
    Case("distill: teacher_layers uniform from 2 teacher layers to 3 student layers",
         task_stage(*albert_student(num_hidden_layers=3)),
         "distillation.matches[0].teacher_layers: uniform needs the teacher's layer count (2) "
         "to be a multiple of the student's (3)"),
    Case("finetune: model.init a fine-tuned directory without a distillation section",
         task_stage("--set", "model.init=finetuned", command="finetune", section=False),
         "model.init finetuned is a fine-tuned model directory"),
    # -- augment -------------------------------------------------------------------------------
    Case("augment: --model_dir that does not exist", augment(model="nowhere"), "nowhere"),
    Case("augment: --model_dir that is not a model directory",
         augment(model="notamodel", files={"notamodel/readme.txt": "hello\n"}),
         "notamodel/tfcompact.json: not found"),
    Case("augment: --model_dir a fine-tuned directory",
         augment(model="finetuned"), "fine-tuned"),
    Case("augment: input TSV row 5 with 3 columns", augment(files={"train.tsv": BAD_ROW_5}),
         "train.tsv:5: 3 tab-separated columns"),
    Case("augment: CoNLL input with a one-column line 4 (tagging)",
         augment(input="ner.txt", kind="tagging",
                 files={"ner.txt": "张 B-PER\n三 I-PER\n在 O\n海\n京 O\n\n" + conll(NER)}),
         "ner.txt:4: one column '海'"),
    Case("augment: existing --output without --overwrite",
         augment(files={"aug.jsonl": "mine\n"}), "--output aug.jsonl: already exists"),
    Case("augment: --output is the --input", augment(output="train.tsv"),
         "--output train.tsv: is also an --input file"),
    Case("augment: --output in a directory that does not exist", augment(output="no/aug.jsonl"),
         "--output no/aug.jsonl: directory"),
    Case("augment: --replace_prob 1.5", augment("--replace_prob", "1.5"),
         "--replace_prob 1.5: expected a probability in (0, 1]"),
    Case("augment: --num_copies 0", augment("--num_copies", "0"),
         "--num_copies 0: expected at least 1"),
    Case("augment: --num_copies -3", augment("--num_copies", "-3"),
         "--num_copies -3: expected at least 1"),
    Case("augment: --top_k 0", augment("--top_k", "0"), "--top_k 0: expected at least 1"),
    Case("augment: --max_seq_length 128 beyond the model's 64 positions",
         augment("--max_seq_length", "128"),
         "--max_seq_length 128: the model in pretrained has 64"),
    Case("augment: --kind regression", augment(kind="regression"),
         "--kind: expected one of classification, tagging, span"),
    Case("augment: --task_format tsv for a tagging kind", augment("--task_format", "tsv",
                                                                  kind="tagging"),
         "--task_format tsv reads classification files, not tagging"),
    Case("augment: --task_format conll for a classification kind",
         augment("--task_format", "conll"),
         "--task_format conll reads tagging files, not classification"),
    Case("augment: a TSV read as SQuAD JSON (--kind span)", augment(kind="span"),
         "train.tsv:1: invalid JSON"),
]
