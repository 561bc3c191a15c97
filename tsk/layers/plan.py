"""Pure planning: from the slots a target needs to the chain of keyed layers. No engine, no builder."""

from __future__ import annotations

from pathlib import Path

import msgspec

from tsk.layers.keys import digest_bytes, layer_key, normalise_snippet
from tsk.layers.snippet import context_sources, digest_path, resolve_sources

IMAGE_REPO = "tsk/layer"
KINDS = ("base", "stack", "project", "agent", "proxy")


class Slot(msgspec.Struct, frozen=True, kw_only=True):
    """One layer to be: which kind and name it fills, its snippet, and where its COPY sources live."""

    kind: str
    name: str
    snippet: str
    origin: str  # where the snippet came from, for people: "layers/stack/python.dockerfile", "config ..."
    root: str | None = None  # directory COPY sources are read from
    build_args: tuple[tuple[str, str], ...] = ()


class Layer(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    name: str
    key: str
    parent: str | None  # parent layer key
    from_ref: str  # what the Dockerfile's FROM names
    base_image: str | None  # the outside image a bottom layer is built on
    base_image_id: str | None
    snippet: str
    origin: str
    build_args: tuple[tuple[str, str], ...]
    files: tuple[tuple[str, str], ...]  # context path -> digest
    sources: tuple[tuple[str, str], ...]  # context path -> host path (not part of the key)

    @property
    def tag(self) -> str:
        return image_ref(self.kind, self.key)

    @property
    def slot(self) -> str:
        return f"{self.kind}/{self.name}"

    def dockerfile(self) -> str:
        return f"FROM {self.from_ref}\n{self.snippet}"

    def manifest(self) -> Manifest:
        return Manifest(
            kind=self.kind, name=self.name, parent=self.parent, snippet=digest_bytes(self.snippet.encode()),
            build_args=dict(self.build_args), files=dict(self.files), base_image=self.base_image,
            base_image_id=self.base_image_id, origin=self.origin,
        )


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """The inputs that made a key, small enough for an image label and to diff."""

    kind: str
    name: str
    parent: str | None
    snippet: str  # digest of the snippet text
    build_args: dict[str, str]
    files: dict[str, str]
    base_image: str | None
    base_image_id: str | None
    origin: str = ""


def image_ref(kind: str, key: str) -> str:
    return f"{IMAGE_REPO}:{kind}-{key}"


def plan_chain(
    slots: list[Slot], *, base_image: str, base_image_id: str, roots: dict[str, Path]
) -> tuple[Layer, ...]:
    """Key each slot on top of the one before it; the first is built FROM `base_image`."""
    chain: list[Layer] = []
    for slot in slots:
        parent = chain[-1] if chain else None
        snippet = normalise_snippet(slot.snippet)
        where = f"{slot.kind} layer `{slot.name}` ({slot.origin})"
        default_root = Path(slot.root) if slot.root else None
        sources = resolve_sources(where, context_sources(snippet), roots, default_root)
        files = tuple(sorted((rel, digest_path(p)) for rel, p in sources.items()))
        bottom = parent is None
        key = layer_key(
            kind=slot.kind, parent=None if bottom else parent.key, snippet=snippet,  # type: ignore[union-attr]
            build_args=slot.build_args, files=files, base_image_id=base_image_id if bottom else None,
        )
        chain.append(
            Layer(
                kind=slot.kind, name=slot.name, key=key, parent=None if parent is None else parent.key,
                from_ref=base_image if parent is None else parent.tag,
                base_image=base_image if bottom else None, base_image_id=base_image_id if bottom else None,
                snippet=snippet, origin=slot.origin, build_args=tuple(sorted(slot.build_args)), files=files,
                sources=tuple(sorted((rel, str(p)) for rel, p in sources.items())),
            )
        )
    return tuple(chain)
