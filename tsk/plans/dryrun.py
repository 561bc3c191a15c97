"""The schedule a plan implies, before anything runs: which tasks can run in parallel (levels), what each
waits for and why, and whose results it starts from. Pure; a CLI renders it as text or JSON."""

from __future__ import annotations

from typing import Literal

import msgspec

from tsk.plans import schedule as sched
from tsk.plans.model import Plan
from tsk.plans.scopes import globs_overlap


class Wait(msgspec.Struct, frozen=True, kw_only=True):
    on: tuple[str, ...]  # plan task ids
    kind: Literal["parent", "scope", "gate"]
    why: str  # "depends on api", "scope src/api/** overlaps api's src/api/**", "phase 1 is a gate"


class Step(msgspec.Struct, frozen=True, kw_only=True):
    task: str
    title: str
    gate: int
    level: int | None  # None: it can never start (a parent cannot run); levels count from 0
    waits: tuple[Wait, ...] = ()
    start_from: tuple[str, ...] = ()


class DryRun(msgspec.Struct, frozen=True, kw_only=True):
    plan: str
    levels: tuple[tuple[str, ...], ...]  # each level runs in parallel once the levels before it are complete
    steps: tuple[Step, ...]  # in the scheduler's order


def dry_run(plan: Plan) -> DryRun:
    """Simulate the plan with every task succeeding (and every gate check passing)."""
    status: dict[str, sched.Status] = {t.id: "QUEUED" for t in plan.tasks}
    level_of: dict[str, int] = {}
    start_from: dict[str, tuple[str, ...]] = {}
    levels: list[tuple[str, ...]] = []
    everything = range(len(plan.gates))
    order: tuple[str, ...] = tuple(status)
    while True:
        s = sched.schedule(sched.nodes(plan, status), plan.gates, checked=everything)
        order = s.order
        starting = s.start()
        if not starting:
            break
        for d in s.decisions:
            if d.action == "start":
                start_from[d.task] = d.start_from
        for tid in starting:
            level_of[tid] = len(levels)
            status[tid] = "COMPLETE"
        levels.append(tuple(starting))
    steps = [Step(task=tid, title=plan.task(tid).title, gate=plan.task(tid).gate, level=level_of.get(tid),
                  waits=_waits(plan, tid, order), start_from=start_from.get(tid, ())) for tid in order]
    return DryRun(plan=plan.name, levels=tuple(levels), steps=tuple(steps))


def _waits(plan: Plan, tid: str, order: tuple[str, ...]) -> tuple[Wait, ...]:
    t = plan.task(tid)
    out: list[Wait] = []
    barriers = [g for g in plan.gates[: t.gate] if g.barrier]
    if barriers:
        last = barriers[-1]
        earlier = tuple(x.id for x in plan.tasks if x.gate <= last.index)
        checks = [f"`{g.check}` passes" for g in barriers if g.check]
        why = f"{last.label} is a gate: every task up to it completes first" + (
            " and " + ", ".join(checks) if checks else "")
        out.append(Wait(on=earlier, kind="gate", why=why))
    for p in t.depends_on:
        out.append(Wait(on=(p,), kind="parent", why=f"depends on {p}"))
    mine = order.index(tid)
    for other_id in order[:mine]:
        other = plan.task(other_id)
        pairs = [(a, b) for a in t.scope for b in other.scope if globs_overlap(a, b)]
        if pairs:
            a, b = pairs[0]
            out.append(Wait(on=(other_id,), kind="scope", why=f"scope {a} overlaps {other_id}'s {b}"))
    return tuple(out)
