"""The engines tsk can drive, by name: the Engine adapter and the Builder of each. Each is imported only
when asked for (the docker SDK and python-on-whales are most of a command's import time)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from tsk.engine import choice

if TYPE_CHECKING:
    from tsk.engine.ports import Builder, Engine

Environ = Mapping[str, str]


def _docker(environ: Environ) -> Engine:
    from tsk.engine.docker_api import DockerEngine

    return DockerEngine(environ)


def _podman(environ: Environ) -> Engine:
    from tsk.engine.podman_api import PodmanEngine

    return PodmanEngine(environ)


def _buildx(environ: Environ) -> Builder:
    from tsk.engine.buildx import BuildxBuilder

    return BuildxBuilder()


def _podman_build(environ: Environ) -> Builder:
    from tsk.engine.buildx import PodmanBuilder

    url = choice.podman_url(environ)
    return PodmanBuilder(url, remote=not choice.podman_is_local(url, environ))


ENGINES: dict[str, tuple[Callable[[Environ], Engine], Callable[[Environ], Builder]]] = {
    "docker": (_docker, _buildx),
    "podman": (_podman, _podman_build),
}
assert tuple(ENGINES) == choice.ENGINES


def make_engine(name: str, environ: Environ) -> Engine:
    return ENGINES[name][0](environ)


def make_builder(name: str, environ: Environ) -> Builder:
    return ENGINES[name][1](environ)
