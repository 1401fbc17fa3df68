"""A representative subset of the distill bad-input catalogue (`tools/bad_inputs/distill.py`),
run in-process through `tfcompact.cli.main`: exit status 1, the last stderr line is the
command's one-line error naming the file, line or field, no traceback, and every file that
existed before is byte-identical afterwards with nothing added. `tools/bad_input_catalogue.py
--area distill` runs every case as a subprocess; this subset keeps the test short: pretraining
stage configs, task stages against their models (one that builds both models before it fails)
and augment's flags and outputs."""
import pathlib
import sys

import pytest

TOOLS = pathlib.Path(__file__).resolve().parents[2] / "tools"
sys.path.insert(0, str(TOOLS))

from bad_input_catalogue import check_in_process  # noqa: E402
from bad_inputs import distill as catalogue  # noqa: E402

SUBSET = (
    "distill: a pretraining experiment without a distillation section",
    "distill: matches[0].loss kl for feature hidden",
    "distill: empty matches (line 25)",
    "distill: base names a recipe that does not exist (line 1)",
    "distill: teacher is a pretraining directory, not a fine-tuned one",
    "distill: teacher fine-tuned for labels 0/1, the task has 0/1/2",
    "distill: hidden widths 16 vs 32 with projection none",
    "finetune: model.init a fine-tuned directory without a distillation section",
    "augment: --output is the --input",
    "augment: --num_copies 0",
)
CASES = [c for c in catalogue.CASES if c.name in SUBSET]


def test_the_subset_names_catalogue_cases():
    assert len(CASES) == len(SUBSET)
    names = [c.name for c in catalogue.CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    check_in_process(case, tmp_path, capsys)
