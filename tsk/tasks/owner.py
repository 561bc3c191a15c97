"""Who runs a task: a process as `pid:start-time@host` (the start time tells a live owner from a reused
pid). The host that wrote it checks the pid; any other host trusts only the task's lease, which the
owning server renews while it runs the task (tsk/queue/server.py). A task without a lease (a foreground
`tsk run`) is judged by its own host alone."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path


def host_name(environ: Mapping[str, str] | None = None) -> str:
    """This host's name in a fleet: TSK_HOST, else the hostname."""
    env = os.environ if environ is None else environ
    return (env.get("TSK_HOST") or "").strip() or socket.gethostname()


def owner_id(host: str | None = None) -> str:
    pid = os.getpid()
    return f"{pid}:{_start_ticks(pid)}@{host or host_name()}"


def owner_host(owner: str | None) -> str | None:
    """The host part of an owner (None for one recorded before hosts were)."""
    if not owner or "@" not in owner:
        return None
    return owner.partition("@")[2]


def owner_alive(owner: str | None, *, lease_until: float | None = None, here: str | None = None,
                now: float | None = None) -> bool:
    """Whether the owner still runs the task: by its pid on its own host (`here`, this host's name), by
    its lease anywhere else."""
    if not owner:
        return False
    where = owner_host(owner)
    if where is not None and where != (here or host_name()):
        if lease_until is None:
            return True  # no lease: only its own host can tell
        import time

        return lease_until > (time.time() if now is None else now)
    pid_s, _, ticks = owner.partition("@")[0].partition(":")
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
