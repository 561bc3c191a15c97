"""Merge the config sources into the one config a task runs with. Pure apart from reading a
`squid_conf_path` file; loading the files is load.py's job.

Priority: CLI > user [project.<name>] > .tsk/tsk.toml > user [defaults] > detection (stack only) >
built-in. Scalars come from the first source that sets them; lists combine, higher priority winning
each conflict; stack_config/agent_config merge per name."""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from tsk.config.detect import clean_name, detect_stack, project_name
from tsk.config.load import project_file_path
from tsk.config.location import COMMAND_LINE, Loc, at
from tsk.config.rules import check_settings, volume_key
from tsk.config.schema import (
    EnvVar,
    Layers,
    LayersConfig,
    ProjectFile,
    ProjectSettings,
    ResolvedConfig,
    ServerConfig,
    SlotConfig,
    UserFile,
    Volume,
)
from tsk.durations import parse_duration
from tsk.errors import ConfigError

BUILT_IN = "built-in"
DETECTED = "detected"
DEFAULT_AGENT = "claude"
DEFAULT_STACK = "default"
DEFAULT_BASE_IMAGE = "debian:trixie"

_BUILT_IN_SCALARS: dict[str, Any] = {
    "agent": DEFAULT_AGENT,
    "model": None,
    "memory_gb": 12.0,
    "cpu": 8.0,
    "pids_limit": 4096,
    "disk_gb": 20.0,
    "timeout": "2h",
    "idle_timeout": "20m",
    "budget_usd": None,
    "loop_limit": 5,
    "max_attempts": 3,
    "validate": None,
    "review_command": None,
    "setup": None,
    "sudo": False,
    "privileged": False,
    "dind": False,
    "git_town": False,
}

_T = TypeVar("_T")


class _Source(NamedTuple):
    label: str  # as shown in ResolvedConfig.sources
    settings: ProjectSettings
    loc: Loc  # where its keys live, for error messages
    path: str | None  # the file, None for the command line
    base: Path | None  # what relative paths are relative to; None: the current directory


def resolve(
    *,
    repo: Path,
    user: UserFile,
    project_file: ProjectFile,
    cli: ProjectSettings | None = None,
    project_name_override: str | None = None,
    user_path: Path | None = None,
    project_path: Path | None = None,
) -> ResolvedConfig:
    repo = Path(os.path.abspath(repo))
    name = project_name_override or project_name(repo)
    project_path = project_path or project_file_path(repo)
    # Without a user file path, the user file's relative paths have no anchor of their own.
    user_base = user_path.parent if user_path else repo
    user_where = str(user_path) if user_path else None

    sources: list[_Source] = []
    if cli is not None:
        check_settings(cli, (COMMAND_LINE,), None)
        sources.append(_Source("cli", cli, (COMMAND_LINE,), None, None))
    key, own = _user_project(user, name, user_where)
    if own is not None:
        sources.append(_Source(f"user [project.{key}]", own, ("project", key), user_where, user_base))
    sources.append(_Source(".tsk/tsk.toml", project_file, (), str(project_path), project_path.parent))
    if user.defaults is not None:
        sources.append(_Source("user [defaults]", user.defaults, ("defaults",), user_where, user_base))

    origin: dict[str, str] = {}
    scalars = {k: _first(sources, k, default, origin) for k, default in _BUILT_IN_SCALARS.items()}
    stack, stack_detected = _stack(sources, repo, origin)
    squid_conf = _squid_conf(sources, origin)
    layers = _layers(project_file.layers, project_path, user.layers, user_where, user_base, origin)
    origin["container_engine"] = "user file" if user.container_engine else BUILT_IN
    origin["server"] = "user [server]" if user.server else BUILT_IN

    return ResolvedConfig(
        project=name,
        repo=str(repo),
        agent=scalars["agent"],
        model=scalars["model"],
        stack=stack,
        stack_detected=stack_detected,
        memory_gb=float(scalars["memory_gb"]),
        cpu=float(scalars["cpu"]),
        pids_limit=int(scalars["pids_limit"]),
        disk_gb=float(scalars["disk_gb"]),
        timeout=parse_duration(scalars["timeout"]),
        idle_timeout=parse_duration(scalars["idle_timeout"]),
        budget_usd=None if scalars["budget_usd"] is None else float(scalars["budget_usd"]),
        loop_limit=int(scalars["loop_limit"]),
        max_attempts=int(scalars["max_attempts"]),
        validate=scalars["validate"],
        review_command=scalars["review_command"],
        setup=scalars["setup"],
        stack_config=_slots(sources, "stack_config", origin),
        agent_config=_slots(sources, "agent_config", origin),
        volumes=_combine(sources, "volumes", _expand_volume, volume_key, origin),
        env=_combine(sources, "env", _same, _env_key, origin),
        host_ports=_combine(sources, "host_ports", _same, _itself, origin),
        devices=_combine(sources, "devices", _same, _itself, origin),
        squid_conf=squid_conf,
        sudo=scalars["sudo"],
        privileged=scalars["privileged"],
        dind=scalars["dind"],
        git_town=scalars["git_town"],
        container_engine=user.container_engine or "docker",
        server=user.server or ServerConfig(),
        layers=layers,
        sources=origin,
    )


