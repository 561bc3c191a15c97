"""`tsk review [ID] [--base REF]`, as upstream's: the user's feedback on a task's result (from
`review_command`, else $EDITOR) becomes a `tsk-review` task that starts from that result (a child of
the task) and comes back as its own branch. Without an ID, the current branch names the task
(`tsk/<type>/<name>/<id>`); `--base REF` reviews the current branch against REF instead."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from tsk.cli.engine_opt import EngineOpt
from tsk.cli.queue import report_queued
from tsk.cli.run import AgentOpt, EditOpt, NameOpt, NoIsolation, RepoOpt, StackOpt
from tsk.cli.task_opts import DindOpt
from tsk.context import Context
from tsk.errors import TskError, UsageError

REVIEW_TYPE = "tsk-review"
_MAX_FEEDBACK = 1 << 20  # what a review command may print


def review(task_id: Annotated[str | None, Parameter(help="The task to review (default: the one the current "
                                                         "branch is the result of).")] = None, *,
           base: Annotated[str | None, Parameter(help=(
               "Review the current branch against this ref instead of a task's result."))] = None,
           name: NameOpt = None, agent: AgentOpt = None, stack: StackOpt = None, repo: RepoOpt = None,
           edit: EditOpt = False, no_network_isolation: NoIsolation = False, dind: DindOpt = False,
           json: Annotated[bool, Parameter(negative=(), help="Print the queued task as JSON.")] = False,
           container_engine: EngineOpt = None) -> int:
    """Queue your review of a task's result as a task that starts from that result.

    The feedback is what `review_command` prints (placeholders {{base}}, {{version}} and
    {{review_file}}: the reviewed range and a file the command may write instead), else what you
    write in $EDITOR. Empty feedback queues nothing."""
    from tsk.queue.control import add as add_tasks
    from tsk.queue.control import resolve_parent
    from tsk.queue.stores import open_store
    from tsk.sandbox.runner import RunRequest
    from tsk.snapshot import git as g

    if task_id is not None and base is not None:
        raise UsageError("give a task ID or --base, not both")
    ctx = Context(container_engine=container_engine)
    top = ctx.find_repo(None if repo is None else Path(repo))
    branch = g.current_branch(top)
    parents: tuple[str, ...] = ()
    if base is not None:
        base_sha = g.resolve_commit(top, base) or ""
        if not base_sha:
            raise UsageError(f"--base {base}: no such commit in {top}")
        if branch is None:
            raise UsageError("a review with --base needs a branch checked out (HEAD is detached)")
        version: str = g.resolve_commit(top, "HEAD") or ""
        default_name, from_branch = "review1", branch
    else:
        task_id = task_id or _task_of_branch(branch)
        store = open_store(ctx)
        try:
            task = store.get(resolve_parent(store, task_id))
            listed = store.listing()
        finally:
            store.close()
        if task is None:
            raise UsageError(f"no task {task_id}")
        if task.status != "COMPLETE" or not task.result_branch:
            what = "" if task.result_branch else ", with no result branch"
            raise UsageError(f"task {task.id} is {task.status}{what}",
                             hint="only a completed task with a result can be reviewed")
        base_sha, version = task.source_commit or "", task.result_commit or task.result_branch or ""
        root = task.name.split("-review")[0] if task.type == REVIEW_TYPE else task.name
        done = sum(1 for t in listed if t.type == REVIEW_TYPE and t.name.startswith(f"{root}-review"))
        default_name, parents, from_branch = f"{root}-review{done + 1}", (task.id,), None
    feedback = _feedback(ctx, top, base_sha, version)
    if not feedback.strip():
        print("tsk: no review feedback given; nothing queued", file=sys.stderr)
        return 0
    if edit:
        from tsk.recipes.prompt import edit_instructions, editor_from_env

        feedback = edit_instructions(feedback, editor_from_env(ctx.environ), sys.stdin.isatty() and sys.stdout.isatty())
    instructions = (f"Review feedback on the changes {base_sha[:12]}..{version[:12]}; address each point.\n\n"
                    f"{feedback.strip()}\n")
    req = RunRequest(instructions=instructions, type=REVIEW_TYPE, name=name or default_name, repo=str(top),
                     stack=stack, from_branch=from_branch, network_isolation=not no_network_isolation,
                     dind=dind or None)
    report_queued(ctx, add_tasks(ctx, req, agents=(agent,) if agent else (), parents=parents), json=json)
    return 0


def _task_of_branch(branch: str | None) -> str:
    parts = (branch or "").split("/")
    if len(parts) >= 4 and parts[0] == "tsk":
        return parts[-1]
    raise UsageError("the current branch is not a task's result branch (tsk/<type>/<name>/<id>)",
                     hint="give the task's ID (`tsk review ID`), or --base REF to review this branch")


def _feedback(ctx: Context, top: Path, base: str, version: str) -> str:
    """What review_command prints (or writes to {{review_file}}), else what the user writes in $EDITOR."""
    from tsk.files import read_bounded

    command = ctx.config(top).review_command
    fd, name = tempfile.mkstemp(prefix="tsk-review-", suffix=".md")
    os.close(fd)
    review_file = Path(name)
    try:
        if command:
            cmd = command.replace("{{base}}", base).replace("{{version}}", version).replace("{{review_file}}", name)
            from tsk.engine import proc
            from tsk.text import one_line

            done = proc.run(["sh", "-c", cmd], cwd=top, check=False)
            if done.returncode != 0:
                said = one_line(done.stderr[-300:].decode(errors="replace"))
                raise TskError(f"review_command exited with code {done.returncode}: {said}; nothing queued",
                               hint="fix review_command in tsk.toml, or run it by hand to see why")
            out = done.stdout[:_MAX_FEEDBACK].decode(errors="replace")
            written = read_bounded(review_file, _MAX_FEEDBACK) or b""
            return out if out.strip() else written.decode(errors="replace")
        from tsk.recipes.prompt import edit_instructions, editor_from_env

        return edit_instructions("", editor_from_env(ctx.environ), sys.stdin.isatty() and sys.stdout.isatty())
    finally:
        review_file.unlink(missing_ok=True)
