"""The one module that talks to python-on-whales: image builds through `docker buildx build`
(BuildKit), streamed line by line to a progress callback."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from tsk.errors import BuilderUnavailable, BuildFailed

log = logging.getLogger("tsk.builder")


class BuildxBuilder:
    """Builds one layer per call. `calls` counts BuildKit invocations (the hit path must make none)."""

    def __init__(self) -> None:
        self.calls = 0
        self._docker: DockerClient | None = None

    def _client(self) -> DockerClient:
        if self._docker is None:
            docker = DockerClient()
            try:
                docker.buildx.version()
            except (DockerException, FileNotFoundError, OSError) as exc:
                raise BuilderUnavailable(
                    "the image builder `docker buildx` is not available",
                    hint="install the buildx plugin (Debian: package docker-buildx; or run `scripts/engine`)",
                ) from exc
            self._docker = docker
        return self._docker

    def build(
        self,
        *,
        context: Path,
        tag: str,
        labels: Mapping[str, str],
        build_args: Mapping[str, str],
        no_cache: bool,
        on_line: Callable[[str], None],
    ) -> None:
        docker = self._client()
        self.calls += 1
        tail: list[str] = []
        try:
            stream = docker.buildx.build(
                context,
                file=context / "Dockerfile",
                tags=[tag],
                labels=dict(labels),
                build_args=dict(build_args),
                cache=not no_cache,
                progress="plain",
                stream_logs=True,
            )
            assert not isinstance(stream, type(None))
            for raw in stream:  # type: ignore[union-attr]
                line = str(raw).rstrip("\n")
                tail = [*tail[-40:], line]
                on_line(line)
        except DockerException as exc:
            detail = "\n".join(tail[-25:]) or str(exc)
            raise BuildFailed(f"building {tag} failed:\n{detail}") from exc
