"""`tsk layers why`: for each layer of a target, a hit, or what changed since that slot last built."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import msgspec

from tsk.layers.diff import changes
from tsk.layers.index import LayerRecord
from tsk.layers.plan import Layer

if TYPE_CHECKING:
    from tsk.context import Context
    from tsk.layers.service import TargetRequest


class WhyRow(msgspec.Struct, kw_only=True):
    kind: str
    name: str
    key: str
    status: str  # "hit" or "miss"
    reasons: list[str]
    diff: str = ""


def explain(layer: Layer, exists: bool, previous: LayerRecord | None) -> WhyRow:
    row = WhyRow(kind=layer.kind, name=layer.name, key=layer.key, status="hit" if exists else "miss", reasons=[])
    if exists:
        return row
    if previous is None:
        row.reasons.append(f"never built for slot {layer.slot}")
        return row
    if previous.key == layer.key:
        row.reasons.append("same inputs as the last build, but its image is gone (pruned or removed)")
        return row
    row.reasons.extend(changes(previous.manifest, layer.manifest(), old_key=previous.key, new_key=layer.key))
    if (previous.manifest.parent or None) == (layer.parent or None):
        row.reasons.append("parent unchanged")
    if previous.snippet != layer.snippet:
        row.diff = "".join(difflib.unified_diff(
            previous.snippet.splitlines(keepends=True), layer.snippet.splitlines(keepends=True),
            fromfile=f"{layer.slot} (last built {previous.key[:12]})", tofile=f"{layer.slot} (wanted)",
        ))
    return row


def why(ctx: Context, req: TargetRequest) -> list[WhyRow]:
    from tsk.layers.service import targets, unique_layers

    layers = unique_layers(targets(ctx, req))
    present = ctx.engine.find_images([layer.tag for layer in layers])
    return [explain(layer, layer.tag in present, ctx.index.last_for_slot(layer.kind, layer.name)) for layer in layers]
