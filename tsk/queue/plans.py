"""The plan verbs behind `tsk plan apply|list|show|cancel|export`, `tsk conflicts`, `tsk land` and `tsk push`:
a plan file read and checked (tsk/plans/spec.py) becomes one queued task per entry, all or none; its
tasks are then ordinary tasks that the server runs as the scheduler lets them go (parents, gates, write
scopes: tsk/queue/scheduler.py). Results are compared, landed, pushed and turned into pull requests from
the host: the sandboxes hold no credentials."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from tsk.errors import UsageError
from tsk.files import remove_tree
from tsk.plans import dryrun, export, merges, pulls, spec
from tsk.plans.forge import ForgeError, GitHub, connect, redact_urls
from tsk.plans.jsonshape import PlanError, Problem
from tsk.plans.model import Gate, Plan, PlanTask
from tsk.plans.schedule import Node, order
from tsk.queue import control
from tsk.queue.stores import open_store
from tsk.snapshot import git as g
from tsk.tasks import model
from tsk.tasks.model import PlanRecord, Task
from tsk.tasks.options import TaskOptions
from tsk.tasks.store import ACTIVE, TaskStore
from tsk.text import one_line, printable

if TYPE_CHECKING:
    from tsk.context import Context

PLAN_IN_TASK = ".tsk/plan.json"  # where the `plan` recipe asks the agent to write its plan
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Applied(msgspec.Struct, kw_only=True):
    plan: str
    dry_run: bool
    tasks: list[dict[str, Any]] = []  # plan id, task id, status, why it waits
    schedule: dryrun.DryRun | None = None


class PlanTaskView(msgspec.Struct, kw_only=True):
    plan_id: str
    title: str
    gate: str
    depends_on: list[str]
    scope: list[str]
    task: str | None  # the tsk task, its newest when it was retried
    status: str  # in the manifest's words: pending, blocked, running, stuck, error, complete, pr_open, merged
    tsk_status: str | None
    why: str | None
    attempts: int
    max_attempts: int
    branch: str | None
    pr_number: int | None
    pr_url: str | None
    outside_scope: list[str]


class PlanView(msgspec.Struct, kw_only=True):
    name: str
    format: str
    source: str
    repo: str
    created: float
    cancelled: str | None
    forge_repo: str | None
    tasks: list[PlanTaskView]
    notes: list[str] = []


class PlanSummary(msgspec.Struct, kw_only=True):
    name: str
    format: str
    created: float
    tasks: int
    counts: dict[str, int]  # status word -> how many
    cancelled: str | None


# -- reading and applying a plan --------------------------------------------------------------------


def read(ctx: Context, file: Path | None, *, from_task: str | None = None,
         name: str | None = None) -> tuple[Plan, dict[str, Any], Path]:
    """The plan and its JSON document, from a file or from a task's result branch (`.tsk/plan.json`),
    and the repository its tasks will run in."""
    if (file is None) == (from_task is None):
        raise UsageError("give a plan file, or --from-task ID (not both)",
                         hint="tsk plan apply plan.json, or tsk plan apply --from-task <id of a plan task>")
    if from_task is not None:
        repo, label, content = _from_task(ctx, from_task)
        stem = "plan"
    else:
        assert file is not None
        repo = ctx.find_repo(None)
        label, stem = str(file.absolute()), file.stem
        content = _read_file(file)
    plan = spec.parse(content, file=label, name=name, default_name=stem)
    plan = msgspec.structs.replace(plan, name=_plan_name(plan.name, given=name is not None))
    _refuse_gate_commands(plan, label)
    document = json.loads(content)
    return plan, document, repo


def _read_file(file: Path) -> str:
    try:
        with open(file, "rb") as f:
            raw = f.read(spec.MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise PlanError(str(file), [Problem("$", f"cannot read the plan: {exc.strerror or exc}")]) from exc
    if len(raw) > spec.MAX_PLAN_BYTES:
        raise PlanError(str(file), [Problem("$", f"the plan is larger than {spec.MAX_PLAN_BYTES >> 20} MiB")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanError(str(file), [Problem(f"byte {exc.start}", "the file is not UTF-8 text")]) from exc


def _from_task(ctx: Context, ref: str) -> tuple[Path, str, str]:
    """The plan a task wrote: a regular file at .tsk/plan.json on its result branch, size-checked before it
    is read (the sandbox wrote it: it is checked like any plan, and never trusted more)."""
    store = open_store(ctx)
    try:
        task = store.get(store.resolve(ref))
    finally:
        store.close()
    assert task is not None
    label = f"{PLAN_IN_TASK} of task {task.id}"
    if not task.result_branch or not task.result_commit:
        raise UsageError(f"task {task.id} has no result branch to read {PLAN_IN_TASK} from ({task.status})",
                         hint="wait for it to end: tsk wait " + task.id)
    repo = Path(task.repo)
    entry = g.git_ok(["-C", str(repo), "ls-tree", "-z", task.result_commit, "--", PLAN_IN_TASK])
    fields = (entry or "").rstrip("\0").split(None, 3)
    if len(fields) < 3:
        raise UsageError(f"task {task.id} wrote no {PLAN_IN_TASK} on {task.result_branch}",
                         hint="the `plan` template asks for it: tsk add -t plan -p '...'")
    mode, kind, blob = fields[0], fields[1], fields[2]
    if kind != "blob" or mode not in ("100644", "100755"):
        raise PlanError(label, [Problem("$", f"not a regular file in the task's result (git mode {mode})")])
    size = int(g.git_text(["-C", str(repo), "cat-file", "-s", blob]) or "0")
    if size > spec.MAX_PLAN_BYTES:
        raise PlanError(label, [Problem("$", f"the plan is larger than {spec.MAX_PLAN_BYTES >> 20} MiB")])
    raw = g.git(["-C", str(repo), "cat-file", "blob", blob])
    try:
        return repo, label, raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanError(label, [Problem(f"byte {exc.start}", "the file is not UTF-8 text")]) from exc


def _plan_name(name: str, *, given: bool) -> str:
    if _NAME.match(name):
        return name
    if given:
        raise UsageError(f"`{one_line(name)}` cannot name a plan: use letters, digits, `.`, `_` and `-` "
                         "(at most 64, starting with a letter or digit)")
    return model.slug(name, limit=64)


def _refuse_gate_commands(plan: Plan, label: str) -> None:
    """A gate that runs a command would run it on the host, on results the sandboxes made; tsk does not.
    The command belongs in the tasks' `validation`, which runs in their sandboxes."""
    where = {"phase": "$.phases[{}].gate", "wave": "$.waves[{}].gate"}
    problems = [Problem(where[gate.kind].format(gate.index),
                        f"a gate command (`{one_line(gate.check)}`) would run on your machine, outside any "
                        "sandbox; tsk runs commands only in a task's sandbox: put it in the tasks' `validation`, "
                        "and make the gate `true`")
                for gate in plan.gates if gate.check]
    if problems:
        raise PlanError(label, problems, hint="edit the plan, then apply it again")


