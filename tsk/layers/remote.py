"""A registry repository that holds layers by key (DESIGN §2, "Remote cache").

A layer's remote name is `<repository>:<kind>-<key>`, e.g. `ghcr.io/acme/tsk-layers:stack-0123…`. Keys
are machine-independent, so the key a laptop computes names the image CI pushed. After a pull the image
gets its usual local tag (`tsk/layer:<kind>-<key>`) and the remote tag is dropped, so `tsk layers ls`
shows each layer once."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from tsk.errors import ConfigError, RegistryError

if TYPE_CHECKING:  # loading config checks `[layers] registry` with this module: keep it light
    from tsk.engine.ports import Engine, Pulled
    from tsk.layers.plan import Layer

# host[:port]/path, lowercase path components, no tag and no digest: tsk adds the tag.
_REPOSITORY = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$")

HOW_TO_SET = (
    "pass --registry HOST/PATH (e.g. ghcr.io/acme/tsk-layers), set TSK_REGISTRY, or put "
    '`registry = "HOST/PATH"` under [layers] in ~/.config/tsk/tsk.toml or the repo\'s .tsk/tsk.toml'
)


def valid_repository(value: str) -> bool:
    return bool(_REPOSITORY.match(value))


def check_repository(value: str, source: str) -> str:
    """A registry setting must name a repository (`host/path`); tsk adds `:<kind>-<key>` itself."""
    if not valid_repository(value):
        raise ConfigError(
            f"registry `{value}` (from {source}) is not a repository reference like ghcr.io/acme/tsk-layers "
            "(a host, then a lowercase path; no tag, no digest, no scheme)",
            hint="tsk names each layer `<registry>:<kind>-<key>` itself; drop any `:tag`, `@sha256:` or `https://`",
        )
    return value


class Remote:
    """The store's view of one registry repository. It remembers, for the life of the store (one command or
    one task), which keys it already asked for, and stops asking after the registry fails once: an
    unreachable registry costs one round trip, not one per layer."""

    def __init__(self, engine: Engine, repository: str) -> None:
        self.engine = engine
        self.repository = repository
        self.tried: set[str] = set()
        self.failure: RegistryError | None = None

    @property
    def usable(self) -> bool:
        return self.failure is None

    def ref(self, layer: Layer) -> str:
        return f"{self.repository}:{layer.kind}-{layer.key}"

    def pull(self, layer: Layer, on_line: Callable[[str], None]) -> Pulled | None:
        """Pull one layer by key and give it its local tag. None when the registry lacks it (or when it
        was asked already). A RegistryError disables the remote for the rest of the store's life."""
        if self.failure is not None or layer.key in self.tried:
            return None
        self.tried.add(layer.key)
        ref = self.ref(layer)
        try:
            got = self.engine.pull(ref, on_line)
            if got is None:
                return None
            if got.image.labels.get("dev.tsk.key") != layer.key:
                self.engine.remove_image(ref)
                raise RegistryError(
                    f"registry image {ref} is not the layer it names (its dev.tsk.key label is "
                    f"{got.image.labels.get('dev.tsk.key') or 'missing'})",
                    reason="label mismatch", hint="push it again with `tsk layers push`",
                )
            self.engine.tag(got.image.id, layer.tag)
            self.engine.remove_image(ref)  # untags only: the image keeps its local tag
        except RegistryError as exc:
            self.failure = exc
            raise
        return got

    def has(self, layer: Layer) -> bool:
        return self.engine.remote_has(self.ref(layer))

    def push(self, layer: Layer, on_line: Callable[[str], None]) -> int:
        """Push a local layer under its remote name; returns the bytes the engine reported uploading."""
        ref = self.ref(layer)
        info = self.engine.image(layer.tag)
        if info is None:
            raise RegistryError(f"cannot push {layer.slot}: the engine has no image {layer.tag}",
                                reason="not built", hint="build it first: `tsk layers build`")
        self.engine.tag(info.id, ref)
        try:
            return self.engine.push(ref, on_line)
        finally:
            self.engine.remove_image(ref)
