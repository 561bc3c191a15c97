"""One recipe file: a front matter block of `key: value` lines between `---` lines, then the
instructions. Parsed by hand: the front matter is too small to justify a YAML dependency."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from tsk.errors import ConfigError

Source = Literal["repo", "user", "built-in"]

# `-t generic`, the default type, is no recipe at all: the prompt is the whole instruction.
GENERIC = "generic"

# Whitespace inside the braces is forgiven: `{{ PROMPT }}` is an easy slip and means the same.
PLACEHOLDER = re.compile(r"\{\{\s*(PROMPT|DESCRIPTION)\s*\}\}")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class Recipe(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    source: Source
    path: str
    description: str
    body: str  # the instructions, front matter stripped
    meta: dict[str, str] = {}

    @property
    def needs_prompt(self) -> bool:
        return PLACEHOLDER.search(self.body) is not None


def parse_recipe(text: str, *, path: str = "") -> tuple[dict[str, str], str]:
    """Split a recipe into its front matter and its body. A file without front matter is all body."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return {}, text
    meta: dict[str, str] = {}
    for n, line in enumerate(lines[1:], start=2):
        stripped = line.strip()
        if stripped == "---":
            return meta, "".join(lines[n:]).lstrip("\r\n")
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition(":")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            raise ConfigError(f"line {n}: front matter lines must read `key: value`, got `{stripped}`",
                              path=path or None, hint="fix the line, or remove it")
        meta[key] = _unquote(value.strip())
    raise ConfigError("the front matter opened with `---` is never closed", path=path or None,
                      hint="end it with a line `---` before the instructions")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _fallback_description(body: str) -> str:
    # Templates written for upstream tsk may lack front matter; their first line still says what they do.
    for line in body.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= 72 else line[:71] + "…"
    return ""


def load_recipe(name: str, source: Source, path: str, text: str) -> Recipe:
    meta, body = parse_recipe(text, path=path)
    description = meta.get("description") or _fallback_description(body)
    return Recipe(name=name, source=source, path=path, description=description, body=body, meta=meta)
