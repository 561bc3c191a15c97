"""Which task store a command uses. Today the SQLite file in the data dir, for every command alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tsk.context import Context
    from tsk.tasks.store import TaskStore


def open_store(ctx: Context) -> TaskStore:
    from tsk.queue.db import SqliteStore

    return SqliteStore(ctx.paths.data)
