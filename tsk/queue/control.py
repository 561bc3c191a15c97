"""The queue's core operations behind `tsk add`, `cancel`, `retry`, `delete`, `clean` and `wait`. Each
works without a server; only stopping a running task talks to the engine."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import msgspec

from tsk.errors import TskError, UsageError
from tsk.files import remove_tree
from tsk.queue import scheduler
from tsk.queue.stores import open_store
from tsk.tasks import model
from tsk.tasks.model import Task
from tsk.tasks.owner import owner_alive
from tsk.tasks.store import ACTIVE, ENDED, Conflict, TaskStore

if TYPE_CHECKING:
    from tsk.config.schema import ResolvedConfig
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


def settle(store: TaskStore) -> list[scheduler.Change]:
    """Apply the scheduler's decisions for waiting tasks (start, fail or cancel with their parents)."""
    blocked = store.waiting()
    if not blocked:
        return []
    changes = scheduler.plan(store.statuses(), store.links(), blocked)
    for ch in changes:
        if ch.to is None:
            store.set_blocked(ch.task, ch.blocked)
            continue
        with contextlib.suppress(Conflict):
            task = store.get(ch.task)
            if task is None:
                continue
            task.blocked = None
            if ch.to != "QUEUED":
                task.error, task.finished = ch.reason, time.time()
            store.transition(ch.task, ch.to, ch.reason, task=task, allowed=("WAITING",))
    return changes


def add(ctx: Context, req: RunRequest, *, agents: tuple[str, ...] = (), parents: tuple[str, ...] = (),
        ui: RunEvents | None = None) -> list[Task]:
    """Queue one task per agent (the same instructions for each); with parents, WAITING for them."""
    from tsk.sandbox.runner import create_task

    store = open_store(ctx)
    try:
        ids = tuple(dict.fromkeys(_parent(store, p) for p in parents))
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


def _parent(store: TaskStore, ref: str) -> str:
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
            if task.status in ("QUEUED", "WAITING"):
                task.error, task.finished = reason, time.time()
                try:
                    store.transition(tid, "CANCELLED", reason, task=task, allowed=("QUEUED", "WAITING"))
                    out.append(Outcome(id=tid, action="cancelled"))
                    continue
                except Conflict:
                    task = store.get(tid)
                    assert task is not None
            if task.status == "RUNNING":
                store.request_cancel(tid, reason)
                engine = ctx.on_engine(model.engine_of(task)).engine
                if owner_alive(store.owner(tid)):
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


def wait(ctx: Context, refs: list[str], *, timeout: float | None = None, tail: int = 5) -> list[WaitResult]:
    store = open_store(ctx)
    try:
        ids = [store.resolve(r) for r in refs]
        tasks = wait_for(store, ids, timeout=timeout)
    finally:
        store.close()
    return [WaitResult(id=t.id, name=t.name, status=t.status, branch=t.result_branch, duration=duration(t),
                       error=t.error, log_tail=log_tail(ctx.paths.data, t.id, tail)) for t in tasks]


def duration(t: Task) -> float | None:
    if t.started is None:
        return None
    return round((t.finished or time.time()) - t.started, 2)


def log_tail(data: Any, task_id: str, n: int) -> list[str]:
    from tsk.agents.events import decode_event, render

    log = model.agent_log(model.task_dir(data, task_id))
    if not log.exists():
        return []
    lines = log.read_bytes().splitlines()[-n:]
    out = []
    for line in lines:
        try:
            out.append(render(decode_event(line)))
        except Exception:  # a torn last line while the task writes: show it raw
            out.append(line.decode(errors="replace"))
    return out


def retry(ctx: Context, refs: list[str], *, children: bool = True) -> list[Outcome]:
    """A new task from each old one's instructions and config (a fresh snapshot of the repo). Unless
    `children` is False, its descendants follow: a waiting one is re-linked to the new task, an ended one
    is recreated with its parents mapped to the new tasks."""
    from tsk.sandbox.runner import RunRequest, create_task

    store = open_store(ctx)
    out: list[Outcome] = []
    try:
        links = store.links()
        for ref in refs:
            tid = store.resolve(ref)
            old = store.get(tid)
            assert old is not None
            if old.status in ACTIVE:
                raise UsageError(f"task {tid} is {old.status}; only a task that has ended can be retried",
                                 hint=f"cancel it first: tsk cancel {tid}")
            mapping: dict[str, str] = {}
            todo = [tid] + (scheduler.descendants(links, tid) if children else [])
            for oid in todo:
                o = store.get(oid)
                if o is None:
                    continue
                if oid != tid and o.status in ("WAITING", "QUEUED"):
                    for p in o.parents:
                        if p in mapping:
                            store.relink(oid, p, mapping[p])
                    continue
                if oid != tid and o.status == "RUNNING":
                    continue
                parents = tuple(mapping.get(p, p) for p in o.parents)
                req = RunRequest(instructions=store.instructions(oid), type=o.type, name=o.name, repo=o.repo,
                                 agent=o.agent, from_branch=o.from_branch, network_isolation=o.network_isolation)
                new = create_task(ctx, req, Quiet(), parents=parents, cfg=_with_secrets(ctx, o))
                new.retry_of = oid
                store.add(new, instructions=req.instructions, reason=f"retry of {oid}")
                mapping[oid] = new.id
                out.append(Outcome(id=oid, action="retried", new_id=new.id))
        settle(store)
        return out
    finally:
        store.close()


def _with_secrets(ctx: Context, old: Task) -> ResolvedConfig:
    """A retry runs with the old task's config; the secret env values its record hides come from the
    old task dir while it waits, else from the user's config as it is now (they were never stored)."""
    from pathlib import Path

    from tsk.sandbox import secrets
    from tsk.sandbox.runner import task_config

    cfg = task_config(old)
    values = secrets.load(model.task_dir(ctx.paths.data, old.id))
    cfg, missing = secrets.fill(cfg, values)
    if missing:
        with contextlib.suppress(TskError):  # the repo or its config may be gone: the run says what is unset
            now = {v.name: v.value for v in ctx.config(Path(old.repo), project=old.project).env}
            cfg, _ = secrets.fill(cfg, now)
    return cfg


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
        for tid in ids:
            remove(ctx, store, tid)
            out.append(Outcome(id=tid, action="deleted"))
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
        doomed = [tid for tid in store.ended_before(statuses, before) if tid not in needed]
        for tid in doomed:
            store.delete(tid)
            remove_tree(model.task_dir(ctx.paths.data, tid))
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
