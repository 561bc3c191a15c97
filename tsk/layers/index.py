"""The layer index (diskcache): what was built, when it was last used, and the inputs that made it.

The engine is the truth for whether an image exists; the index remembers what the engine does not:
last use, the snippet text (so `tsk layers why` can show a diff) and which key last filled each slot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgspec

from tsk.layers.plan import Layer, Manifest


class LayerRecord(msgspec.Struct, kw_only=True):
    key: str
    kind: str
    name: str
    parent: str | None
    tag: str
    image_id: str
    size: int
    created: float
    last_used: float
    manifest: Manifest
    snippet: str
    seconds: float = 0.0


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(LayerRecord)


class LayerIndex:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: Any = None

    @property
    def cache(self) -> Any:
        if self._cache is None:
            import diskcache

            self.directory.mkdir(parents=True, exist_ok=True)
            self._cache = diskcache.Cache(str(self.directory), eviction_policy="none", size_limit=2**40)
        return self._cache

    def get(self, key: str) -> LayerRecord | None:
        raw = self.cache.get(f"layer:{key}")
        return None if raw is None else _dec.decode(raw)

    def put(self, rec: LayerRecord) -> None:
        with self.cache.transact():
            self.cache.set(f"layer:{rec.key}", _enc.encode(rec))
            self.cache.set(f"slot:{rec.kind}/{rec.name}", rec.key)

    def record_build(self, layer: Layer, *, image_id: str, size: int, seconds: float) -> LayerRecord:
        now = time.time()
        rec = LayerRecord(
            key=layer.key, kind=layer.kind, name=layer.name, parent=layer.parent, tag=layer.tag,
            image_id=image_id, size=size, created=now, last_used=now, manifest=layer.manifest(),
            snippet=layer.snippet, seconds=seconds,
        )
        self.put(rec)
        return rec

    def touch(self, layers: tuple[Layer, ...], now: float | None = None) -> None:
        """Mark a chain used. Layers the index has no record of (built by another index, or before
        this one existed) are skipped: `ls` and `prune` fall back to the image's creation time."""
        when = time.time() if now is None else now
        with self.cache.transact():
            for layer in layers:
                raw = self.cache.get(f"layer:{layer.key}")
                if raw is None:
                    continue
                rec = _dec.decode(raw)
                rec.last_used = when
                self.cache.set(f"layer:{layer.key}", _enc.encode(rec))
                self.cache.set(f"slot:{layer.kind}/{layer.name}", layer.key)

    def base_id(self, ref: str) -> str | None:
        """The image id `ref` had when a chain was last resolved on it: keys are computed from it first, and
        one engine call then confirms both it and the leaves (the warm hit path)."""
        value = self.cache.get(f"base:{ref}")
        return value if isinstance(value, str) else None

    def remember_base(self, ref: str, image_id: str) -> None:
        if self.cache.get(f"base:{ref}") != image_id:
            self.cache.set(f"base:{ref}", image_id)

    def last_for_slot(self, kind: str, name: str) -> LayerRecord | None:
        key = self.cache.get(f"slot:{kind}/{name}")
        return None if key is None else self.get(key)

    def records(self) -> list[LayerRecord]:
        out = []
        for k in self.cache.iterkeys():
            if isinstance(k, str) and k.startswith("layer:"):
                rec = self.get(k[len("layer:"):])
                if rec is not None:
                    out.append(rec)
        return out

    def forget(self, key: str) -> None:
        self.cache.delete(f"layer:{key}")

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
