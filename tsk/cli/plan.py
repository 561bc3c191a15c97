"""`tsk plan apply|list|show|cancel|export`, and the commands on results: `tsk conflicts`, `tsk land`,
`tsk push`. Each calls one function of tsk/queue/plans.py and prints its answer (a table, or --json)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from tsk.cli.render import ago, emit_json
from tsk.context import Context
from tsk.text import printable

JsonOpt = Annotated[bool, Parameter(negative=(), help="Print JSON for scripts.")]
PlanOpt = Annotated[str | None, Parameter(name="--plan", help="Every task of this plan (its newest, if retried).")]
ApiOpt = Annotated[str | None, Parameter(name="--api", help=(
    "The GitHub REST API's base URL, for GitHub Enterprise (default: the host's own, or $TSK_GITHUB_API)."))]


def apply(
    file: Annotated[Path | None, Parameter(help=(
        "The plan: a task-orchestrator manifest or a task graph (JSON)."))] = None,
    /,
    *,
    name: Annotated[str | None, Parameter(help=(
        "The plan's name (default: the file's `project`, else its name)."))] = None,
    agent: Annotated[str | None, Parameter(name=["--agent", "-a"], help=(
        "The agent of every task that does not name its own."))] = None,
    from_task: Annotated[str | None, Parameter(help=(
        "Read the plan a task wrote: .tsk/plan.json on its result branch (the `plan` template asks for it)."))] = None,
    dry_run: Annotated[bool, Parameter(negative=(), help=(
        "Check the plan and print the schedule it implies; queue nothing."))] = False,
    api: ApiOpt = None,
    json: JsonOpt = False,
) -> int:
    """Queue one task per entry of a plan, all or none; phases and waves are gates, files and write_scope
    are write scopes, dependencies are parents."""
    from tsk.queue import plans

    ctx = Context()
    plan, document, repo = plans.read(ctx, file, from_task=from_task, name=name)
    done = plans.apply(ctx, plan, document, repo, agent=agent, dry_run=dry_run, api=api)
    if json:
        emit_json(done)
        return 0
    if done.schedule is not None:
        _print_schedule(done)
        return 0
    print(f"plan {done.plan}: {len(done.tasks)} task(s) queued")
    for row in done.tasks:
        why = f"  {printable(row['why'])}" if row["why"] else ""
        print(f"  {row['plan_id']:<16} {row['id']}  {row['status']:<8}{why}")
    from tsk.queue.server import server_running

    if not server_running(ctx.paths.data):
        print("tsk: no server is running; start one with `tsk server start`", file=sys.stderr)
    return 0


def _print_schedule(done: object) -> None:
    from tsk.queue.plans import Applied

    assert isinstance(done, Applied) and done.schedule is not None
    s = done.schedule
    print(f"plan {s.plan} (dry run: nothing queued)")
    for n, level in enumerate(s.levels):
        print(f"  step {n + 1}: {', '.join(level)}" + ("  (in parallel)" if len(level) > 1 else ""))
    for step in s.steps:
        if step.level is None:
            print(f"  {step.task}: never starts")
        for w in step.waits:
            print(f"    {step.task} waits: {printable(w.why)}")
        if step.start_from:
            print(f"    {step.task} starts from the result of {', '.join(step.start_from)}")


def list_(*, json: JsonOpt = False) -> int:
    """List plans: name, tasks by status, when each was applied."""
    from tsk.queue import plans

    rows = plans.list_plans(Context())
    if json:
        emit_json(rows)
        return 0
    if not rows:
        print("no plans yet: tsk plan apply FILE")
        return 0
    for r in rows:
        counts = ", ".join(f"{n} {w}" for w, n in sorted(r.counts.items()))
        print(f"{r.name:<24} {r.format:<8} {r.tasks:>3} task(s): {counts}  applied {ago(r.created)}"
              + ("  (cancelled)" if r.cancelled else ""))
    return 0


def show(name: str, /, *, no_refresh: Annotated[bool, Parameter(negative=(), help=(
        "Do not ask the forge for the state of open pull requests."))] = False,
         api: ApiOpt = None, json: JsonOpt = False) -> int:
    """The plan's graph: each task's status in the manifest's words, attempts, branch and pull request."""
    from tsk.queue import plans

    view = plans.show(Context(), name, refresh=not no_refresh, api=api)
    if json:
        emit_json(view)
        return 0
    print(f"plan {view.name} ({view.format}, from {printable(view.source)})" + (
        f": {printable(view.cancelled)}" if view.cancelled else ""))
    for t in view.tasks:
        deps = f" after {', '.join(t.depends_on)}" if t.depends_on else ""
        tries = f" {t.attempts}/{t.max_attempts}" if t.attempts else ""
        print(f"  {t.plan_id:<16} {t.status:<9} {t.task or '-':<14} {t.gate}{deps}{tries}")
        print(f"      {printable(t.title)}")
        if t.branch:
            print(f"      branch {printable(t.branch)}")
        if t.pr_url:
            print(f"      pull request #{t.pr_number} {printable(t.pr_url)}")
        if t.why:
            print(f"      {printable(t.why)}")
        if t.outside_scope:
            print(f"      changed outside its scope: {printable(', '.join(t.outside_scope))}")
    for note in view.notes:
        print(f"tsk: {printable(note)}", file=sys.stderr)
    return 0


