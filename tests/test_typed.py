"""Typed loading: each kind of error names the key, where it was written, what was expected."""
from dataclasses import dataclass, field
from typing import Optional

import pytest

from tfcompact import typed
from tfcompact.errors import ConfigError


@dataclass
class Inner:
    rate: float = 0.5
    flags: dict = field(default_factory=dict)


@dataclass
class Outer:
    name: str
    steps: int = 1
    on: bool = False
    ids: list[int] = field(default_factory=list)
    cap: Optional[float] = None
    either: bool | dict = False
    inner: Inner = field(default_factory=Inner)
    extra: Optional[Inner] = None
    source: str = "<dict>"


LINES = {"name": 1, "steps": 2, "inner.rate": 4, "inner": 3}


def where(key):
    return f"f.yaml:{LINES[key]}" if key in LINES else "f.yaml"


def load(raw):
    return typed.load(Outer, raw, where, skip=("source",))


def test_a_good_mapping_loads_with_conversions():
    out = load({"name": "x", "steps": 1e6, "cap": 3, "ids": [1, 2], "inner": {"rate": "1e-4"},
                "extra": {"rate": 2}, "either": {"a": 1}})
    assert out.steps == 1_000_000 and isinstance(out.steps, int)
    assert out.cap == 3.0 and isinstance(out.cap, float)
    assert out.inner == Inner(rate=1e-4) and out.extra == Inner(rate=2.0)
    assert out.either == {"a": 1}
    assert load({"name": "x", "inner": None}).inner == Inner()


@pytest.mark.parametrize("raw, message", [
    ({"name": "x", "stepz": 3}, r"^f.yaml: unknown key 'stepz' \(did you mean 'steps'\?\); expected one of name, steps"),
    ({"name": "x", "inner": {"rat": 1}}, r"^f.yaml: unknown key 'inner.rat' \(did you mean 'rate'\?\)"),
    ({"name": "x", "source": "y"}, r"unknown key 'source'"),
    ({}, r"^f.yaml:1: 'name' is missing \(required by Outer\)"),
    ({"name": 3}, r"^f.yaml:1: 'name' must be a string, got 3"),
    ({"name": "x", "steps": "two"}, r"^f.yaml:2: 'steps' must be an integer, got 'two'"),
    ({"name": "x", "steps": True}, r"'steps' must be an integer, got True"),
    ({"name": "x", "steps": 2.5}, r"'steps' must be an integer, got 2.5"),
    ({"name": "x", "on": 1}, r"'on' must be true/false, got 1"),
    ({"name": "x", "ids": [1, "b"]}, r"'ids\[1\]' must be an integer, got 'b'"),
    ({"name": "x", "ids": 3}, r"'ids' must be a list, got 3"),
    ({"name": "x", "cap": float("nan")}, r"'cap' must be a finite number, got nan"),
    ({"name": "x", "cap": "fast"}, r"'cap' must be a number, got 'fast'"),
    ({"name": "x", "steps": None}, r"^f.yaml:2: 'steps' must be an integer, got None"),
    ({"name": "x", "either": None}, r"^f.yaml: 'either' must not be null"),
    ({"name": "x", "either": 3}, r"'either' must be true/false or a mapping, got 3"),
    ({"name": "x", "inner": 3}, r"^f.yaml:3: 'inner' must be a mapping, got int"),
    ({"name": "x", "inner": {"rate": True}}, r"^f.yaml:4: 'inner.rate' must be a number, got True"),
    ({"name": "x", "inner": {"flags": []}}, r"'inner.flags' must be a mapping, got \[\]"),
])
def test_each_error_names_key_place_and_expectation(raw, message):
    with pytest.raises(ConfigError, match=message) as info:
        load(raw)
    assert "\n" not in str(info.value)


def test_top_level_must_be_a_mapping():
    with pytest.raises(ConfigError, match=r"^f.yaml: the top level must be a mapping, got list"):
        load([1])


def test_check_fields_converts_a_built_instance():
    @dataclass(frozen=True)
    class Frozen:
        rate: float = 1

        def __post_init__(self):
            typed.check_fields(self, typed.at("<arguments>"))

    assert isinstance(Frozen().rate, float)
    with pytest.raises(ConfigError, match=r"^<arguments>: 'rate' must be a number, got 'x'"):
        Frozen(rate="x")
