"""Text that came from the sandbox, made safe to print: no control characters (an escape sequence can
retitle, recolour or rewrite the user's terminal, or hide what follows) and no bidirectional overrides
(which make text read other than it is)."""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls; the bidi embedding, override and isolate marks.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    return _UNSAFE.sub("", text)


def one_line(text: str) -> str:
    """Printable, and on one line: newlines and tabs become spaces."""
    return printable(text).replace("\n", " ").replace("\t", " ")
