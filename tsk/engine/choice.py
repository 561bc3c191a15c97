"""Which container engine a command talks to, and where its API socket is. Pure: the environment and
the user's config come in as arguments, nothing is asked of an engine.

The choice, highest first: `--container-engine`, `TSK_CONTAINER`, `container_engine` in the user's
config file, then Docker. Both engines are reached through the Docker Engine API (Podman's
Docker-compatible service), by the same adapter (tsk/engine/docker_api.py, with the Podman shim in
tsk/engine/podman_api.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from tsk.errors import UsageError

ENGINES = ("docker", "podman")
DEFAULT = "docker"
ENV = "TSK_CONTAINER"

DOCKER_SOCKET = "unix:///var/run/docker.sock"
PODMAN_ROOTFUL_SOCKET = "/run/podman/podman.sock"


def choose(flag: str | None, environ: Mapping[str, str], user_file: Callable[[], str | None]) -> tuple[str, str]:
    """The engine's name and where the choice came from ("--container-engine", "TSK_CONTAINER", "user
    file", "built-in"). `user_file` is only called when neither the flag nor the environment says."""
    if flag:
        return checked(flag, "--container-engine"), "--container-engine"
    if environ.get(ENV):
        return checked(environ[ENV], ENV), ENV
    from_file = user_file()
    if from_file:
        return checked(from_file, "container_engine"), "user file"
    return DEFAULT, "built-in"


def checked(name: str, where: str) -> str:
    value = name.strip().lower()
    if value not in ENGINES:
        raise UsageError(f"{where} is {name!r}: the container engine must be one of {', '.join(ENGINES)}",
                         hint=f"e.g. --container-engine podman, {ENV}=podman, or container_engine = \"podman\" "
                              "in ~/.config/tsk/tsk.toml")
    return value


def podman_url(environ: Mapping[str, str], *, uid: int | None = None,
               exists: Callable[[str], bool] = os.path.exists) -> str:
    """Podman's API socket: CONTAINER_HOST (Podman's own variable), else the rootless socket of this user
    (`$XDG_RUNTIME_DIR/podman/podman.sock`) when it exists, else the rootful one (/run/podman/podman.sock)
    when it exists, else DOCKER_HOST (podman-docker setups point it at Podman), else the socket the user's
    kind of Podman would have (named in the error when nothing answers there)."""
    if environ.get("CONTAINER_HOST"):
        return environ["CONTAINER_HOST"]
    uid = os.getuid() if uid is None else uid
    rootless = None
    if uid != 0:
        runtime = environ.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
        rootless = f"{runtime}/podman/podman.sock"
        if exists(rootless):
            return f"unix://{rootless}"
    if exists(PODMAN_ROOTFUL_SOCKET):
        return f"unix://{PODMAN_ROOTFUL_SOCKET}"
    if environ.get("DOCKER_HOST"):
        return environ["DOCKER_HOST"]
    return f"unix://{rootless or PODMAN_ROOTFUL_SOCKET}"


def podman_is_local(url: str, environ: Mapping[str, str], *, uid: int | None = None) -> bool:
    """Whether the socket is this user's own Podman on this machine (rootful as root, or the rootless
    socket of this user): then `podman` here shares its storage, and builds need not go through it."""
    uid = os.getuid() if uid is None else uid
    if uid == 0:
        return url == f"unix://{PODMAN_ROOTFUL_SOCKET}"
    runtime = environ.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    return url == f"unix://{runtime}/podman/podman.sock"


def docker_url(environ: Mapping[str, str]) -> str:
    return environ.get("DOCKER_HOST") or DOCKER_SOCKET
