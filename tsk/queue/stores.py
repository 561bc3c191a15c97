"""Which task store a command uses, and where a fleet's code travels: the one place either is chosen.

SQLite in the data dir unless TSK_DATABASE_URL or `[server] database` names a PostgreSQL database
(DESIGN §10); the git remote is `[server] remote`. The user's config file is read only when the
environment does not already say."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from tsk.context import Context
    from tsk.tasks.store import TaskStore


class Fleet(msgspec.Struct, frozen=True, kw_only=True):
    database: str | None = None  # a postgresql:// URL; None: the SQLite file in the data dir
    remote: str | None = None  # the git remote of snapshots and results; None: the user's repo, directly


def fleet(ctx: Context) -> Fleet:
    from tsk.config.load import load_user_file

    server = load_user_file(ctx.paths.config_file).server
    url = ctx.environ.get("TSK_DATABASE_URL") or (server.database if server else None)
    return Fleet(database=url or None, remote=(server.remote if server else None) or None)


def open_store(ctx: Context) -> TaskStore:
    url = fleet(ctx).database
    if url:
        from tsk.queue.pg import PgStore

        return PgStore(url)
    from tsk.queue.db import SqliteStore

    return SqliteStore(ctx.paths.data)
