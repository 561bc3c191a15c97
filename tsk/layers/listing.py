"""`tsk layers ls`: every layer image the engine holds, joined with what the index remembers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from tsk.engine.ports import ContainerInfo, ImageInfo

if TYPE_CHECKING:
    from tsk.context import Context


class LayerRow(msgspec.Struct, kw_only=True):
    key: str
    kind: str
    name: str
    image: str
    image_id: str
    parent: str  # parent layer key, "" for a layer built on an outside image
    size: int  # the whole image, as the engine reports it
    own_size: int  # what this layer adds to its parent: what removing it alone frees
    created: float
    last_used: float
    in_use: int  # containers made from this layer or a layer above it


def users_by_key(images: list[ImageInfo], containers: list[ContainerInfo]) -> dict[str, int]:
    """How many containers depend on each layer key, counting a container against its image's whole
    ancestry (a container of the agent layer also needs the stack and base layers)."""
    by_id = {img.id: img for img in images}
    parent_of = {img.labels.get("dev.tsk.key", ""): img.labels.get("dev.tsk.parent", "") for img in images}
    counts: dict[str, int] = {}
    for c in containers:
        img = by_id.get(c.image_id)
        key = img.labels.get("dev.tsk.key") if img else None
        seen: set[str] = set()
        while key and key not in seen:
            seen.add(key)
            counts[key] = counts.get(key, 0) + 1
            key = parent_of.get(key)
    return counts


def list_layers(ctx: Context) -> list[LayerRow]:
    images = ctx.engine.images()
    users = users_by_key(images, ctx.engine.containers())
    size_of = {img.labels.get("dev.tsk.key", ""): img.size for img in images}
    rows: list[LayerRow] = []
    for img in images:
        key = img.labels.get("dev.tsk.key")
        if not key:
            continue
        rec = ctx.index.get(key)
        parent = img.labels.get("dev.tsk.parent", "")
        rows.append(LayerRow(
            key=key, kind=img.labels.get("dev.tsk.kind", "?"), name=img.labels.get("dev.tsk.name", "?"),
            image=next((t for t in img.tags if t.startswith("tsk/")), img.tags[0] if img.tags else img.id),
            image_id=img.id, parent=parent, size=img.size,
            own_size=max(0, img.size - _parent_size(ctx, img, parent, size_of)), created=img.created,
            last_used=rec.last_used if rec else img.created, in_use=users.get(key, 0),
        ))
    order = {"base": 0, "stack": 1, "project": 2, "agent": 3, "proxy": 4}
    rows.sort(key=lambda r: (order.get(r.kind, 9), r.name, -r.last_used))
    return rows


def _parent_size(ctx: Context, img: ImageInfo, parent: str, size_of: dict[str, int]) -> int:
    if parent:
        return size_of.get(parent, 0)
    try:
        base_id = msgspec.json.decode(img.labels.get("dev.tsk.manifest", "{}")).get("base_image_id")
    except msgspec.DecodeError:
        return 0
    base = ctx.engine.image(base_id) if base_id else None
    return base.size if base else 0
