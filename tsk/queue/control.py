"""The queue's core operations behind `tsk add`, `cancel`, `delete`, `clean` and `wait` (`retry` is
retry.py's). Each works without a server; only stopping a running task talks to the engine."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from tsk.errors import TskError, UsageError
from tsk.files import remove_tree
from tsk.plans.model import Gate
from tsk.plans.schedule import Node
from tsk.queue import scheduler
from tsk.queue.stores import open_store
from tsk.tasks import model
from tsk.tasks.model import Task
from tsk.tasks.owner import host_name, owner_alive, owner_host
from tsk.tasks.store import ACTIVE, ENDED, Conflict, TaskStore

if TYPE_CHECKING:
    from tsk.context import Context
    from tsk.sandbox.runner import RunEvents, RunRequest


class Quiet:
    """RunEvents that show nothing: adding a task prints only its id; a worker's task logs to agent.log."""

    def phase(self, name: str, seconds: float) -> None:
        pass

    def line(self, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def build_events(self) -> None:
        return None


class Outcome(msgspec.Struct, kw_only=True):
    id: str
    action: str  # what was done: "cancelled", "cancel requested", "deleted", "already COMPLETE", ...
    new_id: str | None = None  # retry: the new task
    note: str | None = None  # what else the user should know (a delete's refs left on the git remote)


def settle(store: TaskStore) -> list[scheduler.Change]:
    """Apply the scheduler's decisions for waiting tasks: start, fail or cancel with their parents, wait
    for a plan's gate or for a task whose write scope overlaps theirs. Once more after a task was let
    go, so what the others wait for says so."""
    changes = _settle_once(store)
    if any(ch.to == "QUEUED" for ch in changes):
        changes += _settle_once(store)
    return changes


def _settle_once(store: TaskStore) -> list[scheduler.Change]:
    blocked = store.waiting()
    if not blocked:
        return []
    tasks, plan_gates = _graph(store)
    changes = scheduler.settle(_nodes(tasks), blocked=blocked, after={t.id: t.scope_after for t in tasks},
                               plan_gates=plan_gates)
    by_id = {t.id: t for t in tasks}
    for ch in changes:
        if ch.to is None:
            task = by_id[ch.task]
            if task.scope_after != ch.scope_after:
                fresh = store.get(ch.task)
                if fresh is not None and fresh.status == "WAITING":
                    fresh.scope_after, fresh.blocked = ch.scope_after, ch.blocked
                    store.save(fresh)
                continue
            store.set_blocked(ch.task, ch.blocked)
            continue
        with contextlib.suppress(Conflict):
            got = store.get(ch.task)
            if got is None:
                continue
            got.blocked = None
            if ch.to == "QUEUED":
                got.scope_after, got.start_from = ch.scope_after, ch.start_from
                if ch.start_from:  # it builds on what it waited for: snapshotted from that when it starts
                    got.source_commit = None
            else:
                got.error, got.finished = ch.reason, time.time()
            store.transition(ch.task, ch.to, ch.reason, task=got, allowed=("WAITING",))
    return changes


def _graph(store: TaskStore) -> tuple[list[Task], dict[str, tuple[Gate, ...]]]:
    """The tasks the scheduler needs, in the order they were made: the active ones, the ended ones they
    name (parents, scope holders) and every task of their plans; and those plans' gates."""
    tasks = {t.id: t for t in store.tasks(statuses=ACTIVE)}
    plans = sorted({t.plan for t in tasks.values() if t.plan})
    for name in plans:
        tasks.update((t.id, t) for t in store.tasks(plan=name))
    named = {p for t in tasks.values() for p in (*t.parents, *t.scope_after)} - set(tasks)
    if named:
        tasks.update((t.id, t) for t in store.tasks(ids=named))
    gates: dict[str, tuple[Gate, ...]] = {}
    for name in plans:
        record = store.plan(name)
        if record is not None:
            gates[name] = tuple(msgspec.convert(g, Gate) for g in record.gates)
    return sorted(tasks.values(), key=lambda t: (t.created, t.id)), gates


def _nodes(tasks: list[Task]) -> list[Node]:
    """Scheduler nodes. A plan task retried is its newest task: an older one counts for no gate."""
    newest: dict[tuple[str | None, str | None], str] = {(t.plan, t.plan_task): t.id for t in tasks
                                                       if t.plan and t.plan_task}
    return [Node(id=t.id, status=t.status, parents=t.parents, scope=t.scope, gate=t.gate,
                 plan=t.plan if newest.get((t.plan, t.plan_task)) == t.id else None) for t in tasks]


def add(ctx: Context, req: RunRequest, *, agents: tuple[str, ...] = (), parents: tuple[str, ...] = (),
        ui: RunEvents | None = None) -> list[Task]:
    """Queue one task per agent (the same instructions for each); with parents, WAITING for them."""
    from tsk.sandbox.runner import create_task

    store = open_store(ctx)
    try:
        ids = tuple(dict.fromkeys(resolve_parent(store, p) for p in parents))
        links = store.links()
        made: list[Task] = []
        for agent in agents or (req.agent,):
            task = create_task(ctx, msgspec.structs.replace(req, agent=agent), ui or Quiet(), parents=ids)
            loop = scheduler.cycle(links, task.id, ids)
            if loop:
                remove_tree(model.task_dir(ctx.paths.data, task.id))
                raise UsageError("these parents would make a cycle: " + " → ".join(loop))
            store.add(task, instructions=req.instructions, reason="tsk add")
            made.append(task)
        settle(store)  # a parent that has already ended decides now
        return [store.get(t.id) or t for t in made]
    finally:
        store.close()


def resolve_parent(store: TaskStore, ref: str) -> str:
    try:
        return store.resolve(ref)
    except UsageError as exc:
        raise UsageError(f"unknown parent task `{ref}`: {exc.message}", hint="see `tsk list` for task ids") from None


def cancel(ctx: Context, refs: list[str], reason: str = "cancelled by tsk cancel") -> list[Outcome]:
    """Cancel queued or waiting tasks at once; for a running one, mark the request and stop its
    container: its executor brings the partial work back and records CANCELLED."""
    from tsk.queue.recovery import remove_task_objects, stop_task

    store = open_store(ctx)
    out: list[Outcome] = []
    try:
        for ref in refs:
            tid = store.resolve(ref)
            task = store.get(tid)
            assert task is not None
            if task.status in ("QUEUED", "WAITING", "BLOCKED"):
                task.error, task.finished, task.blocked = reason, time.time(), None
                try:
                    store.transition(tid, "CANCELLED", reason, task=task, allowed=("QUEUED", "WAITING", "BLOCKED"))
                    out.append(Outcome(id=tid, action="cancelled"))
                    continue
                except Conflict:
                    task = store.get(tid)
                    assert task is not None
            if task.status == "RUNNING":
                store.request_cancel(tid, reason)  # in a fleet, a notice the owning server acts on
                owner, until = store.ownership(tid)
                here = host_name(ctx.environ)
                where = owner_host(owner)
                if where is not None and where != here and owner_alive(owner, lease_until=until, here=here):
                    out.append(Outcome(id=tid, action=f"cancel requested; its server on {where} stops it"))
                    continue
                engine = ctx.on_engine(model.engine_of(task)).engine
                if owner_alive(owner, lease_until=until, here=here):
                    stop_task(engine, tid)
                    out.append(Outcome(id=tid, action="cancel requested; its sandbox was stopped"))
                else:  # nobody is running it: end it here
                    remove_task_objects(engine, tid)
                    task.error, task.finished = reason, time.time()
                    with contextlib.suppress(Conflict):
                        store.transition(tid, "CANCELLED", reason + " (its process was gone)", task=task,
                                         allowed=("RUNNING",))
                    out.append(Outcome(id=tid, action="cancelled"))
                continue
            out.append(Outcome(id=tid, action=f"already {task.status}"))
        settle(store)
        return out
    finally:
        store.close()


def wait_for(store: TaskStore, ids: list[str], *, timeout: float | None = None, poll: float = 0.2) -> list[Task]:
    """Block until every task has ended (or the timeout passes); return their records."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        found = store.statuses(ids)
        gone = [i for i in ids if i not in found]
        if gone:
            raise TskError(f"task(s) {', '.join(gone)} were deleted while waiting")
        if all(s in ENDED for s in found.values()) or (deadline is not None and time.monotonic() > deadline):
            break
        time.sleep(poll)
    order = {t: n for n, t in enumerate(ids)}
    return sorted(store.tasks(ids=ids), key=lambda t: order[t.id])


class WaitResult(msgspec.Struct, kw_only=True):
    id: str
    name: str
    status: str
    branch: str | None
    duration: float | None
    error: str | None
    log_tail: list[str]
    attempts: int = 0
    max_attempts: int = 3
    failure_class: str | None = None
    cost_usd: float | None = None
    turns: int | None = None
    not_fetched: str | None = None  # why its result is still only on the git remote ([server] remote)


def wait(ctx: Context, refs: list[str], *, timeout: float | None = None, tail: int = 5) -> list[WaitResult]:
    """`tsk wait`: their records once they have ended, with the results that ran through the git remote
    brought back into the repo as their branches (tsk/queue/transport.py)."""
    store = open_store(ctx)
    from tsk.queue.transport import bring_back_for

    try:
        ids = [store.resolve(r) for r in refs]
        tasks = wait_for(store, ids, timeout=timeout)
        tasks, problems = bring_back_for(ctx, store, tasks)
    finally:
        store.close()
    return [WaitResult(id=t.id, name=t.name, status=t.status, branch=t.result_branch, duration=duration(t),
                       error=t.error, log_tail=log_tail(ctx.paths.data, t.id, tail), attempts=t.attempts,
                       max_attempts=t.max_attempts, failure_class=t.failure_class, cost_usd=t.cost_usd, turns=t.turns,
                       not_fetched=problems.get(t.id))
            for t in tasks]


def duration(t: Task) -> float | None:
    if t.started is None:
        return None
    return round((t.finished or time.time()) - t.started, 2)


def log_tail(data: Path, task_id: str, n: int) -> list[str]:
    from tsk.sandbox.stream import log_tail as tail

    return tail(model.agent_log(model.task_dir(data, task_id)), n)


def delete(ctx: Context, refs: list[str], *, timeout: float = 120) -> list[Outcome]:
    """Remove tasks: a running one is cancelled and waited for first. Its record and task dir go; a
    branch it brought back stays in the repo."""
    store = open_store(ctx)
    out: list[Outcome] = []
    try:
        ids = [store.resolve(r) for r in refs]
        running = [i for i in ids if (t := store.get(i)) is not None and t.status == "RUNNING"]
        if running:
            cancel(ctx, running, reason="deleted by tsk delete")
            wait_for(store, running, timeout=timeout)
        from tsk.queue.transport import forget

        gone = store.tasks(ids=ids)  # their refs on the git remote go too
        for tid in ids:
            remove(ctx, store, tid)
        note = forget(ctx, gone)
        out += [Outcome(id=tid, action="deleted", note=note) for tid in ids]
        settle(store)
        return out
    finally:
        store.close()


def remove(ctx: Context, store: TaskStore, tid: str) -> None:
    from tsk.queue.recovery import remove_task_objects

    task = store.get(tid)
    if task is not None and task.status == "RUNNING":
        remove_task_objects(ctx.on_engine(model.engine_of(task)).engine, tid)
    store.delete(tid)
    remove_tree(model.task_dir(ctx.paths.data, tid))


def clean(ctx: Context, *, statuses: tuple[str, ...] = ("COMPLETE",), older_than: float | None = None) -> list[str]:
    """Remove ended tasks (by default the completed ones) and their dirs; keep any that a pending task
    still needs as a parent."""
    store = open_store(ctx)
    try:
        links = store.links()
        status = store.statuses()
        needed = {p for c, ps in links.items() if status.get(c) in ACTIVE for p in ps}
        before = None if older_than is None else time.time() - older_than
        ended = [tid for tid in store.ended_before(statuses, before) if tid not in needed]
        # a result still only on the git remote stays until its adding host has brought it back
        tasks = [t for t in store.tasks(ids=ended) if not (t.result_ref and not t.result_branch)]
        doomed = [t.id for t in tasks]
        for tid in doomed:
            store.delete(tid)
            remove_tree(model.task_dir(ctx.paths.data, tid))
        from tsk.queue.transport import forget

        forget(ctx, tasks)  # best effort: a remote out of reach keeps the refs; the next clean does not retry
        prune_checkouts(ctx, store, older_than=older_than if older_than is not None else 86400.0)
        return doomed
    finally:
        store.close()


def prune_checkouts(ctx: Context, store: TaskStore, *, older_than: float) -> None:
    """Shared checkouts unused for a while go too, never one under a task that has not finished."""
    from tsk.snapshot.checkout import prune_checkouts as prune

    keep: set[str] = set()
    for tid in (tid for tid, status in store.statuses().items() if status in ACTIVE):
        snap = model.task_dir(ctx.paths.data, tid) / "snapshot.json"
        with contextlib.suppress(OSError, ValueError):
            keep.add(str(msgspec.json.decode(snap.read_bytes()).get("checkout_tree", "")))
    prune(ctx.paths.data, keep=keep, older_than=older_than)
