"""Who runs a task: this process as `pid:start-time` (the start time tells a live owner from a reused
pid). Only the host that wrote it can check it."""

from __future__ import annotations

import os
from pathlib import Path


def owner_id() -> str:
    pid = os.getpid()
    return f"{pid}:{_start_ticks(pid)}"


def owner_alive(owner: str | None) -> bool:
    if not owner:
        return False
    pid_s, _, ticks = owner.partition(":")
    try:
        pid = int(pid_s)
    except ValueError:
        return False
    return _start_ticks(pid) == ticks and ticks != ""


def _start_ticks(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: starttime, counted after the command name
