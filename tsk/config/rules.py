"""Value rules the types alone cannot say: limits, volume shape, names that become image tags or file
names. They run on every source, config files and command line alike."""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Iterable, Mapping

from tsk.config.location import Loc, at
from tsk.config.schema import EnvVar, LayersConfig, ProjectSettings, ServerConfig, SlotConfig, Volume
from tsk.durations import parse_duration
from tsk.errors import ConfigError, UsageError
from tsk.layers.remote import valid_repository

# Agent and stack names end up in image tags and layer file names, so keep them to what both allow.
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_NAME_HINT = "use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"
_VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_settings(settings: ProjectSettings, loc: Loc, path: str | None) -> None:
    _positive(settings.memory_gb, (*loc, "memory_gb"), path)
    _positive(settings.cpu, (*loc, "cpu"), path)
    _positive(settings.disk_gb, (*loc, "disk_gb"), path)
    _positive(settings.budget_usd, (*loc, "budget_usd"), path)
    for key in ("timeout", "idle_timeout"):
        value = getattr(settings, key)
        if value is not None:
            try:
                seconds = parse_duration(value)
            except UsageError:
                seconds = -1.0
            if not seconds > 0:
                raise ConfigError(f"{at((*loc, key))} must be a duration such as \"90s\", \"20m\" or \"2h\", got "
                                  f"{value!r}", path=path)
    for key, least in (("loop_limit", 2), ("max_attempts", 1)):
        value = getattr(settings, key)
        if value is not None and value < least:
            raise ConfigError(f"{at((*loc, key))} must be at least {least}, got {value}", path=path)
    if settings.validate is not None and not settings.validate.strip():
        raise ConfigError(f"{at((*loc, 'validate'))} must be a command, not empty", path=path)
    if settings.pids_limit is not None and settings.pids_limit < 16:
        raise ConfigError(f"{at((*loc, 'pids_limit'))} must be at least 16 (a shell, git and the agent need some), "
                          f"got {settings.pids_limit}", path=path)
    for key in ("agent", "stack"):
        value = getattr(settings, key)
        if value is not None:
            _name(value, (*loc, key), path)
    _slots(settings.stack_config, (*loc, "stack_config"), path)
    _slots(settings.agent_config, (*loc, "agent_config"), path)
    _volumes(settings.volumes or (), (*loc, "volumes"), path)
    _env(settings.env or (), (*loc, "env"), path)
    for i, port in enumerate(settings.host_ports or ()):
        if not 1 <= port <= 65535:
            raise ConfigError(f"{at((*loc, 'host_ports', i))} must be a port from 1 to 65535, got {port}",
                              path=path)
    for i, device in enumerate(settings.devices or ()):
        if not device.startswith("/"):
            raise ConfigError(f"{at((*loc, 'devices', i))} must be an absolute device path such as "
                              f"\"/dev/fuse\", got \"{device}\"", path=path)
    if settings.squid_conf is not None and settings.squid_conf_path is not None:
        raise ConfigError(f"{at((*loc, 'squid_conf'))} and `squid_conf_path` are both set; set only one",
                          path=path, hint="squid_conf is the squid.conf text, squid_conf_path a file with it")
    if settings.squid_conf_path == "":
        raise ConfigError(f"{at((*loc, 'squid_conf_path'))} must not be empty", path=path)


def check_layers(layers: LayersConfig, loc: Loc, path: str | None) -> None:
    if layers.base_image is not None and not layers.base_image.strip():
        raise ConfigError(f"{at((*loc, 'base_image'))} must not be empty", path=path)
    registry = layers.registry
    if registry is not None and not valid_repository(registry):
        raise ConfigError(f"{at((*loc, 'registry'))} must be an OCI repository such as "
                          f"\"registry.example.com/team/tsk\", got \"{registry}\"", path=path,
                          hint="a host, then a lowercase path; leave out the scheme (https://), any :tag and @digest")
    if isinstance(layers.ca_certs, tuple):
        for i, cert in enumerate(layers.ca_certs):
            if not cert:
                raise ConfigError(f"{at((*loc, 'ca_certs', i))} must not be empty", path=path)


def check_server(server: ServerConfig, loc: Loc, path: str | None) -> None:
    days = server.auto_clean_age_days
    if not (math.isfinite(days) and days >= 0):
        raise ConfigError(f"{at((*loc, 'auto_clean_age_days'))} must be a number of days >= 0, got {days}",
                          path=path)


def volume_key(volume: Volume) -> str:
    """Two volumes conflict when they mount on the same container path."""
    return posixpath.normpath(volume.container)


def _positive(value: float | None, loc: Loc, path: str | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{at(loc)} must be a number greater than 0, got {value}", path=path)


def _name(value: str, loc: Loc, path: str | None) -> None:
    if not _NAME.fullmatch(value):
        raise ConfigError(f"{at(loc)} is not a valid name: \"{value}\"", path=path, hint=_NAME_HINT)


def _slots(slots: Mapping[str, SlotConfig] | None, loc: Loc, path: str | None) -> None:
    for name in slots or {}:
        if not _NAME.fullmatch(name):
            raise ConfigError(f"{at((*loc, name))} is not a valid name", path=path, hint=_NAME_HINT)


def _volumes(volumes: Iterable[Volume], loc: Loc, path: str | None) -> None:
    seen: set[str] = set()
    for i, volume in enumerate(volumes):
        here = (*loc, i)
        if (volume.host is None) == (volume.name is None):
            raise ConfigError(f"{at(here)} needs exactly one of `host` (a host path) or `name` "
                              f"(a named volume)", path=path)
        if volume.host is not None and not volume.host:
            raise ConfigError(f"{at((*here, 'host'))} must not be empty", path=path)
        if volume.name is not None and not _VOLUME_NAME.fullmatch(volume.name):
            raise ConfigError(f"{at((*here, 'name'))} is not a valid volume name: \"{volume.name}\"",
                              path=path, hint="use letters, digits, '_', '.' and '-'")
        if not volume.container.startswith("/"):
            raise ConfigError(f"{at((*here, 'container'))} must be an absolute path in the container, "
                              f"got \"{volume.container}\"", path=path)
        key = volume_key(volume)
        if key in seen:
            raise ConfigError(f"{at(here)} mounts on {key}, which an earlier entry already uses", path=path)
        seen.add(key)


def _env(env: Iterable[EnvVar], loc: Loc, path: str | None) -> None:
    seen: set[str] = set()
    for i, var in enumerate(env):
        if not _ENV_NAME.fullmatch(var.name):
            raise ConfigError(f"{at((*loc, i, 'name'))} is not a valid environment variable name: "
                              f"\"{var.name}\"", path=path)
        if var.name in seen:
            raise ConfigError(f"{at((*loc, i))} sets {var.name} a second time", path=path)
        seen.add(var.name)
