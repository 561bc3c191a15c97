"""The one module that talks to the container engine, through the docker SDK (the Engine API).

Everything else uses the small `Engine` protocol in tsk/layers/ports.py, so planners and the store can
be tested with a fake. Typed docker errors are mapped to TskError subclasses here, never by message."""

from __future__ import annotations

import os
from typing import Any

import docker
import docker.errors

from tsk.errors import EngineError, EngineUnavailable, TskError
from tsk.layers.ports import ContainerInfo, ImageInfo

LABEL_KEY = "dev.tsk.key"


def _engine_hint() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return (
        f"is dockerd running and reachable at {host}? Start it with `scripts/engine` (as root), "
        "or point DOCKER_HOST at a running engine"
    )


class DockerEngine:
    """Engine API client. Connects lazily on first use, so building the object costs nothing."""

    def __init__(self) -> None:
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = docker.from_env(timeout=120)
            except docker.errors.DockerException as exc:
                raise EngineUnavailable(
                    f"cannot reach the container engine: {exc}", hint=_engine_hint()
                ) from exc
        return self._client

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except docker.errors.NotFound:
            raise
        except docker.errors.APIError as exc:
            raise EngineError(f"the engine refused the request: {exc.explanation or exc}") from exc
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(f"cannot reach the container engine: {exc}", hint=_engine_hint()) from exc
        except OSError as exc:  # requests' ConnectionError is an OSError
            raise EngineUnavailable(f"cannot reach the container engine: {exc}", hint=_engine_hint()) from exc

    def image(self, ref: str) -> ImageInfo | None:
        """One Engine API lookup (GET /images/{ref}/json). None when the engine has no such image."""
        try:
            raw = self._call(self.client.api.inspect_image, ref)
        except docker.errors.NotFound:
            return None
        except TskError:
            raise
        return _image_info(raw)

    def images(self, label: str = LABEL_KEY) -> list[ImageInfo]:
        raws = self._call(self.client.api.images, filters={"label": label})
        return [
            ImageInfo(
                id=r["Id"], tags=tuple(t for t in (r.get("RepoTags") or []) if t != "<none>:<none>"),
                size=int(r.get("Size") or 0), created=float(r.get("Created") or 0),
                labels=dict(r.get("Labels") or {}), parent_id=r.get("ParentId") or "",
            )
            for r in raws
        ]

    def containers(self) -> list[ContainerInfo]:
        """Every container (running or not) with the image id it was made from."""
        raws = self._call(self.client.api.containers, all=True)
        return [
            ContainerInfo(
                id=r["Id"], name=(r.get("Names") or ["?"])[0].lstrip("/"), image_id=r.get("ImageID", ""),
                state=r.get("State", ""), labels=dict(r.get("Labels") or {}),
            )
            for r in raws
        ]

    def remove_image(self, ref: str) -> None:
        try:
            self._call(self.client.api.remove_image, ref, noprune=False)
        except docker.errors.NotFound:
            return

    def tag(self, image_id: str, ref: str) -> None:
        repo, _, tag = ref.rpartition(":")
        self._call(self.client.api.tag, image_id, repo, tag)


def _image_info(raw: dict[str, Any]) -> ImageInfo:
    cfg = raw.get("Config") or {}
    created = raw.get("Created") or ""
    return ImageInfo(
        id=raw["Id"], tags=tuple(raw.get("RepoTags") or ()), size=int(raw.get("Size") or 0),
        created=_parse_time(created), labels=dict(cfg.get("Labels") or {}), parent_id=raw.get("Parent") or "",
    )


def _parse_time(value: str | float) -> float:
    if isinstance(value, int | float):
        return float(value)
    from datetime import datetime

    try:
        # The engine gives RFC 3339 with nanoseconds; Python parses up to microseconds.
        head, _, frac = value.rstrip("Z").partition(".")
        stamp = datetime.fromisoformat(head + "+00:00")
        return stamp.timestamp() + (float("0." + frac[:6]) if frac else 0.0)
    except ValueError:
        return 0.0
