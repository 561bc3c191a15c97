"""Read a plan from a JSON file: a task-orchestrator manifest or a task graph, into one Plan.

All or nothing: every problem in the file is found (with its JSON path) before anything is returned, and
one PlanError lists them all.

The task-orchestrator manifest (phases are gates)::

    {"project": "shop", "repo": "acme/shop", "model": "gpt-5.2-codex",
     "phases": [
       {"name": "Phase 1: API", "tasks": [
         {"id": "t1", "issue": 12, "title": "Add /orders", "files": ["src/api/**"], "dependsOn": []},
         {"id": "t2", "title": "Document /orders", "files": ["docs/"], "dependsOn": ["t1"]}]},
       {"name": "Phase 2", "tasks": [
         {"id": "t3", "title": "Use /orders in the UI", "files": ["web/**"], "dependsOn": ["t1"]}]}]}

The task graph (waves are optional gates)::

    {"project": "shop",
     "tasks": [
       {"id": "api", "name": "Add /orders", "owner_role": "backend", "depends_on": [],
        "write_scope": ["src/api/**"], "acceptance_criteria": ["GET /orders lists orders"],
        "validation": ["pytest -q tests/api", "ruff check src"]},
       {"id": "ui", "name": "Orders page", "depends_on": ["api"], "write_scope": ["web/**"]}],
     "waves": [["api"], {"name": "front end", "tasks": ["ui"], "gate": "npm test"}]}

In both, a task may also carry `prompt` (used verbatim instead of composing one), `agent`, `model`, `type`
(the task type: which recipe renders it), `description` and `validation` (a command, or a list of commands
joined with ` && `); a manifest task's `files` and a graph task's `write_scope` are its write scope.
The orchestrator's own bookkeeping keys (`status`, `worktree`, `tmuxSession`, `startedAt`, `lastProgress`,
`completedAt`, `prNumber`, `branch`; `workdir`, `created`, `modelTier` at the top; `status`, `branch`,
`pr_number` on a graph task) are accepted and not read: export.py writes them.

Scopes are globs as scopes.py reads them: .gitignore-style, except that an exact path (`README.md`,
`docs/`) is the one at the top of the repository, as a list of files touched means it.

Gates. Each phase of a manifest is a gate. A graph without `waves` has one gate; with `waves`, every task is
in exactly one wave, and a wave is a list of task ids or an object `{"name": ..., "tasks": [...],
"gate": ...}`. A phase object may carry `gate` too. `gate` is `true` (the default: no task of a later
phase or wave starts before every task of this one and of the earlier ones is complete), `false` (no
barrier: the wave only groups its tasks), or a command (a barrier that also needs the command to pass on
the landed results of this wave and the earlier ones). A task may depend on tasks of its own or an earlier
gate, never of a later one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tsk.plans.formats import GraphReader, ManifestReader, Raw
from tsk.plans.jsonshape import PlanError, Problem, Problems, did_you_mean, found, object_pairs
from tsk.plans.model import Format, Gate, Plan, PlanTask

MAX_PLAN_BYTES = 16 * 1024 * 1024


def load(path: Path, *, name: str | None = None) -> Plan:
    """The plan in `path`; its name is `name`, else the file's `project`, else the file's name."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlanError(file, [Problem("$", f"cannot read the plan: {exc.strerror or exc}")]) from exc
    if len(raw) > MAX_PLAN_BYTES:
        raise PlanError(file, [Problem("$", f"the plan is larger than {MAX_PLAN_BYTES // (1024 * 1024)} MiB")])
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanError(file, [Problem(f"byte {exc.start}", "the file is not UTF-8 text")]) from exc
    return parse(content, file=file, name=name or None, default_name=path.stem)


