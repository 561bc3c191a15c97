"""The `exec` agent: the instructions file is a bash script, run in the repo dir. For scripted tasks, tests
and benchmarks, and for config-defined agents that tsk has no plug-in for."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import msgspec

from tsk.agents.base import AgentResult, HomeFile, HomeFiles, clean_text, login_digest
from tsk.agents.events import Event, Message


class ExecAgent(msgspec.Struct, frozen=True):
    name: str = "exec"

    @property
    def home_dirs(self) -> tuple[str, ...]:
        return ()

    @property
    def structured_output(self) -> bool:
        return False

    def command(self, prompt_file: str, *, resume: str | None = None, model: str | None = None) -> list[str]:
        # a script has no conversation to resume and no model to pick: each attempt runs it afresh
        return ["bash", prompt_file]

    def env(self, host_env: Mapping[str, str]) -> dict[str, str]:
        return {}

    def home_files(self, host_home: Path, host_env: Mapping[str, str]) -> HomeFiles:
        return HomeFiles()

    def credential_files(self, host_home: Path, host_env: Mapping[str, str]) -> list[HomeFile]:
        return []

    def credential_digest(self, host_home: Path, host_env: Mapping[str, str]) -> str:
        return login_digest({})  # it logs in with nothing: nothing to wait for

    def parse(self, lines: Iterable[str], *, model: str | None = None) -> Iterator[Event]:
        for line in lines:
            yield Message(clean_text(line).rstrip("\r\n"), "output")

    def result(self, events: Iterable[Event], exit_code: int) -> AgentResult:
        # a script has no verdict of its own: the exit code is the verdict, its last line the summary
        last = ""
        for event in events:
            if isinstance(event, Message) and event.text.strip():
                last = event.text
        if exit_code == 0:
            return AgentResult(success=True, summary=last)
        return AgentResult(success=False, summary=last, error=f"exit code {exit_code}", failure="agent_error")


class GenericAgent(ExecAgent, frozen=True):
    """An agent defined only by `agent_config.<name>.setup`: its layer installs whatever it needs, and the
    task's instructions run as a script, the way `exec` runs them."""
