"""`tsk list` in one query: it must stay fast at 10,000 tasks as a whole process, so this module imports
nothing heavy (no engine, no rich) and renders plain text."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from tsk.queue.db import Store

_ORDER = ("CASE status WHEN 'RUNNING' THEN 0 WHEN 'QUEUED' THEN 1 WHEN 'WAITING' THEN 2 ELSE 3 END, "
          "created DESC, id DESC")
_SQL = ("SELECT id, name, type, status, agent, stack, project, repo, source_commit, from_branch, result_branch, "
        "created, started, finished, error, blocked, "
        "(SELECT group_concat(parent, ',') FROM parents WHERE child = tasks.id) FROM tasks ORDER BY " + _ORDER)


class ListedTask(msgspec.Struct, kw_only=True):
    id: str
    name: str
    type: str
    status: str
    agent: str
    stack: str
    project: str
    repo: str
    source_commit: str | None
    from_branch: str | None
    branch: str | None  # the result branch, once fetched
    created: float
    started: float | None
    finished: float | None
    duration: float | None
    error: str | None
    blocked: str | None
    parents: list[str]


class Listing(msgspec.Struct, kw_only=True):
    tasks: list[ListedTask]
    counts: dict[str, int]


def list_tasks(data_dir: Path) -> Listing:
    """Every task: active first (running, queued, waiting), then newest first."""
    store = Store(data_dir)
    try:
        rows = store.conn.execute(_SQL).fetchall()
    finally:
        store.close()
    now = time.time()
    tasks = []
    counts: dict[str, int] = {}
    for (tid, name, typ, status, agent, stack, project, repo, source, from_branch, branch, created, started,
         finished, error, blocked, parents) in rows:
        counts[status] = counts.get(status, 0) + 1
        tasks.append(ListedTask(
            id=tid, name=name, type=typ, status=status, agent=agent, stack=stack, project=project, repo=repo,
            source_commit=source, from_branch=from_branch, branch=branch, created=created, started=started,
            finished=finished, duration=None if started is None else round((finished or now) - started, 2),
            error=error, blocked=blocked, parents=parents.split(",") if parents else []))
    return Listing(tasks=tasks, counts=counts)
