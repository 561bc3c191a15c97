"""The shapes of tsk's config: the two files as written (everything optional, so "unset" stays visible
to the merge) and the resolved result a task runs with (everything filled in)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec


class Volume(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str | None = None
    name: str | None = None
    container: str
    readonly: bool = False


class EnvVar(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    value: str


class SlotConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    setup: str | None = None


class LayersConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    base_image: str | None = None
    registry: str | None = None
    # "auto" (the host's extra CAs) or explicit files/dirs; a bare path string is refused so that a typo
    # of "auto" cannot silently mean "this one file".
    ca_certs: Literal["auto"] | tuple[str, ...] | None = None


class ServerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    auto_clean_enabled: bool = True
    auto_clean_age_days: float = 7.0
    # A fleet (DESIGN §10): the shared task store (`postgresql://…`; TSK_DATABASE_URL wins) and the git
    # remote snapshots and results travel through (a URL or a path). None: this machine alone.
    database: str | None = None
    remote: str | None = None


class ProjectSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every per-project key. `None` means "this source does not set it"."""

    agent: str | None = None
    model: str | None = None  # the agent's model (claude --model, codex -m); None: the agent's own default
    stack: str | None = None
    memory_gb: float | None = None
    cpu: float | None = None
    pids_limit: int | None = None  # processes and threads the sandbox may have at once
    disk_gb: float | None = None  # what the sandbox may write to the host's disk
    # Unattended tasks (DESIGN §7): limits of each attempt, how many attempts, and what decides "done".
    timeout: str | float | None = None  # wall clock of one attempt: "90s", "20m", "2h" or seconds
    idle_timeout: str | float | None = None  # no agent event and no output this long: stalled
    budget_usd: float | None = None  # the task's attempts together may cost this much
    loop_limit: int | None = None  # the same tool call with the same input this many times in a row: looping
    max_attempts: int | None = None
    validate: str | None = None  # a shell command run in the sandbox after the agent; non-zero fails the attempt
    # `tsk review`: a host command whose stdout is the feedback ({{base}}, {{version}}, {{review_file}});
    # in a project file it needs trust, as it runs on the host
    review_command: str | None = None
    setup: str | None = None
    stack_config: dict[str, SlotConfig] | None = None
    agent_config: dict[str, SlotConfig] | None = None
    volumes: tuple[Volume, ...] | None = None
    env: tuple[EnvVar, ...] | None = None
    host_ports: tuple[int, ...] | None = None
    devices: tuple[str, ...] | None = None
    squid_conf: str | None = None
    squid_conf_path: str | None = None
    sudo: bool | None = None
    privileged: bool | None = None
    dind: bool | None = None
    git_town: bool | None = None


class ProjectFile(ProjectSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`<repo>/.tsk/tsk.toml`: the per-project keys at top level, plus `[layers]`."""

    layers: LayersConfig | None = None


class UserFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`~/.config/tsk/tsk.toml`."""

    container_engine: Literal["docker", "podman"] | None = None
    server: ServerConfig | None = None
    layers: LayersConfig | None = None
    defaults: ProjectSettings | None = None
    project: dict[str, ProjectSettings] | None = None


class Layers(msgspec.Struct, frozen=True, kw_only=True):
    base_image: str
    registry: str | None
    # Paths are absolute: expanded (~) and anchored at the file that named them.
    ca_certs: tuple[str, ...] | Literal["auto"]


class ResolvedConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The config one task runs with. Stored with the task as JSON, so every field is msgspec-encodable
    (hence `repo` is a str: msgspec does not encode Path)."""

    project: str
    repo: str
    agent: str
    stack: str
    stack_detected: bool
    memory_gb: float
    cpu: float
    pids_limit: int = 4096  # defaults: configs stored with tasks queued before these existed
    disk_gb: float = 20.0
    model: str | None = None
    timeout: float = 7200.0  # seconds
    idle_timeout: float = 1200.0
    budget_usd: float | None = None
    loop_limit: int = 5
    max_attempts: int = 3
    validate: str | None = None
    review_command: str | None = None
    setup: str | None
    stack_config: dict[str, SlotConfig]
    agent_config: dict[str, SlotConfig]
    volumes: tuple[Volume, ...]
    env: tuple[EnvVar, ...]
    host_ports: tuple[int, ...]
    devices: tuple[str, ...]
    squid_conf: str | None
    sudo: bool
    privileged: bool
    dind: bool
    git_town: bool
    container_engine: str
    server: ServerConfig
    layers: Layers
    # key -> where its value came from: "cli", "user [project.x]", ".tsk/tsk.toml", "user [defaults]",
    # "detected", "built-in" (lists name every source that contributed, joined by ", ").
    sources: dict[str, str]

    @property
    def repo_path(self) -> Path:
        return Path(self.repo)

    def stack_setup(self) -> str | None:
        slot = self.stack_config.get(self.stack)
        return slot.setup if slot else None

    def agent_setup(self) -> str | None:
        slot = self.agent_config.get(self.agent)
        return slot.setup if slot else None
