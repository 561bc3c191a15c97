"""The task store over SQLite (tsk/tasks/store.py's protocol): one file (WAL) in the data dir, the single
truth for tasks, their parents and every state change on one machine. Any process may open it (`tsk add`,
`tsk list`, `tsk cancel`, the server, a foreground `tsk run`); writes are short `BEGIN IMMEDIATE`
transactions, so concurrent writers queue on the busy timeout instead of failing. One connection per
thread. The only module that runs SQL against it (ruff bans sqlite3 elsewhere)."""

from __future__ import annotations

import functools
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import msgspec

from tsk.errors import TskError, UsageError
from tsk.queue import upstream_db
from tsk.tasks.model import Attempt, PlanRecord, Task
from tsk.tasks.store import Conflict, ListedTask, Transition

DB_NAME = "tasks.db"
notice = logging.getLogger("tsk.notice")  # one line the command prints to the user (tsk/cli/main.py)

# Columns that hold a Task field of the same name; JSON columns are encoded on the way in.
_JSON = {"timings": "{}", "config": "{}", "scope": "[]", "scope_after": "[]", "start_from": "[]",
         "changed_files": "null", "outside_scope": "[]"}
_FIELDS = tuple(f for f in Task.__struct_fields__ if f != "parents")

MIGRATIONS: tuple[str, ...] = (
    # 1: tasks, their parents, their transitions
    """
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, agent TEXT NOT NULL, stack TEXT NOT NULL,
        project TEXT NOT NULL, repo TEXT NOT NULL, branch TEXT NOT NULL, status TEXT NOT NULL,
        created REAL NOT NULL, started REAL, finished REAL, source_commit TEXT, from_branch TEXT,
        result_branch TEXT, result_commit TEXT, commits INTEGER NOT NULL DEFAULT 0, error TEXT, summary TEXT,
        blocked TEXT, retry_of TEXT, network_isolation INTEGER NOT NULL DEFAULT 1,
        timings TEXT NOT NULL DEFAULT '{}', image TEXT, config TEXT NOT NULL DEFAULT '{}',
        instructions TEXT NOT NULL DEFAULT '', cancel_requested TEXT, owner TEXT
    );
    CREATE INDEX tasks_status ON tasks (status);
    CREATE TABLE parents (
        child TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        parent TEXT NOT NULL,
        PRIMARY KEY (child, parent)
    );
    CREATE INDEX parents_parent ON parents (parent);
    CREATE TABLE transitions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, from_status TEXT, to_status TEXT NOT NULL,
        at REAL NOT NULL, reason TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX transitions_task ON transitions (task);
    """,
    # 2: unattended tasks: attempts, failure classes, cost, BLOCKED with its back-off, agents held back
    """
    ALTER TABLE tasks ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 3;
    ALTER TABLE tasks ADD COLUMN failure_class TEXT;
    ALTER TABLE tasks ADD COLUMN cost_usd REAL;
    ALTER TABLE tasks ADD COLUMN turns INTEGER;
    ALTER TABLE tasks ADD COLUMN blocked_until REAL;
    ALTER TABLE tasks ADD COLUMN credential_digest TEXT;
    CREATE TABLE attempts (
        task TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        n INTEGER NOT NULL,
        failure_class TEXT,
        data TEXT NOT NULL,
        PRIMARY KEY (task, n)
    );
    CREATE TABLE agent_holds (agent TEXT PRIMARY KEY, until REAL NOT NULL, reason TEXT NOT NULL);
    """,
    # 3: plans, write scopes, what a result changed, pull requests
    """
    ALTER TABLE tasks ADD COLUMN scope TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE tasks ADD COLUMN plan TEXT;
    ALTER TABLE tasks ADD COLUMN plan_task TEXT;
    ALTER TABLE tasks ADD COLUMN gate INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN issue INTEGER;
    ALTER TABLE tasks ADD COLUMN scope_after TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE tasks ADD COLUMN start_from TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE tasks ADD COLUMN baseline_commit TEXT;
    ALTER TABLE tasks ADD COLUMN changed_files TEXT NOT NULL DEFAULT 'null';
    ALTER TABLE tasks ADD COLUMN outside_scope TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE tasks ADD COLUMN pr_number INTEGER;
    ALTER TABLE tasks ADD COLUMN pr_url TEXT;
    ALTER TABLE tasks ADD COLUMN pr_state TEXT;
    CREATE INDEX tasks_plan ON tasks (plan);
    CREATE TABLE plans (name TEXT PRIMARY KEY, created REAL NOT NULL, data TEXT NOT NULL);
    """,
)


