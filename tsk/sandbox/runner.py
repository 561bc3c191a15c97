"""One task, in two halves. Creation (`create_task`: config, record, instructions, snapshot) needs no
engine and is what `tsk add` does; execution (`execute`: image, proxy, network, container, agent,
result, cleanup) is what a server worker or a foreground `tsk run` does. Each phase is timed; the
record lives in the task database, the agent's log in the task dir."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from tsk import interrupt
from tsk.agents.base import AgentResult
from tsk.agents.events import Message, encode_event, render
from tsk.errors import TskError
from tsk.files import read_bounded, write_private
from tsk.holds import hold
from tsk.sandbox import secrets
from tsk.sandbox.provision import Prepared, RunEvents, agent_for, cleanup, provision, task_config, timed
from tsk.sandbox.stream import LOG_MAX, CappedLog, Kept, lines, log_note
from tsk.sandbox.supervise import Watcher, disk_check
from tsk.tasks import model
from tsk.tasks.model import Task
from tsk.tasks.owner import owner_id
from tsk.tasks.store import Conflict, RunStore

if TYPE_CHECKING:
    from tsk.config.schema import ResolvedConfig
    from tsk.context import Context

__all__ = ["RunEvents", "RunRequest", "RunResult", "create_task", "execute", "fetch_work", "run_task", "shell_task",
           "task_config"]


class RunRequest(msgspec.Struct, frozen=True, kw_only=True):
    instructions: str
    type: str = "generic"
    name: str | None = None
    repo: str | None = None
    project: str | None = None
    agent: str | None = None
    stack: str | None = None
    from_branch: str | None = None
    network_isolation: bool = True
    sudo: bool | None = None
    privileged: bool | None = None


class RunResult(msgspec.Struct, kw_only=True):
    task: Task
    exit_code: int


def create_task(ctx: Context, req: RunRequest, ui: RunEvents, *, parents: tuple[str, ...] = (),
                cfg: ResolvedConfig | None = None) -> Task:
    """What `tsk add` does at add time, with no engine: resolve the config (or reuse `cfg`, a retry's),
    make the record, write the instructions, snapshot the repo. A task with parents is WAITING and
    gets its snapshot when they complete, from their results."""
    from tsk.config.schema import ProjectSettings
    from tsk.snapshot.take import take_snapshot

    repo = ctx.find_repo(Path(req.repo) if req.repo else None)
    if cfg is None:
        cli = ProjectSettings(agent=req.agent, stack=req.stack, sudo=req.sudo, privileged=req.privileged)
        cfg = ctx.config(repo, cli=cli, project=req.project)
    agent = agent_for(cfg)  # an unknown agent is refused at add time, with the list of known ones
    stored, hidden = secrets.split(cfg)  # secret env values never go into the task's record
    task_id = model.new_id()
    first_line = next((ln for ln in req.instructions.splitlines() if ln.strip()), "")
    name = model.slug(req.name or first_line or "task")
    task = Task(id=task_id, name=name, type=req.type, agent=cfg.agent, stack=cfg.stack, project=cfg.project,
                repo=str(repo), branch=f"tsk/{req.type}/{name}/{task_id}", created=time.time(),
                from_branch=req.from_branch, network_isolation=req.network_isolation,
                config=msgspec.to_builtins(stored), parents=parents, status="WAITING" if parents else "QUEUED")
    tdir = model.make_task_dir(ctx.paths.data, task_id, agent.home_dirs)
    secrets.save(tdir, hidden)
    write_private(tdir / "instructions.md", req.instructions.encode())
    if not parents:
        try:
            with timed(task, "snapshot", ui):
                snap = take_snapshot(repo, tdir, data_dir=ctx.paths.data, branch=task.branch,
                                     from_branch=req.from_branch)
        except BaseException:
            shutil.rmtree(tdir, ignore_errors=True)
            raise
        task.source_commit = snap.source_commit
    model.save(task, tdir)
    return task


def run_task(ctx: Context, req: RunRequest, ui: RunEvents, store: RunStore) -> RunResult:
    """`tsk run`: create the task and execute it in this process, recorded in the task store as
    RUNNING and owned by this process (so a server can recover it if this process is killed)."""
    task = create_task(ctx, req, ui)
    task.status = "RUNNING"
    store.add(task, instructions=req.instructions, reason="tsk run", owner=owner_id())
    return execute(ctx, task, ui, store, raise_setup_errors=True)


def execute(ctx: Context, task: Task, ui: RunEvents, store: RunStore, *,
            raise_setup_errors: bool = False) -> RunResult:
    """Run a recorded task this process owns (status RUNNING) to its end: provision, start, stream the
    log, fetch the work, clean up, record the result. A cancel request in the store (`tsk cancel`, a
    server shutting down) stops the container; its partial work still comes back. It runs on the engine
    it was made for (`tsk add --container-engine podman` runs on Podman whichever engine the server has)."""
    ctx = ctx.on_engine(model.engine_of(task))
    tdir = model.task_dir(ctx.paths.data, task.id)
    p: Prepared | None = None
    engine = ctx.engine
    cancel: str | None = None
    setup_error: BaseException | None = None
    kept = Kept()
    try:
        try:
            p = Prepared(task=task, task_dir=str(tdir), agent=agent_for(task_config(task)))
            provision(ctx, ui, made=p, interactive=False)
        except Exception as exc:
            setup_error = exc
            raise
        cancel = store.cancel_requested(task.id)
        if cancel is None:
            task.started = time.time()
            store.save(task)
            with timed(task, "container_start", ui):
                engine.container_start(p.container)
            hold(ctx.environ, "started")
            # `tsk cancel` sets the flag, then stops the container: checked after the start, one of
            # the two sees the other
            cancel = store.cancel_requested(task.id)
            if cancel is not None:
                engine.container_stop(p.container, timeout=20)
            t0 = time.perf_counter()
            cfg = task_config(task)
            disk = disk_check([tdir / d for d in ("upper", "git", "home", "output")], int(cfg.disk_gb * (1 << 30)),
                              ctx.paths.data)
            watcher = Watcher(engine, p.container, [disk])
            try:
                with watcher, \
                        model.raw_log(tdir).open("ab") as raw_file, model.agent_log(tdir).open("ab") as log_file:
                    raw = CappedLog(raw_file)
                    log = CappedLog(log_file, note=log_note(f"the log stops here: it reached {LOG_MAX >> 20} MB; "
                                                            "the agent's output went on"))
                    for event in p.agent.parse(lines(engine.container_logs(p.container), raw)):
                        kept.add(event)
                        log.write(encode_event(event) + b"\n")
                        ui.line(render(event))
            except KeyboardInterrupt as exc:
                cancel = interrupt.reason_of(exc)
                ui.note("cancelling: stopping the sandbox; its work so far still comes back")
                with interrupt.deferred():
                    engine.container_stop(p.container, timeout=20)
            with interrupt.deferred():  # once the agent has ended, its work comes back whatever arrives
                exit_code = engine.container_wait(p.container)
                _inner_timings(task, tdir, time.perf_counter() - t0, ui)
                result: AgentResult = p.agent.result(kept.events, exit_code)
                cancel = cancel or store.cancel_requested(task.id)
                if watcher.reason is not None and cancel is None:
                    ui.note(f"the sandbox was stopped: {watcher.reason}")
                    result = AgentResult(success=False, summary=result.summary, error=f"stopped: {watcher.reason}")
                with timed(task, "fetch", ui):
                    notes = fetch_work(task, tdir)
                hold(ctx.environ, "fetched")
                for note in notes:
                    ui.note(note)
                task.summary = _with_notes(result.summary, notes)
        if cancel is not None:
            task.status, task.error = "CANCELLED", cancel
        elif result.success:
            task.status = "COMPLETE"
        else:
            task.status, task.error = "FAILED", result.error or f"the agent exited with code {exit_code}"
    except KeyboardInterrupt as exc:
        task.status, task.error = "CANCELLED", interrupt.reason_of(exc)
    except TskError as exc:
        task.status, task.error = "FAILED", exc.message
    except Exception as exc:  # a bug must not leave the task RUNNING: record it, say what it was
        task.status, task.error = "FAILED", f"{type(exc).__name__}: {exc}"
    finally:
        with interrupt.deferred():
            task.finished = time.time()
            if str(task.status) == "RUNNING":  # left by something not caught above (SystemExit)
                task.status, task.error = "FAILED", task.error or "interrupted"
            if p is not None:
                with timed(task, "cleanup", ui):
                    _cleanup_noting(ctx, p, ui)
            _record_end(store, task, tdir)
    if setup_error is not None and raise_setup_errors:
        raise setup_error
    return RunResult(task=task, exit_code=0 if task.status == "COMPLETE" else 1)


def _cleanup_noting(ctx: Context, p: Prepared, ui: RunEvents) -> None:
    """Cleanup whose failure (an engine refusal, another process reaping the same proxy) must not
    change the task's result: the work is already back. Leftovers are found later by their labels."""
    try:
        cleanup(ctx, p)
    except TskError as exc:
        ui.note(f"cleanup of task {p.task.id} was incomplete: {exc.message}")


def _record_end(store: RunStore, task: Task, tdir: Path) -> None:
    secrets.forget(tdir)  # the task has ended: its secrets have no more use
    try:
        store.transition(task.id, task.status, task.error or task.summary or "done", task=task,
                         allowed=("RUNNING",))
    except Conflict:
        return  # deleted while it ran (`tsk delete` waits for the end, so only when it gave up)
    if tdir.is_dir():
        model.save(task, tdir)


def fetch_work(task: Task, tdir: Path) -> tuple[str, ...]:
    """Bring the task branch back if the agent added commits beyond the baseline commit that the
    container recorded (the user's uncommitted changes), with the submodule commits and git-lfs
    objects it needs. Returns the notes on what did not come back, also kept in the task's log."""
    from tsk.snapshot.fetch import fetch_result
    from tsk.snapshot.take import load_snapshot

    # the sandbox wrote it: it may be a link, a FIFO or a huge file; a commit id is all it may hold
    raw = read_bounded(model.output(tdir) / "base-commit", 128)
    base = raw.decode(errors="replace").strip() if raw else ""
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", base):
        base = ""
    fetched = fetch_result(load_snapshot(tdir), base=base or None)
    task.result_branch, task.commits = fetched.branch, fetched.commits
    task.result_commit = fetched.head if fetched.branch else task.source_commit
    if fetched.notes:
        log = model.agent_log(tdir)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            for note in fetched.notes:
                out.write(encode_event(Message(f"tsk: {note}", role="warning")) + b"\n")
    return fetched.notes


def _with_notes(summary: str | None, notes: tuple[str, ...]) -> str | None:
    return "\n".join([*([summary] if summary else []), *(f"tsk: {n}" for n in notes)]) or None


def _inner_timings(task: Task, tdir: Path, total: float, ui: RunEvents) -> None:
    """The container marks when it finished preparing, running the agent and committing."""
    marks: dict[str, float] = {}
    timing = read_bounded(model.output(tdir) / "timing", 4096)
    if timing:
        for line in timing.decode(errors="replace").splitlines():
            name, _, value = line.partition(" ")
            try:
                marks[name] = float(value)
            except ValueError:
                continue
    steps = [("prepare", "started", "prepared"), ("agent", "prepared", "agent_done"),
             ("commit", "agent_done", "committed")]
    for name, a, b in steps:
        if a in marks and b in marks:
            task.timings[name] = round(marks[b] - marks[a], 4)
            ui.phase(name, task.timings[name])
    if "agent" not in task.timings:
        task.timings["agent"] = round(total, 4)
        ui.phase("agent", task.timings["agent"])


def shell_task(ctx: Context, req: RunRequest, ui: RunEvents, store: RunStore) -> RunResult:
    """`tsk shell`: the task's sandbox with the user's terminal attached to a login shell."""
    from tsk.engine import proc

    task = create_task(ctx, req, ui)
    task.status = "RUNNING"
    tdir = model.task_dir(ctx.paths.data, task.id)
    p = Prepared(task=task, task_dir=str(tdir), agent=agent_for(task_config(task)))
    store.add(task, instructions=req.instructions, reason="tsk shell", owner=owner_id())
    try:
        try:
            provision(ctx, ui, made=p, interactive=True)
        except BaseException as exc:
            task.status = "FAILED"
            task.error = exc.message if isinstance(exc, TskError) else f"{type(exc).__name__}: {exc}"
            raise
        task.started = time.time()
        store.save(task)
        stopped: str | None = None
        code = 0
        with timed(task, "shell", ui):
            try:
                # The engine's CLI owns terminal handling (raw mode, resize on SIGWINCH) for an attached tty.
                code = proc.interactive(ctx.engine.attach_command(p.container))
            except KeyboardInterrupt as exc:  # SIGHUP (the terminal closed) or SIGTERM: stop, keep the work
                stopped = interrupt.reason_of(exc)
                with interrupt.deferred():
                    ctx.engine.container_stop(p.container, timeout=20)
        with interrupt.deferred():
            ctx.engine.container_wait(p.container)
            with timed(task, "fetch", ui):
                notes = fetch_work(task, tdir)
            for note in notes:
                ui.note(note)
            if stopped is not None:
                task.status, task.error = "CANCELLED", stopped
            else:
                task.status = "COMPLETE"
            shell_end = f"the shell exited with code {code}" if code not in (0, 130) else None
            task.summary = _with_notes(shell_end, notes)
    except TskError as exc:
        task.status, task.error = "FAILED", exc.message
        if not task.started:
            raise
    except KeyboardInterrupt as exc:  # a signal before the shell started
        task.status, task.error = "CANCELLED", interrupt.reason_of(exc)
    finally:
        with interrupt.deferred():
            task.finished = time.time()
            if task.status == "RUNNING":
                task.status, task.error = "CANCELLED", "interrupted"
            with timed(task, "cleanup", ui):
                _cleanup_noting(ctx, p, ui)
            _record_end(store, task, tdir)
    return RunResult(task=task, exit_code=0 if task.status == "COMPLETE" else 1)
