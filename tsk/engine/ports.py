"""The small protocols the store talks to, so it can run against the real engine or a fake."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

import msgspec


class ImageInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    tags: tuple[str, ...] = ()
    size: int = 0
    created: float = 0.0
    labels: dict[str, str] = {}
    parent_id: str = ""


class ContainerInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    image_id: str
    state: str
    labels: dict[str, str] = {}


class Pulled(msgspec.Struct, frozen=True, kw_only=True):
    image: ImageInfo
    bytes: int  # what was downloaded (compressed blobs the engine did not have)


class Engine(Protocol):
    def image(self, ref: str) -> ImageInfo | None: ...

    def images(self, label: str = ...) -> list[ImageInfo]: ...

    def containers(self) -> list[ContainerInfo]: ...

    def remove_image(self, ref: str) -> None: ...

    def tag(self, image_id: str, ref: str) -> None: ...

    def pull(self, ref: str, on_line: Callable[[str], None]) -> Pulled | None:
        """None when the registry has no such tag; RegistryError when it cannot be asked."""
        ...

    def push(self, ref: str, on_line: Callable[[str], None]) -> int:
        """Push a local tag; returns the bytes uploaded. RegistryError when the push fails."""
        ...

    def remote_digest(self, ref: str) -> str | None:
        """The manifest digest the registry has for `ref` (no download), None when it has none."""
        ...


class Builder(Protocol):
    calls: int

    def build(
        self,
        *,
        context: Path,
        tag: str,
        labels: Mapping[str, str],
        build_args: Mapping[str, str],
        no_cache: bool,
        on_line: Callable[[str], None],
    ) -> None: ...
