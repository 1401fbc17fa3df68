"""Typed loading: a mapping (read from JSON or YAML) checked against a dataclass's annotations.

One set of rules for every file the project reads into a dataclass (model configs, experiment
YAMLs). Unknown keys are named with the closest field; missing required fields are named;
every value is checked against its annotation:

- ``bool``: true/false only. ``int``: an integer, never a bool (a float with an integral
  value, e.g. ``1e6``, is taken as that integer). ``float``: a finite number (ints accepted,
  and strings holding a number: YAML 1.1 reads ``1e-4`` without a dot as a string).
- ``str``; ``list`` / ``list[X]`` (items checked and named ``key[i]``); ``dict`` (a mapping).
- ``X | None``: null allowed; ``X | Y``: the first option that fits.
- A nested dataclass: a mapping loaded by the same rules, its keys dotted (``model.preset``).

Errors are one-line `ConfigError`s: ``<where>: '<key>' must be <expected>, got <value>``, where
``where(key)`` says where the key was written (a file, ``file:line``, an override).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Callable, Collection, Mapping, NoReturn, TypeVar, Union

from tfcompact.errors import ConfigError

Where = Callable[[str], str]
T = TypeVar("T")

_NAMES = {bool: "true/false", int: "an integer", float: "a number", str: "a string",
          list: "a list", dict: "a mapping"}


def at(source: str) -> Where:
    """A `where` for a source without line numbers: every key is in `source`."""
    return lambda key: source


def fail(where: str, key: str, expected: str, value: Any) -> NoReturn:
    """Raise the one-line error for `key`: it must be `expected`, and is `value`."""
    raise ConfigError(f"{where}: '{key}' must be {expected}, got {value!r}")


def type_name(tp: Any) -> str:
    """'an integer', 'a list', 'a mapping (section)', ... for an annotation."""
    tp = typing.get_origin(tp) or tp
    if dataclasses.is_dataclass(tp):
        return "a mapping (section)"
    return _NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _union_options(tp: Any) -> tuple | None:
    if typing.get_origin(tp) in (Union, types.UnionType):
        return typing.get_args(tp)
    return None


def _convert_union(value: Any, options: tuple, key: str, where: Where) -> Any:
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{where(key)}: '{key}' must not be null")
    options = [o for o in options if o is not type(None)]
    if len(options) == 1:
        return convert(value, options[0], key, where)
    for option in options:
        try:
            return convert(value, option, key, where)
        except ConfigError:
            continue
    fail(where(key), key, " or ".join(type_name(o) for o in options), value)


def _as_number(value: Any) -> float | None:
    """A float from a number, or from a string holding one (YAML 1.1 reads 1e-4 as a string)."""
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        return None


def _convert_scalar(value: Any, tp: type, key: str, where: Where) -> Any:
    if tp is bool and isinstance(value, bool):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        fail(where(key), key, type_name(tp), value)
    if tp is int:
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
            return int(value)
    elif tp is float:
        number = _as_number(value)
        if number is not None:
            if not math.isfinite(number):  # .nan / .inf would train a NaN model that "completes"
                fail(where(key), key, "a finite number", value)
            return number
    elif tp is str and isinstance(value, str):
        return value
    fail(where(key), key, type_name(tp), value)


def convert(value: Any, tp: Any, key: str, where: Where) -> Any:
    """`value` checked against the annotation `tp` (and converted: ints for floats, dicts
    for nested dataclasses); `key` names it in errors."""
    options = _union_options(tp)
    if options is not None:
        return _convert_union(value, options, key, where)
    origin = typing.get_origin(tp) or tp
    if dataclasses.is_dataclass(origin):
        return load(origin, value, where, prefix=key)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            fail(where(key), key, "a list", value)
        (item,) = typing.get_args(tp) or (Any,)
        return [v if item is Any else convert(v, item, f"{key}[{i}]", where)
                for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            fail(where(key), key, "a mapping", value)
        return dict(value)
    if origin in (bool, int, float, str):
        return _convert_scalar(value, origin, key, where)
    return value


def _dotted(prefix: str, name: Any) -> str:
    return f"{prefix}.{name}" if prefix else str(name)


def _check_keys(cls: type, raw: Mapping, fields: dict, where: Where, prefix: str) -> None:
    for name in raw:
        if name not in fields:
            key = _dotted(prefix, name)
            close = difflib.get_close_matches(str(name), list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{where(key)}: unknown key '{key}'{hint}; expected one of "
                              f"{', '.join(fields)}")
    for name, f in fields.items():
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING \
                and name not in raw:
            key = _dotted(prefix, name)
            raise ConfigError(f"{where(key)}: '{key}' is missing (required by {cls.__name__})")


def load(cls: type[T], raw: Any, where: Where, prefix: str = "",
         skip: Collection[str] = ()) -> T:
    """An instance of dataclass `cls` from the mapping `raw` (None: every default), every key
    and value checked. `prefix` dots nested keys; `skip` names fields a mapping may not set."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        what = f"'{prefix}'" if prefix else "the top level"
        raise ConfigError(f"{where(prefix)}: {what} must be a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in skip}
    _check_keys(cls, raw, fields, where, prefix)
    hints = typing.get_type_hints(cls)
    return cls(**{name: convert(value, hints[name], _dotted(prefix, name), where)
                  for name, value in raw.items()})


def check_fields(obj: Any, where: Where) -> None:
    """Check (and convert in place) every field of a dataclass instance, frozen or not: for
    `__post_init__`, so that an instance built directly is checked like a loaded one."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        object.__setattr__(obj, f.name, convert(getattr(obj, f.name), hints[f.name], f.name, where))
