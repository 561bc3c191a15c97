"""A task's record. The truth is the task database (tsk/queue/db.py); a copy is kept as task.json in the
task dir, next to its instructions and output, for people and tools that look there."""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Literal

import msgspec

Status = Literal["QUEUED", "WAITING", "RUNNING", "COMPLETE", "FAILED", "CANCELLED"]


class Task(msgspec.Struct, kw_only=True):
    id: str
    name: str
    type: str
    agent: str
    stack: str
    project: str
    repo: str
    branch: str  # the result branch this task would create: tsk/<type>/<name>/<id>
    status: Status = "QUEUED"
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    source_commit: str | None = None
    from_branch: str | None = None
    result_branch: str | None = None  # set only when the branch was fetched into the user's repo
    result_commit: str | None = None  # what a child starts from: the fetched head, else the source commit
    commits: int = 0
    error: str | None = None
    summary: str | None = None
    network_isolation: bool = True
    timings: dict[str, float] = {}
    image: str | None = None
    config: dict[str, object] = {}
    parents: tuple[str, ...] = ()  # a child starts from its parents' results (their merge, for several)
    blocked: str | None = None  # why a waiting task cannot start yet
    retry_of: str | None = None


def new_id() -> str:
    """Sortable by creation time, unique without coordination: base-36 seconds + random hex."""
    return f"{_b36(int(time.time()))}{secrets.token_hex(3)}"


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def slug(text: str, limit: int = 40) -> str:
    """A branch-safe name from free text: the first words of a prompt, or a name the user gave."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (words[:limit].rstrip("-") or "task")


def task_dir(data_dir: Path, task_id: str) -> Path:
    return data_dir / "tasks" / task_id


def agent_log(directory: Path) -> Path:
    """The task's events as JSON lines (the raw output is agent.raw.log beside it)."""
    return directory / "output" / "agent.log"


def save(task: Task, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".task.json.{os.getpid()}.{threading.get_ident()}"
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(task), indent=2))
    tmp.rename(directory / "task.json")


def load(directory: Path) -> Task:
    return msgspec.json.decode((directory / "task.json").read_bytes(), type=Task)
