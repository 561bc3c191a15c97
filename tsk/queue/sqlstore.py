"""The task store's queries (tsk/tasks/store.py's protocol), written once for both databases: SQLite in
the data dir (tsk/queue/db.py) and PostgreSQL for a fleet (tsk/queue/pg.py). Each gives a connection
whose `execute` takes `?` placeholders, a write transaction, and the few statements their dialects spell
differently; everything else is here. The schema is one list of migrations, applied by each in its own
way (PostgreSQL spells a few column types differently), so both are at the same version."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, ParamSpec, TypeVar

import msgspec

from tsk.errors import TskError, UsageError
from tsk.tasks.model import Attempt, PlanRecord, Task
from tsk.tasks.store import Conflict, ListedTask, Notices, ServerRecord, Transition

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
    # 4: a fleet: where a task was added and runs, what travels through the git remote, leases, servers
    """
    ALTER TABLE tasks ADD COLUMN origin TEXT;
    ALTER TABLE tasks ADD COLUMN host TEXT;
    ALTER TABLE tasks ADD COLUMN snapshot_ref TEXT;
    ALTER TABLE tasks ADD COLUMN result_ref TEXT;
    ALTER TABLE tasks ADD COLUMN lease_until REAL;
    ALTER TABLE tasks ADD COLUMN author TEXT;
    CREATE TABLE servers (
        id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, workers INTEGER NOT NULL,
        running INTEGER NOT NULL DEFAULT 0, started REAL NOT NULL, seen REAL NOT NULL, lease_until REAL NOT NULL
    );
    """,
)

LIST_ORDER = ("CASE status WHEN 'RUNNING' THEN 0 WHEN 'BLOCKED' THEN 1 WHEN 'QUEUED' THEN 2 WHEN 'WAITING' THEN 3 "
              "ELSE 4 END, created DESC, id DESC")
LIST_COLUMNS = ("id, name, type, status, agent, stack, project, repo, source_commit, from_branch, result_branch, "
                "created, started, finished, error, blocked, attempts, max_attempts, failure_class, cost_usd, turns, "
                "scope, plan, host")


class StoreError(TskError):
    """The task database cannot be read or written."""


# A DB-API connection whose `execute` takes `?` placeholders and returns a cursor of tuples: sqlite3's,
# or tsk/queue/pg.py's adapter over psycopg. Typed loosely: the two drivers' signatures differ in detail.
Connection = Any


_P = ParamSpec("_P")
_R = TypeVar("_R")


def guard(cls: type[SqlStore], errors: type[Exception] | tuple[type[Exception], ...]) -> None:
    """Every public method of `cls` (and of SqlStore) raises StoreError for the driver's `errors`."""

    def guarded(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(fn)
        def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return fn(*args, **kwargs)
            except errors as exc:
                raise StoreError(f"the task database failed: {type(exc).__name__}: {exc}") from exc
        return call

    for name, fn in [*vars(SqlStore).items(), *vars(cls).items()]:
        if not name.startswith("_") and callable(fn) and not isinstance(fn, type) and not name.isupper():
            setattr(cls, name, guarded(fn))


def marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


class SqlStore:
    """Every query of the task store. A subclass sets `conn`, `_write` and the dialect's statements."""

    conn: Connection
    # the dialect: a subclass says how its database spells these
    PARENT_ORDER = "rowid"  # the order parents were given in
    LOCK_ROW = ""  # what makes a read in a write transaction hold the row (PostgreSQL: FOR UPDATE)
    SKIP_LOCKED = ""  # what lets a claim pass rows another claim holds
    PARENTS_AGG = "group_concat(parent, ',')"

    def _write(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _notify(self, c: Connection, channel: str, payload: str = "") -> None:
        """Tell the store's listeners (PostgreSQL's NOTIFY, delivered at commit); SQLite has none."""

    def notices(self) -> Notices | None:
        return None

    def close(self) -> None:
        self.conn.close()

    # -- records --------------------------------------------------------------------------------------

    def add(self, task: Task, *, instructions: str, reason: str, owner: str | None = None) -> None:
        """Record a new task (in its current status) with its parents, and its first transition."""
        with self._write() as c:
            self._insert(c, task, instructions, reason, owner)

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
                self._insert(c, task, instructions, reason, None)

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
        found = self._select("WHERE id = ?", [task_id])
        return found[0] if found else None

    def _select(self, where: str, args: list[Any]) -> list[Task]:
        cur = self.conn.execute(f"SELECT * FROM tasks {where}", args)
        cols = [d[0] for d in cur.description]
        return [self._task(dict(zip(cols, r, strict=True))) for r in cur.fetchall()]

    def _task(self, row: dict[str, Any]) -> Task:
        fields = {k: row[k] for k in _FIELDS}
        for k, empty in _JSON.items():
            fields[k] = json.loads(fields[k] or empty)
        fields["network_isolation"] = bool(fields["network_isolation"])
        fields["parents"] = self.parents(row["id"])
        return msgspec.convert(fields, Task)

    def tasks(self, ids: Iterable[str] | None = None, statuses: Sequence[str] | None = None, *,
              plan: str | None = None) -> list[Task]:
        args: list[Any] = []
        conds = []
        if plan is not None:
            conds.append("plan = ?")
            args.append(plan)
        if ids is not None:
            wanted = list(ids)
            if not wanted:
                return []
            conds.append(f"id IN ({marks(wanted)})")
            args += wanted
        if statuses is not None:
            conds.append(f"status IN ({marks(statuses)})")
            args += list(statuses)
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        return self._select(where + " ORDER BY created, id", args)

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
        return tuple(r[0] for r in self.conn.execute(
            f"SELECT parent FROM parents WHERE child = ? ORDER BY {self.PARENT_ORDER}", (task_id,)))

    def links(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for child, parent in self.conn.execute(f"SELECT child, parent FROM parents ORDER BY {self.PARENT_ORDER}"):
            out.setdefault(child, []).append(parent)
        return {k: tuple(v) for k, v in out.items()}

    def statuses(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        if ids is None:
            return dict(self.conn.execute("SELECT id, status FROM tasks").fetchall())
        wanted = list(ids)
        if not wanted:
            return {}
        return dict(self.conn.execute(f"SELECT id, status FROM tasks WHERE id IN ({marks(wanted)})", wanted))

    def waiting(self) -> dict[str, str | None]:
        return dict(self.conn.execute("SELECT id, blocked FROM tasks WHERE status = 'WAITING'").fetchall())

    def count(self, statuses: Sequence[str]) -> int:
        sql = f"SELECT COUNT(*) FROM tasks WHERE status IN ({marks(statuses)})"
        return int(self.conn.execute(sql, list(statuses)).fetchone()[0])

    def ended_before(self, statuses: Sequence[str], before: float | None) -> list[str]:
        sql = f"SELECT id FROM tasks WHERE status IN ({marks(statuses)})"
        args: list[Any] = list(statuses)
        if before is not None:
            sql += " AND COALESCE(finished, created) < ?"
            args.append(before)
        return [r[0] for r in self.conn.execute(sql, args)]

    def listing(self) -> list[ListedTask]:
        now = time.time()
        sql = (f"SELECT {LIST_COLUMNS}, (SELECT {self.PARENTS_AGG} FROM "  # in the order given
               f"(SELECT parent, {self.PARENT_ORDER} AS o FROM parents WHERE child = tasks.id ORDER BY o) AS p) "
               f"FROM tasks ORDER BY {LIST_ORDER}")
        rows = self.conn.execute(sql).fetchall()
        return [ListedTask(id=tid, name=name, type=typ, status=status, agent=agent, stack=stack, project=project,
                           repo=repo, source_commit=source, from_branch=from_branch, branch=branch, created=created,
                           started=started, finished=finished,
                           duration=None if started is None else round((finished or now) - started, 2),
                           error=error, blocked=blocked, parents=parents.split(",") if parents else [],
                           attempts=attempts, max_attempts=most, failure_class=failure, cost_usd=cost, turns=turns,
                           scope=json.loads(scope or "[]"), plan=plan, host=host)
                for (tid, name, typ, status, agent, stack, project, repo, source, from_branch, branch, created,
                     started, finished, error, blocked, attempts, most, failure, cost, turns, scope, plan, host,
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
            row = c.execute(f"SELECT status FROM tasks WHERE id = ?{self.LOCK_ROW}", (task_id,)).fetchone()
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
            if to != "RUNNING":
                sets["lease_until"] = None
            c.execute(f"UPDATE tasks SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                      (*sets.values(), task_id))
            self._record(c, task_id, old, to, reason)
        return old

    def _record(self, c: Connection, task_id: str, old: str | None, to: str, reason: str) -> None:
        c.execute("INSERT INTO transitions (task, from_status, to_status, at, reason) VALUES (?, ?, ?, ?, ?)",
                  (task_id, old, to, time.time(), reason))
        self._notify(c, "wake")

    def claim(self, owner: str, reason: str = "claimed", *, host: str | None = None,
              lease_until: float | None = None) -> Task | None:
        """Atomically take the oldest QUEUED task for this owner whose agent is not held: QUEUED → RUNNING."""
        with self._write() as c:
            row = c.execute("SELECT id FROM tasks WHERE status = 'QUEUED' AND cancel_requested IS NULL "
                            "AND agent NOT IN (SELECT agent FROM agent_holds WHERE until > ?) "
                            f"ORDER BY created, id LIMIT 1{self.LOCK_ROW}{self.SKIP_LOCKED}",
                            (time.time(),)).fetchone()
            if row is None:
                return None
            c.execute("UPDATE tasks SET status = 'RUNNING', owner = ?, host = ?, lease_until = ? WHERE id = ?",
                      (owner, host, lease_until, row[0]))
            self._record(c, row[0], "QUEUED", "RUNNING", reason)
        return self.get(row[0])

    def add_attempt(self, attempt: Attempt) -> None:
        with self._write() as c:
            c.execute("INSERT INTO attempts (task, n, failure_class, data) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT (task, n) DO UPDATE SET failure_class = excluded.failure_class, "
                      "data = excluded.data",
                      (attempt.task, attempt.n, attempt.failure_class, msgspec.json.encode(attempt).decode()))

    def attempts(self, task_id: str) -> list[Attempt]:
        rows = self.conn.execute("SELECT data FROM attempts WHERE task = ? ORDER BY n", (task_id,))
        return [msgspec.json.decode(r[0], type=Attempt) for r in rows]

    def hold_agent(self, agent: str, until: float, reason: str) -> None:
        with self._write() as c:
            c.execute("INSERT INTO agent_holds (agent, until, reason) VALUES (?, ?, ?) ON CONFLICT (agent) "
                      "DO UPDATE SET until = CASE WHEN excluded.until > agent_holds.until THEN excluded.until "
                      "ELSE agent_holds.until END, reason = excluded.reason",
                      (agent, until, reason))

    def agent_holds(self, now: float) -> dict[str, tuple[float, str]]:
        rows = self.conn.execute("SELECT agent, until, reason FROM agent_holds WHERE until > ?", (now,))
        return {a: (u, r) for a, u, r in rows}

    def request_cancel(self, task_id: str, reason: str) -> None:
        with self._write() as c:
            c.execute("UPDATE tasks SET cancel_requested = ? WHERE id = ? AND cancel_requested IS NULL",
                      (reason, task_id))
            self._notify(c, "cancel", task_id)

    def cancel_requested(self, task_id: str) -> str | None:
        row = self.conn.execute("SELECT cancel_requested FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def owner(self, task_id: str) -> str | None:
        return self.ownership(task_id)[0]

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

    # -- ownership across hosts -------------------------------------------------------------------------

    def ownership(self, task_id: str) -> tuple[str | None, float | None]:
        row = self.conn.execute("SELECT owner, lease_until FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return (None, None) if row is None else (row[0], row[1])

    def renew(self, owner: str, until: float) -> int:
        with self._write() as c:
            cur = c.execute("UPDATE tasks SET lease_until = ? WHERE owner = ? AND status = 'RUNNING'", (until, owner))
            return int(cur.rowcount)

    def take_over(self, task_id: str, old_owner: str | None, new_owner: str, until: float) -> bool:
        with self._write() as c:
            cur = c.execute("UPDATE tasks SET owner = ?, lease_until = ? WHERE id = ? AND status = 'RUNNING' "
                            "AND COALESCE(owner, '') = ?", (new_owner, until, task_id, old_owner or ""))
            return int(cur.rowcount) == 1

    def heartbeat(self, server: ServerRecord) -> None:
        row = msgspec.structs.asdict(server)
        with self._write() as c:
            c.execute(f"INSERT INTO servers ({', '.join(row)}) VALUES ({marks(list(row))}) ON CONFLICT (id) DO UPDATE "
                      "SET workers = excluded.workers, running = excluded.running, seen = excluded.seen, "
                      "lease_until = excluded.lease_until", tuple(row.values()))

    def servers(self, now: float) -> list[ServerRecord]:
        cur = self.conn.execute("SELECT * FROM servers WHERE lease_until > ? ORDER BY host, started", (now,))
        cols = [d[0] for d in cur.description]
        return [msgspec.convert(dict(zip(cols, r, strict=True)), ServerRecord) for r in cur.fetchall()]

    def remove_server(self, server_id: str) -> None:
        with self._write() as c:
            c.execute("DELETE FROM servers WHERE id = ? OR lease_until < ?", (server_id, time.time() - 86400))

    # -- writing rows -----------------------------------------------------------------------------------

    def _insert(self, c: Connection, task: Task, instructions: str, reason: str, owner: str | None) -> None:
        missing = [p for p in task.parents
                   if c.execute("SELECT 1 FROM tasks WHERE id = ?", (p,)).fetchone() is None]
        if missing:
            raise UsageError(f"unknown parent task(s): {', '.join(missing)}", hint="see `tsk list`")
        insert_row(c, task, instructions, owner)
        self._record(c, task.id, None, task.status, reason)


def insert_row(c: Connection, task: Task, instructions: str, owner: str | None) -> None:
    """The task's row and its parent links."""
    row = _columns(task)
    row.update(instructions=instructions, owner=owner)
    c.execute(f"INSERT INTO tasks ({', '.join(row)}) VALUES ({marks(list(row))})", tuple(row.values()))
    c.executemany("INSERT INTO parents (child, parent) VALUES (?, ?)", [(task.id, p) for p in task.parents])


def _columns(task: Task) -> dict[str, Any]:
    row: dict[str, Any] = {k: getattr(task, k) for k in _FIELDS}
    for k in _JSON:
        row[k] = json.dumps(row[k], sort_keys=True)
    row["network_isolation"] = int(task.network_isolation)
    return row
