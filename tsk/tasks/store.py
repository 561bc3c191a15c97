"""The task store: the one truth for tasks, their parents and every state change, as a protocol.

tsk/queue/db.py implements it over SQLite in the data dir, tsk/queue/pg.py over a PostgreSQL database a
fleet's servers share (both on tsk/queue/sqlstore.py's queries); the sandbox receives a store from its
caller and needs only `RunStore`, the part a running task writes. Nothing outside the store's
implementations runs a query: every question the queue asks has a method here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import msgspec

from tsk.tasks.model import Attempt, PlanRecord, Task

ACTIVE = ("QUEUED", "WAITING", "RUNNING", "BLOCKED")
ENDED = ("COMPLETE", "FAILED", "CANCELLED")


class Conflict(Exception):
    """A transition was refused because the task is no longer in a status it may leave that way."""


class Transition(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    task: str
    name: str  # the task's name ("" once the task is deleted)
    from_status: str | None
    to_status: str
    at: float
    reason: str


class ListedTask(msgspec.Struct, kw_only=True):
    """One row of `tsk list`: what a person or a script wants to see of a task, read in one query."""

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
    attempts: int
    max_attempts: int
    failure_class: str | None
    cost_usd: float | None
    turns: int | None
    scope: list[str] = []
    plan: str | None = None
    host: str | None = None  # the host whose server runs (or ran) it


class ServerRecord(msgspec.Struct, kw_only=True):
    """A live server, as it says of itself on every lease renewal (`tsk server status`)."""

    id: str  # its owner id: pid:start-time@host
    host: str
    pid: int
    workers: int  # how many tasks it runs at once
    running: int  # how many it runs now
    started: float
    seen: float  # its last renewal
    lease_until: float  # past this, it is taken for dead


class Notices(Protocol):
    """Wake-ups from the store (PostgreSQL's LISTEN): a task was added or changed, a cancel was asked."""

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        """(channel, payload) pairs that arrived within `timeout` seconds: `wake` or `cancel` (a task id)."""
        ...

    def close(self) -> None: ...


class RunStore(Protocol):
    """What a running task writes: its record, its end, and whether someone asked it to stop."""

    def add(self, task: Task, *, instructions: str, reason: str, owner: str | None = None) -> None:
        """Record a new task (in its current status) with its parents, and its first transition."""
        ...

    def save(self, task: Task) -> None:
        """Write the task's fields, not its status: that changes only through `transition`."""
        ...

    def cancel_requested(self, task_id: str) -> str | None: ...

    def add_attempt(self, attempt: Attempt) -> None:
        """Record an attempt (or record it again, finished: the same task and number replace it)."""
        ...

    def attempts(self, task_id: str) -> list[Attempt]:
        """Its attempts, first first."""
        ...

    def hold_agent(self, agent: str, until: float, reason: str) -> None:
        """No task of `agent` is claimed before `until` (its API said: not now)."""
        ...

    def transition(self, task_id: str, to: str, reason: str, *, allowed: Sequence[str] | None = None,
                   task: Task | None = None, owner: str | None = None) -> str:
        """The one way a status changes: check where it is, move it, record the move. With `task`, its
        other fields are written in the same transaction. Returns the old status; Conflict when the
        task is gone or not in one of `allowed`."""
        ...


class TaskStore(RunStore, Protocol):
    """The whole store, as the queue (add, list, cancel, retry, the server, recovery) uses it."""

    def close(self) -> None: ...

    # -- reading tasks ----------------------------------------------------------------------------
    def get(self, task_id: str) -> Task | None: ...

    def tasks(self, ids: Iterable[str] | None = None, statuses: Sequence[str] | None = None, *,
              plan: str | None = None) -> list[Task]:
        """Oldest first; with `plan`, only that plan's."""
        ...

    def resolve(self, ref: str) -> str:
        """A task id from a full id or a unique prefix of one; UsageError otherwise."""
        ...

    def instructions(self, task_id: str) -> str: ...

    def owner(self, task_id: str) -> str | None: ...

    def statuses(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        """id -> status, of every task or of these."""
        ...

    def waiting(self) -> dict[str, str | None]:
        """The WAITING tasks, each with why it waits (`blocked`)."""
        ...

    def count(self, statuses: Sequence[str]) -> int: ...

    def ended_before(self, statuses: Sequence[str], before: float | None) -> list[str]:
        """Ids of tasks in `statuses` that ended (or, never started, were made) before `before`."""
        ...

    def listing(self) -> list[ListedTask]:
        """Every task for `tsk list`: active first (running, queued, waiting), then newest first."""
        ...

    # -- the graph --------------------------------------------------------------------------------
    def parents(self, task_id: str) -> tuple[str, ...]: ...

    def links(self) -> dict[str, tuple[str, ...]]:
        """child -> its parents, for every task that has some."""
        ...

    def relink(self, child: str, old: str, new: str) -> None: ...

    # -- changing tasks ---------------------------------------------------------------------------
    def claim(self, owner: str, reason: str = "claimed", *, host: str | None = None,
              lease_until: float | None = None) -> Task | None:
        """Atomically take the oldest QUEUED task for `owner` whose agent is not held: QUEUED -> RUNNING.
        No two owners ever take the same task, whichever hosts they are on."""
        ...

    # -- ownership across hosts -------------------------------------------------------------------
    def ownership(self, task_id: str) -> tuple[str | None, float | None]:
        """Its owner and that owner's lease (None: no lease, judged by its own host)."""
        ...

    def renew(self, owner: str, until: float) -> int:
        """Extend the lease of every RUNNING task `owner` has; how many."""
        ...

    def take_over(self, task_id: str, old_owner: str | None, new_owner: str, until: float) -> bool:
        """Make `new_owner` the owner of a RUNNING task still owned by `old_owner`; False when another
        got there first (so a task left by a dead owner is recovered exactly once)."""
        ...

    def heartbeat(self, server: ServerRecord) -> None: ...

    def servers(self, now: float) -> list[ServerRecord]:
        """The servers whose lease lasts past `now`, by host."""
        ...

    def remove_server(self, server_id: str) -> None: ...

    def notices(self) -> Notices | None:
        """A feed of wake-ups and cancels from other processes, when the store has one (None: poll)."""
        ...

    def agent_holds(self, now: float) -> dict[str, tuple[float, str]]:
        """agent -> (until, why), for the holds that last past `now`."""
        ...

    def request_cancel(self, task_id: str, reason: str) -> None: ...

    def set_blocked(self, task_id: str, reason: str | None) -> None: ...

    def delete(self, task_id: str) -> None: ...

    # -- plans ------------------------------------------------------------------------------------
    def add_plan(self, plan: PlanRecord, tasks: Sequence[tuple[Task, str]], *, reason: str) -> None:
        """Record a plan and its tasks (each with its instructions), all or none; UsageError when the
        name is taken."""
        ...

    def save_plan(self, plan: PlanRecord) -> None: ...

    def plans(self) -> list[PlanRecord]:
        """Oldest first."""
        ...

    def plan(self, name: str) -> PlanRecord | None: ...

    # -- history ----------------------------------------------------------------------------------
    def transitions(self, task_id: str | None = None) -> list[Transition]: ...

    def transitions_since(self, seq: int) -> list[Transition]:
        """Every state change after `seq`, in order (the server shows them as they happen)."""
        ...

    def last_seq(self) -> int: ...
