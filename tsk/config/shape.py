"""Check a decoded TOML document against a schema Struct before converting it, so that every unknown
key, missing key and wrong type is reported with its dotted location. msgspec's own errors carry the
location only as text ("- at `$.defaults`"), which we would have to parse."""

from __future__ import annotations

import datetime
import difflib
import functools
import json
from typing import Any, NoReturn

import msgspec
import msgspec.inspect as mi

from tsk.config.location import Loc, at, in_table, split
from tsk.config.secrets import is_secret
from tsk.errors import ConfigError


def check_shape(data: dict[str, Any], target: type[msgspec.Struct], *, path: str | None) -> None:
    """Raise ConfigError at the first place where `data` does not fit `target`."""
    _check(data, _info(target), (), path)


@functools.cache
def _info(target: type[msgspec.Struct]) -> mi.Type:
    return mi.type_info(target)


def _check(value: object, t: mi.Type, loc: Loc, path: str | None) -> None:
    if isinstance(t, mi.UnionType):
        members = [m for m in t.types if not isinstance(m, mi.NoneType)]
        # Pick the member by the value's kind so that errors inside a list or table point at the
        # element that is wrong rather than at the whole value.
        for member in members:
            if _kind_fits(value, member):
                _check(value, member, loc, path)
                return
        _wrong_type(value, t, loc, path)
    elif isinstance(t, mi.StructType):
        if not isinstance(value, dict):
            _wrong_type(value, t, loc, path)
        _check_table(value, t, loc, path)
    elif isinstance(t, mi.DictType):
        if not isinstance(value, dict):
            _wrong_type(value, t, loc, path)
        for key, item in value.items():
            _check(item, t.value_type, (*loc, key), path)
    elif isinstance(t, mi.ListType | mi.VarTupleType):
        if not isinstance(value, list):
            _wrong_type(value, t, loc, path)
        for index, item in enumerate(value):
            _check(item, t.item_type, (*loc, index), path)
    elif not _kind_fits(value, t):
        _wrong_type(value, t, loc, path)


def _check_table(value: dict[str, Any], t: mi.StructType, loc: Loc, path: str | None) -> None:
    fields = {f.encode_name: f for f in t.fields}
    for key in value:
        if key not in fields:
            # A prefix catches what similarity misses: `base` for `base_image`.
            near = difflib.get_close_matches(key, list(fields), n=1) or [
                name for name in sorted(fields) if len(key) >= 3 and name.startswith(key)
            ][:1]
            suggestion = f"; did you mean `{near[0]}`?" if near else ""
            raise ConfigError(
                f"unknown key `{key}` {in_table(loc)}{suggestion}",
                path=path,
                hint=f"valid keys {in_table(loc)}: {', '.join(sorted(fields))}",
            )
    for name, field in fields.items():
        if field.required and name not in value:
            raise ConfigError(f"missing key `{name}` {in_table(loc)}", path=path)
    for key, item in value.items():
        _check(item, fields[key].type, (*loc, key), path)


def _kind_fits(value: object, t: mi.Type) -> bool:
    match t:
        case mi.StructType() | mi.DictType():
            return isinstance(value, dict)
        case mi.ListType() | mi.VarTupleType():
            return isinstance(value, list)
        case mi.StrType():
            return isinstance(value, str)
        case mi.BoolType():
            return isinstance(value, bool)
        case mi.IntType():
            return isinstance(value, int) and not isinstance(value, bool)
        case mi.FloatType():
            return isinstance(value, int | float) and not isinstance(value, bool)
        case mi.LiteralType():
            # Compare types too: True == 1 in Python, but not in a config file.
            return any(type(value) is type(v) and value == v for v in t.values)
    raise TypeError(f"config schema uses a type the checker does not know: {t!r}")


def _wrong_type(value: object, t: mi.Type, loc: Loc, path: str | None) -> NoReturn:
    expected = _expected(t)
    found = _found(value, reveal=not _is_secret(loc))
    raise ConfigError(f"{at(loc)} must be {expected}, got {found}", path=path)


def _is_secret(loc: Loc) -> bool:
    # Env values are where tokens live; never echo them, nor anything whose name says it is secret.
    _, key = split(loc)
    return "env" in loc or any(isinstance(p, str) and is_secret(p) for p in key)


def _expected(t: mi.Type) -> str:
    match t:
        case mi.UnionType():
            return " or ".join(_expected(m) for m in t.types if not isinstance(m, mi.NoneType))
        case mi.StrType():
            return "a string"
        case mi.BoolType():
            return "a boolean (true or false)"
        case mi.IntType():
            return "an integer"
        case mi.FloatType():
            return "a number"
        case mi.LiteralType():
            options = ", ".join(json.dumps(v) for v in t.values)
            return options if len(t.values) == 1 else f"one of {options}"
        case mi.ListType() | mi.VarTupleType():
            return f"a list of {_plural(t.item_type)}"
        case _:
            return "a table"


def _plural(t: mi.Type) -> str:
    match t:
        case mi.StrType():
            return "strings"
        case mi.IntType():
            return "integers"
        case mi.FloatType():
            return "numbers"
        case mi.BoolType():
            return "booleans"
        case _:
            return "tables"


def _found(value: object, *, reveal: bool) -> str:
    if isinstance(value, bool):
        kind, shown = "boolean", str(value).lower()
    elif isinstance(value, int):
        kind, shown = "integer", str(value)
    elif isinstance(value, float):
        kind, shown = "number", str(value)
    elif isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        kind, shown = "string", json.dumps(text, ensure_ascii=False)
    elif isinstance(value, list):
        return "a list"
    elif isinstance(value, dict):
        return "a table"
    elif isinstance(value, datetime.datetime):
        kind, shown = "date-time", value.isoformat()
    elif isinstance(value, datetime.date):
        kind, shown = "date", value.isoformat()
    elif isinstance(value, datetime.time):
        kind, shown = "time", value.isoformat()
    else:
        return type(value).__name__
    return f"{kind} {shown}" if reveal else kind
