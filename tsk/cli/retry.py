"""`tsk retry`: queue ended tasks again, with upstream tsk's flags to change them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from cyclopts import Parameter

from tsk.cli.engine_opt import EngineOpt
from tsk.cli.queue import JsonOpt, ParentOpt, outcomes
from tsk.cli.run import AgentOpt, EditOpt, ModelOpt, NameOpt, PrivOpt, ProjectOpt, StackOpt, SudoOpt
from tsk.cli.task_opts import DeviceOpt, DindOpt, devices_of
from tsk.context import Context
from tsk.errors import UsageError

if TYPE_CHECKING:
    from tsk.queue.retry import RetryOverrides
    from tsk.tasks.model import Task

NoChildren = Annotated[bool, Parameter(negative=(), help=(
    "Retry only these tasks, not the tasks that depend on them (and do not ask)."))]
FromCwd = Annotated[bool, Parameter(negative=(), help=(
    "Start from the repository here (its working tree, as `tsk add` would) instead of the old task's "
    "repository or its parents' results."))]


def retry(
    *ids: str,
    name: NameOpt = None,
    edit: EditOpt = False,
    agent: AgentOpt = None,
    stack: StackOpt = None,
    project: ProjectOpt = None,
    parent: ParentOpt = None,
    model: ModelOpt = None,
    sudo: SudoOpt = False,
    privileged: PrivOpt = False,
    dind: DindOpt = False,
    device: DeviceOpt = None,
    from_cwd: FromCwd = False,
    no_children: NoChildren = False,
    json: JsonOpt = False,
    container_engine: EngineOpt = None,
) -> int:
    """Queue each task again (same instructions and config, a fresh snapshot); the flags change what
    they name in the task retried (its dependents keep their own).

    Its dependents follow it; on a terminal tsk asks first (and, for a task with parents, whether to
    start from their results again). Without a terminal the answers are yes: --no-children and
    --from-cwd say no."""
    from tsk.queue.retry import RetryOverrides
    from tsk.queue.retry import retry as retry_tasks

    if not ids:
        raise UsageError("tsk retry needs the id of a task to retry", hint="see `tsk list` for task ids")
    if agent is not None and "," in agent:
        raise UsageError(f"-a {agent}: a retry has one agent", hint="retry once per agent, or use `tsk add -a a,b`")
    ctx = Context(container_engine=container_engine)
    asking = sys.stdin.isatty() and sys.stdout.isatty() and not json
    from_repo = str(ctx.find_repo(None)) if from_cwd else None
    overrides = RetryOverrides(
        name=name, agent=agent, stack=stack, project=project, model=model, sudo=sudo or None,
        privileged=privileged or None, dind=dind or None, devices=devices_of(device),
        container_engine=ctx.engine_name if container_engine else None,
        parents=tuple(parent) if parent else None, from_repo=from_repo)
    if asking and from_repo is None and parent is None:
        overrides = _ask_parents(ctx, list(ids), overrides)
    done = retry_tasks(ctx, list(ids), children=not no_children, overrides=overrides,
                       edit=_editor(ctx) if edit else None, ask_children=_ask_children if asking else None)
    outcomes(done, json)
    return 0


def confirm(question: str) -> bool:
    """A yes/no question on the terminal; yes unless the answer starts with n."""
    try:
        answer = input(f"{question} [Y/n] ")
    except EOFError:
        return True
    return not answer.strip().lower().startswith("n")


def _ask_children(task: Task, children: list[Task]) -> bool:
    names = ", ".join(f"{c.name} ({c.id})" for c in children[:10]) + (" ..." if len(children) > 10 else "")
    print(f"task {task.id} has {len(children)} dependent task(s): {names}")
    return confirm("Retry them too?")


def _ask_parents(ctx: Context, refs: list[str], overrides: RetryOverrides) -> RetryOverrides:
    """Upstream asks whether a child starts from its parent's repository again; here: from its parents'
    results again (yes), or from the repository here (no, as --from-cwd)."""
    import msgspec

    from tsk.queue.stores import open_store

    store = open_store(ctx)
    try:
        tasks = [store.get(store.resolve(r)) for r in refs]
    finally:
        store.close()
    with_parents = [t for t in tasks if t is not None and t.parents]
    if not with_parents:
        return overrides
    shown = ", ".join(f"{t.id} (after {', '.join(t.parents)})" for t in with_parents)
    print(f"task(s) with parents: {shown}")
    if confirm("Start from the parents' results again?"):
        return overrides
    return msgspec.structs.replace(overrides, from_repo=str(ctx.find_repo(None)))


def _editor(ctx: Context) -> Callable[[str], str]:
    from tsk.recipes.prompt import edit_instructions, editor_from_env

    def edit(text: str) -> str:
        return edit_instructions(text, editor_from_env(ctx.environ), sys.stdin.isatty() and sys.stdout.isatty())

    return edit

