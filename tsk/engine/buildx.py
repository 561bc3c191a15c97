"""The one module that talks to python-on-whales: image builds through `docker buildx build` (BuildKit) or
`podman build` (buildah, through Podman's API service), streamed line by line to a progress callback."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from python_on_whales.utils import run as whales_run
from python_on_whales.utils import stream_stdout_and_stderr

from tsk.errors import BuilderUnavailable, BuildFailed

log = logging.getLogger("tsk.builder")


def _relay(tag: str, stream: Iterable[str], on_line: Callable[[str], None]) -> None:
    """Pass each line on; a failed build raises BuildFailed with the last lines of its output."""
    tail: list[str] = []
    try:
        for raw in stream:
            line = str(raw).rstrip("\n")
            tail = [*tail[-40:], line]
            on_line(line)
    except DockerException as exc:
        detail = "\n".join(tail[-25:]) or str(exc)
        raise BuildFailed(f"building {tag} failed:\n{detail}") from exc


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
        _relay(tag, stream, on_line)  # type: ignore[arg-type]


class PodmanBuilder:
    """`podman build`, in a process of its own. With the engine's socket this user's own Podman here,
    the build runs here on the same storage: Podman 4.3's API service never releases a `sharing=locked`
    cache mount's lock after a build through it, so the next such build waits for ever; a process of its
    own releases its locks when it ends. With any other socket (CONTAINER_HOST), it is a client of that
    service (`--url`), so the image lands where the containers are made.

    `--layers=false`: buildah's per-step cache would leave an untagged image per step that no tsk command
    sees or removes; the layer store is the cache. Docker's image format, so a snippet's HEALTHCHECK or
    SHELL is kept as BuildKit keeps it."""

    def __init__(self, url: str, *, remote: bool) -> None:
        self.calls = 0
        self.url = url
        self.remote = remote
        self._checked = False

    def _argv(self, *args: str | Path) -> list[str]:
        return ["podman", *(("--url", self.url) if self.remote else ()), *map(str, args)]

    def _check(self) -> None:
        if self._checked:
            return
        try:
            whales_run(["podman", "--url", self.url, "version", "--format", "{{.Server.Version}}"])
        except (DockerException, FileNotFoundError, OSError) as exc:
            raise BuilderUnavailable(
                f"the image builder `podman build` is not available at {self.url}",
                hint="install podman and start its API service (`scripts/engine podman`)",
            ) from exc
        self._checked = True

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
        self._check()
        self.calls += 1
        argv = self._argv("build", "--layers=false", "--format", "docker", "--identity-label=false",
                          "--file", context / "Dockerfile", "--tag", tag)
        for k, v in labels.items():
            argv += ["--label", f"{k}={v}"]
        for k, v in build_args.items():
            argv += ["--build-arg", f"{k}={v}"]
        if no_cache:
            argv.append("--no-cache")
        argv.append(str(context))
        log.debug("build %s", argv)
        _relay(tag, (line.decode(errors="replace") for _, line in stream_stdout_and_stderr(argv)), on_line)
