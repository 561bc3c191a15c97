"""The terminal's title while a command works: set with OSC 0 only when stdout is a terminal that
takes it, and given back after. The terminal keeps the title it had on its own title stack (XTWINOPS
22/23, what vim and less use), so what comes back is the user's title, not a guess at it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from typing import TextIO

from tsk.text import one_line

PUSH = "\x1b[22;0t"  # save the window and icon titles on the terminal's stack
POP = "\x1b[23;0t"  # and restore them


def _takes_titles(stream: TextIO, environ: Mapping[str, str]) -> bool:
    try:
        tty = stream.isatty()
    except (OSError, ValueError):
        return False
    return tty and environ.get("TERM", "") not in ("", "dumb", "unknown")


def _write(stream: TextIO, text: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # the terminal went away
        stream.write(text)
        stream.flush()


@contextlib.contextmanager
def terminal_title(title: str, environ: Mapping[str, str], stream: TextIO | None = None) -> Iterator[None]:
    out = stream if stream is not None else sys.stdout
    if not _takes_titles(out, environ):
        yield
        return
    _write(out, f"{PUSH}\x1b]0;{one_line(title)}\x07")
    try:
        yield
    finally:
        _write(out, POP)
