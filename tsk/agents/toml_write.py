"""TOML out of what tomllib reads in, so a user's config file can be changed and written back with every
key kept, the ones tsk does not know included. Tables become [sections], lists of tables [[sections]],
everything else inline; comments and layout are not kept (tomllib drops them)."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

from tsk.agents.base import clean_text
from tsk.text import printable

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_string(value: str) -> str:
    """A TOML basic string: quotes and backslashes escaped, control characters (which TOML forbids raw) as \\u;
    undecodable bytes (lone surrogates) as U+FFFD."""
    escaped = (f"\\{c}" if c in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c
               for c in clean_text(value))
    return '"' + "".join(escaped) + '"'


def dumps(doc: Mapping[str, Any]) -> str:
    """The document as TOML text that tomllib reads back equal."""
    blocks: list[str] = []
    _table(doc, (), blocks, array=False)
    return "\n".join(blocks)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def _is_table(value: object) -> bool:
    return isinstance(value, Mapping)


def _is_table_array(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _table(table: Mapping[str, Any], path: tuple[str, ...], blocks: list[str], *, array: bool) -> None:
    """A table's own keys under its header, then its sub-tables. A header is left out only where nothing
    would be lost: the root, and a table that holds nothing but sub-tables."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in table.items() if not _is_table(v) and not _is_table_array(v)]
    subs = [(k, v) for k, v in table.items() if _is_table(v) or _is_table_array(v)]
    name = ".".join(_key(k) for k in path)
    if array:
        lines.insert(0, f"[[{name}]]")
    elif path and (lines or not subs):
        lines.insert(0, f"[{name}]")
    if lines:
        blocks.append("\n".join(lines) + "\n")
    for key, value in subs:
        if _is_table(value):
            _table(value, (*path, key), blocks, array=False)
        else:
            for item in value:
                _table(item, (*path, key), blocks, array=True)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for a {type(value).__name__}: {printable(repr(value))[:80]}")
