"""The two plan formats, read into tasks and gates before the plan-wide checks of spec.py (ids,
dependencies, cycles). Each reader checks the shape of its format's objects, key by key."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tsk.plans import forge, scopes
from tsk.plans.jsonshape import (
    Check,
    Problem,
    Problems,
    child,
    command,
    did_you_mean,
    found,
    ignored,
    nonempty,
    obj,
    positive_int,
    strings,
    text,
)
from tsk.plans.model import Gate


@dataclass
class Raw:
    """One task as read, before the plan-wide checks."""

    path: str
    fields: dict[str, Any]
    gate: int
    deps_key: str  # what the file calls its dependencies, for messages
    title_key: str


def _repo(value: object, path: str) -> str:
    slug = text(value, path)
    try:
        forge.parse_repo(slug)
    except forge.ForgeError as exc:
        raise Problem(path, exc.message) from None
    return slug


def _scope(value: object, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Problem(path, f"expected a list of path globs (strings such as \"src/api/**\"), got {found(value)}")
    globs = strings(value, path)
    out: list[str] = []
    for i, g in enumerate(globs):
        why = scopes.problem(g)
        if why:
            raise Problem(child(path, i), why)
        out.append(scopes.clean(g))
    return tuple(out)


def _gate(value: object, path: str) -> bool | str:
    if isinstance(value, bool):
        return value
    try:
        return command(value, path)
    except Problem:
        raise Problem(path, f"expected true, false or a command (a string or a list of strings), got {found(value)}") \
            from None


_SHARED: dict[str, Check] = {"prompt": nonempty, "agent": nonempty, "model": nonempty, "type": nonempty,
                             "description": text, "validation": command, "issue": positive_int}


_MANIFEST_TASK: dict[str, Check] = {
    "id": nonempty, "title": nonempty, "files": _scope, "dependsOn": strings, **_SHARED,
    **dict.fromkeys(("status", "worktree", "tmuxSession", "startedAt", "lastProgress", "completedAt", "prNumber",
                     "branch"), ignored)}
_PHASE: dict[str, Check] = {"name": text, "tasks": ignored, "gate": _gate}
_MANIFEST: dict[str, Check] = {"project": nonempty, "repo": _repo, "model": nonempty, "phases": ignored,
                               **dict.fromkeys(("workdir", "created", "modelTier"), ignored)}
_GRAPH_TASK: dict[str, Check] = {
    "id": nonempty, "name": nonempty, "owner_role": nonempty, "depends_on": strings, "write_scope": _scope,
    "acceptance_criteria": strings, **_SHARED, **dict.fromkeys(("status", "branch", "pr_number"), ignored)}
_WAVE: dict[str, Check] = {"name": text, "tasks": strings, "gate": _gate}
_GRAPH: dict[str, Check] = {"project": nonempty, "repo": _repo, "model": nonempty, "tasks": ignored,
                            "waves": ignored}


class ManifestReader:
    def __init__(self) -> None:
        self.tasks: list[Raw] = []
        self.gates: list[Gate] = []

    def read(self, doc: dict[str, Any], problems: Problems) -> dict[str, Any]:
        top = obj(doc, "$", problems, what="a manifest", keys=_MANIFEST, required=("phases",)) or {}
        phases = doc.get("phases")
        if not isinstance(phases, list):
            if phases is not None:
                problems.add("$.phases", f"expected a list of phases, got {found(phases)}")
            return top
        if not phases:
            problems.add("$.phases", "the manifest has no phases; a plan needs at least one task")
        for i, phase in enumerate(phases):
            path = f"$.phases[{i}]"
            fields = obj(phase, path, problems, what="a phase", keys=_PHASE, required=("tasks",))
            if fields is None:
                continue
            tasks = phase.get("tasks")
            ids: list[str] = []
            if isinstance(tasks, list):
                if not tasks:
                    problems.add(f"{path}.tasks", "the phase has no tasks")
                for j, task in enumerate(tasks):
                    tpath = f"{path}.tasks[{j}]"
                    tf = obj(task, tpath, problems, what="a task", keys=_MANIFEST_TASK, required=("id",))
                    if tf is not None:
                        self.tasks.append(Raw(tpath, tf, i, "dependsOn", "title"))
                        if "id" in tf:
                            ids.append(tf["id"])
            elif tasks is not None:
                problems.add(f"{path}.tasks", f"expected a list of tasks, got {found(tasks)}")
            gate = fields.get("gate", True)
            self.gates.append(Gate(index=i, kind="phase", name=fields.get("name"), tasks=tuple(ids),
                                   barrier=gate is not False, check=gate if isinstance(gate, str) else None))
        return top


class GraphReader:
    def __init__(self) -> None:
        self.tasks: list[Raw] = []
        self.gates: list[Gate] = []

    def read(self, doc: dict[str, Any], problems: Problems) -> dict[str, Any]:
        top = obj(doc, "$", problems, what="a task graph", keys=_GRAPH, required=("tasks",)) or {}
        tasks = doc.get("tasks")
        if isinstance(tasks, list):
            if not tasks:
                problems.add("$.tasks", "the task graph has no tasks")
            for j, task in enumerate(tasks):
                tf = obj(task, f"$.tasks[{j}]", problems, what="a task", keys=_GRAPH_TASK, required=("id",))
                if tf is not None:
                    self.tasks.append(Raw(f"$.tasks[{j}]", tf, 0, "depends_on", "name"))
        elif tasks is not None:
            problems.add("$.tasks", f"expected a list of tasks, got {found(tasks)}")
        self._waves(doc.get("waves"), problems)
        return top

    def _waves(self, waves: object, problems: Problems) -> None:
        known = {t.fields["id"]: t for t in self.tasks if "id" in t.fields}
        if waves is None:
            self.gates = [Gate(index=0, kind="wave", tasks=tuple(known))]
            return
        if not isinstance(waves, list) or not waves:
            got = "an empty list" if waves == [] else found(waves)
            problems.add("$.waves", f"expected a list of waves (each a list of task ids or an object), got {got}")
            return
        placed: dict[str, str] = {}
        for i, wave in enumerate(waves):
            path = f"$.waves[{i}]"
            if isinstance(wave, list):
                fields: dict[str, Any] = {"tasks": wave}
                ids_path = path
            else:
                fields = obj(wave, path, problems, what="a wave", keys=_WAVE, required=("tasks",)) or {}
                ids_path = f"{path}.tasks"
            ids = fields.get("tasks", ())
            if not isinstance(ids, list | tuple):
                continue
            if not ids:
                problems.add(ids_path, "the wave lists no task")
            members: list[str] = []
            for j, tid in enumerate(ids):
                where = child(ids_path, j)
                if not isinstance(tid, str):
                    problems.add(where, f"expected a task id (a string), got {found(tid)}")
                elif tid not in known:
                    problems.add(where, f"unknown task id {json.dumps(tid)}" + did_you_mean(tid, list(known)))
                elif tid in placed:
                    problems.add(where, f"task {json.dumps(tid)} is already in a wave at {placed[tid]}; "
                                        "a task is in exactly one wave")
                else:
                    placed[tid] = where
                    members.append(tid)
                    known[tid].gate = i
            gate = fields.get("gate", True)
            self.gates.append(Gate(index=i, kind="wave", name=fields.get("name"), tasks=tuple(members),
                                   barrier=gate is not False, check=gate if isinstance(gate, str) else None))
        for tid, raw in known.items():
            if tid not in placed:
                problems.add(raw.path, f"task {json.dumps(tid)} is in no wave; add it to one of $.waves")
