"""Upstream tsk's older config forms, read as today's keys with one warning line each: the key aliases
(`memory_limit_gb`, `cpu_limit`, `host_services`) in any settings table, and the sections its 0.8
files had (`[docker]`, `[proxy]`, `[git_town]`) in the user file. Pure: the TOML table in, the table
the schema knows and the renames made ("old -> new") out. A form that is set twice (old and new) is an error, never a
silent choice; a key inside an old section that upstream never had stays unknown (an error later)."""

from __future__ import annotations

from typing import Any

from tsk.errors import ConfigError

ALIASES = {"memory_limit_gb": "memory_gb", "cpu_limit": "cpu", "host_services": "host_ports"}

# old section -> its key -> where upstream's migration put it: (table, key); table None is top level
OLD_SECTIONS: dict[str, dict[str, tuple[str | None, str]]] = {
    "docker": {"container_engine": (None, "container_engine"), "memory_limit_gb": ("defaults", "memory_gb"),
               "cpu_limit": ("defaults", "cpu"), "cpu_quota": ("defaults", "cpu"), "dind": ("defaults", "dind")},
    "proxy": {"host_services": ("defaults", "host_ports")},
    "git_town": {"enabled": ("defaults", "git_town")},
}


def _where(table: str | None, key: str) -> str:
    return f"[{table}] {key}" if table else key


def _settings(table: dict[str, Any], name: str | None, path: str, warnings: list[str]) -> dict[str, Any]:
    out = dict(table)
    for old, new in ALIASES.items():
        if old not in out:
            continue
        if new in out:
            raise ConfigError(f"both {_where(name, old)} (upstream's name) and {_where(name, new)} are set",
                              path=path, hint=f"keep {new} only")
        out[new] = out.pop(old)
        warnings.append(f"{_where(name, old)} -> {_where(name, new)}")
    return out


def upgrade_project_file(data: dict[str, Any], path: str) -> tuple[dict[str, Any], list[str]]:
    """`.tsk/tsk.toml`: the per-project keys sit at top level."""
    warnings: list[str] = []
    return _settings(data, None, path, warnings), warnings


def upgrade_user_file(data: dict[str, Any], path: str) -> tuple[dict[str, Any], list[str]]:
    """`~/.config/tsk/tsk.toml`: aliases in [defaults] and [project.X], and the old sections moved."""
    warnings: list[str] = []
    out = dict(data)
    # the aliases first, so that an old section's key meets [defaults] under today's names
    if isinstance(out.get("defaults"), dict):
        out["defaults"] = _settings(out["defaults"], "defaults", path, warnings)
    if isinstance(out.get("project"), dict):
        out["project"] = {name: _settings(t, f"project.{name}", path, warnings) if isinstance(t, dict) else t
                          for name, t in out["project"].items()}
    for section, keys in OLD_SECTIONS.items():
        if section not in out:
            continue
        old = out.pop(section)
        if not isinstance(old, dict):
            raise ConfigError(f"[{section}] (upstream's old section) must be a table", path=path)
        unknown = sorted(set(old) - set(keys))
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r} in [{section}] (upstream's old section)", path=path,
                              hint=f"upstream's [{section}] had: {', '.join(keys)}")
        for key, value in old.items():
            table, new = keys[key]
            dest = out if table is None else out.setdefault(table, {})
            if not isinstance(dest, dict):
                raise ConfigError(f"[{table}] must be a table", path=path)
            if new in dest:
                raise ConfigError(f"both [{section}] {key} (upstream's old form) and {_where(table, new)} are set",
                                  path=path, hint=f"keep {_where(table, new)} only")
            dest[new] = value
            warnings.append(f"[{section}] {key} -> {_where(table, new)}")
    return out, warnings
