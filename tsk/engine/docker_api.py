"""The one module that talks to the container engine, through the docker SDK (the Engine API): dockerd, or
Podman's Docker-compatible service (tsk/engine/podman_api.py adapts this class where Podman answers
differently).

Everything else uses the `Engine` protocol in tsk/engine/ports.py, so planners, the store and the runner
can be tested with a fake. The SDK's typed errors become TskError subclasses here, never by message:
nothing from `docker.errors` leaves this module."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import docker
import docker.errors

from tsk.engine import choice
from tsk.engine.ports import LABEL_KEY, ContainerInfo, ContainerState, ImageInfo, Pulled
from tsk.engine.spec import ContainerSpec
from tsk.errors import EngineError, EngineNotFound, EngineUnavailable, ImageMissing, RegistryError

TIMEOUT = 120  # seconds for one API call (a stop waits up to its own timeout on top)


class DockerEngine:
    """Engine API client. Connects lazily on first use, so building the object costs nothing."""

    name = "docker"
    cli = "docker"  # the engine's own command line: terminal attach (`tsk shell`) and hints

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self._client: Any = None

    @property
    def url(self) -> str:
        return choice.docker_url(self.environ)

    def hint(self) -> str:
        return (f"is dockerd running and reachable at {self.url}? Start it with `scripts/engine` (as root), "
                "or point DOCKER_HOST at a running engine")

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = self._connect()
            except (docker.errors.DockerException, OSError) as exc:  # requests' ConnectionError is an OSError
                raise EngineUnavailable(f"cannot reach the container engine: {exc}", hint=self.hint()) from exc
        return self._client

    def _connect(self) -> Any:
        return docker.from_env(timeout=TIMEOUT, environment=self.environ)

    def _connect_to(self, url: str, api_version: str) -> Any:
        """A client of `url` speaking `api_version`: no version call to learn it."""
        return docker.DockerClient(base_url=url, timeout=TIMEOUT, version=api_version)

    @staticmethod
    def _ping_headers(client: Any) -> Mapping[str, str]:
        """GET /_ping's headers: who answers (the SDK's ping keeps only the body)."""
        res = client.api._get(client.api._url("/_ping"))
        client.api._raise_for_status(res)
        return res.headers  # type: ignore[no-any-return]  # requests: case-insensitive

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            raise self._mapped(exc) from exc

    def _mapped(self, exc: BaseException) -> BaseException:
        mapped = _mapped(exc)
        if isinstance(mapped, EngineUnavailable):
            mapped.hint = self.hint()
        return mapped

    def _get_json(self, path: str, *args: str) -> tuple[int, Any]:
        """A GET of an endpoint the SDK has no method for (`path` formatted with url-quoted `args`, under
        the API version): its status and decoded body, without raising for a status."""
        api = self.client.api
        res = self._call(api._get, api._url(path, *args))
        try:
            body = res.json()
        except ValueError:
            body = None
        return res.status_code, body

    def attach_command(self, ident: str) -> list[str]:
        """The CLI that attaches the user's terminal to a created container and starts it: the CLI owns
        terminal handling (raw mode, resize on SIGWINCH)."""
        return ["docker", "start", "--attach", "--interactive", ident]

    def ping(self) -> None:
        url = self.url
        if url.startswith("unix://") and not os.path.exists(url[len("unix://"):]):
            # said without connecting: the SDK leaks the socket of a connect that fails
            raise EngineUnavailable(f"cannot reach the container engine: no socket at {url[len('unix://'):]}",
                                    hint=self.hint())
        self._call(self.client.ping)

    def image(self, ref: str) -> ImageInfo | None:
        """One Engine API lookup (GET /images/{ref}/json). None when the engine has no such image."""
        try:
            raw = self._call(self.client.api.inspect_image, ref)
        except EngineNotFound:
            return None
        return self._image_info(raw)

    def find_images(self, refs: Sequence[str]) -> dict[str, ImageInfo]:
        """One GET /images/json filtered by every ref (the engine ORs them); a ref the listing does not
        name by tag (a digest, a short or long form of the name) is then looked up on its own."""
        wanted = list(dict.fromkeys(refs))
        raws = self._call(self.client.api.images, filters={"reference": wanted})
        found: dict[str, ImageInfo] = {}
        for r in raws:
            info = self._listed(r)
            for ref in wanted:
                if ref in info.tags:
                    found[ref] = info
        for ref in wanted:  # absent, or named in a form the listing does not show (a digest, docker.io/...)
            if ref not in found and (one := self.image(ref)) is not None:
                found[ref] = one
        return found

    def images(self, label: str = LABEL_KEY) -> list[ImageInfo]:
        raws = self._call(self.client.api.images, filters={"label": label})
        return [self._listed(r) for r in raws]

    def _tags(self, tags: Iterable[str]) -> tuple[str, ...]:
        return tuple(t for t in tags if t != "<none>:<none>")

    def _listed(self, r: dict[str, Any]) -> ImageInfo:
        return ImageInfo(
            id=r["Id"], tags=self._tags(r.get("RepoTags") or ()), size=int(r.get("Size") or 0),
            created=float(r.get("Created") or 0), labels=dict(r.get("Labels") or {}), parent_id=r.get("ParentId") or "",
        )

    def _image_info(self, raw: dict[str, Any]) -> ImageInfo:
        cfg = raw.get("Config") or {}
        return ImageInfo(
            id=raw["Id"], tags=self._tags(raw.get("RepoTags") or ()), size=int(raw.get("Size") or 0),
            created=_parse_time(raw.get("Created") or ""), labels=dict(cfg.get("Labels") or {}),
            parent_id=raw.get("Parent") or "",
        )

    def remove_image(self, ref: str) -> None:
        with contextlib.suppress(EngineNotFound):
            self._call(self.client.api.remove_image, ref, noprune=False)

    def tag(self, image_id: str, ref: str) -> None:
        repo, _, tag = ref.rpartition(":")
        self._call(self.client.api.tag, image_id, repo, tag)

    # -- registries -------------------------------------------------------------------------------
    # The engine talks to the registry (with the credentials of `docker login`); tsk only asks it to.
    # A 404 from the engine means the registry has no such manifest; any other refusal, and an error
    # reported inside the progress stream, is a RegistryError carrying what the engine said.

    def _registry_call(self, ref: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._call(fn, *args, **kwargs)
        except EngineNotFound:
            raise
        except EngineError as exc:
            cause = exc.__cause__
            reason = getattr(cause, "explanation", None) or str(cause or exc)
            raise self._registry_error(ref, str(reason)) from exc

    def _registry_error(self, ref: str, reason: str) -> RegistryError:
        host = ref.split("/", 1)[0]
        return RegistryError(
            f"registry {host}: {reason}", reason=reason,
            hint=f"check that {host} is reachable and that `{self.cli} login {host}` has credentials for it",
        )

    def pull(self, ref: str, on_line: Callable[[str], None]) -> Pulled | None:
        try:  # the SDK splits `host:port/path:tag` itself
            stream = self._registry_call(ref, self.client.api.pull, ref, stream=True, decode=True)
            moved = self._follow(ref, stream, on_line, "Downloading")
        except EngineNotFound:
            return None
        info = self.image(ref)
        if info is None:
            raise self._registry_error(ref, "the pull finished but the engine has no such image")
        return Pulled(image=info, bytes=moved)

    def push(self, ref: str, on_line: Callable[[str], None]) -> int:
        stream = self._registry_call(ref, self.client.api.push, ref, stream=True, decode=True)
        return self._follow(ref, stream, on_line, "Pushing")

    def remote_has(self, ref: str) -> bool:
        try:  # the manifest's descriptor only: nothing is downloaded
            self._registry_call(ref, self.client.api.inspect_distribution, ref)
        except EngineNotFound:
            return False
        return True

    def _follow(self, ref: str, stream: Iterable[dict[str, Any]], on_line: Callable[[str], None], moving: str) -> int:
        """Relay a pull or push progress stream; raise on an error in it; return the bytes moved, counting
        each blob once at the largest total the engine reported for it."""
        totals: dict[str, int] = {}
        try:
            for item in stream:
                if item.get("error") or item.get("errorDetail"):
                    detail = item.get("errorDetail") or {}
                    raise self._registry_error(ref, str(detail.get("message") or item.get("error")))
                blob, status = item.get("id", ""), item.get("status", "")
                if status == moving and blob:
                    total = int((item.get("progressDetail") or {}).get("total") or 0)
                    totals[blob] = max(totals.get(blob, 0), total)
                if status:
                    on_line(" ".join(x for x in (f"{blob}:" if blob else "", status, item.get("progress", "")) if x))
        except docker.errors.APIError as exc:
            raise self._registry_error(ref, str(exc.explanation or exc)) from exc
        return sum(totals.values())

    # -- networks ---------------------------------------------------------------------------------

    def network_ensure(self, name: str, *, labels: Mapping[str, str]) -> str:
        """A bridge network with outside access (the proxies' egress network)."""
        with contextlib.suppress(EngineNotFound):
            return str(self._call(self.client.api.inspect_network, name)["Id"])
        try:
            made = self._call(self.client.api.create_network, name, driver="bridge",
                              labels=dict(labels), check_duplicate=True)
        except EngineError:
            # Another process made it between our look and our create.
            return str(self._call(self.client.api.inspect_network, name)["Id"])
        return str(made["Id"])

    # -- volumes ----------------------------------------------------------------------------------

    def volume_create(self, name: str, *, driver_opts: Mapping[str, str], labels: Mapping[str, str]) -> None:
        self._call(self.client.api.create_volume, name=name, driver="local", driver_opts=dict(driver_opts),
                   labels=dict(labels))

    def volume_remove(self, name: str) -> None:
        with contextlib.suppress(EngineNotFound):
            self._call(self.client.api.remove_volume, name, force=True)

    def volumes(self, label: str) -> list[str]:
        raw = self._call(self.client.api.volumes, filters={"label": label}) or {}
        return [str(v["Name"]) for v in raw.get("Volumes") or []]

    # -- containers -------------------------------------------------------------------------------

    def container_create(self, spec: ContainerSpec) -> str:
        from docker.types import Mount

        mounts = [Mount(target=m.target, source=m.source, type=m.type, read_only=m.read_only) for m in spec.mounts]
        kwargs: dict[str, Any] = {
            "mounts": mounts, "cap_drop": list(spec.cap_drop) or None, "cap_add": list(spec.cap_add) or None,
            "security_opt": list(spec.security_opt) or None, "privileged": spec.privileged,
            "devices": list(spec.devices) or None, "extra_hosts": dict(spec.extra_hosts) or None,
            "network_mode": spec.network or "bridge", "init": True, "sysctls": dict(spec.sysctls) or None,
            "tmpfs": dict(spec.tmpfs) or None,
        }
        if spec.memory_bytes:
            kwargs["mem_limit"] = spec.memory_bytes
        if spec.nano_cpus:
            kwargs["nano_cpus"] = spec.nano_cpus
        if spec.pids_limit:
            kwargs["pids_limit"] = spec.pids_limit
        if spec.log_max_bytes:
            from docker.types import LogConfig

            kwargs["log_config"] = LogConfig(type="json-file", config=self._log_options(spec.log_max_bytes))
        self._adapt_host_config(spec, kwargs)
        host_config = self._call(self.client.api.create_host_config, **kwargs)
        try:
            made = self._call(
                self.client.api.create_container, spec.image, command=list(spec.command), name=spec.name,
                user=spec.user, environment=dict(spec.env), working_dir=spec.workdir, labels=dict(spec.labels),
                hostname=spec.hostname, tty=spec.tty, stdin_open=spec.stdin_open, host_config=host_config,
                use_config_proxy=False, detach=True,
            )
        except EngineNotFound as exc:
            if self.image(spec.image) is None:
                raise ImageMissing(f"the engine no longer has the image {spec.image} (removed or pruned since tsk "
                                   "resolved it)", hint="run the task again: tsk builds or pulls it anew") from exc
            raise
        return str(made["Id"])

    def _log_options(self, max_bytes: int) -> dict[str, str]:
        """json-file keeps `max-file` files of `max-size` each: the bound is their sum."""
        return {"max-size": str(max_bytes // 2), "max-file": "2"}

    def _adapt_host_config(self, spec: ContainerSpec, kwargs: dict[str, Any]) -> None:
        """Where an engine needs the host config said otherwise (Podman); dockerd takes it as it is."""

    def network_gateway(self, name: str) -> str | None:
        """The gateway address of a network: how its containers reach the host."""
        raw = self._call(self.client.api.inspect_network, name)
        for cfg in (raw.get("IPAM") or {}).get("Config") or []:
            if cfg.get("Gateway"):
                return str(cfg["Gateway"])
        return None

    def container_start(self, ident: str) -> None:
        self._call(self.client.api.start, ident)

    def container_logs(self, ident: str) -> Iterator[bytes]:
        """A live stream of the container's stdout (bytes chunks) until it exits."""
        stream = self._call(self.client.api.logs, ident, stream=True, follow=True, stdout=True, stderr=False)
        try:
            yield from stream
        except (docker.errors.DockerException, OSError) as exc:
            raise self._mapped(exc) from exc

    def container_wait(self, ident: str) -> int:
        return int(self._call(self.client.api.wait, ident).get("StatusCode", 1))

    def container_stop(self, ident: str, timeout: int = 10) -> None:
        with contextlib.suppress(EngineNotFound):
            self._call(self.client.api.stop, ident, timeout=timeout)

    def container_remove(self, ident: str) -> None:
        with contextlib.suppress(EngineNotFound):
            self._call(self.client.api.remove_container, ident, force=True, v=False)

    def container_state(self, ident: str) -> ContainerState | None:
        try:
            raw = self._call(self.client.api.inspect_container, ident)["State"]
        except EngineNotFound:
            return None
        code = raw.get("ExitCode")
        return ContainerState(running=bool(raw.get("Running")), status=str(raw.get("Status") or ""),
                              exit_code=code if isinstance(code, int) else None, oom_killed=bool(raw.get("OOMKilled")))

    def containers(self, label: str | None = None) -> list[ContainerInfo]:
        """Every container (running or not) with the image id it was made from; with `label`, only
        those carrying it."""
        filters = {"label": label} if label else None
        raws = self._call(self.client.api.containers, all=True, filters=filters)
        return [
            ContainerInfo(id=r["Id"], name=(r.get("Names") or ["?"])[0].lstrip("/"), image_id=r.get("ImageID", ""),
                          state=r.get("State", ""), labels=dict(r.get("Labels") or {}))
            for r in raws
        ]


def _mapped(exc: BaseException) -> BaseException:
    """The TskError a docker SDK error stands for; anything else as it was."""
    if isinstance(exc, docker.errors.NotFound):
        return EngineNotFound(f"the engine has no such object: {exc.explanation or exc}")
    if isinstance(exc, docker.errors.APIError):
        return EngineError(f"the engine refused the request: {exc.explanation or exc}")
    if isinstance(exc, docker.errors.DockerException | OSError):  # requests' ConnectionError is an OSError
        return EngineUnavailable(f"cannot reach the container engine: {exc}")
    return exc


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
