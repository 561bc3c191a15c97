"""Pure scheduling decisions over the task graph: which waiting tasks may start, which must fail or be
cancelled because a parent did, and whether a new link would close a cycle. No database, no engine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec


class Change(msgspec.Struct, frozen=True, kw_only=True):
    task: str
    to: str | None  # None: the status stays, only `blocked` changes
    reason: str
    blocked: str | None = None


def plan(statuses: Mapping[str, str], parents: Mapping[str, tuple[str, ...]],
         blocked: Mapping[str, str | None] | None = None) -> list[Change]:
    """What happens to WAITING tasks now: all parents COMPLETE → QUEUED; a parent FAILED or gone →
    FAILED; a parent CANCELLED → CANCELLED (failure wins over cancellation). Cascades through the graph
    in one call, so a grandchild learns of its grandparent's failure at once."""
    status = dict(statuses)
    blocked = blocked or {}
    changes: list[Change] = []
    decided: set[str] = set()
    progress = True
    while progress:
        progress = False
        for tid in sorted(t for t, s in status.items() if s == "WAITING" and t not in decided):
            ps = parents.get(tid, ())
            failed = [p for p in ps if status.get(p, "gone") in ("FAILED", "gone")]
            cancelled = [p for p in ps if status.get(p) == "CANCELLED"]
            if failed:
                why = "; ".join(f"parent {p} {'failed' if p in status else 'was deleted'}" for p in failed)
                to: str | None = "FAILED"
            elif cancelled:
                why, to = "; ".join(f"parent {p} was cancelled" for p in cancelled), "CANCELLED"
            elif all(status.get(p) == "COMPLETE" for p in ps):
                why, to = "parents complete" if ps else "no parents", "QUEUED"
            else:
                pending = [p for p in ps if status.get(p) != "COMPLETE"]
                why = "waiting for " + ", ".join(f"{p} ({status[p]})" for p in pending)
                if blocked.get(tid) != why:
                    changes.append(Change(task=tid, to=None, reason=why, blocked=why))
                decided.add(tid)
                continue
            changes.append(Change(task=tid, to=to, reason=why))
            status[tid] = str(to)
            decided.add(tid)
            progress = True
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
