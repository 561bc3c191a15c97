"""Which of a plan's tasks may start now, and why each other one waits. Pure: no store, no engine.

Rules, in the order they are checked:
- a parent that FAILED or is gone fails its child; one that was CANCELLED cancels it;
- gates: a task waits until every task of every gate up to the last barrier before its own is COMPLETE
  (and that barrier's check, if it has one, has passed);
- parents: a task waits until each parent is COMPLETE;
- scopes: two tasks whose write scopes overlap never run at once. Among overlapping tasks the one earlier
  in the plan's order (parents first, then by gate, then as listed) goes first; the later one waits until
  it has ended, and starts from its result when it COMPLETEd. A task that is RUNNING or BLOCKED holds its
  scope against every other, whatever the order.

A task starts from the results of its parents and of the COMPLETE tasks whose scopes overlap its own,
in that order (`start_from`); the queue merges them (tsk/snapshot/merge.py)."""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping, Sequence
from typing import Literal

import msgspec

from tsk.plans.model import Gate, Plan
from tsk.plans.scopes import globs_overlap

Status = Literal["QUEUED", "WAITING", "RUNNING", "COMPLETE", "FAILED", "CANCELLED", "BLOCKED"]
NOT_STARTED: frozenset[str] = frozenset({"QUEUED", "WAITING"})
IN_PROGRESS: frozenset[str] = frozenset({"RUNNING", "BLOCKED"})
ENDED: frozenset[str] = frozenset({"COMPLETE", "FAILED", "CANCELLED"})


class Node(msgspec.Struct, frozen=True, kw_only=True):
    """One task as the scheduler sees it. `id` is whatever the caller names tasks by (tsk's task ids, or
    the plan's); parents and messages use the same names."""

    id: str
    status: Status
    parents: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()
    gate: int = 0
    plan: str | None = None  # gates count the tasks of the same plan only


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    task: str
    action: Literal["start", "wait", "fail", "cancel"]
    reason: str  # for `tsk list`: "waiting for parent a1 (RUNNING); waiting for scope src/** (held by b2)"
    waits_for: tuple[str, ...] = ()  # the tasks it waits for, or whose failure or cancellation it follows
    held_by: tuple[str, ...] = ()  # of those, the ones whose scopes hold it back
    start_from: tuple[str, ...] = ()  # set when it starts: whose results it starts from, in order


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    order: tuple[str, ...]  # every task, in the order scopes are given out
    decisions: tuple[Decision, ...]  # one for each task not started yet (QUEUED or WAITING), in `order`

    def start(self) -> list[str]:
        """The tasks that may start now; no two of them overlap, so any of them may be started."""
        return [d.task for d in self.decisions if d.action == "start"]

    def decision(self, task: str) -> Decision:
        for d in self.decisions:
            if d.task == task:
                return d
        raise KeyError(task)


def nodes(plan: Plan, statuses: Mapping[str, Status], ids: Mapping[str, str] | None = None) -> list[Node]:
    """The plan's tasks as nodes. `ids` maps the plan's task ids to the caller's (tsk task ids); a task
    without a status is QUEUED."""
    name = (lambda t: ids.get(t, t)) if ids else (lambda t: t)
    return [Node(id=name(t.id), status=statuses.get(name(t.id), "QUEUED"),
                 parents=tuple(name(p) for p in t.depends_on), scope=t.scope, gate=t.gate) for t in plan.tasks]


def order(tasks: Sequence[Node]) -> list[str]:
    """Parents before children; among tasks free to go, the lower gate, then the one listed first."""
    index = {t.id: i for i, t in enumerate(tasks)}
    waiting = {t.id: {p for p in t.parents if p in index} for t in tasks}
    children: dict[str, list[str]] = {}
    for t in tasks:
        for p in waiting[t.id]:
            children.setdefault(p, []).append(t.id)
    ready = [(t.gate, index[t.id], t.id) for t in tasks if not waiting[t.id]]
    heapq.heapify(ready)
    out: list[str] = []
    by_id = {t.id: t for t in tasks}
    while ready:
        _, _, tid = heapq.heappop(ready)
        out.append(tid)
        for c in children.get(tid, ()):
            waiting[c].discard(tid)
            if not waiting[c]:
                heapq.heappush(ready, (by_id[c].gate, index[c], c))
    placed = set(out)
    out.extend(t.id for t in tasks if t.id not in placed)  # a cycle (a plan rules them out): listed as given
    return out


