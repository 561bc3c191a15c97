"""What the dashboard needs from the queue: rows to show, a log to follow, two actions."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import msgspec


class TaskRow(msgspec.Struct, kw_only=True):
    id: str
    name: str
    type: str
    status: str
    agent: str
    created: float
    started: float | None = None
    finished: float | None = None
    branch: str | None = None
    error: str | None = None
    parents: tuple[str, ...] = ()
    attempts: int = 0
    max_attempts: int = 3
    why: str | None = None  # why it waits, is blocked, or failed (with its failure class)
    host: str | None = None  # the host whose server runs (or ran) it


class TaskSource(Protocol):
    def rows(self) -> list[TaskRow]: ...          # active first, then newest first
    def log_path(self, task_id: str) -> Path: ...  # the task's output/agent.log (JSON lines)
    def cancel(self, task_id: str) -> None: ...
    def delete(self, task_id: str) -> None: ...