def apply(ctx: Context, plan: Plan, document: dict[str, Any], repo: Path, *, agent: str | None = None,
          dry_run: bool = False, api: str | None = None) -> Applied:
    """Queue the plan's tasks, all or none: every task is made (config, instructions, snapshot) before any
    is recorded, and they are recorded in one transaction with the plan."""
    from tsk.sandbox.runner import RunRequest, create_task

    if dry_run:
        return Applied(plan=plan.name, dry_run=True, schedule=dryrun.dry_run(plan))
    store = open_store(ctx)
    made: list[tuple[Task, str]] = []
    try:
        if store.plan(plan.name) is not None:
            raise UsageError(f"there is a plan named `{plan.name}` already",
                             hint=f"give this one another name with --name, or see `tsk plan show {plan.name}`")
        forge_repo = plan.repo or _remote_slug(repo)
        issues = _issues(plan, forge_repo, ctx.environ, api)
        ids: dict[str, str] = {}
        created = time.time()
        for n, pid in enumerate(order([Node(id=t.id, status="QUEUED", parents=t.depends_on, gate=t.gate)
                                       for t in plan.tasks])):
            pt = plan.task(pid)
            instructions = _instructions(ctx, repo, pt, issues.get(pt.issue) if pt.issue else None)
            req = RunRequest(instructions=instructions, type=pt.type or "generic", name=pt.title, repo=str(repo),
                             agent=pt.agent or agent, scope=pt.scope, plan=plan.name, plan_task=pt.id,
                             gate=pt.gate, issue=pt.issue,
                             options=TaskOptions(validate=pt.validate, model=pt.model))
            task = create_task(ctx, req, control.Quiet(), parents=tuple(ids[p] for p in pt.depends_on))
            task.created = created + n * 1e-3  # the plan's order is the order scopes are given out in
            made.append((task, instructions))
            ids[pid] = task.id
        base = next((t.source_commit for t, _ in made if t.source_commit), None)
        record = PlanRecord(name=plan.name, format=plan.format, source=plan.source, repo=str(repo), created=created,
                            document=document, gates=[msgspec.to_builtins(gt) for gt in plan.gates],
                            forge_repo=forge_repo, base_commit=base)
        store.add_plan(record, made, reason=f"tsk plan apply ({plan.name})")
        control.settle(store)
        rows = []
        for task, _ in made:
            now = store.get(task.id) or task
            rows.append({"plan_id": now.plan_task, "id": now.id, "status": now.status, "why": now.blocked})
        return Applied(plan=plan.name, dry_run=False, tasks=rows)
    except BaseException:
        for task, _ in made:
            if store.get(task.id) is None:
                remove_tree(model.task_dir(ctx.paths.data, task.id))
        raise
    finally:
        store.close()


