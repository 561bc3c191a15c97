"""The typed protocols every caller uses to reach the container engine and the image builder, and the
plain data they exchange. tsk/engine/docker_api.py (dockerd; Podman through tsk/engine/podman_api.py)
and tsk/engine/buildx.py implement them; tests use one fake (tests/fakes.py) type-checked against the
same protocols."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import msgspec

from tsk.engine.spec import ContainerSpec

LABEL_KEY = "dev.tsk.key"  # every layer image carries its key under this label


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
    state: str  # "created", "running", "exited", ...
    labels: dict[str, str] = {}


class ContainerState(msgspec.Struct, frozen=True, kw_only=True):
    running: bool
    status: str  # as the engine says it: created, running, exited, dead, ...
    exit_code: int | None = None
    oom_killed: bool = False


class Pulled(msgspec.Struct, frozen=True, kw_only=True):
    image: ImageInfo
    bytes: int  # what was downloaded (compressed blobs the engine did not have)


class Engine(Protocol):
    """Every call tsk makes to a container engine. Failures are TskError subclasses (tsk/errors.py):
    EngineUnavailable when it cannot be reached, EngineError when it refuses, ImageMissing when a
    container is created from an image it no longer has, RegistryError for registry trouble."""

    name: str  # "docker" or "podman": what a task records, so it runs where it was made

    def ping(self) -> None: ...

    def attach_command(self, ident: str) -> list[str]:
        """The argv that starts a created container with the user's terminal attached (`tsk shell`)."""
        ...

    # -- images -----------------------------------------------------------------------------------
    def image(self, ref: str) -> ImageInfo | None:
        """One lookup; None when the engine has no such image."""
        ...

    def find_images(self, refs: Sequence[str]) -> dict[str, ImageInfo]:
        """The images of these refs that exist, keyed by the ref asked for, in one engine call where it
        can (the warm hit path): refs it cannot match by tag are looked up one by one."""
        ...

    def images(self, label: str = ...) -> list[ImageInfo]: ...

    def remove_image(self, ref: str) -> None: ...

    def tag(self, image_id: str, ref: str) -> None: ...

    # -- registries -------------------------------------------------------------------------------
    def pull(self, ref: str, on_line: Callable[[str], None]) -> Pulled | None:
        """None when the registry has no such tag; RegistryError when it cannot be asked."""
        ...

    def push(self, ref: str, on_line: Callable[[str], None]) -> int:
        """Push a local tag; returns the bytes uploaded. RegistryError when the push fails."""
        ...

    def remote_has(self, ref: str) -> bool:
        """Whether the registry has a manifest for `ref` (nothing is downloaded); RegistryError when it
        cannot be asked."""
        ...

    # -- networks and volumes ---------------------------------------------------------------------
    def network_ensure(self, name: str, *, labels: Mapping[str, str]) -> str:
        """A bridge network with outside access (the proxies' egress network); its id."""
        ...

    def volume_create(self, name: str, *, driver_opts: Mapping[str, str], labels: Mapping[str, str]) -> None: ...

    def volume_remove(self, name: str) -> None:
        """Gone already is fine."""
        ...

    def volumes(self, label: str) -> list[str]:
        """Names of the volumes with this label (`key` or `key=value`)."""
        ...

    # -- containers -------------------------------------------------------------------------------
    def containers(self, label: str | None = None) -> list[ContainerInfo]:
        """Every container, running or not; with `label` (`key` or `key=value`) only those that carry it."""
        ...

    def container_create(self, spec: ContainerSpec) -> str:
        """Its id. ImageMissing when the engine no longer has the spec's image."""
        ...

    def container_start(self, ident: str) -> None: ...

    def container_logs(self, ident: str) -> Iterator[bytes]:
        """A live stream of the container's stdout, in chunks, until it exits."""
        ...

    def container_wait(self, ident: str) -> int:
        """Block until it exits; its exit code."""
        ...

    def container_stop(self, ident: str, timeout: int = 10) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds. Gone already is fine."""
        ...

    def container_remove(self, ident: str) -> None:
        """Forcibly, with nothing left running. Gone already is fine."""
        ...

    def container_state(self, ident: str) -> ContainerState | None:
        """None when there is no such container."""
        ...


class Builder(Protocol):
    calls: int  # image builds run so far (the warm hit path makes none)

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
