"""`tsk layers prune`: reachability plus age. A layer stays while the current target needs it, a
container (running or stopped) was made from it or from a layer above it, or it was used within the
age limit; ancestors of a kept layer stay too. Everything else with tsk's labels goes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import msgspec

from tsk.errors import EngineError
from tsk.layers.listing import LayerRow, list_layers

if TYPE_CHECKING:
    from tsk.context import Context
    from tsk.layers.service import TargetRequest

class PruneItem(msgspec.Struct, kw_only=True):
    key: str
    kind: str
    name: str
    image: str
    bytes: int  # what removing it frees: its own layers, not its parent's
    reason: str


class PruneReport(msgspec.Struct, kw_only=True):
    dry_run: bool
    removed: list[PruneItem]
    kept: list[PruneItem]
    bytes_freed: int
    failed: list[str] = []


def plan_prune(rows: list[LayerRow], *, needed: set[str], now: float, older_than: float) -> tuple[
        list[PruneItem], list[PruneItem]]:
    """Pure: which layers go and which stay (with the reason), children before parents."""
    by_key = {r.key: r for r in rows}
    parents = {r.key: (r.parent if r.parent in by_key else None) for r in rows}
    keep: dict[str, str] = {}
    for r in rows:
        if r.key in needed:
            keep[r.key] = "needed by the current target"
        elif r.in_use:
            keep[r.key] = f"in use by {r.in_use} container(s)"
        elif now - r.last_used < older_than:
            keep[r.key] = "used recently"
    for key in list(keep):  # ancestors of anything kept stay too
        p = parents.get(key)
        while p and p not in keep:
            keep[p] = "parent of a kept layer"
            p = parents.get(p)
    depth = {r.key: _depth(r.key, parents) for r in rows}
    gone = sorted((r for r in rows if r.key not in keep), key=lambda r: -depth[r.key])
    removed = [_item(r, "unreachable and unused for longer than the age limit") for r in gone]
    kept = [_item(r, keep[r.key]) for r in rows if r.key in keep]
    return removed, kept


def _depth(key: str, parents: dict[str, str | None]) -> int:
    d = 0
    p = parents.get(key)
    while p:
        d += 1
        p = parents.get(p)
    return d


def _item(r: LayerRow, reason: str) -> PruneItem:
    return PruneItem(key=r.key, kind=r.kind, name=r.name, image=r.image, bytes=r.own_size, reason=reason)


def prune(ctx: Context, req: TargetRequest, *, dry_run: bool, older_than: float) -> PruneReport:
    from tsk.layers.service import targets, unique_layers

    needed = {layer.key for layer in unique_layers(targets(ctx, req))}
    rows = list_layers(ctx)
    removed, kept = plan_prune(rows, needed=needed, now=time.time(), older_than=older_than)
    report = PruneReport(dry_run=dry_run, removed=removed, kept=kept, bytes_freed=0)
    if dry_run:
        report.bytes_freed = sum(i.bytes for i in removed)
        return report
    done: list[PruneItem] = []
    for item in removed:
        try:
            ctx.engine.remove_image(item.image)
        except EngineError as exc:
            report.failed.append(f"{item.image}: {exc.message}")
            continue
        ctx.index.forget(item.key)
        done.append(item)
    report.removed = done
    report.bytes_freed = sum(i.bytes for i in done)
    return report
