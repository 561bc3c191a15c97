"""`tsk run`: one task in a sandbox, now, with its log on the terminal and its branch at the end."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from cyclopts import Parameter

from tsk import interrupt
from tsk.cli.engine_opt import EngineOpt
from tsk.cli.render import emit_json
from tsk.cli.task_opts import DescriptionOpt, DeviceOpt, DindOpt, devices_of, prompt_of
from tsk.cli.title import terminal_title
from tsk.context import Context
from tsk.tasks.options import TaskOptions
from tsk.text import printable

if TYPE_CHECKING:
    from tsk.sandbox.runner import RunRequest


class TerminalRun:
    """Renders a run for people: build progress, phase timings, the agent's events. A terminal that went
    away (SIGHUP: its window closed) stops taking output; the task still ends properly."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def _print(self, text: str, *, err: bool = False) -> None:
        if self.quiet:
            return
        with contextlib.suppress(OSError, ValueError):  # EIO or EPIPE: nobody is reading any more
            print(text, file=sys.stderr if err else sys.stdout, flush=True)

    def phase(self, name: str, seconds: float) -> None:
        if seconds >= 0.5:
            self._print(f"tsk: {name} took {seconds:.1f}s", err=True)

    def line(self, text: str) -> None:
        self._print(printable(text))

    def note(self, text: str) -> None:
        self._print(f"tsk: {printable(text)}", err=True)

    def build_events(self):  # type: ignore[no-untyped-def]
        from tsk.cli.progress import BuildProgress

        return BuildProgress(quiet=self.quiet)


TypeOpt = Annotated[str, Parameter(name=["--type", "-t"],
                                   help="Template (recipe) to use; `generic` = the prompt alone.")]
NameOpt = Annotated[str | None, Parameter(name=["--name", "-n"], help="Short name for the task and its branch.")]
PromptOpt = Annotated[str | None, Parameter(name=["--prompt", "-p"], help="What the agent should do.")]
PromptFile = Annotated[str | None, Parameter(help="Read the prompt from a file (`-` for stdin).")]
EditOpt = Annotated[bool, Parameter(name=["--edit", "-e"], negative=(), help="Edit the instructions in $EDITOR first.")]
AgentOpt = Annotated[str | None, Parameter(name=["--agent", "-a"],
                                           help="Agent: claude, codex, exec, or one from config.")]
StackOpt = Annotated[str | None, Parameter(help="Stack layer to use instead of the configured or detected one.")]
ProjectOpt = Annotated[str | None, Parameter(help="Project name whose [project.NAME] settings apply.")]
RepoOpt = Annotated[str | None, Parameter(help="Repository to work on (default: the current one).")]
BranchOpt = Annotated[str | None, Parameter(
    help="Start from this branch's committed head instead of the working tree.")]
NoIsolation = Annotated[bool, Parameter(negative=(),
                                        help="Give the sandbox the engine's normal network (no proxy).")]
SudoOpt = Annotated[bool, Parameter(negative=(), help="Let the agent use sudo inside the sandbox.")]
PrivOpt = Annotated[bool, Parameter(negative=(), help="Run the sandbox privileged (dangerous).")]
JsonOpt = Annotated[bool, Parameter(negative=(), help="Print the task record as JSON at the end.")]


TimeoutOpt = Annotated[str | None, Parameter(help="Wall clock of one attempt: 90s, 20m, 2h (default 2h).")]
IdleOpt = Annotated[str | None, Parameter(help="Stalled after this long with no agent event or output (default 20m).")]
BudgetOpt = Annotated[float | None, Parameter(name="--budget", help=(
    "Stop the agent once the task's attempts together cost this many USD, as the agent reports it."))]
AttemptsOpt = Annotated[int | None, Parameter(help="How many attempts at most (default 3).")]
ModelOpt = Annotated[str | None, Parameter(name=["--model", "-m"], help=(
    "The agent's model, e.g. claude-sonnet-4-5 or gpt-5-codex (default: the agent's own)."))]
ValidateOpt = Annotated[str | None, Parameter(help=(
    "A command run in the sandbox after the agent; non-zero fails the attempt (class `validation`)."))]


def options_of(timeout: str | None, idle_timeout: str | None, budget: float | None, attempts: int | None,
              validate: str | None, model: str | None = None) -> TaskOptions:
    return TaskOptions(timeout=timeout, idle_timeout=idle_timeout, budget_usd=budget, max_attempts=attempts,
                  validate=validate, model=model)


