"""Pure scheduling decisions over the task graph: which waiting tasks may start (by their parents, their
plan's gates and their write scopes), which must fail or be cancelled because a parent did, and whether
a new link would close a cycle. No database, no engine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec

from tsk.plans.model import Gate
from tsk.plans.schedule import Node, Status, schedule


class Change(msgspec.Struct, frozen=True, kw_only=True):
    task: str
    to: str | None  # None: the status stays, only `blocked` (and `scope_after`) change
    reason: str
    blocked: str | None = None
    scope_after: tuple[str, ...] = ()  # every task it has waited for because of its scope, so far
    start_from: tuple[str, ...] = ()  # QUEUED: besides its parents, whose results it starts from


def settle(nodes: Sequence[Node], *, blocked: Mapping[str, str | None] | None = None,
           after: Mapping[str, tuple[str, ...]] | None = None,
           plan_gates: Mapping[str, Sequence[Gate]] | None = None) -> list[Change]:
    """What happens to WAITING tasks now (tsk/plans/schedule.py decides, by parents, gates and scopes):
    a parent FAILED or gone → FAILED; a parent CANCELLED → CANCELLED (failure wins); nothing to wait
    for → QUEUED, starting from the results of the tasks whose scopes held it back, if they completed;
    else it stays, with why. Cascades through the graph in one call, so a grandchild learns of its
    grandparent's failure at once. `nodes` come in the order the tasks were made: among tasks whose
    scopes overlap the earlier goes first. A QUEUED, RUNNING or BLOCKED task holds its scope."""
    blocked, after = blocked or {}, after or {}
    status = {n.id: n.status for n in nodes}
    changes: list[Change] = []
    while True:
        current = [msgspec.structs.replace(n, status=status[n.id]) for n in nodes]
        decided = schedule(current, plan_gates=plan_gates or {}, pending=("WAITING",),
                           holding=("QUEUED", "RUNNING", "BLOCKED"), gone="was deleted")
        ended = [d for d in decided.decisions if d.action in ("fail", "cancel")]
        for d in ended:
            to: Status = "FAILED" if d.action == "fail" else "CANCELLED"
            status[d.task] = to
            changes.append(Change(task=d.task, to=to, reason=d.reason))
        if not ended:
            break
    parents = {n.id: n.parents for n in nodes}
    for d in decided.decisions:
        waited = tuple(dict.fromkeys([*after.get(d.task, ()), *d.held_by]))
        if d.action == "start":
            starts = tuple(t for t in d.start_from if t in waited and t not in parents[d.task])
            changes.append(Change(task=d.task, to="QUEUED", reason=d.reason, scope_after=waited, start_from=starts))
        elif blocked.get(d.task) != d.reason or waited != after.get(d.task, ()):
            changes.append(Change(task=d.task, to=None, reason=d.reason, blocked=d.reason, scope_after=waited))
    return changes


def cycle(parents: Mapping[str, tuple[str, ...]], child: str, new_parents: Iterable[str]) -> list[str] | None:
    """The path child → … → child that linking `child` to `new_parents` would close, or None."""
    for start in new_parents:
        stack: list[tuple[str, list[str]]] = [(start, [child, start])]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            if node == child:
                return path
            if node in seen:
                continue
            seen.add(node)
            stack.extend((p, [*path, p]) for p in parents.get(node, ()))
    return None


def descendants(parents: Mapping[str, tuple[str, ...]], root: str) -> list[str]:
    """Every task that depends on `root`, directly or not, parents before children."""
    children: dict[str, list[str]] = {}
    for c, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(c)
    found: set[str] = set()
    todo = [root]
    while todo:
        for c in children.get(todo.pop(), ()):
            if c not in found:
                found.add(c)
                todo.append(c)
    order: list[str] = []
    placed: set[str] = {root}

    def place(t: str) -> None:
        if t in placed:
            return
        placed.add(t)
        for p in parents.get(t, ()):
            if p in found:
                place(p)
        order.append(t)

    for t in sorted(found):
        place(t)
    return order
