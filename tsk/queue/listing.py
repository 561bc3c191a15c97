"""`tsk list`: every task from one query of the store, and the count per status. It must stay fast at
10,000 tasks as a whole process, so this module imports nothing heavy (no engine, no rich)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import msgspec

from tsk.tasks.store import ENDED, ListedTask

if TYPE_CHECKING:
    from tsk.context import Context
    from tsk.tasks.store import TaskStore

class Listing(msgspec.Struct, kw_only=True):
    tasks: list[ListedTask]
    counts: dict[str, int]
    not_fetched: list[str] = []  # why results waiting on the git remote did not come back


def list_tasks(store: TaskStore, ctx: Context | None = None) -> Listing:
    """Every task: active first (running, queued, waiting), then newest first. With `ctx`, this host's
    results waiting on the git remote (`[server] remote`) are brought back first; only a task a server
    ran that ended without a branch is looked at, and git runs only for one that is due."""
    tasks = store.listing()
    problems: list[str] = []
    waiting = [t.id for t in tasks if t.status in ENDED and not t.branch and t.host] if ctx is not None else []
    if ctx is not None and waiting:
        from tsk.queue.transport import fetch_results

        fetched = fetch_results(ctx, store, waiting)
        branches = {f.id: f.branch for f in fetched if f.branch}
        for t in tasks:
            t.branch = branches.get(t.id, t.branch)
        problems = [f"{f.id}: {f.problem}" for f in fetched if f.problem]
    return Listing(tasks=tasks, counts=dict(Counter(t.status for t in tasks)), not_fetched=problems)
