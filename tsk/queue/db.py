"""The task store over SQLite (tsk/tasks/store.py's protocol): one file (WAL) in the data dir, the single
truth for tasks, their parents and every state change on one machine (its queries are
tsk/queue/sqlstore.py's, shared with the PostgreSQL store). Any process may open it (`tsk add`,
`tsk list`, `tsk cancel`, the server, a foreground `tsk run`); writes are short `BEGIN IMMEDIATE`
transactions, so concurrent writers queue on the busy timeout instead of failing. One connection per
thread. The only module that talks to sqlite3 (ruff bans it elsewhere)."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tsk.queue import upstream_db
from tsk.queue.sqlstore import MIGRATIONS, SqlStore, StoreError, guard, insert_row

DB_NAME = "tasks.db"
notice = logging.getLogger("tsk.notice")  # one line the command prints to the user (tsk/cli/main.py)



def db_path(data_dir: Path) -> Path:
    return data_dir / DB_NAME


class SqliteStore(SqlStore):
    """The task database for one data dir."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(db_path(data_dir), timeout=60, isolation_level=None)
            self.conn.execute("PRAGMA busy_timeout = 60000")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(f"the task database {db_path(data_dir)} has schema version {version}, made by a newer "
                                 f"tsk; this one knows versions up to {len(MIGRATIONS)}",
                                 hint="upgrade tsk, or point TSK_DATA_HOME elsewhere")
            if version < len(MIGRATIONS):
                self._migrate(data_dir)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the task database {db_path(data_dir)}: {exc}") from exc

    def _migrate(self, data_dir: Path) -> None:
        # The copy is taken before the write lock (a backup cannot read through this connection's own
        # write transaction); under the lock the file is checked again, and a copy that another tsk made
        # needless by migrating first is removed (it is ours: made with O_EXCL).
        backup = _keep_copy(self.conn, data_dir) if self._upstream_rows() is not None else None
        with self._write() as c:
            version = c.execute("PRAGMA user_version").fetchone()[0]
            rows = self._upstream_rows() if version == 0 else None
            if rows is None and backup is not None:
                backup.unlink()
            if rows is not None:
                c.execute("DROP TABLE tasks")
            for n, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for stmt in script.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute(f"PRAGMA user_version = {n}")
            if rows is not None:
                for item in upstream_db.imported(rows):
                    _insert_imported(c, item)
        if rows is not None:
            notice.info("imported %d task(s) from upstream tsk's database %s; the original is kept as %s",
                        len(rows), db_path(data_dir), backup)

    def _upstream_rows(self) -> list[dict[str, Any]] | None:
        """The rows of upstream tsk's `tasks` table, when that is what this file holds (None otherwise)."""
        cur = self.conn.execute("PRAGMA table_info(tasks)")
        if not upstream_db.is_upstream({str(r[1]) for r in cur.fetchall()}):
            return None
        cur = self.conn.execute("SELECT * FROM tasks ORDER BY created_at, id")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the write lock from its start (no upgrade deadlocks)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

guard(SqliteStore, sqlite3.Error)


def _keep_copy(conn: sqlite3.Connection, data_dir: Path) -> Path:
    """A copy of the database as it is, beside it, under a name no earlier copy has."""
    base = data_dir / f"{DB_NAME}.upstream.bak"
    target, n = base, 1
    while target.exists() or target.is_symlink():
        target, n = base.with_name(f"{base.name}.{n}"), n + 1
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    copy = sqlite3.connect(target)
    try:
        conn.backup(copy)
    finally:
        copy.close()
    return target


def _insert_imported(c: sqlite3.Connection, item: upstream_db.Imported) -> None:
    insert_row(c, item.task, item.instructions, None)
    c.executemany("INSERT INTO transitions (task, from_status, to_status, at, reason) VALUES (?, ?, ?, ?, ?)",
                  [(item.task.id, old, new, at, upstream_db.REASON) for old, new, at in item.transitions])
