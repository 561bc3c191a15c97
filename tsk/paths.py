"""Where tsk keeps things. Read from the environment when a context is built, never at import time.

XDG base dirs with tsk's own overrides: TSK_DATA_HOME, TSK_CONFIG_HOME, TSK_RUNTIME_DIR, TSK_CACHE_HOME
(tsk appends `/tsk` to each, as it does to the XDG dirs)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec


class Paths(msgspec.Struct, frozen=True, kw_only=True):
    config: Path  # ~/.config/tsk: tsk.toml, templates/
    data: Path  # ~/.local/share/tsk: tasks, the task database
    cache: Path  # ~/.cache/tsk: the layer index, build contexts
    runtime: Path  # $XDG_RUNTIME_DIR/tsk or a per-user tmp dir: locks, sockets
    runtime_shared: bool = False  # the fallback under /tmp, where another user may have been first

    @property
    def config_file(self) -> Path:
        return self.config / "tsk.toml"

    @property
    def layer_index(self) -> Path:
        return self.cache / "layers"

    def layer_index_of(self, engine: str) -> Path:
        """Each engine has its own images, so its own index (what was built, when each was last used)."""
        return self.layer_index if engine == "docker" else self.cache / f"layers-{engine}"

    @property
    def locks(self) -> Path:
        return self.runtime / "locks"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if environ is None else environ
        home = Path(env.get("HOME") or Path.home())

        def pick(tsk_var: str, xdg_var: str, fallback: Path) -> Path:
            raw = env.get(tsk_var) or env.get(xdg_var)
            base = Path(raw).expanduser() if raw else fallback
            return base / "tsk"

        uid = os.getuid() if hasattr(os, "getuid") else 0
        return cls(
            config=pick("TSK_CONFIG_HOME", "XDG_CONFIG_HOME", home / ".config"),
            data=pick("TSK_DATA_HOME", "XDG_DATA_HOME", home / ".local" / "share"),
            cache=pick("TSK_CACHE_HOME", "XDG_CACHE_HOME", home / ".cache"),
            runtime=pick("TSK_RUNTIME_DIR", "XDG_RUNTIME_DIR", Path("/tmp") / f"tsk-{uid}"),
            runtime_shared=not (env.get("TSK_RUNTIME_DIR") or env.get("XDG_RUNTIME_DIR")),
        )