_LIST_ORDER = ("CASE status WHEN 'RUNNING' THEN 0 WHEN 'BLOCKED' THEN 1 WHEN 'QUEUED' THEN 2 WHEN 'WAITING' THEN 3 "
               "ELSE 4 END, "
               "created DESC, id DESC")
_LIST_SQL = ("SELECT id, name, type, status, agent, stack, project, repo, source_commit, from_branch, result_branch, "
             "created, started, finished, error, blocked, attempts, max_attempts, failure_class, cost_usd, turns, "
             "scope, plan, "
             "(SELECT group_concat(parent, ',') FROM "  # in the order given (3.40 has no ORDER BY in aggregates)
             "(SELECT parent FROM parents WHERE child = tasks.id ORDER BY rowid)) "
             "FROM tasks ORDER BY " + _LIST_ORDER)


class StoreError(TskError):
    """The task database cannot be read or written."""


def db_path(data_dir: Path) -> Path:
    return data_dir / DB_NAME


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


class SqliteStore:
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

    def close(self) -> None:
        self.conn.close()

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

    # -- records --------------------------------------------------------------------------------------

    def add(self, task: Task, *, instructions: str, reason: str, owner: str | None = None) -> None:
        """Record a new task (in its current status) with its parents, and its first transition."""
        with self._write() as c:
            _insert(c, task, instructions, reason, owner)

    def add_plan(self, plan: PlanRecord, tasks: Sequence[tuple[Task, str]], *, reason: str) -> None:
        """Record a plan and its tasks (each with its instructions), all or none."""
        with self._write() as c:
            if c.execute("SELECT 1 FROM plans WHERE name = ?", (plan.name,)).fetchone() is not None:
                raise UsageError(f"there is a plan named `{plan.name}` already",
                                 hint="give this one another name with --name, or see `tsk plan show "
                                      f"{plan.name}`")
            c.execute("INSERT INTO plans (name, created, data) VALUES (?, ?, ?)",
                      (plan.name, plan.created, msgspec.json.encode(plan).decode()))
            for task, instructions in tasks:
                _insert(c, task, instructions, reason, None)

    def save_plan(self, plan: PlanRecord) -> None:
        with self._write() as c:
            c.execute("UPDATE plans SET data = ? WHERE name = ?", (msgspec.json.encode(plan).decode(), plan.name))

    def plans(self) -> list[PlanRecord]:
        rows = self.conn.execute("SELECT data FROM plans ORDER BY created, name")
        return [msgspec.json.decode(r[0], type=PlanRecord) for r in rows]

    def plan(self, name: str) -> PlanRecord | None:
        row = self.conn.execute("SELECT data FROM plans WHERE name = ?", (name,)).fetchone()
        return None if row is None else msgspec.json.decode(row[0], type=PlanRecord)

    def get(self, task_id: str) -> Task | None:
        row = self.conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            return None
        cols = [d[0] for d in self.conn.execute("SELECT * FROM tasks LIMIT 0").description]
        return self._task(dict(zip(cols, row, strict=True)))

    def _task(self, row: dict[str, Any]) -> Task:
        fields = {k: row[k] for k in _FIELDS}
        for k, empty in _JSON.items():
            fields[k] = json.loads(fields[k] or empty)
        fields["network_isolation"] = bool(fields["network_isolation"])
        fields["parents"] = self.parents(row["id"])
        return msgspec.convert(fields, Task)

    def tasks(self, ids: Iterable[str] | None = None, statuses: Sequence[str] | None = None, *,
              plan: str | None = None) -> list[Task]:
        sql, args = "SELECT * FROM tasks", []
        conds = []
        if plan is not None:
            conds.append("plan = ?")
            args.append(plan)
        if ids is not None:
            wanted = list(ids)
            conds.append(f"id IN ({', '.join('?' * len(wanted))})")
            args += wanted
        if statuses is not None:
            conds.append(f"status IN ({', '.join('?' * len(statuses))})")
            args += list(statuses)
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        cur = self.conn.execute(sql + " ORDER BY created, id", args)
        cols = [d[0] for d in cur.description]
        return [self._task(dict(zip(cols, r, strict=True))) for r in cur.fetchall()]

    def resolve(self, ref: str) -> str:
        """A task id from a full id or a unique prefix of one."""
        hits = [r[0] for r in self.conn.execute("SELECT id FROM tasks WHERE id = ? OR id LIKE ? ESCAPE '\\'",
                                                (ref, ref.replace("_", "\\_").replace("%", "\\%") + "%"))]
        if ref in hits:
            return ref
        if len(hits) == 1:
            return str(hits[0])
        if not hits:
            raise UsageError(f"no task `{ref}`", hint="see `tsk list` for task ids")
        raise UsageError(f"`{ref}` names {len(hits)} tasks: {', '.join(sorted(hits)[:5])}",
                         hint="give more of the id")

    def instructions(self, task_id: str) -> str:
        row = self.conn.execute("SELECT instructions FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return str(row[0]) if row else ""

    def parents(self, task_id: str) -> tuple[str, ...]:
        return tuple(r[0] for r in self.conn.execute("SELECT parent FROM parents WHERE child = ? ORDER BY rowid",
                                                     (task_id,)))

    def links(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for child, parent in self.conn.execute("SELECT child, parent FROM parents ORDER BY rowid"):
            out.setdefault(child, []).append(parent)
        return {k: tuple(v) for k, v in out.items()}

    def statuses(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        if ids is None:
            return dict(self.conn.execute("SELECT id, status FROM tasks").fetchall())
        wanted = list(ids)
        return dict(self.conn.execute(f"SELECT id, status FROM tasks WHERE id IN ({_marks(wanted)})", wanted))

    def waiting(self) -> dict[str, str | None]:
        return dict(self.conn.execute("SELECT id, blocked FROM tasks WHERE status = 'WAITING'").fetchall())

    def count(self, statuses: Sequence[str]) -> int:
        sql = f"SELECT COUNT(*) FROM tasks WHERE status IN ({_marks(statuses)})"
        return int(self.conn.execute(sql, list(statuses)).fetchone()[0])

    def ended_before(self, statuses: Sequence[str], before: float | None) -> list[str]:
        sql = f"SELECT id FROM tasks WHERE status IN ({_marks(statuses)})"
        args: list[Any] = list(statuses)
        if before is not None:
            sql += " AND COALESCE(finished, created) < ?"
            args.append(before)
        return [r[0] for r in self.conn.execute(sql, args)]

    def listing(self) -> list[ListedTask]:
        now = time.time()
        rows = self.conn.execute(_LIST_SQL).fetchall()
        return [ListedTask(id=tid, name=name, type=typ, status=status, agent=agent, stack=stack, project=project,
                           repo=repo, source_commit=source, from_branch=from_branch, branch=branch, created=created,
                           started=started, finished=finished,
                           duration=None if started is None else round((finished or now) - started, 2),
                           error=error, blocked=blocked, parents=parents.split(",") if parents else [],
                           attempts=attempts, max_attempts=most, failure_class=failure, cost_usd=cost, turns=turns,
                           scope=json.loads(scope or "[]"), plan=plan)
                for (tid, name, typ, status, agent, stack, project, repo, source, from_branch, branch, created,
                     started, finished, error, blocked, attempts, most, failure, cost, turns, scope, plan,
                     parents) in rows]

    def relink(self, child: str, old: str, new: str) -> None:
        with self._write() as c:
            c.execute("UPDATE parents SET parent = ? WHERE child = ? AND parent = ?", (new, child, old))

    def save(self, task: Task) -> None:
        """Write the task's fields (not its status: that changes only through `transition`)."""
        row = _columns(task)
        row.pop("status")
        row.pop("id")
        with self._write() as c:
            c.execute(f"UPDATE tasks SET {', '.join(f'{k} = ?' for k in row)} WHERE id = ?",
                      (*row.values(), task.id))

    def transition(self, task_id: str, to: str, reason: str, *, allowed: Sequence[str] | None = None,
                   task: Task | None = None, owner: str | None = None) -> str:
        """The one way a task's status changes: checks where it is, moves it, records the move (time,
        reason). With `task`, its other fields are written in the same transaction. Returns the old status;
        raises Conflict when the task is gone or not in one of `allowed`."""
        with self._write() as c:
            row = c.execute("SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None or (allowed is not None and row[0] not in allowed):
                raise Conflict(f"task {task_id} is {row[0] if row else 'gone'}")
            old = str(row[0])
            sets: dict[str, Any] = {"status": to}
            if task is not None:
                task.status = to  # type: ignore[assignment]
                sets = _columns(task)
                sets.pop("id")
            if owner is not None:
                sets["owner"] = owner
            if to == "QUEUED":
                sets["cancel_requested"] = None
            c.execute(f"UPDATE tasks SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                      (*sets.values(), task_id))
            c.execute("INSERT INTO transitions (task, from_status, to_status, at, reason) VALUES (?, ?, ?, ?, ?)",
                      (task_id, old, to, time.time(), reason))
        return old

    def claim(self, owner: str, reason: str = "claimed") -> Task | None:
        """Atomically take the oldest QUEUED task for this process whose agent is not held: QUEUED → RUNNING."""
        with self._write() as c:
            row = c.execute("SELECT id FROM tasks WHERE status = 'QUEUED' AND cancel_requested IS NULL "
                            "AND agent NOT IN (SELECT agent FROM agent_holds WHERE until > ?) "
                            "ORDER BY created, id LIMIT 1", (time.time(),)).fetchone()
            if row is None:
                return None
            c.execute("UPDATE tasks SET status = 'RUNNING', owner = ? WHERE id = ?", (owner, row[0]))
            c.execute("INSERT INTO transitions (task, from_status, to_status, at, reason) "
                      "VALUES (?, 'QUEUED', 'RUNNING', ?, ?)", (row[0], time.time(), reason))
        return self.get(row[0])

    def add_attempt(self, attempt: Attempt) -> None:
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO attempts (task, n, failure_class, data) VALUES (?, ?, ?, ?)",
                      (attempt.task, attempt.n, attempt.failure_class, msgspec.json.encode(attempt).decode()))

    def attempts(self, task_id: str) -> list[Attempt]:
        rows = self.conn.execute("SELECT data FROM attempts WHERE task = ? ORDER BY n", (task_id,))
        return [msgspec.json.decode(r[0], type=Attempt) for r in rows]

    def hold_agent(self, agent: str, until: float, reason: str) -> None:
        with self._write() as c:
            c.execute("INSERT INTO agent_holds (agent, until, reason) VALUES (?, ?, ?) ON CONFLICT (agent) "
                      "DO UPDATE SET until = MAX(until, excluded.until), reason = excluded.reason",
                      (agent, until, reason))

    def agent_holds(self, now: float) -> dict[str, tuple[float, str]]:
        rows = self.conn.execute("SELECT agent, until, reason FROM agent_holds WHERE until > ?", (now,))
        return {a: (u, r) for a, u, r in rows}

    def request_cancel(self, task_id: str, reason: str) -> None:
        with self._write() as c:
            c.execute("UPDATE tasks SET cancel_requested = ? WHERE id = ? AND cancel_requested IS NULL",
                      (reason, task_id))

    def cancel_requested(self, task_id: str) -> str | None:
        row = self.conn.execute("SELECT cancel_requested FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def owner(self, task_id: str) -> str | None:
        row = self.conn.execute("SELECT owner FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def set_blocked(self, task_id: str, reason: str | None) -> None:
        with self._write() as c:
            c.execute("UPDATE tasks SET blocked = ? WHERE id = ?", (reason, task_id))

    def delete(self, task_id: str) -> None:
        with self._write() as c:
            c.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
            c.execute("DELETE FROM transitions WHERE task = ?", (task_id,))

    def transitions(self, task_id: str | None = None) -> list[Transition]:
        where, args = ("WHERE tr.task = ?", (task_id,)) if task_id else ("", ())
        return self._transitions(where, args)

    def transitions_since(self, seq: int) -> list[Transition]:
        return self._transitions("WHERE tr.seq > ?", (seq,))

    def _transitions(self, where: str, args: tuple[object, ...]) -> list[Transition]:
        sql = ("SELECT tr.seq, tr.task, COALESCE(t.name, ''), tr.from_status, tr.to_status, tr.at, tr.reason "
               f"FROM transitions tr LEFT JOIN tasks t ON t.id = tr.task {where} ORDER BY tr.seq")
        return [Transition(seq=s, task=tid, name=name, from_status=old, to_status=new, at=at, reason=reason)
                for s, tid, name, old, new, at, reason in self.conn.execute(sql, args)]

    def last_seq(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM transitions").fetchone()[0])


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guarded(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(fn)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreError(f"the task database failed: {type(exc).__name__}: {exc}") from exc
    return call


for _name, _fn in list(vars(SqliteStore).items()):
    if not _name.startswith("_") and callable(_fn):
        setattr(SqliteStore, _name, _guarded(_fn))


def _insert(c: sqlite3.Connection, task: Task, instructions: str, reason: str, owner: str | None) -> None:
    missing = [p for p in task.parents if c.execute("SELECT 1 FROM tasks WHERE id = ?", (p,)).fetchone() is None]
    if missing:
        raise UsageError(f"unknown parent task(s): {', '.join(missing)}", hint="see `tsk list`")
    _insert_row(c, task, instructions, owner)
    c.execute("INSERT INTO transitions (task, from_status, to_status, at, reason) VALUES (?, NULL, ?, ?, ?)",
              (task.id, task.status, time.time(), reason))


def _insert_row(c: sqlite3.Connection, task: Task, instructions: str, owner: str | None) -> None:
    """The task's row and its parent links."""
    row = _columns(task)
    row.update(instructions=instructions, owner=owner)
    names = ", ".join(row)
    c.execute(f"INSERT INTO tasks ({names}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
    c.executemany("INSERT INTO parents (child, parent) VALUES (?, ?)", [(task.id, p) for p in task.parents])


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
    _insert_row(c, item.task, item.instructions, None)
    c.executemany("INSERT INTO transitions (task, from_status, to_status, at, reason) VALUES (?, ?, ?, ?, ?)",
                  [(item.task.id, old, new, at, upstream_db.REASON) for old, new, at in item.transitions])


def _columns(task: Task) -> dict[str, Any]:
    row: dict[str, Any] = {k: getattr(task, k) for k in _FIELDS}
    for k in _JSON:
        row[k] = json.dumps(row[k], sort_keys=True)
    row["network_isolation"] = int(task.network_isolation)
    return row