def parse(content: str, *, file: str, name: str | None = None, default_name: str = "plan") -> Plan:
    try:
        doc = json.loads(content, object_pairs_hook=object_pairs, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise PlanError(file, [Problem(where, f"malformed JSON: {exc.msg}")]) from None
    except ValueError as exc:
        raise PlanError(file, [Problem("$", f"malformed JSON: {exc}")]) from None
    problems = Problems()
    fmt = _format(doc, problems)
    if fmt is None:
        raise PlanError(file, problems.found)
    reader = ManifestReader() if fmt == "manifest" else GraphReader()
    top = reader.read(doc, problems)
    plan = _assemble(reader, top, fmt, file=file, name=name or top.get("project") or default_name, problems=problems)
    if problems:
        raise PlanError(file, problems.found, hint=_HINT)
    return plan


_HINT = "fix each problem listed, then read the plan again"


def _no_constant(value: str) -> None:
    raise ValueError(f"{value} is not a JSON number")


def _format(doc: object, problems: Problems) -> Format | None:
    if not isinstance(doc, dict):
        problems.add("$", "expected an object (a manifest with `phases` or a task graph with `tasks`), "
                          f"got {found(doc)}")
        return None
    if "phases" in doc and "tasks" in doc:
        problems.add("$", "has both `phases` (a manifest) and `tasks` (a task graph); a plan is one or the other")
        return None
    if "phases" in doc:
        return "manifest"
    if "tasks" in doc:
        return "graph"
    problems.add("$", "expected `phases` (a task-orchestrator manifest) or `tasks` (a task graph) at the top level"
                 + did_you_mean(next(iter(doc), ""), ["phases", "tasks"]))
    return None


def _assemble(reader: ManifestReader | GraphReader, top: dict[str, Any], fmt: Format, *, file: str, name: str,
              problems: Problems) -> Plan:
    first: dict[str, Raw] = {}
    for raw in reader.tasks:
        tid = raw.fields.get("id")
        if tid is None:
            continue
        if tid in first:
            problems.add(f"{raw.path}.id", f"duplicate task id {json.dumps(tid)} (first at {first[tid].path})")
        else:
            first[tid] = raw
        if raw.title_key not in raw.fields and "prompt" not in raw.fields:
            problems.add(raw.path, f"a task is missing the key {json.dumps(raw.title_key)} (or give it a `prompt`)")
    deps = {tid: _deps(raw, first, reader.gates, problems) for tid, raw in first.items()}
    for cycle in _cycles(deps):
        problems.add(f"{first[cycle[0]].path}.{first[cycle[0]].deps_key}",
                     "dependency cycle: " + " → ".join([*cycle, cycle[0]]))
    default_model = top.get("model")
    tasks = tuple(_task(raw, deps[tid], default_model) for tid, raw in first.items())
    return Plan(name=name, format=fmt, source=file, repo=top.get("repo"), model=default_model, tasks=tasks,
                gates=tuple(reader.gates))


def _deps(raw: Raw, tasks: dict[str, Raw], gates: list[Gate], problems: Problems) -> tuple[str, ...]:
    out: list[str] = []
    me = raw.fields["id"]
    for i, dep in enumerate(raw.fields.get(raw.deps_key, ())):
        where = f"{raw.path}.{raw.deps_key}[{i}]"
        if dep == me:
            problems.add(where, "a task cannot depend on itself")
        elif dep not in tasks:
            problems.add(where, f"unknown task id {json.dumps(dep)}" + did_you_mean(dep, list(tasks)))
        elif tasks[dep].gate > raw.gate:
            later, mine = gates[tasks[dep].gate].label, gates[raw.gate].label
            problems.add(where, f"task {json.dumps(dep)} is in {later}, later than this task's {mine}; a task may "
                                "depend only on tasks of its own or an earlier one")
        elif dep not in out:
            out.append(dep)
    return tuple(out)


def _cycles(deps: dict[str, tuple[str, ...]]) -> list[list[str]]:
    """One cycle per knot of the graph, each as the path that closes it, in file order."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found_cycles: list[list[str]] = []
    in_cycle: set[str] = set()
    for root in deps:
        if root in state:
            continue
        path: list[str] = [root]
        todo: list[list[str]] = [list(deps[root])]
        state[root] = 1
        while todo:
            if not todo[-1]:
                state[path.pop()] = 2
                todo.pop()
                continue
            nxt = todo[-1].pop(0)
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):]
                if not in_cycle.intersection(cycle):
                    found_cycles.append(cycle)
                in_cycle.update(cycle)
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                todo.append(list(deps.get(nxt, ())))
    return found_cycles


def _task(raw: Raw, deps: tuple[str, ...], default_model: str | None) -> PlanTask:
    f = raw.fields
    title = f.get(raw.title_key) or _first_line(f.get("prompt", "")) or f["id"]
    return PlanTask(
        id=f["id"], title=title, where=raw.path, prompt=f.get("prompt"), description=f.get("description"),
        depends_on=deps, scope=f.get("files", f.get("write_scope", ())), gate=raw.gate, agent=f.get("agent"),
        model=f.get("model", default_model), type=f.get("type"), validate=f.get("validation"), issue=f.get("issue"),
        acceptance=f.get("acceptance_criteria", ()), owner_role=f.get("owner_role"))


def _first_line(prompt: str, limit: int = 72) -> str:
    line = next((s.strip() for s in prompt.splitlines() if s.strip()), "").lstrip("# ")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