def schedule(tasks: Sequence[Node], gates: Sequence[Gate] = (), *, checked: Collection[int] = (),
             plan_gates: Mapping[str, Sequence[Gate]] | None = None, pending: Collection[str] = NOT_STARTED,
             holding: Collection[str] = IN_PROGRESS, gone: str = "is not in the plan") -> Schedule:
    """The decision for every task not started yet. `gates` are the plan's (a gate index without one is a
    barrier named "phase N"); `checked` lists the gates whose check command has passed.

    The queue (tsk/queue/scheduler.py) schedules tasks of many plans: `plan_gates` gives each plan's
    gates (`gates` are then those of tasks of no plan); only WAITING tasks are `pending`, since a QUEUED
    one has been let go and `holding` its scope like a running one; a parent missing from `tasks` was
    deleted (`gone` says how)."""
    by_id = {t.id: t for t in tasks}
    seq = order(tasks)
    rank = {tid: i for i, tid in enumerate(seq)}

    def gates_of(t: Node) -> Sequence[Gate]:
        return plan_gates.get(t.plan, ()) if plan_gates is not None and t.plan is not None else gates

    decisions = [_decide(by_id[tid], by_id, rank, gates_of(by_id[tid]), checked, holding, gone) for tid in seq
                 if by_id[tid].status in pending]
    return Schedule(order=tuple(seq), decisions=tuple(decisions))


def _decide(t: Node, by_id: Mapping[str, Node], rank: Mapping[str, int], gates: Sequence[Gate],
            checked: Collection[int], holding: Collection[str], gone_word: str) -> Decision:
    gone = [p for p in t.parents if p not in by_id]
    failed = [p for p in t.parents if p in by_id and by_id[p].status == "FAILED"]
    if gone or failed:
        why = [f"parent {p} failed" for p in failed] + [f"parent {p} {gone_word}" for p in gone]
        return Decision(task=t.id, action="fail", reason="; ".join(why), waits_for=(*failed, *gone))
    cancelled = [p for p in t.parents if by_id[p].status == "CANCELLED"]
    if cancelled:
        return Decision(task=t.id, action="cancel", reason="; ".join(f"parent {p} was cancelled" for p in cancelled),
                        waits_for=tuple(cancelled))
    reasons: list[str] = []
    waits: list[str] = []
    gate_wait = _gate_wait(t, by_id, gates, checked)
    if gate_wait:
        reasons.append(gate_wait[0])
        waits += gate_wait[1]
    for p in t.parents:
        if by_id[p].status != "COMPLETE":
            reasons.append(f"waiting for parent {p} ({by_id[p].status})")
            waits.append(p)
    held: dict[str, list[str]] = {}  # my glob → who holds it
    holders: list[str] = []
    done: list[str] = []
    for other in sorted(by_id.values(), key=lambda o: rank[o.id]):
        if other.id == t.id or not t.scope or not other.scope:
            continue
        glob = _overlapping_glob(t.scope, other.scope)
        if glob is None:
            continue
        if other.status in holding or (rank[other.id] < rank[t.id] and other.status not in ENDED):
            held.setdefault(glob, []).append(other.id)
            waits.append(other.id)
            holders.append(other.id)
        elif other.status == "COMPLETE":
            done.append(other.id)
    reasons += [f"waiting for scope {g} (held by {', '.join(who)})" for g, who in held.items()]
    if reasons:
        return Decision(task=t.id, action="wait", reason="; ".join(reasons), waits_for=tuple(dict.fromkeys(waits)),
                        held_by=tuple(holders))
    start_from = list(t.parents) + [d for d in done if d not in t.parents and not _ancestor(d, t.parents, by_id)]
    said = "parents complete" if t.parents else "no parents"
    if len(start_from) > len(t.parents):
        said += "; starts from the result of " + ", ".join(start_from[len(t.parents):])
    return Decision(task=t.id, action="start", reason=said, start_from=tuple(start_from))


def _gate_wait(t: Node, by_id: Mapping[str, Node], gates: Sequence[Gate],
               checked: Collection[int]) -> tuple[str, list[str]] | None:
    barriers = [g for g in range(t.gate) if g >= len(gates) or gates[g].barrier]
    if not barriers:
        return None
    last = barriers[-1]
    for g in range(last + 1):
        members = [n for n in by_id.values() if n.gate == g and n.plan == t.plan]
        pending = [n for n in members if n.status != "COMPLETE"]
        if pending:
            label = gates[g].label if g < len(gates) else f"phase {g + 1}"
            why = f"waiting for {label} ({len(members) - len(pending)} of {len(members)} complete"
            stuck = [f"{n.id} {n.status}" for n in pending if n.status in ("FAILED", "CANCELLED")]
            return why + ("; " + ", ".join(stuck) if stuck else "") + ")", [n.id for n in pending]
    for g in barriers:
        if g < len(gates) and gates[g].check and g not in checked:
            return f"waiting for the check of {gates[g].label} (`{gates[g].check}`)", []
    return None


def _overlapping_glob(mine: Sequence[str], theirs: Sequence[str]) -> str | None:
    for a in mine:
        if any(globs_overlap(a, b) for b in theirs):
            return a
    return None


def _ancestor(task: str, of: Sequence[str], by_id: Mapping[str, Node]) -> bool:
    """Whether `task` is a parent, grandparent, ... of one of `of`: its result is in theirs already."""
    seen: set[str] = set()
    todo = list(of)
    while todo:
        cur = todo.pop()
        if cur in seen or cur not in by_id:
            continue
        seen.add(cur)
        for p in by_id[cur].parents:
            if p == task:
                return True
            todo.append(p)
    return False
