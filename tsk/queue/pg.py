"""The task store over PostgreSQL (psycopg 3), for a fleet: servers on several hosts share one database
(DESIGN §10). The queries are tsk/queue/sqlstore.py's, as for SQLite; what differs is here: claims pass
rows another claim holds (`FOR UPDATE SKIP LOCKED`), a read that decides a write locks its row, and
every change and cancel is a NOTIFY that other servers LISTEN for, so a cancel reaches the host that runs
the task and a new task wakes the idle servers without a poll. The schema is sqlite's migrations in
PostgreSQL's types, at the same version, kept in `tsk_schema` and migrated under an advisory lock.
The only module that talks to psycopg (ruff bans it elsewhere)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tsk.queue.sqlstore import MIGRATIONS, SqlStore, StoreError, guard

CHANNEL = "tsk_"  # tsk_wake: something changed; tsk_cancel: a cancel was asked (its payload: the task id)
_MIGRATE_LOCK = 0x74736B5F736368  # pg_advisory_xact_lock key: "tsk_sch"
# What SQLite spells otherwise: an auto-numbered key, 8-byte floats (REAL is 4 bytes here), and the
# parents' order (SQLite's rowid).
_TYPES = (("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"), (" REAL", " DOUBLE PRECISION"))
_AFTER = {1: "ALTER TABLE parents ADD COLUMN ord BIGSERIAL"}


def shown(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def _sql(sql: str, args: Sequence[Any]) -> str:
    return sql.replace("%", "%%").replace("?", "%s") if args else sql


class _Conn:
    """psycopg's connection with `?` placeholders, as the shared queries write them."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.raw.execute(_sql(sql, args), tuple(args) or None)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(r) for r in rows]
        if rows:
            with self.raw.cursor() as cur:
                cur.executemany(_sql(sql, rows[0]), rows)

    def close(self) -> None:
        self.raw.close()


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10, application_name="tsk")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"cannot connect to the task database {shown(url)}: {first}",
                         hint="check TSK_DATABASE_URL or `[server] database` in your config, and that "
                              "PostgreSQL is running and reachable from here") from None


class PgNotices:
    """LISTEN on a connection of its own: what other processes NOTIFY."""

    def __init__(self, url: str) -> None:
        self.conn = _connect(url)
        for name in ("wake", "cancel"):
            self.conn.execute(f"LISTEN {CHANNEL}{name}")

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        got = [(n.channel.removeprefix(CHANNEL), n.payload)
               for n in self.conn.notifies(timeout=timeout, stop_after=1)]
        return got

    def close(self) -> None:
        self.conn.close()


class PgStore(SqlStore):
    """The task database a fleet shares."""

    PARENT_ORDER = "ord"
    LOCK_ROW = " FOR UPDATE"
    SKIP_LOCKED = " SKIP LOCKED"
    PARENTS_AGG = "string_agg(parent, ',' ORDER BY o)"

    def __init__(self, url: str) -> None:
        self.url = url
        raw = _connect(url)
        self.conn = _Conn(raw)
        try:
            version = self._version()
            if version != len(MIGRATIONS):
                self._migrate()
        except BaseException:
            raw.close()
            raise

    def _version(self) -> int:
        try:
            row = self.conn.execute("SELECT version FROM tsk_schema").fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        except psycopg.Error as exc:
            raise StoreError(f"cannot read the task database {shown(self.url)}: {exc}") from exc
        return 0 if row is None else int(row[0])

    def _check(self, version: int) -> None:
        if version > len(MIGRATIONS):
            raise StoreError(f"the task database {shown(self.url)} has schema version {version}, made by a newer "
                             f"tsk; this one knows versions up to {len(MIGRATIONS)}",
                             hint="upgrade tsk on this host (every host of a fleet runs the same tsk)")

    def _migrate(self) -> None:
        """Bring the schema to this tsk's version, once, whichever server gets here first."""
        try:
            with self._write() as c:
                c.execute(f"SELECT pg_advisory_xact_lock({_MIGRATE_LOCK})")
                c.execute("CREATE TABLE IF NOT EXISTS tsk_schema (version INTEGER NOT NULL)")
                row = c.execute("SELECT version FROM tsk_schema").fetchone()
                version = 0 if row is None else int(row[0])
                self._check(version)
                for n, script in enumerate(MIGRATIONS[version:], start=version + 1):
                    for old, new in _TYPES:
                        script = script.replace(old, new)
                    for stmt in [*script.split(";"), _AFTER.get(n, "")]:
                        if stmt.strip():
                            c.execute(stmt)
                c.execute("DELETE FROM tsk_schema")
                c.execute("INSERT INTO tsk_schema (version) VALUES (?)", (len(MIGRATIONS),))
        except psycopg.Error as exc:
            raise StoreError(f"cannot create or migrate the task database {shown(self.url)}: {exc}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[_Conn]:
        with self.conn.raw.transaction():
            yield self.conn

    def _notify(self, c: _Conn, channel: str, payload: str = "") -> None:
        c.execute("SELECT pg_notify(?, ?)", (CHANNEL + channel, payload))

    def notices(self) -> PgNotices:
        return PgNotices(self.url)


guard(PgStore, psycopg.Error)
