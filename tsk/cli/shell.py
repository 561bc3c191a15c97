"""`tsk shell`: the same sandbox as `tsk run`, with an interactive shell instead of the agent."""

from __future__ import annotations

import sys
from pathlib import Path

from tsk import interrupt
from tsk.cli.engine_opt import EngineOpt
from tsk.cli.run import AgentOpt, BranchOpt, NameOpt, NoIsolation, ProjectOpt, RepoOpt, StackOpt, SudoOpt, TerminalRun
from tsk.context import Context
from tsk.errors import UsageError
from tsk.text import printable


def shell(
    *,
    name: NameOpt = None,
    agent: AgentOpt = None,
    stack: StackOpt = None,
    project: ProjectOpt = None,
    repo: RepoOpt = None,
    branch: BranchOpt = None,
    no_network_isolation: NoIsolation = False,
    sudo: SudoOpt = False,
    container_engine: EngineOpt = None,
) -> int:
    """Open a shell in a task sandbox (agent installed, not started); on exit the work comes back as a branch."""
    from tsk.queue.stores import open_store
    from tsk.sandbox.runner import RunRequest
    from tsk.sandbox.shell import shell_task

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("tsk shell needs a terminal", hint="run it from an interactive terminal, or use tsk run")
    interrupt.install("tsk shell")  # a closed terminal (SIGHUP) or SIGTERM ends the task, keeping its work
    ctx = Context(container_engine=container_engine)
    repo_dir = ctx.find_repo(None if repo is None else Path(repo))
    req = RunRequest(instructions="(interactive shell)\n", type="shell", name=name or "shell", repo=str(repo_dir),
                     project=project, agent=agent, stack=stack, from_branch=branch,
                     network_isolation=not no_network_isolation, sudo=sudo or None)
    ui = TerminalRun()
    ui.note("opening a shell in the sandbox; exit it to bring the work back as a branch")
    store = open_store(ctx)
    try:
        result = shell_task(ctx, req, ui, store)
    finally:
        store.close()
    task = result.task
    print(f"tsk: task {task.id} {task.status}" + (f": {printable(task.error)}" if task.error else ""),
          file=sys.stderr)
    if task.result_branch:
        print(f"tsk: branch {task.result_branch} ({task.commits} commit(s))")
    else:
        print("tsk: no changes, no branch")
    return result.exit_code
