"""The queue's commands: `tsk add`, `list`, `wait`, `cancel`, `delete`, `clean` (`retry` is retry.py's).
None needs a server or an engine except to stop a running task."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from cyclopts import Parameter

from tsk.cli.engine_opt import EngineOpt
from tsk.cli.render import emit_json
from tsk.cli.run import (
    AgentOpt,
    AttemptsOpt,
    BranchOpt,
    BudgetOpt,
    EditOpt,
    IdleOpt,
    ModelOpt,
    NameOpt,
    NoIsolation,
    PrivOpt,
    ProjectOpt,
    PromptFile,
    PromptOpt,
    RepoOpt,
    StackOpt,
    SudoOpt,
    TimeoutOpt,
    TypeOpt,
    ValidateOpt,
    build_instructions,
    options_of,
)
from tsk.cli.task_opts import DescriptionOpt, DeviceOpt, DindOpt, devices_of, prompt_of
from tsk.context import Context
from tsk.errors import UsageError
from tsk.text import printable

if TYPE_CHECKING:
    from tsk.queue.control import Outcome, WaitResult
    from tsk.tasks.model import Task

ParentOpt = Annotated[list[str] | None, Parameter(name="--parent", help=(
    "Start from this task's result (repeat for several: from the merge of their results)."))]
ScopeOpt = Annotated[list[str] | None, Parameter(name="--scope", help=(
    "A path glob the task may write, gitignore style (repeat for several): no two tasks whose scopes "
    "overlap run at once, and the later starts from the earlier's result."))]
WaitOpt = Annotated[bool, Parameter(name=["--wait", "-w"], negative=(),
                                     help="Block until the task(s) end, then print the results.")]
JsonOpt = Annotated[bool, Parameter(negative=(), help="Print JSON for scripts.")]
WaitTimeoutOpt = Annotated[float | None, Parameter(name="--timeout", help="Give up waiting after this many seconds.")]


def report_queued(ctx: Context, tasks: list[Task], *, json: bool) -> None:
    """What `tsk add` (and `tsk review`) print for the tasks just queued: their ids (or their records as
    JSON) on stdout, a line each on stderr, and a word when no server will run them."""
    from tsk.queue.server import server_running

    if json:
        emit_json(tasks)
    for t in tasks:
        if not json:
            print(t.id)
        print(f"tsk: queued {t.id} {t.name} ({t.agent}, {t.status})", file=sys.stderr)
    if not server_running(ctx.paths.data):
        print("tsk: no server is running; start one with `tsk server start`", file=sys.stderr)


def add(
    *,
    type: TypeOpt = "generic",
    name: NameOpt = None,
    prompt: PromptOpt = None,
    description: DescriptionOpt = None,
    prompt_file: PromptFile = None,
    edit: EditOpt = False,
    agent: AgentOpt = None,
    stack: StackOpt = None,
    project: ProjectOpt = None,
    repo: RepoOpt = None,
    branch: BranchOpt = None,
    parent: ParentOpt = None,
    scope: ScopeOpt = None,
    wait: WaitOpt = False,
    no_network_isolation: NoIsolation = False,
    sudo: SudoOpt = False,
    privileged: PrivOpt = False,
    dind: DindOpt = False,
    device: DeviceOpt = None,
    timeout: TimeoutOpt = None,
    idle_timeout: IdleOpt = None,
    budget: BudgetOpt = None,
    attempts: AttemptsOpt = None,
    validate: ValidateOpt = None,
    model: ModelOpt = None,
    json: JsonOpt = False,
    container_engine: EngineOpt = None,
) -> int:
    """Queue a task for the server (the repo is snapshotted now); `-a a,b` queues one task per agent."""
    from tsk.queue.control import add as add_tasks
    from tsk.queue.server import server_running
    from tsk.sandbox.runner import RunRequest

    ctx = Context(container_engine=container_engine)
    repo_dir = ctx.find_repo(None if repo is None else Path(repo))
    devices = devices_of(device)
    agents = tuple(a.strip() for a in agent.split(",") if a.strip()) if agent else ()
    instructions = build_instructions(ctx, repo_dir, type, prompt_of(prompt, description), prompt_file, edit,
                                      agents=agents or (None,), project=project)
    req = RunRequest(instructions=instructions, type=type, name=name, repo=str(repo_dir), project=project,
                     stack=stack, from_branch=branch, network_isolation=not no_network_isolation,
                     sudo=sudo or None, privileged=privileged or None, dind=dind or None, devices=devices,
                     options=options_of(timeout, idle_timeout, budget, attempts, validate, model),
                     scope=scopes_of(scope or ()))
    tasks = add_tasks(ctx, req, agents=agents, parents=tuple(parent or ()))
    if not wait:
        report_queued(ctx, tasks, json=json)
        return 0
    if not server_running(ctx.paths.data):
        print("tsk: waiting, but no server is running: start one with `tsk server start`", file=sys.stderr)
    return _waited(ctx, [t.id for t in tasks], json=json, timeout=None)


def scopes_of(globs: Iterable[str]) -> tuple[str, ...]:
    from tsk.plans import scopes

    out: list[str] = []
    for g in globs:
        why = scopes.problem(g)
        if why:
            raise UsageError(f"--scope: {why}",
                             hint="give a path glob inside the repository, e.g. --scope 'src/api/**'")
        out.append(scopes.clean(g))
    return tuple(dict.fromkeys(out))


def list_(*, json: JsonOpt = False) -> int:
    """List tasks: active first, then newest; a summary line at the end."""
    from tsk.cli.listing import show_list

    return show_list(json=json)


def wait(*ids: str, json: JsonOpt = False, timeout: WaitTimeoutOpt = None) -> int:
    """Block until the tasks end; print each one's status, branch, duration, error and last log lines.
    Exit 0 only if all completed."""
    return _waited(Context(), list(ids), json=json, timeout=timeout)


def _waited(ctx: Context, ids: list[str], *, json: bool, timeout: float | None) -> int:
    from tsk.queue.control import wait as wait_tasks

    results = wait_tasks(ctx, ids, timeout=timeout)
    if json:
        emit_json(results)
    else:
        for r in results:
            _print_result(r)
    return 0 if all(r.status == "COMPLETE" for r in results) else 1


def _print_result(r: WaitResult) -> None:
    took = "-" if r.duration is None else f"{r.duration:.1f}s"
    print(f"{r.id} {r.name} {r.status} in {took}: " + (f"branch {r.branch}" if r.branch else "no branch"))
    spent = [f"attempt {r.attempts} of {r.max_attempts}"] if r.attempts else []
    if r.cost_usd is not None:
        spent.append(f"${r.cost_usd:.4f}")
    if r.turns is not None:
        spent.append(f"{r.turns} turn" + ("" if r.turns == 1 else "s"))
    if spent:
        print("  " + ", ".join(spent))
    if r.error:
        print("  error: " + (f"{r.failure_class}: " if r.failure_class else "") + printable(r.error))
    if r.not_fetched:
        print("  result not fetched from the git remote: " + printable(r.not_fetched))
    for line in r.log_tail:
        print(f"  | {printable(line)}")


def outcomes(outcomes: list[Outcome], json: bool) -> None:
    if json:
        emit_json(outcomes)
        return
    for o in outcomes:
        print(f"{o.id}: {o.action}" + (f" as {o.new_id}" if o.new_id else ""))
        if o.note:
            print(f"tsk: warning: {o.id}: {printable(o.note)}", file=sys.stderr)


def cancel(*ids: str, json: JsonOpt = False) -> int:
    """Cancel tasks: a queued one at once; a running one's sandbox is stopped and its partial work comes back."""
    from tsk.queue.control import cancel as cancel_tasks

    outcomes(cancel_tasks(Context(), list(ids)), json)
    return 0


def delete(*ids: str, json: JsonOpt = False) -> int:
    """Delete tasks and their task dirs (a running one is cancelled first); branches stay in the repo."""
    from tsk.queue.control import delete as delete_tasks

    outcomes(delete_tasks(Context(), list(ids)), json)
    return 0


def clean(*, json: JsonOpt = False) -> int:
    """Remove completed tasks and their dirs, except parents of tasks still pending."""
    from tsk.queue.control import clean as clean_tasks

    gone = clean_tasks(Context())
    if json:
        emit_json(gone)
    else:
        print(f"removed {len(gone)} completed task(s)")
    return 0