def _user_project(user: UserFile, name: str, where: str | None) -> tuple[str, ProjectSettings | None]:
    projects = user.project or {}
    if name in projects:
        return name, projects[name]
    # `[project.MyApp]` is meant for the repo "MyApp", whose project name is "myapp".
    matches = [key for key in projects if clean_name(key) == name]
    if len(matches) > 1:
        tables = ", ".join(f"[project.{m}]" for m in matches)
        raise ConfigError(f"{tables} all name the project `{name}`; keep one", path=where)
    return (matches[0], projects[matches[0]]) if matches else (name, None)


def _first(sources: Sequence[_Source], key: str, default: Any, origin: dict[str, str]) -> Any:
    for source in sources:
        value = getattr(source.settings, key)
        if value is not None:
            origin[key] = source.label
            return value
    origin[key] = BUILT_IN
    return default


def _stack(sources: Sequence[_Source], repo: Path, origin: dict[str, str]) -> tuple[str, bool]:
    stack: str | None = _first(sources, "stack", None, origin)
    if stack is not None:
        return stack, False
    detected = detect_stack(repo)
    if detected is not None:
        origin["stack"] = DETECTED
        return detected, True
    return DEFAULT_STACK, False


def _squid_conf(sources: Sequence[_Source], origin: dict[str, str]) -> str | None:
    # squid_conf and squid_conf_path are one slot: the highest-priority source that sets either wins.
    for source in sources:
        if source.settings.squid_conf is not None:
            origin["squid_conf"] = source.label
            return source.settings.squid_conf
        if source.settings.squid_conf_path is not None:
            file = _absolute(source.settings.squid_conf_path, source.base)
            origin["squid_conf"] = f"{source.label} (squid_conf_path {file})"
            return _read_squid_conf(file, source)
    origin["squid_conf"] = BUILT_IN
    return None


def _read_squid_conf(file: str, source: _Source) -> str:
    where = at((*source.loc, "squid_conf_path"))
    try:
        return Path(file).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{where} names {file}, which does not exist", path=source.path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{where} names {file}, which cannot be read: {reason}", path=source.path) from exc


def _layers(
    project: LayersConfig | None,
    project_path: Path,
    user: LayersConfig | None,
    user_where: str | None,
    user_base: Path,
    origin: dict[str, str],
) -> Layers:
    # [layers] has its own order: the project file beats the user file (no CLI, no [defaults]).
    candidates = [
        (".tsk/tsk.toml [layers]", project, project_path.parent),
        ("user [layers]", user, user_base),
    ]
    picked: dict[str, Any] = {}
    for key, default in (("base_image", DEFAULT_BASE_IMAGE), ("registry", None), ("ca_certs", "auto")):
        picked[key], origin[f"layers.{key}"] = default, BUILT_IN
        for label, table, base in candidates:
            value = getattr(table, key) if table is not None else None
            if value is not None:
                if isinstance(value, tuple):
                    value = tuple(_absolute(p, base) for p in value)
                picked[key], origin[f"layers.{key}"] = value, label
                break
    return Layers(base_image=picked["base_image"], registry=picked["registry"], ca_certs=picked["ca_certs"])


def _slots(sources: Sequence[_Source], key: str, origin: dict[str, str]) -> dict[str, SlotConfig]:
    merged: dict[str, SlotConfig] = {}
    for source in sources:
        slots: dict[str, SlotConfig] = getattr(source.settings, key) or {}
        for name, slot in slots.items():
            if name not in merged:
                merged[name] = slot
                origin[f"{key}.{name}"] = source.label
    return dict(sorted(merged.items()))


def _combine(
    sources: Sequence[_Source],
    key: str,
    prepare: Callable[[Any, _Source], _T],
    conflict_key: Callable[[_T], Hashable],
    origin: dict[str, str],
) -> tuple[_T, ...]:
    """All sources' entries, highest priority first; an entry is dropped when a higher-priority source
    already has one with the same conflict key."""
    seen: set[Hashable] = set()
    out: list[_T] = []
    contributors: list[str] = []
    for source in sources:
        entries: Iterable[Any] = getattr(source.settings, key) or ()
        for raw in entries:
            entry = prepare(raw, source)
            conflict = conflict_key(entry)
            if conflict in seen:
                continue
            seen.add(conflict)
            out.append(entry)
            if source.label not in contributors:
                contributors.append(source.label)
    origin[key] = ", ".join(contributors) or BUILT_IN
    return tuple(out)


def _expand_volume(volume: Volume, source: _Source) -> Volume:
    if volume.host is None:
        return volume
    return Volume(host=_absolute(volume.host, source.base), container=volume.container,
                  readonly=volume.readonly)


def _absolute(raw: str, base: Path | None) -> str:
    """~ expanded, relative paths anchored at `base` (the naming file's directory)."""
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (base / path) if base is not None else path.absolute()
    return os.path.normpath(path)


def _same(value: _T, source: _Source) -> _T:
    return value


def _itself(value: Hashable) -> Hashable:
    return value


def _env_key(var: EnvVar) -> Hashable:
    return var.name
