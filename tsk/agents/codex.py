"""OpenAI's Codex CLI, run as `codex exec --json` (see AGENT-FACTS: it reads stdin whenever stdin is not
a terminal, ignores OPENAI_BASE_URL, and retries an unreachable endpoint forever unless told not to)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from tsk.agents.base import (
    AGENT_HOME,
    AgentResult,
    CredentialFile,
    clean_text,
    read_credential,
    read_json_line,
    text_of,
    verdict,
)
from tsk.agents.events import Event, Final, Message, Raw, TodoItem, TodoList, ToolResult, ToolUse

PASS_THROUGH = ("OPENAI_API_KEY",)
PROVIDER = "tsk"


class CodexAgent(msgspec.Struct, frozen=True):
    home: str = AGENT_HOME

    @property
    def name(self) -> str:
        return "codex"

    @property
    def home_dirs(self) -> tuple[str, ...]:
        return (".codex",)

    @property
    def structured_output(self) -> bool:
        return True

    @property
    def codex_home(self) -> str:
        return f"{self.home}/.codex"

    def command(self, prompt_file: str) -> list[str]:
        # `--` keeps instructions that start with "-" from being read as options; </dev/null because codex
        # would otherwise wait for the end of any stdin that is not a terminal.
        script = (f"p=\"$(cat {shlex.quote(prompt_file)})\" && exec codex exec --json"
                  ' --dangerously-bypass-approvals-and-sandbox -- "$p" </dev/null')
        return ["sh", "-c", script]

    def env(self, host_env: Mapping[str, str]) -> dict[str, str]:
        passed = {k: host_env[k] for k in PASS_THROUGH if host_env.get(k)}
        return {**passed, "CODEX_HOME": self.codex_home}

    def credential_files(self, host_home: Path, host_env: Mapping[str, str]) -> list[CredentialFile]:
        files = [CredentialFile(container_path=f"{self.codex_home}/config.toml",
                                content=config_toml(host_env.get("OPENAI_BASE_URL")).encode(), origin="generated")]
        auth = read_credential(host_home / ".codex" / "auth.json", f"{self.codex_home}/auth.json")
        return [*files, auth] if auth else files

    def parse(self, lines: Iterable[str]) -> Iterator[Event]:
        state = _State()
        for line in lines:
            obj = read_json_line(line)
            if obj is None:
                continue
            if isinstance(obj, Raw):
                yield obj
                continue
            yield from state.events(obj)
        if state.pending_error is not None:
            # an error the turn never recovered from, and codex stopped before saying turn.failed
            yield Final(success=False, summary=state.last_message, error=state.pending_error)

    def result(self, events: Iterable[Event], exit_code: int) -> AgentResult:
        return verdict("codex", events, exit_code)


def config_toml(base_url: str | None) -> str:
    """$CODEX_HOME/config.toml: fail fast instead of retrying forever, no plugin sync against GitHub, and a
    provider for a custom endpoint, since codex ignores OPENAI_BASE_URL."""
    lines = []
    if base_url:
        lines += [f'model_provider = "{PROVIDER}"', "", f"[model_providers.{PROVIDER}]", f'name = "{PROVIDER}"',
                  f"base_url = {toml_string(base_url)}", 'wire_api = "responses"', 'env_key = "OPENAI_API_KEY"', ""]
    lines += ["[features]", "unbounded_connection_retries = false", "plugins = false"]
    return "\n".join(lines) + "\n"


def toml_string(value: str) -> str:
    """A TOML basic string: quotes and backslashes escaped, control characters (which TOML forbids raw) as \\u."""
    escaped = (f"\\{c}" if c in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c
               for c in clean_text(value))
    return '"' + "".join(escaped) + '"'


class _State:
    """What the verdict needs from earlier lines: the last answer and an error not yet resolved."""

    def __init__(self) -> None:
        self.last_message = ""
        self.pending_error: str | None = None
        self.turns = 0
        self.started: set[str] = set()

    def events(self, obj: dict[str, Any]) -> Iterator[Event]:
        kind = obj.get("type")
        if kind == "thread.started":
            yield Message("codex started", "system")
        elif kind in ("item.started", "item.updated", "item.completed"):
            item = obj.get("item")
            if isinstance(item, dict):
                yield from self._item(item, done=kind == "item.completed")
        elif kind == "turn.completed":
            self.turns += 1
            self.pending_error = None
            yield Final(success=True, summary=self.last_message, turns=self.turns)
        elif kind == "turn.failed":
            err = obj.get("error")
            why = text_of(err.get("message")) if isinstance(err, dict) else text_of(err)
            self.pending_error = None
            yield Final(success=False, summary=self.last_message, error=why or "codex reported a failed turn")
        elif kind == "error":
            # not yet a failure: codex may recover within the turn; turn.failed or the end of output decides
            self.pending_error = text_of(obj.get("message")) or "codex reported an error"
            yield Message(self.pending_error, "error")

    def _item(self, item: dict[str, Any], done: bool) -> Iterator[Event]:
        kind, ident = item.get("type"), str(item.get("id", ""))
        first = ident not in self.started
        self.started.add(ident)
        if kind == "command_execution":
            if first:
                yield ToolUse("shell", text_of(item.get("command")))
            if done:
                code = item.get("exit_code")
                failed = (isinstance(code, int) and code != 0) or item.get("status") == "failed"
                yield ToolResult(text_of(item.get("aggregated_output")), failed)
        elif kind == "mcp_tool_call":
            if first:
                yield ToolUse(f"{text_of(item.get('server'))}.{text_of(item.get('tool'))}")
            if done:
                yield ToolResult(text_of(item.get("status")), item.get("status") == "failed")
        elif kind == "file_change" and done:
            paths = [f"{text_of(c.get('kind'))} {text_of(c.get('path'))}".strip()
                     for c in _dicts(item.get("changes"))]
            yield ToolUse("file_change", ", ".join(paths))
        elif kind == "web_search" and first:
            yield ToolUse("web_search", text_of(item.get("query")))
        elif kind == "todo_list":
            yield TodoList([TodoItem(text_of(t.get("text")), "completed" if t.get("completed") is True else "pending")
                            for t in _dicts(item.get("items"))])
        elif kind == "agent_message" and done:
            self.last_message = text_of(item.get("text"))
            yield Message(self.last_message)
        elif kind == "reasoning" and done:
            yield Message(text_of(item.get("text")), "reasoning")
        elif kind == "error" and done:
            # a warning inside the run (e.g. an optional helper missing); the turn goes on
            yield Message(text_of(item.get("message")), "warning")


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
