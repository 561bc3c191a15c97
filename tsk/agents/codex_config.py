"""Codex's config.toml in the task: the user's own (their model, provider, MCP servers, profiles, and keys
tsk does not know), with what tsk needs forced on top. Codex retries an unreachable endpoint forever unless
`[features] unbounded_connection_retries = false`, runs `git ls-remote` against GitHub unless
`[features] plugins = false`, and ignores OPENAI_BASE_URL, which needs a provider of its own (AGENT-FACTS)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from tsk.agents.toml_write import dumps
from tsk.errors import ConfigError, TskError

PROVIDER = "tsk"
FORCED_FEATURES: dict[str, Any] = {"unbounded_connection_retries": False, "plugins": False}
# What says which endpoint codex logs in to, and how: for the credential digest.
LOGIN_KEYS = ("model_provider", "model_providers", "profile", "profiles", "preferred_auth_method",
              "forced_login_method")


def config_toml(base_url: str | None, user: Mapping[str, Any] | None = None) -> str:
    """The config.toml for the task, from the user's parsed one (None: they have none)."""
    return dumps(merged(user or {}, base_url))


def _table(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _active_profile(doc: Mapping[str, Any]) -> str | None:
    name = doc.get("profile")
    return name if isinstance(name, str) and isinstance(_table(doc.get("profiles")).get(name), Mapping) else None


def chooses_provider(doc: Mapping[str, Any]) -> bool:
    """Whether the user picked a provider themselves, at the top or in their active profile."""
    profile = _active_profile(doc)
    return "model_provider" in doc or (profile is not None and "model_provider" in doc["profiles"][profile])


def merged(user: Mapping[str, Any], base_url: str | None) -> dict[str, Any]:
    """The user's settings, with tsk's features forced (in their active profile too, which could turn them
    back on), and tsk's provider for OPENAI_BASE_URL only when the user chose none of their own."""
    add_provider = bool(base_url) and not chooses_provider(user)
    doc: dict[str, Any] = {"model_provider": PROVIDER} if add_provider else {}
    doc.update(user)
    if add_provider:
        doc["model_providers"] = {**_table(user.get("model_providers")), PROVIDER: {
            "name": PROVIDER, "base_url": base_url, "wire_api": "responses", "env_key": "OPENAI_API_KEY"}}
    doc["features"] = {**_table(user.get("features")), **FORCED_FEATURES}
    profile = _active_profile(user)
    if profile is not None and isinstance(user["profiles"][profile].get("features"), Mapping):
        profiles = _table(user["profiles"])
        own = _table(profiles[profile])
        own["features"] = {**_table(own["features"]), **FORCED_FEATURES}
        doc["profiles"] = {**profiles, profile: own}
    return doc


def read_user_config(path: Path) -> dict[str, Any] | None:
    """The user's config.toml, parsed; None when they have none. One codex could not read either is an error
    here, before the task starts, rather than codex's inside it."""
    if not path.is_file():
        return None
    try:
        text = path.read_bytes().decode()
    except OSError as exc:
        raise TskError(f"cannot read the codex config {path}: {exc.strerror}",
                       hint=f"make {path} readable by your user, or move it away to run codex with tsk's "
                       "settings") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("is not UTF-8 text, which codex requires", path=str(path),
                          hint="fix it, or move it away to run codex with tsk's settings") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"is not valid TOML ({exc}); codex would refuse it too", path=str(path),
                          hint="fix it, or move it away to run codex with tsk's settings") from exc


def login_part(content: bytes | None) -> bytes | None:
    """The part of a config.toml that says how codex logs in, canonical; the whole file when it does not parse."""
    if content is None:
        return None
    try:
        doc = tomllib.loads(content.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return content
    return msgspec.json.encode({k: doc[k] for k in LOGIN_KEYS if k in doc}, order="deterministic")
