"""A plan as data: what spec.py reads from a file and what the scheduler, the dry run and the queue
work from. Frozen, so a plan read once is the plan used everywhere."""

from __future__ import annotations

from typing import Literal

import msgspec

Format = Literal["manifest", "graph"]


class Gate(msgspec.Struct, frozen=True, kw_only=True):
    """A phase of a manifest or a wave of a task graph.

    With `barrier` (the default) no task of a later gate starts before every task of this gate and of every
    earlier one is COMPLETE (and, when `check` is set, before that command has passed on their landed
    results). Without it the gate only groups and orders its tasks."""

    index: int  # 0-based position among the plan's gates
    kind: Literal["phase", "wave"]
    name: str | None = None
    tasks: tuple[str, ...] = ()
    barrier: bool = True
    check: str | None = None

    @property
    def label(self) -> str:
        """How a person names it: "phase 1" is the first phase."""
        return f"{self.kind} {self.index + 1}"


class PlanTask(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the plan's own id for the task, unique in the plan
    title: str
    where: str  # the task's JSON path in its file, for messages: "$.phases[0].tasks[2]"
    prompt: str | None = None  # used verbatim when set; else prompt.compose() builds one from the fields below
    description: str | None = None
    depends_on: tuple[str, ...] = ()  # ids of tasks of this plan
    scope: tuple[str, ...] = ()  # gitignore-style globs of the paths it may write; empty: conflicts with nothing
    gate: int = 0  # index into Plan.gates
    agent: str | None = None
    model: str | None = None  # the task's own, else the manifest's top-level `model`
    type: str | None = None
    validate: str | None = None  # a shell command; a list in the file is joined with ` && `
    issue: int | None = None
    acceptance: tuple[str, ...] = ()
    owner_role: str | None = None


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    format: Format
    source: str  # the file it was read from
    repo: str | None = None  # `owner/repo` on the forge, when the file says
    model: str | None = None
    tasks: tuple[PlanTask, ...] = ()
    gates: tuple[Gate, ...] = ()

    def task(self, task_id: str) -> PlanTask:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)
