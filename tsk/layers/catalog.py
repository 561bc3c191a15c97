"""Which snippet fills each slot: a config `setup` string where the user gave one, else the built-in
`layers/<kind>/<name>.dockerfile`. Config snippets may also define stacks and agents tsk lacks."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from tsk.errors import ConfigError
from tsk.layers.plan import Slot
from tsk.layers.upstream import as_upstream
from tsk.resources import layers_dir


class SetupLike(Protocol):
    @property
    def setup(self) -> str | None: ...


class ConfigLike(Protocol):
    """The part of the resolved config the catalog reads."""

    @property
    def project(self) -> str: ...
    @property
    def repo(self) -> str: ...
    @property
    def setup(self) -> str | None: ...
    @property
    def stack_config(self) -> Mapping[str, SetupLike]: ...
    @property
    def agent_config(self) -> Mapping[str, SetupLike]: ...


def builtin_names(kind: str, root: Path | None = None) -> list[str]:
    d = (root or layers_dir()) / kind
    return sorted(p.stem for p in d.glob("*.dockerfile"))


def builtin_slot(kind: str, name: str, root: Path | None = None) -> Slot | None:
    base = root or layers_dir()
    path = base / kind / f"{name}.dockerfile"
    if not path.is_file():
        return None
    return Slot(kind=kind, name=name, snippet=path.read_text(), origin=f"layers/{kind}/{name}.dockerfile",
                root=str(path.parent))


def known(kind: str, cfg: ConfigLike) -> list[str]:
    table = cfg.stack_config if kind == "stack" else cfg.agent_config
    return sorted(set(builtin_names(kind)) | {n for n, s in table.items() if s.setup})


def named_slot(kind: str, name: str, cfg: ConfigLike) -> Slot:
    table = cfg.stack_config if kind == "stack" else cfg.agent_config
    override = table.get(name)
    if override is not None and override.setup:
        return Slot(kind=kind, name=name, snippet=as_upstream(override.setup),
                    origin=f"config {kind}_config.{name}.setup", root=str(cfg.repo))
    slot = builtin_slot(kind, name)
    if slot is None:
        names = known(kind, cfg)
        close = difflib.get_close_matches(name, names, n=1)
        raise ConfigError(
            f"unknown {kind} `{name}`; known {kind}s: {', '.join(names)}"
            + (f"; did you mean `{close[0]}`?" if close else ""),
            hint=f"pick one of those, or define it with a `{kind}_config.{name}.setup` snippet in tsk.toml",
        )
    return slot


def target_slots(cfg: ConfigLike, *, stack: str, agent: str) -> list[Slot]:
    """base → stack → project (when the project has a setup) → agent. The agent comes last so an
    agent upgrade rebuilds only the agent layer."""
    base = builtin_slot("base", "base")
    assert base is not None, "the built-in base snippet is missing from the installation"
    slots = [base, named_slot("stack", stack, cfg)]
    if cfg.setup:
        slots.append(Slot(kind="project", name=cfg.project, snippet=as_upstream(cfg.setup), origin="config setup",
                          root=str(cfg.repo)))
    slots.append(named_slot("agent", agent, cfg))
    return slots


def proxy_slots() -> list[Slot]:
    slot = builtin_slot("proxy", "proxy")
    assert slot is not None, "the built-in proxy snippet is missing from the installation"
    return [slot]


def split_names(values: Iterable[str]) -> list[str]:
    """`-a claude,codex` and repeated flags both name several."""
    out: list[str] = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out
