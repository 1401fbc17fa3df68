"""The shape of the code, checked: dependencies point one way, the manifest and the
architecture table exist once, functions are short and product code does not repeat itself.
Static checks over the source (no imports), so they run in a second."""
from __future__ import annotations

import ast
import collections
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "tfcompact"
PRODUCT_DIRS = ("tfcompact", "pipelines", "tools")
ARCHITECTURES = ("bert", "albert", "electra", "mobilebert", "tinybert")
MAX_FUNCTION_LINES = 80
REPEAT_LINES = 6


def _py_files(*dirs: str) -> list[pathlib.Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py"))


def _tree(path: pathlib.Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported_modules(tree: ast.Module) -> set[str]:
    """Every module an import statement names, at any depth (function-local ones too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _rel(path: pathlib.Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_library_does_not_import_pipelines():
    """`pipelines` may import `tfcompact`; only the command line may call into `pipelines`."""
    offenders = []
    for path in _py_files("tfcompact"):
        rel = _rel(path)
        if rel.startswith("tfcompact/commands/") or rel == "tfcompact/cli.py":
            continue
        names = _imported_modules(_tree(path))
        offenders += [f"{rel} imports {n}" for n in sorted(names)
                      if n == "pipelines" or n.startswith("pipelines.")]
    assert not offenders, "\n".join(offenders)


# Each part of the library imports only parts of a lower rank (a part may import itself).
LAYERS = {
    "errors": 0,
    "files": 1, "typed": 1, "architectures": 1,
    "configs": 2, "layers": 2, "text": 2, "optim": 2, "tasks": 2, "metrics": 2,
    "models": 3, "objectives": 3, "inputs": 3,
    "modeldir": 4,
    "interop": 5,
    "train": 6,
    "commands": 7,
    "cli": 8,
}


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "tfcompact" and len(parts) > 1 else None


def test_library_imports_point_down_the_layers():
    """commands -> train -> interop -> modeldir -> models/objectives/inputs ->
    configs/layers/text/optim -> architectures/typed/files -> errors, never back up."""
    wrong = []
    for path in _py_files("tfcompact"):
        rel = path.relative_to(LIBRARY).with_suffix("")
        source = rel.parts[0]
        if source == "__init__":
            continue
        assert source in LAYERS, f"{_rel(path)}: add its part to LAYERS"
        for module in _imported_modules(_tree(path)):
            target = _part(module)
            if target and target != "__version__" and target != source \
                    and LAYERS.get(target, 99) >= LAYERS[source]:
                wrong.append(f"{_rel(path)} ({source}) imports {module} ({target})")
    assert not wrong, "\n".join(wrong)


def _string_constants(tree: ast.Module):
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            yield node


def test_manifest_contract_is_defined_once():
    """The manifest's file name is spelled in code only by the manifest module; everything
    else (converter, Beam, writer, readers, trainer, tools) takes it from there."""
    owners = set()
    for path in _py_files(*PRODUCT_DIRS):
        for node in _string_constants(_tree(path)):
            if node.value == "manifest.json":
                owners.add(_rel(path))
    assert owners == {"tfcompact/inputs/manifest.py"}


def _architecture_tables(tree: ast.Module):
    """Literal dicts, tuples, lists and sets that name four or more architectures (a list of
    the architectures, or a table keyed by them)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            items = node.keys
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = node.elts
        else:
            continue
        names = {i.value for i in items if isinstance(i, ast.Constant) and i.value in ARCHITECTURES}
        if len(names) >= 4:
            yield node.lineno


def test_every_architecture_is_listed_in_one_registry():
    places = [f"{_rel(p)}:{line}" for p in _py_files(*PRODUCT_DIRS)
              for line in _architecture_tables(_tree(p))]
    assert len(places) == 1 and places[0].startswith("tfcompact/architectures.py:"), places


def test_functions_are_short():
    long = []
    for path in _py_files("tfcompact"):
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                length = node.end_lineno - first + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{_rel(path)}:{node.lineno} {node.name}: {length} lines")
    assert not long, "\n".join(long)


def _code_lines(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of lines that carry code: no blank lines, comments,
    docstrings, import statements or bare brackets."""
    tree = _tree(path)
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            skip.update(range(node.lineno, node.end_lineno + 1))
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            skip.update(range(body[0].lineno, body[0].end_lineno + 1))
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if number in skip or not text or text.startswith("#") or re.fullmatch(r"[\])},:]+", text):
            continue
        out.append((number, text))
    return out


def _is_layer_config_boilerplate(block: tuple[str, ...]) -> bool:
    return any(t.startswith(("def get_config", "config = super().get_config()",
                             "config.update(")) for t in block)


def test_no_block_of_six_lines_is_repeated_in_product_code():
    seen: dict[tuple[str, ...], list[str]] = collections.defaultdict(list)
    for path in _py_files(*PRODUCT_DIRS):
        lines = _code_lines(path)
        for i in range(len(lines) - REPEAT_LINES + 1):
            block = tuple(text for _, text in lines[i:i + REPEAT_LINES])
            if not _is_layer_config_boilerplate(block):
                seen[block].append(f"{_rel(path)}:{lines[i][0]}")
    repeated = {b: places for b, places in seen.items() if len(places) > 1}
    report = "\n".join(f"{' and '.join(places)}: {b[0]} ..." for b, places in repeated.items())
    assert not repeated, report


@pytest.mark.parametrize("pattern", [r"\breference/", r"\.\./shared", r"\brecipes\.md\b",
                                     r"\btf1_names\.md\b", r"\buser_needs\.md\b"])
def test_product_code_cites_nothing_outside_the_repository(pattern):
    hits = [f"{_rel(p)}:{n}" for p in _py_files(*PRODUCT_DIRS)
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if re.search(pattern, line)]
    assert not hits, hits
