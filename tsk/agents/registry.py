"""Agents by name. The built-in plug-ins, plus any name the config defines with `agent_config.<name>.setup`."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from tsk.agents.base import Agent
from tsk.agents.claude import ClaudeAgent
from tsk.agents.codex import CodexAgent
from tsk.agents.exec import ExecAgent, GenericAgent
from tsk.errors import UsageError

AGENTS: dict[str, Agent] = {"claude": ClaudeAgent(), "codex": CodexAgent(), "exec": ExecAgent()}


def get_agent(name: str, known_extra: Iterable[str] = ()) -> Agent:
    """The plug-in for `name`; a config-defined agent without one runs its instructions like `exec`."""
    if name in AGENTS:
        return AGENTS[name]
    extra = set(known_extra)
    if name in extra:
        return GenericAgent(name)
    names = sorted(set(AGENTS) | extra)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UsageError(
        f"unknown agent {name!r}; available: {', '.join(names)}",
        hint=f"{hint}pass one of them with -a/--agent, or define {name!r} with agent_config.{name}.setup in tsk.toml",
    )
