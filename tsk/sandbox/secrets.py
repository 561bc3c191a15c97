"""Secrets on their way to the agent. A config `env` value whose name looks secret (tsk/config/secrets.py)
is never stored in clear with the task (tasks.db, task.json keep `***`): it waits for the run in the
task dir's `secrets.json` (0600). At the start of a run, every secret the container needs (those, and
the agent's API keys) goes into `secrets.env` (0600, owned by the agent), mounted read-only and read by
the run script: not into the container's environment, which `docker inspect` shows to anyone who may
talk to the engine. Both files go when the task ends."""

from __future__ import annotations

import shlex
from pathlib import Path

import msgspec

from tsk.config.schema import EnvVar, ResolvedConfig
from tsk.config.secrets import HIDDEN, is_secret
from tsk.files import read_bounded, write_private

STORED = "secrets.json"
RUNTIME = "secrets.env"  # mounted at /tsk/secrets.env (tsk/sandbox/plan.py)


def split(cfg: ResolvedConfig) -> tuple[ResolvedConfig, dict[str, str]]:
    """The config as it may be stored (secret env values hidden) and the values it hid."""
    hidden = {v.name: v.value for v in cfg.env if is_secret(v.name)}
    if not hidden:
        return cfg, {}
    env = tuple(EnvVar(name=v.name, value=HIDDEN) if v.name in hidden else v for v in cfg.env)
    return msgspec.structs.replace(cfg, env=env), hidden


def fill(cfg: ResolvedConfig, values: dict[str, str]) -> tuple[ResolvedConfig, list[str]]:
    """The config with its hidden values put back; the names of those it had no value for."""
    missing = [v.name for v in cfg.env if v.value == HIDDEN and is_secret(v.name) and v.name not in values]
    env = tuple(EnvVar(name=v.name, value=values[v.name]) if v.value == HIDDEN and v.name in values else v
                for v in cfg.env)
    return msgspec.structs.replace(cfg, env=env), missing


def save(task_dir: Path, values: dict[str, str]) -> None:
    if values:
        write_private(task_dir / STORED, msgspec.json.encode(values))


def load(task_dir: Path) -> dict[str, str]:
    raw = read_bounded(task_dir / STORED, 1 << 20)
    if not raw:
        return {}
    try:
        return msgspec.json.decode(raw, type=dict[str, str])
    except msgspec.DecodeError:
        return {}


def env_file(values: dict[str, str]) -> bytes:
    """Lines the run script sources with `set -a`: each value quoted, so none is read as shell."""
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in sorted(values.items())).encode()


def forget(task_dir: Path) -> None:
    for name in (STORED, RUNTIME):
        (task_dir / name).unlink(missing_ok=True)
