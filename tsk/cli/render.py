"""Rendering helpers shared by commands: JSON for scripts, tables and progress for people."""

from __future__ import annotations

import sys
import time
from typing import Any

import msgspec


def emit_json(obj: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(obj), indent=2).decode() + "\n")


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def duration(seconds: float, *, tenths: bool = False) -> str:
    """`42s` (or `41.7s` with `tenths`), `3m07s`, `2h05m`: whole units, never `1m60s`."""
    if tenths and seconds < 59.95:
        return f"{max(seconds, 0.0):.1f}s"
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def ago(stamp: float, now: float | None = None) -> str:
    if not stamp:
        return "never"
    s = max(0.0, (now or time.time()) - stamp)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.0f}{unit} ago"
    return f"{s:.0f}s ago"


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)