def _instructions(ctx: Context, repo: Path, task: PlanTask, issue: Any) -> str:
    from tsk.plans.prompt import compose
    from tsk.recipes.render import render_task
    from tsk.recipes.store import search_paths

    return render_task(task.type or "generic", compose(task, issue), search_paths(repo, ctx.paths)).instructions


def _issues(plan: Plan, forge_repo: str | None, env: Mapping[str, str], api: str | None) -> dict[int, Any]:
    """The issues the plan's tasks name, from the forge when it answers; none otherwise (the prompt then
    names the number)."""
    numbers = sorted({t.issue for t in plan.tasks if t.issue is not None and t.prompt is None})
    if not numbers or forge_repo is None:
        return {}
    try:
        client = connect(forge_repo, env, api=api or env.get("TSK_GITHUB_API") or None, timeout=15)
    except ForgeError:
        return {}
    found = {}
    for n in numbers:
        issue = client.issue_if_reachable(n)
        if issue is not None:
            found[n] = issue
    return found


def _remote_slug(repo: Path) -> str | None:
    """`owner/repo` of the repository's `origin`, when its URL names one."""
    from tsk.plans.forge import parse_repo

    url = merges.remote_url(repo)
    if url is None or "/" not in url.strip("/").split(":")[-1] or url.startswith(("/", ".", "file:")):
        return None
    try:
        return parse_repo(url).slug
    except ForgeError:
        return None


# -- looking at plans -------------------------------------------------------------------------------


def _record(store: TaskStore, name: str) -> PlanRecord:
    record = store.plan(name)
    if record is None:
        known = ", ".join(p.name for p in store.plans()[-10:]) or "none yet"
        raise UsageError(f"no plan named `{one_line(name)}` (plans: {known})", hint="see `tsk plan list`")
    return record


def current(store: TaskStore, name: str) -> dict[str, Task]:
    """plan task id -> its tsk task (the newest, when it was retried)."""
    out: dict[str, Task] = {}
    for t in store.tasks(plan=name):
        if t.plan_task is not None:
            out[t.plan_task] = t
    return out


def _state(task: Task) -> export.TaskState:
    return export.TaskState(status=task.status, branch=task.result_branch, pr_number=task.pr_number,
                            pr_state=task.pr_state, started=task.started, finished=task.finished)


