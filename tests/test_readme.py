"""README.md is executable documentation: its Python API example runs, and .ci/run finds the
test command between the markers."""
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _block(marker: str) -> str:
    m = re.search(rf"<!-- {marker} -->\s*```\n(.*?)\n```\s*<!-- /{marker} -->", README, re.S)
    assert m, f"README.md has no ```block``` between <!-- {marker} --> markers"
    return m.group(1).strip()


def test_two_commands_are_present():
    assert _block("main-command").endswith("tfcompact quickstart")
    assert "pytest tests" in _block("test-command")


def test_ci_runs_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    extract = re.search(r"test_cmd=\$\((.*)\)\n", script).group(1)
    out = subprocess.run(["bash", "-c", extract], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _block("test-command")
    # The TPU line (TensorFlow 2.20) is checked by the stand-in before the README command.
    assert script.index("python tools/tpu_standin.py --pytest") < script.index('bash -c "$test_cmd"')


def test_python_api_example_runs():
    code = re.search(r"## Python API.*?```python\n(.*?)\n```", README, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md:Python API", "exec"), scope)
    out = scope["outputs"]
    ids = scope["ids"]
    hidden = scope["config"].hidden_size
    assert tuple(out["sequence_output"].shape) == (1, ids.shape[1], hidden)
    assert tuple(out["pooled_output"].shape) == (1, hidden)
    assert len(out["hidden_states"]) == scope["config"].num_hidden_layers + 1
    assert len(out["attention_logits"]) == scope["config"].num_hidden_layers
    assert type(scope["pretrainer"]).__name__ == "ElectraPretrainer"
