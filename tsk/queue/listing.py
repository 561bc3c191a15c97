"""`tsk list`: every task from one query of the store, and the count per status. It must stay fast at
10,000 tasks as a whole process, so this module imports nothing heavy (no engine, no rich)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import msgspec

from tsk.tasks.store import ListedTask

if TYPE_CHECKING:
    from tsk.tasks.store import TaskStore


class Listing(msgspec.Struct, kw_only=True):
    tasks: list[ListedTask]
    counts: dict[str, int]


def list_tasks(store: TaskStore) -> Listing:
    """Every task: active first (running, queued, waiting), then newest first."""
    tasks = store.listing()
    return Listing(tasks=tasks, counts=dict(Counter(t.status for t in tasks)))
