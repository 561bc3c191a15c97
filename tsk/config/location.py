"""How a place in a config file is named in error messages: `memory_gb` in [project.myapp]."""

from __future__ import annotations

import json
import re

Loc = tuple[str | int, ...]

# The root of values given as flags rather than in a file.
COMMAND_LINE = "<command line>"

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dotted(loc: Loc) -> str:
    """TOML-style dotted key; keys that are not bare (e.g. project names with dots) are quoted so that
    the rendering is unambiguous."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
            out += f".{name}" if out else name
    return out


def split(loc: Loc) -> tuple[Loc, Loc]:
    """(table, key): the key is the last name plus any list indexes after it."""
    last = max((i for i, part in enumerate(loc) if isinstance(part, str)), default=0)
    return loc[:last], loc[last:]


def in_table(table: Loc) -> str:
    if table == (COMMAND_LINE,):
        return "on the command line"
    return f"in [{dotted(table)}]" if table else "at the top level"


def at(loc: Loc) -> str:
    """"`memory_gb` in [defaults]"."""
    table, key = split(loc)
    return f"`{dotted(key)}` {in_table(table)}"
