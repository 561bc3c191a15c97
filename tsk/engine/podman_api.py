"""Podman through its Docker-compatible API service, by the same adapter as dockerd: only where Podman (4.3,
Debian bookworm's) answers what tsk asks otherwise is it said otherwise here. Each difference was found by
trying it; tests/test_podman_api.py holds the pure parts, the real-engine tests the rest.

- Names: Podman keeps an image's name fully qualified (`localhost/tsk/layer:…` from a build,
  `docker.io/tsk/layer:…` from a tag through this API); tags are given back in Docker's short form.
- Several `reference` filters in one image listing are ANDed, not ORed: each ref is looked up on its own.
- `host-gateway` in extra hosts is written into /etc/hosts as it is: the network's gateway is named instead.
- json-file logs are one file that conmon truncates at `max-size` (`max-file` is ignored): the whole bound
  is given as `max-size`.
- `GET /distribution/{name}/json` does not exist: whether a registry has a manifest is asked through the
  libpod API's manifest inspect, which reads it from the registry (nothing is pulled). A pull of a tag the
  registry lacks is an error inside a 200 stream, not a 404, so a pull asks that first.
- GET /version runs the OCI runtime and conmon (~250 ms): the API version is given instead of asked.
- The service does not say where the socket is: see tsk/engine/choice.py (CONTAINER_HOST, rootless,
  rootful, DOCKER_HOST)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tsk.engine import choice
from tsk.engine.docker_api import DockerEngine
from tsk.engine.ports import ImageInfo, Pulled
from tsk.engine.spec import ContainerSpec
from tsk.errors import EngineUnavailable

# The Docker Engine API version Podman 4 and 5 serve (its compat API).
API_VERSION = "1.41"
# What Podman puts before a name that Docker shows short: a build's `localhost/`, Docker Hub's
# `docker.io/library/` (official images) and `docker.io/` (the rest).
_QUALIFIERS = ("docker.io/library/", "docker.io/", "localhost/")
# The OCI distribution spec's messages for "no such tag or repository" (MANIFEST_UNKNOWN, NAME_UNKNOWN):
# Podman 4.3 answers 404 for every failure of a remote manifest inspect (a refused connection, a TLS
# error too), with the registry's own error only in `cause`.
_ABSENT = ("manifest unknown", "name unknown")


def short_name(tag: str) -> str:
    """`localhost/tsk/layer:x` → `tsk/layer:x`, `docker.io/library/debian:trixie` → `debian:trixie`."""
    for prefix in _QUALIFIERS:
        if tag.startswith(prefix):
            return tag[len(prefix):]
    return tag


def host_gateway(extra_hosts: dict[str, str], gateway: Callable[[], str | None]) -> dict[str, str]:
    """Extra hosts with `host-gateway` replaced by the network's gateway address (asked only when needed)."""
    if "host-gateway" not in extra_hosts.values():
        return extra_hosts
    address = gateway()
    if address is None:
        raise EngineUnavailable("Podman gave no gateway address for the network, so the host cannot be named "
                                "inside the container (`host-gateway`)",
                                hint="check the network with `podman network inspect tsk-egress`")
    return {name: address if value == "host-gateway" else value for name, value in extra_hosts.items()}


def manifest_absent(status: int, body: Any) -> bool | None:
    """What a libpod manifest inspect said: False when the registry has it, True when the registry says it
    has no such manifest, None when the registry could not be asked."""
    if status == 200:
        return False
    cause = str((body or {}).get("cause") or "") if isinstance(body, dict) else ""
    if status == 404 and any(cause.startswith(m) for m in _ABSENT):
        return True
    return None


class PodmanEngine(DockerEngine):
    name = "podman"
    cli = "podman"

    @property
    def url(self) -> str:
        return choice.podman_url(self.environ)

    def hint(self) -> str:
        return (f"is Podman's API service running and reachable at {self.url}? Start it with `scripts/engine "
                "podman` (as root), or `podman system service --time=0 &` as yourself (rootless); or point "
                "CONTAINER_HOST at it")

    def _connect(self) -> Any:
        # The API version is given: Podman's GET /version runs its OCI runtime and conmon to ask theirs
        # (~250 ms here), and the SDK would ask it on every connect. A socket found through DOCKER_HOST
        # may be dockerd's: Podman names itself in its ping's headers.
        client = self._connect_to(self.url, API_VERSION)
        try:
            headers = self._ping_headers(client)
        except BaseException:
            client.close()  # its socket, of a refused or broken connection
            raise
        if "Libpod-Api-Version" not in headers:
            client.close()
            raise EngineUnavailable(f"{self.url} is not Podman's API service (Podman was asked for)",
                                    hint=self.hint())
        return client

    def attach_command(self, ident: str) -> list[str]:
        # --url makes it a client of the same service (a remote attach), whatever the local storage is
        return ["podman", "--url", self.url, "start", "--attach", "--interactive", ident]

    def _tags(self, tags: Iterable[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(short_name(t) for t in super()._tags(tags)))

    def find_images(self, refs: Sequence[str]) -> dict[str, ImageInfo]:
        # one lookup per ref: a listing filtered by several refs would need an image to have all of them
        found: dict[str, ImageInfo] = {}
        for ref in dict.fromkeys(refs):
            if (info := self.image(ref)) is not None:
                found[ref] = info
        return found

    def _log_options(self, max_bytes: int) -> dict[str, str]:
        return {"max-size": str(max_bytes)}

    def _adapt_host_config(self, spec: ContainerSpec, kwargs: dict[str, Any]) -> None:
        if kwargs.get("extra_hosts"):
            kwargs["extra_hosts"] = host_gateway(kwargs["extra_hosts"],
                                                 lambda: self.network_gateway(spec.network or "bridge"))

    def remote_has(self, ref: str) -> bool:
        status, body = self._get_json("/libpod/manifests/{0}/json", ref)
        absent = manifest_absent(status, body)
        if absent is None:
            reason = str((body or {}).get("message") if isinstance(body, dict) else body or f"status {status}")
            raise self._registry_error(ref, reason)
        return not absent

    def pull(self, ref: str, on_line: Callable[[str], None]) -> Pulled | None:
        if not self.remote_has(ref):
            return None
        return super().pull(ref, on_line)