def build_instructions(ctx: Context, repo_dir: Path, type: str, prompt: str | None, prompt_file: str | None,
                       edit: bool, *, agents: tuple[str | None, ...] = (None,), project: str | None = None) -> str:
    """The prompt (flag, file or pipe) rendered through the task template, optionally edited. `agents`:
    who will read it (None: the configured agent), checked against the template."""
    from tsk.recipes.prompt import edit_instructions, editor_from_env, read_prompt
    from tsk.recipes.render import refuse_prose_for_exec, render_task
    from tsk.recipes.store import search_paths

    text = read_prompt(prompt, prompt_file, sys.stdin, sys.stdin is not None and sys.stdin.isatty())
    rendered = render_task(type, text, search_paths(repo_dir, ctx.paths))
    for warning in rendered.warnings:
        print(f"tsk: warning: {warning}", file=sys.stderr)
    if rendered.template != "generic" and not rendered.script:
        readers = [a if a is not None else ctx.config(repo_dir, project=project).agent for a in agents]
        refuse_prose_for_exec(rendered.template, rendered.script, readers)
    instructions = rendered.instructions
    if edit:
        instructions = edit_instructions(instructions, editor_from_env(ctx.environ),
                                         sys.stdin.isatty() and sys.stdout.isatty())
    return instructions


def _title_name(req: RunRequest) -> str:
    """The name the task will have (tsk/sandbox/runner.py's create_task makes it the same way)."""
    from tsk.tasks.model import slug

    first_line = next((ln for ln in req.instructions.splitlines() if ln.strip()), "")
    return slug(req.name or first_line or "task")


def run(
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
    """Run one task now in a sandbox; its work comes back as branch tsk/<type>/<name>/<id>.

    Each attempt has limits (--timeout, --idle-timeout, --budget); a failed attempt is followed by
    another by the remediation ladder, up to --attempts; --validate decides "done"."""
    from tsk.queue.stores import open_store
    from tsk.sandbox.runner import RunRequest, run_task

    interrupt.install("tsk run")  # SIGTERM and SIGHUP cancel the task as Ctrl-C does, keeping its work
    ctx = Context(container_engine=container_engine)
    ctx.warm_engine()
    repo_dir = ctx.find_repo(None if repo is None else Path(repo))
    devices = devices_of(device)
    instructions = build_instructions(ctx, repo_dir, type, prompt_of(prompt, description), prompt_file, edit,
                                      agents=(agent,), project=project)
    req = RunRequest(instructions=instructions, type=type, name=name, repo=str(repo_dir), project=project,
                     agent=agent, stack=stack, from_branch=branch, network_isolation=not no_network_isolation,
                     sudo=sudo or None, privileged=privileged or None, dind=dind or None, devices=devices,
                     options=options_of(timeout, idle_timeout, budget, attempts, validate, model))
    ui = TerminalRun(quiet=json)
    if no_network_isolation:
        ui.note("network isolation is OFF for this task: the sandbox can reach anything the host can")
    store = open_store(ctx)
    try:
        with terminal_title(f"tsk run: {_title_name(req)}", ctx.environ):
            result = run_task(ctx, req, ui, store)
    finally:
        store.close()
    task = result.task
    if json:
        emit_json(task)
        return result.exit_code
    print(file=sys.stderr)
    order = ["snapshot", "image", "container_create", "proxy", "container_start", "prepare", "agent", "validate",
             "commit", "fetch", "cleanup"]
    parts = [f"{k} {task.timings[k]:.2f}s" for k in order if k in task.timings]
    print("tsk: phases" + (" (the last attempt's)" if task.attempts > 1 else "") + ": " + ", ".join(parts),
          file=sys.stderr)
    spent = [f"{task.attempts} attempt(s)"] if task.attempts > 1 else []
    if task.cost_usd is not None:
        spent.append(f"${task.cost_usd:.4f}")
    if task.turns is not None:
        spent.append(f"{task.turns} turn(s)")
    why = task.blocked if task.status == "BLOCKED" else task.error
    cls = f" ({task.failure_class})" if task.failure_class and task.status != "COMPLETE" else ""
    print(f"tsk: task {task.id} {task.status}{cls}" + (f": {printable(why)}" if why else "")
          + (f"; {', '.join(spent)}" if spent else ""), file=sys.stderr)
    if task.result_branch:
        base = (task.source_commit or "?")[:12]
        print(f"tsk: branch {task.result_branch} ({task.commits} commit(s) on {base})")
    else:
        print("tsk: no changes, no branch")
    return result.exit_code