def _word(task: Task | None) -> str:
    return "pending" if task is None else export.word(_state(task))


def list_plans(ctx: Context) -> list[PlanSummary]:
    store = open_store(ctx)
    try:
        out = []
        for record in store.plans():
            tasks = current(store, record.name)
            counts: dict[str, int] = {}
            for t in tasks.values():
                counts[_word(t)] = counts.get(_word(t), 0) + 1
            out.append(PlanSummary(name=record.name, format=record.format, created=record.created,
                                   tasks=len(tasks), counts=counts, cancelled=record.cancelled))
        return out
    finally:
        store.close()


def show(ctx: Context, name: str, *, refresh: bool = True, api: str | None = None) -> PlanView:
    """The plan with each task's state; with `refresh`, the state of its open pull requests is asked of
    the forge first (a forge that does not answer leaves them as they were, with a note)."""
    store = open_store(ctx)
    try:
        record = _record(store, name)
        notes = _refresh(store, record, ctx.environ, api) if refresh else []
        tasks = current(store, record.name)
        plan = spec.parse(json.dumps(record.document), file=record.source, name=record.name)
        gates = {gt.index: gt for gt in (msgspec.convert(x, Gate) for x in record.gates)}
        rows = []
        for pt in plan.tasks:
            t = tasks.get(pt.id)
            rows.append(PlanTaskView(
                plan_id=pt.id, title=pt.title,
                gate=gates[pt.gate].label if pt.gate in gates else f"phase {pt.gate + 1}",
                depends_on=list(pt.depends_on), scope=list(pt.scope), task=t.id if t else None, status=_word(t),
                tsk_status=t.status if t else None,
                why=(t.blocked if t and t.status in ("WAITING", "BLOCKED") else t.error if t else None),
                attempts=t.attempts if t else 0, max_attempts=t.max_attempts if t else 0,
                branch=t.result_branch if t else None, pr_number=t.pr_number if t else None,
                pr_url=t.pr_url if t else None, outside_scope=list(t.outside_scope) if t else []))
        return PlanView(name=record.name, format=record.format, source=record.source, repo=record.repo,
                        created=record.created, cancelled=record.cancelled, forge_repo=record.forge_repo,
                        tasks=rows, notes=notes)
    finally:
        store.close()


def _refresh(store: TaskStore, record: PlanRecord, env: Mapping[str, str], api: str | None) -> list[str]:
    open_ones = [t for t in current(store, record.name).values() if t.pr_number and t.pr_state == "open"]
    if not open_ones or record.forge_repo is None:
        return []
    try:
        client = connect(record.forge_repo, env, api=api or env.get("TSK_GITHUB_API") or None, timeout=15)
        for t in open_ones:
            assert t.pr_number is not None
            pr = client.pull(t.pr_number)
            if pr.state != t.pr_state:
                t.pr_state = pr.state
                store.save(t)
    except ForgeError as exc:
        return [f"pull request states not refreshed: {exc.message}"]
    return []


def cancel(ctx: Context, name: str) -> list[control.Outcome]:
    store = open_store(ctx)
    try:
        record = _record(store, name)
        active = [t.id for t in store.tasks(plan=name) if t.status in ACTIVE]
        record.cancelled = f"cancelled by tsk plan cancel at {time.strftime('%Y-%m-%d %H:%M:%S')}"
        store.save_plan(record)
    finally:
        store.close()
    return control.cancel(ctx, active, reason=f"the plan {name} was cancelled") if active else []


def export_plan(ctx: Context, name: str) -> dict[str, Any]:
    """The plan's document with each task's status, branch and pull request number, as the manifest keeps them."""
    store = open_store(ctx)
    try:
        record = _record(store, name)
        return export.export(record.document, {pid: _state(t) for pid, t in current(store, name).items()})
    finally:
        store.close()


# -- results: conflicts, landing, pushing -----------------------------------------------------------


class ConflictReport(msgspec.Struct, kw_only=True):
    matrix: merges.ConflictMatrix
    tasks: dict[str, str]  # branch -> task id
    outside_scope: dict[str, list[str]]  # task id -> files it changed outside its scope
    without_result: list[str]  # tasks named that have no result branch (yet)


