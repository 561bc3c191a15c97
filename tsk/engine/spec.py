"""Immutable descriptions of what the engine should make for a task: mounts, the container, the
network. Planned purely from config and the snapshot; tsk/engine/docker_api.py carries them out."""

from __future__ import annotations

import msgspec


class Mount(msgspec.Struct, frozen=True, kw_only=True):
    type: str  # "bind" or "volume"
    source: str
    target: str
    read_only: bool = False


class ContainerSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    image: str
    command: tuple[str, ...]
    user: str  # "uid:gid"
    workdir: str
    env: dict[str, str]
    labels: dict[str, str]
    mounts: tuple[Mount, ...]
    network: str | None  # None: the engine's default bridge (no isolation); "none": loopback only
    hostname: str = "tsk"
    cap_drop: tuple[str, ...] = ("ALL",)
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ("no-new-privileges",)
    memory_bytes: int | None = None
    nano_cpus: int | None = None
    pids_limit: int | None = None  # processes and threads at once: a fork bomb stays inside
    log_max_bytes: int | None = None  # what the engine keeps of its output on the host's disk
    devices: tuple[str, ...] = ()
    privileged: bool = False
    tty: bool = False
    stdin_open: bool = False
    extra_hosts: dict[str, str] = {}
    sysctls: dict[str, str] = {}
    tmpfs: dict[str, str] = {}  # mount point -> mount options
