"""A task from its creation to its end. Creation (`create_task`: config, record, instructions, snapshot)
needs no engine and is what `tsk add` does; execution (`execute`: attempt after attempt, as the
remediation ladder says) is what a server worker or a foreground `tsk run` does. One attempt is
tsk/sandbox/attempt.py's; `tsk shell` is tsk/sandbox/shell.py's."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from tsk import interrupt
from tsk.agents.events import Message, encode_event
from tsk.config.fleet import fleet
from tsk.files import read_bounded, remove_tree, write_private
from tsk.holds import backoff_first
from tsk.notify import notify, task_ended
from tsk.sandbox import ladder, secrets
from tsk.sandbox.provision import AttemptPlan, RunEvents, agent_for, task_config, timed
from tsk.sandbox.stream import log_tail
from tsk.tasks import model
from tsk.tasks.model import Attempt, Task
from tsk.tasks.options import TaskOptions
from tsk.tasks.owner import host_name, owner_id
from tsk.tasks.store import Conflict, RunStore
from tsk.text import printable

if TYPE_CHECKING:
    from collections.abc import Callable

    from tsk.config.schema import ResolvedConfig
    from tsk.context import Context

    # brings an attempt's work back (fetch_work; a server's worker with a git remote: its own, which pushes it)
    Fetch = Callable[[Task, Path], tuple[str, ...]]

__all__ = ["RunEvents", "RunRequest", "RunResult", "create_task", "execute", "fetch_work", "record_end", "run_task",
           "tally", "task_config"]


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
    dind: bool | None = None
    devices: tuple[str, ...] = ()  # host devices, globs already expanded (tsk/config/devices.py)
    options: TaskOptions = TaskOptions()
    scope: tuple[str, ...] = ()  # write scope globs, checked (tsk.plans.scopes)
    plan: str | None = None
    plan_task: str | None = None
    gate: int = 0
    issue: int | None = None


class RunResult(msgspec.Struct, kw_only=True):
    task: Task
    exit_code: int


def create_task(ctx: Context, req: RunRequest, ui: RunEvents, *, parents: tuple[str, ...] = (),
                cfg: ResolvedConfig | None = None, local: bool = False) -> Task:
    """What `tsk add` does at add time, with no engine: resolve the config (or reuse `cfg`, a retry's),
    make the record, write the instructions, snapshot the repo. A task with parents is WAITING and
    gets its snapshot when they complete, from their results. One with a write scope or of a plan is
    WAITING too, until the scheduler lets it go (tsk/queue/scheduler.py). With `[server] remote`, the
    snapshot is pushed there for whichever host's server runs the task (tsk/snapshot/remote.py), unless
    the task is `local`: run by this process (`tsk run`, `tsk shell`)."""
    from tsk.config.schema import ProjectSettings
    from tsk.snapshot.take import take_snapshot

    repo = ctx.find_repo(Path(req.repo) if req.repo else None)
    if cfg is None:
        cli = ProjectSettings(agent=req.agent, stack=req.stack, sudo=req.sudo, privileged=req.privileged,
                              dind=req.dind, devices=req.devices or None,
                              **req.options.settings())  # type: ignore[arg-type]
        cfg = ctx.config(repo, cli=cli, project=req.project)
    agent = agent_for(cfg)  # an unknown agent is refused at add time, with the list of known ones
    stored, hidden = secrets.split(cfg)  # secret env values never go into the task's record
    task_id = model.new_id()
    first_line = next((ln for ln in req.instructions.splitlines() if ln.strip()), "")
    name = model.slug(req.name or first_line or "task")
    task = Task(id=task_id, name=name, type=req.type, agent=cfg.agent, stack=cfg.stack, project=cfg.project,
                repo=str(repo), branch=f"tsk/{req.type}/{name}/{task_id}", created=time.time(),
                from_branch=req.from_branch, network_isolation=req.network_isolation,
                config=msgspec.to_builtins(stored), parents=parents,
                status="WAITING" if parents or req.scope or req.plan else "QUEUED", max_attempts=cfg.max_attempts,
                scope=req.scope, plan=req.plan, plan_task=req.plan_task, gate=req.gate, issue=req.issue,
                origin=host_name(ctx.environ))
    remote = None if local else fleet(ctx).remote
    ident: dict[str, str] = {}
    if remote is not None:  # it may run on another host, where the repo and its git config are not
        from tsk.snapshot.merge import identity

        ident = identity(repo)
        task.author = f"{ident['GIT_AUTHOR_NAME']} <{ident['GIT_AUTHOR_EMAIL']}>"
    tdir = model.make_task_dir(ctx.paths.data, task_id, agent.home_dirs)
    secrets.save(tdir, hidden)
    write_private(tdir / "instructions.md", req.instructions.encode())
    if not parents:
        try:
            with timed(task, "snapshot", ui):
                snap = take_snapshot(repo, tdir, data_dir=ctx.paths.data, branch=task.branch,
                                     from_branch=req.from_branch)
            if remote is not None:
                from tsk.snapshot.remote import push_snapshot

                with timed(task, "push", ui):
                    task.snapshot_ref = push_snapshot(snap, remote, task_id, ident)
        except BaseException:
            shutil.rmtree(tdir, ignore_errors=True)
            raise
        task.source_commit = snap.source_commit
    model.save(task, tdir)
    return task


def run_task(ctx: Context, req: RunRequest, ui: RunEvents, store: RunStore) -> RunResult:
    """`tsk run`: create the task and execute it in this process, recorded in the task store as
    RUNNING and owned by this process (so a server can recover it if this process is killed); its end
    is a desktop notification."""
    task = create_task(ctx, req, ui, local=True)
    task.status = "RUNNING"
    store.add(task, instructions=req.instructions, reason="tsk run", owner=owner_id(host_name(ctx.environ)))
    try:
        return execute(ctx, task, ui, store, raise_setup_errors=True, foreground=True)
    finally:  # a task's end is notified whoever ran it, as a server's tasks are
        task_ended(task.id, task.name, task.status, task.result_branch, ctx.environ)


def execute(ctx: Context, task: Task, ui: RunEvents, store: RunStore, *, raise_setup_errors: bool = False,
            foreground: bool = False, fetch: Fetch | None = None) -> RunResult:
    """Run a recorded task this process owns (status RUNNING) attempt by attempt, as the remediation
    ladder says (tsk/sandbox/ladder.py), to its end, or to BLOCKED when its agent's API said "not now"
    (in the `foreground` of `tsk run`, a back-off is waited out here instead). A cancel request in the
    store (`tsk cancel`, a server shutting down) stops the container; its partial work still comes back.
    The task's result is its last attempt's, brought back by `fetch` (default fetch_work). It runs on the
    engine it was made for (`tsk add --container-engine podman` runs on Podman whichever engine the
    server has)."""
    from tsk.sandbox.attempt import run_attempt

    ctx = ctx.on_engine(model.engine_of(task))
    tdir = model.task_dir(ctx.paths.data, task.id)
    attempts = store.attempts(task.id)  # earlier ones: a task blocked, or recovered after a crash
    carry_on = bool(attempts) and attempts[-1].failure_class in ladder.CONTINUE | {"infra"}
    error: BaseException | None = None
    step: ladder.Step | None = None
    try:
        while True:
            plan = _next_plan(ctx, task, tdir, attempts, carry_on=carry_on)
            end = run_attempt(ctx, task, ui, store, plan, fetch or fetch_work)
            attempts.append(end.attempt)
            store.add_attempt(end.attempt)
            tally(task, attempts)
            error = end.error
            step = ladder.next_step(attempts, task.max_attempts, retryable=end.retryable,
                                    backoff_first=backoff_first(ctx.environ, ladder.BACKOFF_FIRST))
            if step.action == "retry" or (step.action == "block" and foreground and step.wait):
                last = end.attempt
                ui.note(f"attempt {last.n} of {task.max_attempts}: {last.failure_class}: {printable(step.why)}; "
                        + (f"another attempt in {step.wait:.0f}s" if step.wait else "another attempt"))
                store.save(task)
                time.sleep(step.wait)  # Ctrl-C here cancels, as anywhere
                carry_on = step.carry_on
                continue
            break
    except KeyboardInterrupt as exc:  # between attempts
        step = ladder.Step(action="cancel", why=interrupt.reason_of(exc))
    with interrupt.deferred():
        if step is not None and step.action == "block":
            _block(ctx, store, task, step)
            return RunResult(task=task, exit_code=1)
        task.finished = time.time()
        if step is None or step.action in ("fail", "retry", "block"):
            task.status, task.error = "FAILED", step.why if step else "interrupted"
        elif step.action == "cancel":
            task.status, task.error = "CANCELLED", step.why
        else:
            task.status, task.error, task.failure_class = "COMPLETE", None, None
        record_end(store, task, tdir)
    if error is not None and raise_setup_errors and task.status == "FAILED" and not any(
            a.started and a.failure_class not in ("infra",) for a in attempts):
        raise error  # the agent never ran: tsk run shows the error as it is (config: exit 2)
    return RunResult(task=task, exit_code=0 if task.status == "COMPLETE" else 1)


def _next_plan(ctx: Context, task: Task, tdir: Path, attempts: list[Attempt], *, carry_on: bool) -> AttemptPlan:
    """What the next attempt starts from and knows. The first starts from the task's snapshot; a later one
    from the last attempt's work when it brought some back, else from the task's snapshot again, and,
    after an agent-side failure, with the failure in hand and the agent's own session resumed."""
    from tsk.snapshot.take import load_snapshot, renew, take_snapshot

    n = len(attempts) + 1
    if n > 1 or not (tdir / "git").is_dir():
        if (task.result_branch or task.result_ref) and task.result_commit:
            # from the repo the task's snapshot came from: the user's, or a worker's mirror of the remote
            take_snapshot(Path(load_snapshot(tdir).repo), tdir, data_dir=ctx.paths.data, branch=task.branch,
                          from_commit=task.result_commit)
        else:
            renew(load_snapshot(tdir), tdir, ctx.paths.data)
    if not carry_on or not attempts:
        return AttemptPlan(n=n)
    last = attempts[-1]
    previous = ladder.previous_attempt(last, task.max_attempts, log_tail(model.agent_log(tdir), 15))
    agent = agent_for(task_config(task))
    if not agent.structured_output:  # a script, not prose: it reads /tsk/previous-attempt.md if it wants
        return AttemptPlan(n=n, previous=previous)
    resume = last.session_id
    prompt = previous if resume else (tdir / "instructions.md").read_text() + "\n\n---\n\n" + previous
    return AttemptPlan(n=n, previous=previous, prompt=prompt, resume=resume)


def tally(task: Task, attempts: list[Attempt]) -> None:
    task.attempts = len(attempts)
    costs = [a.cost_usd for a in attempts if a.cost_usd is not None]
    turns = [a.turns for a in attempts if a.turns is not None]
    task.cost_usd = round(sum(costs), 6) if costs else None
    task.turns = sum(turns) if turns else None
    task.failure_class = attempts[-1].failure_class


def _block(ctx: Context, store: RunStore, task: Task, step: ladder.Step) -> None:
    """BLOCKED until the back-off passes (and the agent's other tasks held as long), or, for refused
    credentials, until they change: the server queues it again then."""
    now = time.time()
    task.blocked = step.why
    task.blocked_until = now + step.wait if step.wait else None
    cfg = task_config(task)
    if not step.wait:
        agent = agent_for(cfg)
        task.credential_digest = agent.credential_digest(Path.home(), ctx.environ)
        notify(f"tsk: {task.agent} credentials refused", f"task {task.id} is blocked until they change",
               ctx.environ)
    if step.hold_agent and task.blocked_until is not None:
        store.hold_agent(task.agent, task.blocked_until, step.why)
    try:
        store.transition(task.id, "BLOCKED", step.why, task=task, allowed=("RUNNING",))
    except Conflict:
        return
    model.save(task, model.task_dir(ctx.paths.data, task.id))


def record_end(store: RunStore, task: Task, tdir: Path) -> None:
    secrets.forget(tdir)  # the task has ended: its secrets have no more use
    remove_tree(tdir / "changes")  # nor its snapshot's uncommitted files
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
    objects it needs; an attempt that adds none leaves an earlier attempt's branch as it is. Returns
    the notes on what did not come back, also kept in the task's log."""
    from tsk.snapshot.fetch import fetch_result
    from tsk.snapshot.take import load_snapshot

    # the sandbox wrote it: it may be a link, a FIFO or a huge file; a commit id is all it may hold
    raw = read_bounded(model.output(tdir) / "base-commit", 128)
    base = raw.decode(errors="replace").strip() if raw else ""
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", base):
        base = ""
    fetched = fetch_result(load_snapshot(tdir), base=base or None, git_town=task.config.get("git_town") is True)
    if base and task.baseline_commit is None:  # the first attempt's: later ones start from earlier work
        task.baseline_commit = base
    if fetched.branch is not None:
        # a later attempt starts from the earlier ones' work: its commits come on top of theirs
        task.commits = (task.commits if task.result_branch else 0) + fetched.commits
        task.result_branch, task.result_commit = fetched.branch, fetched.head
    elif not task.result_branch:  # nothing of this attempt, nor of an earlier one
        task.commits, task.result_commit = 0, task.source_commit
    if fetched.notes:
        log = model.agent_log(tdir)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            for note in fetched.notes:
                out.write(encode_event(Message(f"tsk: {note}", role="warning")) + b"\n")
    return fetched.notes