def _chosen(store: TaskStore, ids: Iterable[str], plan: str | None) -> list[Task]:
    """The tasks named, or the plan's current ones, in dependency order (parents first, then as made)."""
    wanted = list(ids)
    if bool(wanted) == (plan is not None):
        raise UsageError("name tasks, or a plan with --plan NAME (not both)")
    if plan is not None:
        _record(store, plan)
        tasks = list(current(store, plan).values())
    else:
        found = [store.get(store.resolve(r)) for r in dict.fromkeys(wanted)]
        tasks = [t for t in found if t is not None]
    repos = {t.repo for t in tasks}
    if len(repos) > 1:
        raise UsageError("these tasks are in different repositories: " + ", ".join(sorted(repos)))
    by_id = {t.id: t for t in tasks}
    tasks.sort(key=lambda t: (t.created, t.id))
    seq = order([Node(id=t.id, status="QUEUED", parents=tuple(p for p in t.parents if p in by_id))
                 for t in tasks])
    return [by_id[tid] for tid in seq]


def conflicts(ctx: Context, ids: Iterable[str] = (), *, plan: str | None = None) -> ConflictReport:
    store = open_store(ctx)
    try:
        tasks = _chosen(store, ids, plan)
    finally:
        store.close()
    with_branch = [t for t in tasks if t.result_branch]
    if not with_branch:
        raise UsageError("none of these tasks has a result branch yet", hint="see `tsk list`")
    repo = Path(with_branch[0].repo)
    matrix = merges.conflicts(repo, [t.result_branch for t in with_branch if t.result_branch])
    return ConflictReport(matrix=matrix, tasks={t.result_branch: t.id for t in with_branch if t.result_branch},
                          outside_scope={t.id: list(t.outside_scope) for t in with_branch if t.outside_scope},
                          without_result=[t.id for t in tasks if not t.result_branch])


class LandResult(msgspec.Struct, kw_only=True):
    report: merges.LandReport
    skipped: list[str]  # complete tasks that changed nothing


def land(ctx: Context, ids: Iterable[str] = (), *, plan: str | None = None, into: str) -> LandResult:
    """Merge the results onto `into` in dependency order (tsk/plans/merges.py: no working tree is touched)."""
    from tsk.queue.transport import bring_back_for

    store = open_store(ctx)
    try:
        tasks, _ = bring_back_for(ctx, store, _chosen(store, ids, plan))  # results through the git remote first
        record = store.plan(plan) if plan else None
    finally:
        store.close()
    unfinished = [f"{t.id} ({t.status})" for t in tasks if t.status != "COMPLETE"]
    if unfinished:
        raise UsageError("only complete tasks are landed; not complete: " + ", ".join(unfinished),
                         hint="wait for them (tsk wait), or name only the complete ones")
    branches = [t.result_branch for t in tasks if t.result_branch]
    skipped = [t.id for t in tasks if not t.result_branch]
    if not tasks:
        raise UsageError("no tasks to land")
    repo = Path(tasks[0].repo)
    base = (record.base_commit if record else None) or next(t.source_commit for t in tasks if t.source_commit)
    return LandResult(report=merges.land(repo, branches, into, base), skipped=skipped)


class PushedTask(msgspec.Struct, kw_only=True):
    task: str
    branch: str | None
    push: str  # new, updated, up to date, rejected, error, no branch
    pr_number: int | None = None
    pr_url: str | None = None
    note: str | None = None


