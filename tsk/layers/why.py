"""`tsk layers why`: for each layer of a target, a hit, or what changed since that slot last built."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import msgspec

from tsk.layers.index import LayerRecord
from tsk.layers.plan import Layer, Manifest

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
    row.reasons.extend(manifest_changes(previous.manifest, layer.manifest()))
    if previous.snippet != layer.snippet:
        row.diff = "".join(difflib.unified_diff(
            previous.snippet.splitlines(keepends=True), layer.snippet.splitlines(keepends=True),
            fromfile=f"{layer.slot} (last built {previous.key[:12]})", tofile=f"{layer.slot} (wanted)",
        ))
    return row


def manifest_changes(old: Manifest, new: Manifest) -> list[str]:
    what = "snippet" if not new.origin.startswith("config") else new.origin.removeprefix("config ")
    out: list[str] = []
    if old.snippet != new.snippet:
        out.append(f"`{what}` changed")
    if old.origin != new.origin:
        out.append(f"snippet source changed: {old.origin or '?'} -> {new.origin}")
    if old.base_image_id != new.base_image_id:
        out.append(f"base image `{new.base_image}` changed: {_short(old.base_image_id)} -> {_short(new.base_image_id)}")
    for name in sorted(set(old.files) | set(new.files)):
        a, b = old.files.get(name), new.files.get(name)
        if a != b:
            out.append(f"file `{name}` " + ("added" if a is None else "removed" if b is None else "content changed"))
    for name in sorted(set(old.build_args) | set(new.build_args)):
        a, b = old.build_args.get(name), new.build_args.get(name)
        if a != b:
            out.append(f"build arg {name}: {a!r} -> {b!r}")
    if old.parent != new.parent:
        out.append(f"parent changed ({_short(old.parent)} -> {_short(new.parent)}): a lower layer was rebuilt")
    elif out:
        out.append("parent unchanged")
    if not out:
        out.append("inputs differ in a way the manifest does not show (schema change?)")
    return out


def _short(key: str | None) -> str:
    return key[:12] if key else "none"


def why(ctx: Context, req: TargetRequest) -> list[WhyRow]:
    from tsk.layers.service import targets

    rows: list[WhyRow] = []
    seen: set[str] = set()
    for tgt in targets(ctx, req):
        for layer in tgt.chain:
            if layer.key in seen:
                continue
            seen.add(layer.key)
            exists = ctx.engine.image(layer.tag) is not None
            rows.append(explain(layer, exists, ctx.index.last_for_slot(layer.kind, layer.name)))
    return rows
