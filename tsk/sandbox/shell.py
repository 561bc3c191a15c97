"""`tsk shell`: the same sandbox as a task's, with the user's terminal attached to a login shell instead
of the agent; on exit the work comes back as the task's branch, as a run's does."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tsk import interrupt
from tsk.errors import TskError
from tsk.sandbox.attempt import with_notes
from tsk.sandbox.provision import Prepared, RunEvents, agent_for, cleanup_noting, provision, task_config, timed
from tsk.sandbox.runner import RunRequest, RunResult, create_task, fetch_work, record_end
from tsk.tasks import model
from tsk.tasks.owner import host_name, owner_id

if TYPE_CHECKING:
    from tsk.context import Context
    from tsk.tasks.store import RunStore


def shell_task(ctx: Context, req: RunRequest, ui: RunEvents, store: RunStore) -> RunResult:
    """`tsk shell`: the task's sandbox with the user's terminal attached to a login shell."""
    from tsk.engine import proc

    task = create_task(ctx, req, ui, local=True)
    task.status = "RUNNING"
    tdir = model.task_dir(ctx.paths.data, task.id)
    p = Prepared(task=task, task_dir=str(tdir), agent=agent_for(task_config(task)))
    store.add(task, instructions=req.instructions, reason="tsk shell", owner=owner_id(host_name(ctx.environ)))
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
                # The docker CLI owns terminal handling (raw mode, resize on SIGWINCH) for an attached tty.
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
            task.summary = with_notes(shell_end, notes)
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
                cleanup_noting(ctx, p, ui)
            record_end(store, task, tdir)
    return RunResult(task=task, exit_code=0 if task.status == "COMPLETE" else 1)