def push(ctx: Context, ids: Iterable[str] = (), *, plan: str | None = None, remote: str = "origin",
         pr: bool = False, draft: bool = False, base: str | None = None, api: str | None = None) -> list[PushedTask]:
    """Push the tasks' result branches to `remote` with the user's own git credentials; with `pr`, open one
    pull request per pushed branch (kept with its task; one already opened is not opened again)."""
    from tsk.queue.transport import bring_back_for

    store = open_store(ctx)
    try:
        tasks, _ = bring_back_for(ctx, store, _chosen(store, ids, plan))  # results through the git remote first
        out = [PushedTask(task=t.id, branch=None, push="no branch", note="it changed nothing")
               for t in tasks if not t.result_branch]
        have = [t for t in tasks if t.result_branch]
        if not have:
            return out
        repo = Path(have[0].repo)
        report = merges.push(repo, [t.result_branch for t in have if t.result_branch], remote)
        results = {p.branch: p for p in report.pushed}
        client = _client(repo, remote, store, plan, have, ctx.environ, api) if pr else None
        titles = _titles(store, have)
        into = base or _default_base(repo)
        for t in have:
            assert t.result_branch is not None
            pushed = results[t.result_branch]
            said = pushed.summary if pushed.result in ("rejected", "error") else ""
            row = PushedTask(task=t.id, branch=t.result_branch, push=pushed.result, pr_number=t.pr_number,
                             pr_url=t.pr_url, note=said or None)
            if client is not None and pushed.result not in ("rejected", "error"):
                if t.pr_number is not None:
                    row.note = "its pull request is open already"
                else:
                    made = client.create_pull(title=titles[t.id], head=t.result_branch, base=t.from_branch or into,
                                              body=_body(store, t), draft=draft)
                    t.pr_number, t.pr_url, t.pr_state = made.number, made.url, made.state
                    store.save(t)
                    row.pr_number, row.pr_url = made.number, made.url
            out.append(row)
        return out
    finally:
        store.close()


def _client(repo: Path, remote: str, store: TaskStore, plan: str | None, tasks: list[Task],
            env: Mapping[str, str], api: str | None) -> GitHub:
    record = store.plan(plan) if plan else None
    if record is None:  # the plan of the tasks named, if they have one
        named = {t.plan for t in tasks if t.plan}
        record = store.plan(named.pop()) if len(named) == 1 else None
    where = (record.forge_repo if record and record.forge_repo else None) or merges.remote_url(repo, remote) or remote
    if where is None:
        raise UsageError(f"cannot tell which GitHub repository `{redact_urls(remote)}` is",
                         hint="push to a remote whose URL is on GitHub")
    return connect(where, env, api=api or env.get("TSK_GITHUB_API") or None)


def _default_base(repo: Path) -> str:
    head = g.current_branch(repo)
    if not head:
        raise UsageError("cannot tell which branch the pull requests are for: HEAD is detached",
                         hint="give it: --base main")
    return head


def _titles(store: TaskStore, tasks: list[Task]) -> dict[str, str]:
    """A pull request's title: its plan task's title, else the first line of its instructions."""
    plans: dict[str, Plan] = {}
    out = {}
    for t in tasks:
        if t.plan and t.plan_task:
            if t.plan not in plans:
                record = store.plan(t.plan)
                if record is not None:
                    plans[t.plan] = spec.parse(json.dumps(record.document), file=record.source, name=record.name)
            with contextlib.suppress(KeyError):
                out[t.id] = pulls.pr_title(plans[t.plan].task(t.plan_task))
                continue
        first = next((ln for ln in store.instructions(t.id).splitlines() if ln.strip()), t.name)
        out[t.id] = " ".join(printable(first).lstrip("#").split())[:250] or t.id
    return out


def _body(store: TaskStore, task: Task) -> str:
    atts = store.attempts(task.id)
    rows = [pulls.Attempt(number=a.n, outcome=a.failure_class or "complete", reason=a.reason,
                          seconds=(a.finished - a.started) if a.finished else None) for a in atts]
    validate = task.config.get("validate")
    last = atts[-1] if atts else None
    validation = None
    if isinstance(validate, str) and last is not None and last.validation_exit is not None:
        validation = pulls.Validation(command=validate, passed=last.validation_exit == 0,
                                      output=last.validation_tail)
    return pulls.pr_body(instructions=store.instructions(task.id), summary=printable(task.summary or ""),
                         attempts=rows, validation=validation, issue=task.issue, task=task.id,
                         branch=task.result_branch)