def cancel(name: str, /, *, json: JsonOpt = False) -> int:
    """Cancel every task of the plan that has not ended; running ones keep their partial work."""
    from tsk.queue import plans

    outcomes = plans.cancel(Context(), name)
    if json:
        emit_json(outcomes)
    else:
        for o in outcomes:
            print(f"{o.id}: {o.action}")
        if not outcomes:
            print(f"plan {name}: no task left to cancel")
    return 0


def export(name: str, /, *, output: Annotated[Path | None, Parameter(name=["--output", "-o"], help=(
        "Write it to this file (refused if it exists) instead of stdout."))] = None) -> int:
    """The plan file back, with statuses, branches and pull request numbers filled in."""
    from tsk.errors import UsageError
    from tsk.plans.export import dumps
    from tsk.queue import plans

    text = dumps(plans.export_plan(Context(), name))
    if output is None:
        sys.stdout.write(text)
        return 0
    try:
        with open(output, "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise UsageError(f"{output} exists; tsk does not overwrite it", hint="name a new file") from None
    print(f"wrote {output}", file=sys.stderr)
    return 0


def conflicts(*ids: str, plan: PlanOpt = None, json: JsonOpt = False) -> int:
    """Merge every pair of the tasks' result branches in memory; print which conflict, in which files.
    Exit 1 when some pair conflicts."""
    from tsk.queue import plans

    report = plans.conflicts(Context(), ids, plan=plan)
    if json:
        emit_json(report)
        return 1 if report.matrix.conflicting() else 0
    name = report.tasks
    for p in report.matrix.pairs:
        verdict = "conflict in " + printable(", ".join(p.files)) if p.conflict else "merge cleanly"
        print(f"{name[p.a]} × {name[p.b]}: {verdict}")
    for tid, files in report.outside_scope.items():
        print(f"{tid} changed outside its scope: {printable(', '.join(files))}")
    for tid in report.without_result:
        print(f"{tid}: no result branch (yet)", file=sys.stderr)
    if not report.matrix.pairs:
        print("only one result branch: nothing to compare")
    return 1 if report.matrix.conflicting() else 0


def land(*ids: str, plan: PlanOpt = None, into: Annotated[str, Parameter(help=(
        "The branch to merge them onto; made from the plan's base when missing. Never one that is checked out."))],
         json: JsonOpt = False) -> int:
    """Merge the tasks' results onto a branch in dependency order, without touching your working tree or
    index; stop at the first conflict, naming its files (exit 1)."""
    from tsk.queue import plans

    done = plans.land(Context(), ids, plan=plan, into=into)
    r = done.report
    if json:
        emit_json(done)
        return 1 if r.conflict else 0
    print(f"{'made' if r.created else 'onto'} {into}" + (f" from {r.base[:12]}" if r.created else ""))
    for step in r.landed:
        print(f"  {printable(step.branch)}: {step.how}")
    for tid in done.skipped:
        print(f"  {tid}: changed nothing, nothing to land")
    if r.conflict:
        print(f"  {printable(r.conflict.branch)}: conflicts in {printable(', '.join(r.conflict.files))}; stopped",
              file=sys.stderr)
        if r.not_tried:
            print(f"  not tried: {printable(', '.join(r.not_tried))}", file=sys.stderr)
        print(f"tsk: resolve it on {into} (git checkout {into}; git merge {r.conflict.branch}), then land again",
              file=sys.stderr)
        return 1
    print(f"{into} is at {r.head[:12]}")
    return 0


def push(*ids: str, plan: PlanOpt = None,
         remote: Annotated[str, Parameter(help="The remote (a name or a URL) to push to.")] = "origin",
         pr: Annotated[bool, Parameter(negative=(), help="Open a pull request per task on GitHub.")] = False,
         draft: Annotated[bool, Parameter(negative=(), help="Open them as drafts.")] = False,
         base: Annotated[str | None, Parameter(help=(
             "The branch the pull requests are for (default: the task's --branch, else your current branch)."))] = None,
         api: ApiOpt = None, json: JsonOpt = False) -> int:
    """Push the tasks' result branches from this machine (the sandboxes hold no credentials); with --pr,
    open one pull request per task (token: GH_TOKEN, GITHUB_TOKEN or `gh auth token`)."""
    from tsk.queue import plans

    rows = plans.push(Context(), ids, plan=plan, remote=remote, pr=pr, draft=draft, base=base, api=api)
    if json:
        emit_json(rows)
    else:
        for r in rows:
            line = f"{r.task} {printable(r.branch or '-')}: {r.push}"
            if r.pr_url:
                line += f"; pull request #{r.pr_number} {printable(r.pr_url)}"
            if r.note:
                line += f" ({printable(r.note)})"
            print(line)
    return 1 if any(r.push in ("rejected", "error") for r in rows) else 0
