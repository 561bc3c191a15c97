"""The server: claims ready tasks and runs up to N at once, each in a worker thread of this process.

Threads, not a process per task: a task spends its time waiting on the engine and git, not on the
GIL, and a thread starts in microseconds where a new tsk process costs ~0.3 s of imports (a real share
of a short task). Each worker has its own Context, hence its own engine client and database connection.
The main loop wakes when a worker ends (its slot is free and children may be ready), when the store
says something changed (PostgreSQL's NOTIFY), and otherwise polls it every `poll` seconds.

In a fleet (DESIGN §10) several servers, each on its own host and engine, share one PostgreSQL store.
A server's tasks are its by lease: a keeper thread renews them (and says the server is alive, for
`tsk server status`) every third of `lease`; a server whose lease ran out is taken for dead, and any
other server recovers its tasks, once. A cancel asked anywhere reaches the owning server as a notice,
and that server stops the sandbox on its engine.

One server per data dir: an exclusive lock on `<data>/server.lock` (released by the OS if the server
dies) and its pid in `<data>/server.pid` for `tsk server stop`."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import msgspec

from tsk.errors import TskError
from tsk.holds import hold
from tsk.notify import task_ended
from tsk.queue import control
from tsk.queue.changes import record_changes
from tsk.queue.stores import open_store
from tsk.tasks import model
from tsk.tasks.model import Task
from tsk.tasks.owner import host_name, owner_id
from tsk.tasks.store import ENDED, Conflict, Notices, ServerRecord, TaskStore

if TYPE_CHECKING:
    from tsk.context import Context
    from tsk.queue.view import TaskRow


class ServerRunning(TskError):
    """Another server holds this data dir."""


class ServerOptions(msgspec.Struct, frozen=True, kw_only=True):
    workers: int = 1
    quit_when_idle: bool = False
    poll: float = 0.15
    clean_every: float = 600.0
    budget_usd: float | None = None  # stop claiming once the tasks this server ran have cost this much
    credentials_every: float = 5.0  # how often a task blocked on refused credentials looks whether they changed
    sound: bool = False  # a task's end notification plays a sound
    lease: float = 30.0  # seconds a claim lasts unrenewed; past it, another server recovers the task


class ServerEvents(Protocol):
    def transition(self, task: str, name: str, old: str | None, new: str, reason: str) -> None: ...
    def note(self, text: str) -> None: ...


class ServerReport(msgspec.Struct, kw_only=True):
    ran: int = 0
    spent_usd: float = 0.0  # what the attempts this server ran have cost


def lock_path(data: Path) -> Path:
    return data / "server.lock"


def pid_path(data: Path) -> Path:
    return data / "server.pid"


class Server:
    def __init__(self, ctx: Context, opts: ServerOptions, events: ServerEvents) -> None:
        self.ctx, self.opts, self.events = ctx, opts, events
        self.data = ctx.paths.data
        self.host = host_name(ctx.environ)
        self.owner = owner_id(self.host)
        self.started = time.time()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._mutex = threading.Lock()
        self._active: dict[str, threading.Thread] = {}
        self._stop_reason = "the server was stopped"
        self.report = ServerReport()
        self._credentials_checked = 0.0
        self._said_spent = False

    def stop(self, reason: str = "the server was stopped") -> None:
        """Graceful shutdown: running tasks are cancelled (their partial work kept), then the loop ends."""
        self._stop_reason = reason
        self._stop.set()
        self._wake.set()

    # -- the whole life of a server ----------------------------------------------------------------

    def run(self, *, ready: Callable[[], None] | None = None) -> ServerReport:
        from filelock import FileLock, Timeout

        self.data.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_path(self.data)), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            pid = pid_path(self.data).read_text().strip() if pid_path(self.data).exists() else "?"
            raise ServerRunning(f"a tsk server is already running for {self.data} (pid {pid})",
                                hint="use it (tsk add queues work for it), or stop it: tsk server stop") from None
        try:
            pid_path(self.data).write_text(f"{os.getpid()}\n")
            store = open_store(self.ctx)
            helpers = [threading.Thread(target=self._keep, name="tsk-lease", daemon=True)]
            try:
                self._beat(store)
                feed = store.notices()
                if feed is not None:
                    helpers.append(threading.Thread(target=self._listen, args=(feed,), name="tsk-notices",
                                                    daemon=True))
                for h in helpers:
                    h.start()
                # changes arrive as notices when the store sends them: then the poll is only a fallback
                self._loop(store, ready, poll=self.opts.poll if feed is None else max(self.opts.poll, 1.0))
            finally:
                self._stop.set()
                for h in helpers:
                    if h.ident is not None:
                        h.join(timeout=10)
                with contextlib.suppress(TskError):
                    store.remove_server(self.owner)
                store.close()
                pid_path(self.data).unlink(missing_ok=True)
        finally:
            lock.release()
        return self.report

    def _loop(self, store: TaskStore, ready: Callable[[], None] | None, *, poll: float) -> None:
        seen = store.last_seq()
        self._recover(store, leftovers=True)
        last_clean = last_recovery = 0.0
        if ready is not None:
            ready()
        while not self._stop.is_set():
            self._wake.clear()
            self._unblock(store)
            control.settle(store)
            if time.monotonic() - last_clean > self.opts.clean_every:
                last_clean = time.monotonic()
                self._auto_clean()
            if time.monotonic() - last_recovery > self.opts.lease / 2:  # others' expired leases
                last_recovery = time.monotonic()
                self._recover(store, leftovers=False)
            self._dispatch(store)
            seen = self._show(store, seen)
            if self.opts.quit_when_idle and self._idle(store):
                break
            self._wake.wait(poll)
        self._shutdown(store)
        self._show(store, seen)

    def _unblock(self, store: TaskStore) -> None:
        """BLOCKED tasks go back to the queue when their back-off has passed, or when the credentials
        they were refused with have changed (looked at every few seconds: it reads the agent's files)."""
        now = time.time()
        check_credentials = now - self._credentials_checked > self.opts.credentials_every
        if check_credentials:
            self._credentials_checked = now
        for task in store.tasks(statuses=("BLOCKED",)):
            if task.blocked_until is not None:
                due = task.blocked_until <= now
                why = "its back-off has passed"
            elif check_credentials:
                due = _credentials_changed(task, self.ctx)
                why = f"the {task.agent} credentials have changed"
            else:
                continue
            if due:
                task.blocked = task.blocked_until = task.credential_digest = None
                with contextlib.suppress(Conflict):
                    store.transition(task.id, "QUEUED", f"queued again: {why}", task=task, allowed=("BLOCKED",))

    def _dispatch(self, store: TaskStore) -> None:
        while not self._stop.is_set():
            if self.opts.budget_usd is not None and self.report.spent_usd >= self.opts.budget_usd:
                if not self._said_spent:
                    self._said_spent = True
                    self.events.note(f"budget: the tasks of this server have cost ${self.report.spent_usd:.2f} of "
                                     f"${self.opts.budget_usd:.2f}; no new task is started")
                return
            with self._mutex:
                if len(self._active) >= self.opts.workers:
                    return
            task = store.claim(self.owner, reason=f"claimed by the server on {self.host} (pid {os.getpid()})",
                               host=self.host, lease_until=time.time() + self.opts.lease)
            if task is None:
                return
            worker = threading.Thread(target=self._work, args=(task.id,), name=f"tsk-task-{task.id}", daemon=True)
            with self._mutex:
                self._active[task.id] = worker
            self.report.ran += 1
            worker.start()

    def _recover(self, store: TaskStore, *, leftovers: bool) -> None:
        from tsk.queue.recovery import recover

        rec = recover(self.ctx, store, owner=self.owner, lease=self.opts.lease, leftovers=leftovers)
        for what in rec.removed:
            self.events.note(f"recovery: removed {what}")
        for tid in rec.requeued:
            self.events.note(f"recovery: {tid} was requeued")
        for tid in rec.failed:
            self.events.note(f"recovery: {tid} failed: its owner was gone")

    # -- the keeper and the listener: threads of their own, each with its own connection --------------

    def _beat(self, store: TaskStore) -> None:
        now = time.time()
        with self._mutex:
            running = len(self._active)
        store.renew(self.owner, now + self.opts.lease)
        store.heartbeat(ServerRecord(id=self.owner, host=self.host, pid=os.getpid(), workers=self.opts.workers,
                                     running=running, started=self.started, seen=now,
                                     lease_until=now + self.opts.lease))

    def _keep(self) -> None:
        """Renew this server's leases every third of a lease, until it stops. A renewal that fails (the
        database is away) is tried again; past the lease, other servers may take the tasks over."""
        store: TaskStore | None = None
        while not self._stop.wait(self.opts.lease / 3):
            try:
                store = store or open_store(self.ctx)
                self._beat(store)
            except TskError as exc:
                self.events.note(f"lease renewal failed: {exc.message}")
                with contextlib.suppress(Exception):
                    if store is not None:
                        store.close()
                store = None
        if store is not None:
            store.close()

    def _listen(self, feed: Notices) -> None:
        """Wake the loop when the store says something changed; stop a task of ours whose cancel was
        asked on another host (there, its owner is not a process that host can reach)."""
        from tsk.queue.recovery import stop_task

        try:
            while not self._stop.is_set():
                for channel, payload in feed.wait(1.0):
                    if channel == "wake":
                        self._wake.set()
                    elif channel == "cancel":
                        with self._mutex:
                            ours = payload in self._active
                        if ours:
                            self.events.note(f"{payload}: cancel asked; stopping its sandbox")
                            with contextlib.suppress(TskError):
                                store = open_store(self.ctx)
                                try:
                                    task = store.get(payload)
                                finally:
                                    store.close()
                                if task is not None:
                                    stop_task(self.ctx.on_engine(model.engine_of(task)).engine, payload)
        except Exception as exc:  # the loop polls on without it
            self.events.note(f"store notices stopped ({type(exc).__name__}: {exc}); polling instead")
        finally:
            with contextlib.suppress(Exception):
                feed.close()

    def _idle(self, store: TaskStore) -> bool:
        with self._mutex:
            if self._active:
                return False
        spent = self.opts.budget_usd is not None and self.report.spent_usd >= self.opts.budget_usd
        if not spent and store.count(("QUEUED", "WAITING")):  # spent: what is queued waits for another server
            return False
        # a task waiting out a back-off is still to run; one blocked on credentials waits for the user
        return not any(t.blocked_until is not None for t in store.tasks(statuses=("BLOCKED",)))

    def _show(self, store: TaskStore, seen: int) -> int:
        for tr in store.transitions_since(seen):
            self.events.transition(tr.task, tr.name, tr.from_status, tr.to_status, tr.reason)
            seen = tr.seq
        return seen

    def _shutdown(self, store: TaskStore) -> None:
        from tsk.queue.recovery import stop_task

        with self._mutex:
            running = dict(self._active)
        if not running:
            return
        self.events.note(f"shutting down: cancelling {len(running)} running task(s); their work so far comes back")
        for tid in running:
            store.request_cancel(tid, self._stop_reason)
            task = store.get(tid)
            with contextlib.suppress(TskError):
                if task is not None:
                    stop_task(self.ctx.on_engine(model.engine_of(task)).engine, tid, timeout=10)
        for worker in running.values():
            worker.join(timeout=180)

    # -- one worker ---------------------------------------------------------------------------------

    def _work(self, task_id: str) -> None:
        from tsk.context import Context
        from tsk.queue import transport
        from tsk.sandbox.runner import execute
        from tsk.snapshot import merge as parents
        from tsk.snapshot.take import take_snapshot

        ctx = Context(environ=self.ctx.environ, cwd=self.ctx.cwd)
        store = open_store(ctx)
        try:
            hold(ctx.environ, "claimed")
            task = store.get(task_id)
            if task is None:
                return
            starts = (*task.parents, *task.start_from)  # parents, then what its scope waited for
            try:
                # its code through [server] remote: its task dir made here from there (None: the repo is here)
                fetch = transport.prepare(ctx, store, task)
                if fetch is None and starts and task.source_commit is None:
                    found = {t.id: t for t in store.tasks(ids=starts)}
                    start = parents.start_commit(Path(task.repo), [found[t] for t in starts if t in found])
                    take_snapshot(Path(task.repo), model.task_dir(self.data, task.id), data_dir=self.data,
                                  branch=task.branch, from_commit=start)
                    task.source_commit = start
                    store.save(task)
            except TskError as exc:
                task.error, task.finished = exc.message, time.time()
                with contextlib.suppress(Conflict):
                    store.transition(task.id, "FAILED", exc.message, task=task, allowed=("RUNNING",))
                return
            before = task.cost_usd or 0.0
            done_task = execute(ctx, task, control.Quiet(), store, fetch=fetch).task  # its log goes to agent.log
            with self._mutex:
                self.report.spent_usd += (done_task.cost_usd or 0.0) - before
            record_changes(store, task_id, self.data)
        except Exception as exc:  # a bug must not leave the task RUNNING
            with contextlib.suppress(Exception):
                failed = store.get(task_id)
                if failed is not None:
                    failed.error, failed.finished = f"internal error: {type(exc).__name__}: {exc}", time.time()
                    store.transition(task_id, "FAILED", failed.error, task=failed, allowed=("RUNNING",))
        finally:
            with contextlib.suppress(Exception):
                done = store.get(task_id)
                if done is not None:
                    task_ended(done.id, done.name, done.status, done.result_branch or done.result_ref, ctx.environ,
                               sound=self.opts.sound)
            store.close()
            with self._mutex:
                self._active.pop(task_id, None)
            self._wake.set()

    def _auto_clean(self) -> None:
        from tsk.config.load import load_user_file
        from tsk.config.schema import ServerConfig

        try:
            cfg = load_user_file(self.ctx.paths.config_file).server or ServerConfig()
        except TskError as exc:
            self.events.note(f"auto-clean skipped: {exc.message}")
            return
        if not cfg.auto_clean_enabled:
            return
        gone = control.clean(self.ctx, statuses=ENDED,
                             older_than=cfg.auto_clean_age_days * 86400)
        if gone:
            self.events.note(f"auto-clean: removed {len(gone)} task(s) older than {cfg.auto_clean_age_days:g} days")


def _credentials_changed(task: Task, ctx: Context) -> bool:
    from tsk.sandbox.provision import agent_for, task_config

    try:
        digest = agent_for(task_config(task)).credential_digest(Path.home(), ctx.environ)
    except TskError:
        return False
    return digest != task.credential_digest


def server_running(data: Path) -> bool:
    from filelock import FileLock, Timeout

    if not lock_path(data).exists():
        return False
    lock = FileLock(str(lock_path(data)), thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def stop_server(data: Path, *, timeout: float = 300) -> int | None:
    """`tsk server stop`: SIGTERM to the pid the running server recorded; wait for its lock to free.
    Returns the pid, or None when no server holds the data dir."""
    import signal

    from filelock import FileLock, Timeout

    if not server_running(data):
        return None
    lock = FileLock(str(lock_path(data)), thread_local=False)
    try:
        pid = int(pid_path(data).read_text().strip())
    except (OSError, ValueError) as exc:
        raise TskError(f"a server holds {lock_path(data)} but its pid file is missing or unreadable") from exc
    os.kill(pid, signal.SIGTERM)
    try:
        lock.acquire(timeout=timeout)
    except Timeout as exc:
        raise TskError(f"the server (pid {pid}) did not stop within {timeout:.0f} s") from exc
    lock.release()
    return pid


class QueueSource:
    """The dashboard's view of the queue (tsk/queue/view.py's TaskSource)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def rows(self) -> list[TaskRow]:
        from tsk.queue.listing import list_tasks
        from tsk.queue.view import TaskRow

        store = open_store(self.ctx)  # a StoreError says what is wrong; the dashboard shows it
        try:
            listed = list_tasks(store).tasks
        finally:
            store.close()
        return [TaskRow(id=t.id, name=t.name, type=t.type, status=t.status, agent=t.agent, created=t.created,
                        started=t.started, finished=t.finished, branch=t.branch, error=t.error,
                        parents=tuple(t.parents), attempts=t.attempts, max_attempts=t.max_attempts, host=t.host,
                        why=t.blocked if t.status in ("WAITING", "BLOCKED") else
                        (f"{t.failure_class}: {t.error}" if t.failure_class and t.error else t.error))
                for t in listed]

    def log_path(self, task_id: str) -> Path:
        from tsk.tasks import model

        return model.agent_log(model.task_dir(self.ctx.paths.data, task_id))

    def cancel(self, task_id: str) -> None:
        control.cancel(self.ctx, [task_id], reason="cancelled from the dashboard")

    def delete(self, task_id: str) -> None:
        control.delete(self.ctx, [task_id])
