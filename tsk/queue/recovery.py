"""Reconciling the task database with the engine, by the `dev.tsk.task` labels on every container,
network and volume a task makes. Only tasks of this data dir's database are ever touched: other data
dirs (other users, other test runs) share the engine, and their ids are not in our database.

A task's owner is gone when its process is (on this host) or its lease ran out (anywhere else, as
tsk/tasks/owner.py says). Whoever recovers it takes it over first, in one conditional write, so of the
servers that see it at once exactly one recovers it."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

import msgspec

from tsk.errors import TskError
from tsk.files import remove_tree
from tsk.tasks import model
from tsk.tasks.owner import host_name, owner_alive, owner_host, owner_id
from tsk.tasks.store import Conflict, TaskStore

if TYPE_CHECKING:
    from tsk.context import Context
    from tsk.engine.ports import Engine

LABEL = "dev.tsk.task"


class RecoveryReport(msgspec.Struct, kw_only=True):
    failed: list[str] = []
    requeued: list[str] = []
    removed: list[str] = []  # engine objects removed, as kind:name


def stop_task(engine: Engine, task_id: str, timeout: int = 20) -> int:
    """Stop the task's running container(s); their executor then sees the end. Returns how many."""
    running = [c for c in engine.containers(f"{LABEL}={task_id}") if c.state == "running"]
    for c in running:
        engine.container_stop(c.id, timeout=timeout)
    return len(running)


def remove_task_objects(engine: Engine, task_id: str) -> list[str]:
    """Remove the task's containers and volumes. The proxy stays for the next task; its reaper stops it
    once no task container is left behind it."""
    gone: list[str] = []
    for c in engine.containers(f"{LABEL}={task_id}"):
        engine.container_remove(c.id)
        gone.append(f"container:{c.name}")
    for vol in engine.volumes(f"{LABEL}={task_id}"):
        engine.volume_remove(vol)
        gone.append(f"volume:{vol}")
    return gone


def _labelled_ids(engine: Engine) -> set[str]:
    ids = {c.labels.get(LABEL, "") for c in engine.containers(LABEL)}
    ids |= {v.removeprefix("tsk-task-") for v in engine.volumes(LABEL)}
    return ids - {""}


def recover(ctx: Context, store: TaskStore, *, owner: str | None = None, lease: float = 30.0,
            leftovers: bool = True) -> RecoveryReport:
    """Tasks left RUNNING by a process that is gone (a crashed server, a killed `tsk run`): requeued if
    their sandbox never started; otherwise their partial work is fetched when it can be and the attempt
    ends as `infra`, after which the remediation ladder decides (another attempt from that work, queued;
    or FAILED with the reason). A task run on another host has no work here to fetch: FAILED, unless its
    sandbox never started. Then, with `leftovers`, every engine object of a task of ours that is not
    running is removed: on this context's engine, and on the engine of each task recovered (each task
    runs on the engine it was made for). `owner` is who recovers (a server; else this process)."""
    from tsk.sandbox import ladder
    from tsk.sandbox.runner import fetch_work, record_end, tally
    from tsk.tasks.model import Attempt

    report = RecoveryReport()
    here = host_name(ctx.environ)
    me = owner or owner_id(here)
    engines: dict[str, Engine] = {}
    for task in store.tasks(statuses=("RUNNING",)):
        old, until = store.ownership(task.id)
        if old == me or owner_alive(old, lease_until=until, here=here):
            continue
        if not store.take_over(task.id, old, me, time.time() + lease):
            continue  # another server got there first
        name = model.engine_of(task)
        if name not in engines:
            engines[name] = ctx.on_engine(name).engine
        engine = engines[name]
        where = owner_host(old)
        elsewhere = where is not None and where != here
        pid = (old or "?").partition(":")[0]
        gone = (f"its server on {where} (pid {pid}) stopped renewing its lease" if elsewhere
                else f"its process (pid {pid}) died")
        tdir = model.task_dir(ctx.paths.data, task.id)
        if task.started is None:
            report.removed += remove_task_objects(engine, task.id)
            with contextlib.suppress(Conflict):
                store.transition(task.id, "QUEUED", f"requeued: {gone} before the sandbox started",
                                 allowed=("RUNNING",))
                report.requeued.append(task.id)
            continue
        stopped = stop_task(engine, task.id, timeout=5)
        why = f"{gone} while it ran; " + ("the sandbox was stopped" if stopped else
                                          f"its sandbox on {where} is out of reach from here" if elsewhere
                                          else "the sandbox was gone")
        if tdir.is_dir():
            with contextlib.suppress(TskError, OSError):
                fetch_work(task, tdir)  # partial work, if the git dir survived
        report.removed += remove_task_objects(engine, task.id)
        for sub in ("upper", "work", "git"):
            remove_tree(tdir / sub)
        attempts = store.attempts(task.id)
        died = Attempt(task=task.id, n=len(attempts) + 1, started=task.started, finished=time.time(),
                       failure_class="infra", reason=why, head=task.result_commit if task.result_branch else None)
        store.add_attempt(died)
        attempts.append(died)
        tally(task, attempts)
        step = ladder.next_step(attempts, task.max_attempts, retryable=tdir.is_dir())
        if step.action == "retry":  # its next attempt starts from the work fetched above
            with contextlib.suppress(Conflict):
                store.transition(task.id, "QUEUED", f"requeued for attempt {died.n + 1}: {why}", task=task,
                                 allowed=("RUNNING",))
                report.requeued.append(task.id)
            continue
        task.finished, task.status, task.error = time.time(), "FAILED", step.why
        record_end(store, task, tdir)
        report.failed.append(task.id)
    if leftovers:
        engines.setdefault(ctx.engine_name, ctx.engine)
        for engine in engines.values():
            report.removed += remove_leftovers(engine, store, here=here)
    return report


def remove_leftovers(engine: Engine, store: TaskStore, *, here: str | None = None) -> list[str]:
    """Engine objects of our tasks that are not running. Objects of ids not in our database are left
    alone: they cannot be told apart from another data dir's live tasks."""
    statuses = store.statuses()
    gone: list[str] = []
    for tid in sorted(_labelled_ids(engine)):
        status = statuses.get(tid)
        if status is None:
            continue
        if status == "RUNNING":
            old, until = store.ownership(tid)
            if owner_alive(old, lease_until=until, here=here):
                continue
        gone += remove_task_objects(engine, tid)
    return gone
