"""Which task store a command uses: the one place it is chosen. SQLite in the data dir unless
TSK_DATABASE_URL or `[server] database` names a PostgreSQL database (DESIGN §10, tsk/config/fleet.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tsk.config.fleet import fleet

if TYPE_CHECKING:
    from tsk.context import Context
    from tsk.tasks.store import TaskStore


def open_store(ctx: Context) -> TaskStore:
    url = fleet(ctx).database
    if url:
        from tsk.queue.pg import PgStore

        return PgStore(url)
    from tsk.queue.db import SqliteStore

    return SqliteStore(ctx.paths.data)
