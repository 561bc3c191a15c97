"""`tsk shell`: the same sandbox as `tsk run`, with an interactive shell instead of the agent."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from tsk import interrupt
from tsk.cli.engine_opt import EngineOpt
from tsk.cli.run import (
    AgentOpt,
    BranchOpt,
    EditOpt,
    NameOpt,
    NoIsolation,
    PrivOpt,
    ProjectOpt,
    PromptFile,
    PromptOpt,
    RepoOpt,
    StackOpt,
    SudoOpt,
    TerminalRun,
    build_instructions,
)
from tsk.cli.task_opts import DescriptionOpt, DeviceOpt, DindOpt, devices_of, prompt_of
from tsk.cli.title import terminal_title
from tsk.context import Context
from tsk.errors import UsageError
from tsk.text import printable

ShellType = Annotated[str, Parameter(name=["--type", "-t"], help=(
    "Template (recipe) of the instructions shown when the shell opens (default `shell`)."))]


def shell(
    *,
    name: NameOpt = None,
    type: ShellType = "shell",
    prompt: PromptOpt = None,
    description: DescriptionOpt = None,
    prompt_file: PromptFile = None,
    edit: EditOpt = False,
    agent: AgentOpt = None,
    stack: StackOpt = None,
    project: ProjectOpt = None,
    repo: RepoOpt = None,
    branch: BranchOpt = None,
    no_network_isolation: NoIsolation = False,
    sudo: SudoOpt = False,
    privileged: PrivOpt = False,
    dind: DindOpt = False,
    device: DeviceOpt = None,
    container_engine: EngineOpt = None,
) -> int:
    """Open a shell in a task sandbox (agent installed, not started); on exit the work comes back as a branch.

    The shell opens under the task's instructions (-t, -p, --prompt-file, -e) and the command the agent
    would run with them."""
    from tsk.queue.stores import open_store
    from tsk.sandbox.runner import RunRequest
    from tsk.sandbox.shell import shell_task

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("tsk shell needs a terminal", hint="run it from an interactive terminal, or use tsk run")
    interrupt.install("tsk shell")  # a closed terminal (SIGHUP) or SIGTERM ends the task, keeping its work
    ctx = Context(container_engine=container_engine)
    repo_dir = ctx.find_repo(None if repo is None else Path(repo))
    devices = devices_of(device)
    # nothing runs them: the shell only shows them, so any template goes, whichever the agent
    instructions = build_instructions(ctx, repo_dir, type, prompt_of(prompt, description), prompt_file, edit,
                                      agents=())
    req = RunRequest(instructions=instructions, type=type, name=name or "shell", repo=str(repo_dir),
                     project=project, agent=agent, stack=stack, from_branch=branch,
                     network_isolation=not no_network_isolation, sudo=sudo or None, privileged=privileged or None,
                     dind=dind or None, devices=devices)
    ui = TerminalRun()
    ui.note("opening a shell in the sandbox; exit it to bring the work back as a branch")
    store = open_store(ctx)
    try:
        with terminal_title(f"tsk shell: {req.name}", ctx.environ):
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
