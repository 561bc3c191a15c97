"""One attempt of a task: provision the sandbox, start the agent, stream its log under the watcher's
limits, wait, read the validation command's verdict, bring the work back, clean up; and say how it
ended (its failure class, tsk/sandbox/ladder.py's classify). The runner (tsk/sandbox/runner.py) decides
from the attempts what comes next.

The attempt never raises for the task's sake: a failure of the engine, of the image or of the config
is an attempt of class `infra` (or final, when trying again cannot help) carrying the error."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tsk import interrupt
from tsk.agents.base import AgentResult
from tsk.agents.events import ToolUse, Usage, encode_event, render
from tsk.errors import TskError
from tsk.files import read_bounded, read_tail
from tsk.holds import hold, unwatched
from tsk.sandbox import ladder
from tsk.sandbox.provision import (
    AttemptPlan,
    Prepared,
    RunEvents,
    agent_for,
    cleanup_noting,
    provision,
    task_config,
    timed,
)
from tsk.sandbox.stream import LOG_MAX, CappedLog, Kept, lines, log_note
from tsk.sandbox.supervise import Progress, Stop, Watcher, disk_check, time_check
from tsk.tasks import model
from tsk.tasks.model import Attempt, FailureClass, Task
from tsk.text import printable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from tsk.context import Context
    from tsk.tasks.store import RunStore

VALIDATION_TAIL = 8 << 10


@dataclass
class AttemptEnd:
    attempt: Attempt
    error: BaseException | None = None  # what stopped it before the agent ran (tsk run shows it)
    retryable: bool = True  # False: trying again cannot help (bad config, a usage error)


def run_attempt(ctx: Context, task: Task, ui: RunEvents, store: RunStore, plan: AttemptPlan,
                fetch: Callable[[Task, Path], tuple[str, ...]]) -> AttemptEnd:
    """Run attempt `plan.n` of a task this process owns (RUNNING). `fetch` brings its work back."""
    tdir = model.task_dir(ctx.paths.data, task.id)
    att = Attempt(task=task.id, n=plan.n, started=time.time())
    end = AttemptEnd(attempt=att)
    p: Prepared | None = None
    try:
        cfg = task_config(task)
        p = Prepared(task=task, task_dir=str(tdir), agent=agent_for(cfg))
        provision(ctx, ui, made=p, interactive=False, attempt=plan)
        _run(ctx, task, ui, store, p, att, cfg.validate is not None, fetch)
    except KeyboardInterrupt as exc:  # before the agent ran, or while its work came back
        att.failure_class, att.reason = "cancelled", interrupt.reason_of(exc)
    except TskError as exc:
        att.failure_class, att.reason = _setup_class(exc), exc.message
        end.error, end.retryable = exc, _retryable(exc)
    except Exception as exc:  # a bug must not leave the task RUNNING: record it, say what it was
        att.failure_class, att.reason = "infra", f"internal error: {type(exc).__name__}: {exc}"
        end.error, end.retryable = exc, False
    finally:
        with interrupt.deferred():
            att.finished = time.time()
            if p is not None:
                with timed(task, "cleanup", ui):
                    cleanup_noting(ctx, p, ui)
            att.timings = dict(task.timings)
    return end


def _run(ctx: Context, task: Task, ui: RunEvents, store: RunStore, p: Prepared, att: Attempt, validates: bool,
         fetch: Callable[[Task, Path], tuple[str, ...]]) -> None:
    engine, tdir = ctx.engine, Path(p.task_dir)
    cfg = task_config(task)
    cancel = store.cancel_requested(task.id)
    if cancel is not None:
        att.failure_class, att.reason = "cancelled", cancel
        return
    task.started = task.started or time.time()
    store.save(task)
    progress = Progress(loop_limit=cfg.loop_limit, budget_usd=cfg.budget_usd, spent_before=task.cost_usd or 0.0)
    checks = [] if unwatched(ctx.environ) else [
        time_check(progress, timeout=cfg.timeout, idle_timeout=cfg.idle_timeout),
        disk_check([tdir / d for d in ("upper", "git", "home", "output")], int(cfg.disk_gb * (1 << 30)),
                   ctx.paths.data, every=10)]
    watcher = Watcher(engine, p.container, checks, every=min(1.0, cfg.idle_timeout / 4))
    kept = Kept()
    t0 = time.perf_counter()
    started = False
    try:  # from the start on, a signal stops the sandbox and its work still comes back
        with timed(task, "container_start", ui):
            engine.container_start(p.container)
        started = True
        hold(ctx.environ, "started")
        # `tsk cancel` sets the flag, then stops the container: checked after the start, one sees the other
        cancel = store.cancel_requested(task.id)
        if cancel is not None:
            engine.container_stop(p.container, timeout=20)
        with watcher, model.raw_log(tdir).open("ab") as raw_file, model.agent_log(tdir).open("ab") as log_file:
            raw = CappedLog(raw_file)
            log = CappedLog(log_file, note=log_note(f"the log stops here: it reached {LOG_MAX >> 20} MB; "
                                                    "the agent's output went on"))
            chunks = _alive(engine.container_logs(p.container), progress)
            for event in p.agent.parse(lines(chunks, raw), model=cfg.model):
                kept.add(event)
                log.write(encode_event(event) + b"\n")
                if not isinstance(event, Usage):  # one per API message: for the log, not the terminal
                    ui.line(render(event))
                stop = _limit(progress, event)
                if stop is not None:
                    watcher.stop_now(stop)
    except KeyboardInterrupt as exc:
        cancel = interrupt.reason_of(exc)
        ui.note("cancelling: stopping the sandbox; its work so far still comes back")
        with interrupt.deferred():
            engine.container_stop(p.container, timeout=20)
    if not started:  # created, never run: nothing to wait for, nothing came of it
        att.failure_class, att.reason = "cancelled", cancel
        return
    with interrupt.deferred():  # once the agent has ended, its work comes back whatever arrives
        exit_code = engine.container_wait(p.container)
        _inner_timings(task, tdir, time.perf_counter() - t0, ui)
        result: AgentResult = p.agent.result(kept.events, exit_code)
        cancel = cancel or store.cancel_requested(task.id)
        if watcher.stop is not None and cancel is None:
            ui.note(f"the sandbox was stopped: {watcher.stop.reason}")
        att.validation_exit, att.validation_tail = _validation(tdir) if validates else (None, "")
        with timed(task, "fetch", ui):
            notes = fetch(task, tdir)
        hold(ctx.environ, "fetched")
        for note in notes:
            ui.note(note)
        task.summary = with_notes(result.summary, notes)
    stopped = (watcher.stop.failure_class, watcher.stop.reason) if watcher.stop is not None else None
    att.failure_class, att.reason = ladder.classify(
        cancelled=cancel, stopped=stopped, success=result.success, agent_failure=result.failure,
        agent_error=result.error or f"the agent exited with code {exit_code}", validates=validates,
        validation_exit=att.validation_exit)
    att.cost_usd = result.cost_usd if result.cost_usd is not None else (progress.spent or None)
    att.turns, att.session_id = result.turns, result.session_id
    att.head = task.result_commit if task.result_branch else None


def _alive(chunks: Iterable[bytes], progress: Progress) -> Iterator[bytes]:
    """Every chunk of output is a sign of life, a line finished or not."""
    for chunk in chunks:
        progress.sign_of_life()
        yield chunk


def _limit(progress: Progress, event: object) -> Stop | None:
    if isinstance(event, ToolUse):
        return progress.tool(event.key, event.tool)
    if isinstance(event, Usage) and event.cost_usd:
        return progress.cost(event.cost_usd)
    return None


def _validation(tdir: Path) -> tuple[int | None, str]:
    """The validation command's exit code (None: it did not finish) and the tail of its output."""
    out = model.output(tdir)
    raw = read_bounded(out / "validation-exit", 16)
    code = int(raw.strip()) if raw and raw.strip().isdigit() else None
    tail = read_tail(out / "validation.log", VALIDATION_TAIL) or b""
    return code, printable(tail.decode(errors="replace"))


def _setup_class(exc: TskError) -> FailureClass:
    from tsk.snapshot.merge import MergeConflict

    return "conflict" if isinstance(exc, MergeConflict) else "infra"


def _retryable(exc: TskError) -> bool:
    """Engine, image, registry and proxy trouble may pass; bad config, a usage error or a hostile git
    dir will not."""
    from tsk.snapshot.gitdir import TaskGitDirError

    return exc.exit_code != 2 and not isinstance(exc, TaskGitDirError)


def with_notes(summary: str | None, notes: tuple[str, ...]) -> str | None:
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
             ("validate", "agent_done", "validated"), ("commit", "validated" if "validated" in marks else "agent_done",
                                                      "committed")]
    for name, a, b in steps:
        if a in marks and b in marks:
            task.timings[name] = round(marks[b] - marks[a], 4)
            ui.phase(name, task.timings[name])
    if "agent" not in task.timings:
        task.timings["agent"] = round(total, 4)
        ui.phase("agent", task.timings["agent"])
