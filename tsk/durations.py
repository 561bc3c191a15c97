"""Durations as people write them: `90s`, `20m`, `2h`, `7d`, `2w`, or a bare number of seconds."""

from __future__ import annotations

from tsk.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str | float) -> float:
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        t = str(text).strip().lower()
        try:
            seconds = float(t[:-1]) * _UNITS[t[-1]] if t and t[-1] in _UNITS else float(t)
        except ValueError:
            raise UsageError(f"cannot read `{text}` as a duration",
                             hint="use a number with a unit: 90s, 30m, 12h, 7d, 2w") from None
    if seconds < 0 or seconds != seconds:
        raise UsageError(f"`{text}` is not a duration: it must not be negative")
    return seconds


def show(seconds: float) -> str:
    """The shortest exact form: 7200 -> `2h`, 90 -> `90s`."""
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
