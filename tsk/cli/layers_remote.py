"""`tsk layers push|pull|lock`: the registry cache and the lock file."""

from __future__ import annotations

from typing import Annotated

from cyclopts import Parameter

from tsk.cli.layers import Agents, AllStacks, Json, Project, Registry, Repo, Stacks, _request, render_report
from tsk.cli.render import console, emit_json
from tsk.context import Context


def push(
    *, stack: Stacks = (), agent: Agents = (), all_stacks: AllStacks = False, project: Project = None,
    repo: Repo = None, registry: Registry = None, json: Json = False,
) -> int:
    """Push every layer of the targets that the registry lacks, each by its key (they must be built here)."""
    from tsk.cli.progress import BuildProgress
    from tsk.layers import service

    with BuildProgress(quiet=json) as progress:
        report = service.push(Context(), _request(repo, project, stack, agent, all_stacks), registry=registry,
                              events=progress)
    return render_report(report, json)


def pull(
    *, stack: Stacks = (), agent: Agents = (), all_stacks: AllStacks = False, project: Project = None,
    repo: Repo = None, registry: Registry = None, json: Json = False,
) -> int:
    """Pull every layer of the targets that is not here, by its key; build nothing. Exit 1 if any is missing."""
    from tsk.cli.progress import BuildProgress
    from tsk.layers import service

    with BuildProgress(quiet=json) as progress:
        report = service.pull(Context(), _request(repo, project, stack, agent, all_stacks), registry=registry,
                              events=progress)
    return render_report(report, json)


def lock(
    *, check: Annotated[bool, Parameter(
        negative=(), help="Compare the lock with the current inputs; exit 1 naming each one that changed.")] = False,
    stack: Stacks = (), agent: Agents = (), all_stacks: AllStacks = False, project: Project = None,
    repo: Repo = None, json: Json = False,
) -> int:
    """Write .tsk/layers.lock: each layer's key and the digests of its inputs, for each target.

    With --check, exit 1 and name every input that no longer matches (for CI); without target
    flags it checks the targets the lock was written for."""
    from tsk.layers.lockfile import lock as run_lock

    report = run_lock(Context(), _request(repo, project, stack, agent, all_stacks), check=check)
    if json:
        emit_json(report)
        return 0 if report.ok else 1
    out = console()
    if report.written:
        out.print(f"wrote {report.path} ({report.layers} layers)", markup=False)
    elif report.ok:
        out.print(f"{report.path}: up to date ({report.layers} layers)", markup=False)
    else:
        err = console(stderr=True)
        err.print(f"{report.path} is out of date:", markup=False)
        for change in report.changes:
            err.print(f"  {change}", markup=False)
        err.print("run `tsk layers lock` and commit the result", markup=False)
    return 0 if report.ok else 1
