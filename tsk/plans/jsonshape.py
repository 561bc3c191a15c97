"""Checking a decoded JSON document by hand, collecting every problem with its JSON path
(`$.phases[1].tasks[0].dependsOn[2]`) instead of stopping at the first: a plan is read all or nothing,
and a person fixing a file wants the whole list at once."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from tsk.errors import ConfigError

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_SHOWN = 40  # problems listed in one error; the rest are counted


class Problem(Exception):
    """One thing wrong at one place; raised by a check, collected by Problems."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class PlanError(ConfigError):
    """A plan file cannot be used as it is: each problem names the file, the JSON path and what was expected."""

    def __init__(self, file: str, problems: list[Problem], *, hint: str | None = None) -> None:
        problems = sorted(problems, key=_in_file_order)
        lines = [f"{file}: {p.path}: {p.message}" for p in problems[:MAX_SHOWN]]
        if len(problems) > MAX_SHOWN:
            lines.append(f"{file}: ... and {len(problems) - MAX_SHOWN} more problems")
        super().__init__("\n".join(lines), hint=hint)
        self.path = file
        self.problems = tuple(problems)


def _in_file_order(p: Problem) -> list[tuple[int, str]]:
    """`$.phases[2]` before `$.phases[10]`: indexes compare as numbers."""
    return [(int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"[.\[\]]+", p.path) if part]


class Problems:
    def __init__(self) -> None:
        self.found: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.found.append(Problem(path, message))

    def __bool__(self) -> bool:
        return bool(self.found)


def child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _IDENT.fullmatch(key) else f"{path}[{json.dumps(key, ensure_ascii=False)}]"


class DuplicateKeys(dict[str, Any]):
    """A JSON object that named a key more than once (json keeps only the last): reported where it is."""

    duplicates: tuple[str, ...] = ()


def object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = DuplicateKeys(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dups: list[str] = []
        for key, _ in pairs:
            if key in seen and key not in dups:
                dups.append(key)
            seen.add(key)
        out.duplicates = tuple(dups)
    return out


def found(value: object) -> str:
    """What a value is, for "expected X, got Y"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"string {json.dumps(text, ensure_ascii=False)}"
    if isinstance(value, list):
        return "a list"
    return "an object"


def near(word: str, choices: list[str]) -> str | None:
    """The choice `word` was probably meant to be: the same letters in another case or separator style
    (`depends_on` for `dependsOn`), else the closest by spelling."""
    squash = word.replace("_", "").replace("-", "").lower()
    for c in choices:
        if c.replace("_", "").replace("-", "").lower() == squash:
            return c
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.7)
    return close[0] if close else None


def did_you_mean(word: str, choices: list[str]) -> str:
    guess = near(word, choices)
    return f"; did you mean {json.dumps(guess)}?" if guess else ""


Check = Callable[[object, str], Any]  # the value and its path → the value as the plan uses it, or raise Problem


def obj(value: object, path: str, problems: Problems, *, what: str, keys: Mapping[str, Check],
        required: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """The checked fields of a JSON object, by key; every problem goes to `problems`. A key whose value is
    null counts as absent. Keys mapped to `ignored` are accepted (another tool's bookkeeping) and dropped."""
    if not isinstance(value, dict):
        problems.add(path, f"expected {what} (an object), got {found(value)}")
        return None
    for dup in getattr(value, "duplicates", ()):
        problems.add(child(path, dup), "this key is given more than once in the object; keep one")
    names = list(keys)
    for key in value:
        if key not in keys:
            hint = did_you_mean(key, names) or f"; expected one of: {', '.join(names)}"
            problems.add(child(path, key), f"unknown key {json.dumps(key, ensure_ascii=False)} in {what}{hint}")
    for key in required:
        if value.get(key) is None:
            problems.add(path, f"{what} is missing the key {json.dumps(key)}")
    out: dict[str, Any] = {}
    for key, check in keys.items():
        item = value.get(key)
        if item is None or check is ignored:
            continue
        try:
            out[key] = check(item, child(path, key))
        except Problem as p:
            problems.found.append(p)
    return out


def ignored(value: object, path: str) -> None:
    return None


def text(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise Problem(path, f"expected a string, got {found(value)}")
    return value


def nonempty(value: object, path: str) -> str:
    s = text(value, path)
    if not s.strip():
        raise Problem(path, "expected a non-empty string")
    return s


def positive_int(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Problem(path, f"expected a positive integer (an issue number), got {found(value)}")
    if value <= 0:
        raise Problem(path, f"expected a positive integer (an issue number), got {value}")
    return value


def strings(value: object, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Problem(path, f"expected a list of strings, got {found(value)}")
    bad = [(i, v) for i, v in enumerate(value) if not isinstance(v, str) or not v.strip()]
    if bad:
        i, v = bad[0]
        raise Problem(child(path, i), f"expected a non-empty string, got {found(v)}")
    return tuple(value)


def command(value: object, path: str) -> str:
    """A shell command, or a list of them run in turn (joined with ` && `)."""
    if isinstance(value, str):
        if not value.strip():
            raise Problem(path, "expected a command (a non-empty string or a list of them)")
        return value
    if isinstance(value, list):
        cmds = strings(value, path)
        if not cmds:
            raise Problem(path, "expected a command (a non-empty string or a list of them), got an empty list")
        return " && ".join(cmds)
    raise Problem(path, f"expected a command (a string or a list of strings), got {found(value)}")
