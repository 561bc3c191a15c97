"""OpenAI's Codex CLI, run as `codex exec --json` (see AGENT-FACTS: it reads stdin whenever stdin is not
a terminal, ignores OPENAI_BASE_URL, and retries an unreachable endpoint forever unless told not to)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from tsk.agents.base import (
    AGENT_HOME,
    AgentResult,
    HomeFile,
    HomeFiles,
    integer,
    login_bytes,
    login_digest,
    option_value,
    read_credential,
    read_json_line,
    text_of,
    tool_key,
    verdict,
)
from tsk.agents.codex_config import config_toml, login_part, read_user_config
from tsk.agents.events import Event, Final, Message, Raw, Session, TodoItem, TodoList, ToolResult, ToolUse, Usage
from tsk.agents.failures import Failure, from_status
from tsk.agents.homefiles import config_file
from tsk.agents.pricing import cost

PASS_THROUGH = ("OPENAI_API_KEY",)


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

    def command(self, prompt_file: str, *, resume: str | None = None, model: str | None = None) -> list[str]:
        # `--` keeps instructions that start with "-" from being read as options; </dev/null because codex
        # would otherwise wait for the end of any stdin that is not a terminal. Resuming is the `resume`
        # subcommand of `exec`, after exec's own options, which still apply (AGENT-FACTS).
        options = f" --model {shlex.quote(option_value(model, 'model'))}" if model is not None else ""
        if resume is not None:
            options += f" resume {shlex.quote(option_value(resume, 'session id'))}"
        script = (f"p=\"$(cat {shlex.quote(prompt_file)})\" && exec codex exec --json"
                  f' --dangerously-bypass-approvals-and-sandbox{options} -- "$p" </dev/null')
        return ["sh", "-c", script]

    def env(self, host_env: Mapping[str, str]) -> dict[str, str]:
        passed = {k: host_env[k] for k in PASS_THROUGH if host_env.get(k)}
        return {**passed, "CODEX_HOME": self.codex_home}

    def host_dir(self, host_home: Path, host_env: Mapping[str, str]) -> Path:
        """Where the user's codex keeps its config and login: $CODEX_HOME, as codex itself reads it."""
        own = host_env.get("CODEX_HOME")
        return Path(own) if own and Path(own).is_absolute() else host_home / ".codex"

    def home_files(self, host_home: Path, host_env: Mapping[str, str]) -> HomeFiles:
        notes: list[str] = []
        host = self.host_dir(host_home, host_env)
        user = read_user_config(host / "config.toml")
        config = HomeFile(container_path=f"{self.codex_home}/config.toml",
                          content=config_toml(host_env.get("OPENAI_BASE_URL"), user).encode(),
                          origin="generated" if user is None else f"{host / 'config.toml'}, with tsk's settings")
        found = [config, read_credential(host / "auth.json", f"{self.codex_home}/auth.json"),
                 config_file(host / "AGENTS.md", f"{self.codex_home}/AGENTS.md", host_home, notes)]
        return HomeFiles([f for f in found if f is not None], notes)

    def credential_files(self, host_home: Path, host_env: Mapping[str, str]) -> list[HomeFile]:
        return self.home_files(host_home, host_env).files

    def credential_digest(self, host_home: Path, host_env: Mapping[str, str]) -> str:
        # OPENAI_BASE_URL is not passed on, but it picks the endpoint the key is for (codex_config), as the
        # provider settings of the user's config.toml do
        host = self.host_dir(host_home, host_env)
        parts = {f"env {k}": host_env[k].encode() if host_env.get(k) else None
                 for k in (*PASS_THROUGH, "OPENAI_BASE_URL")}
        parts["auth.json"] = login_bytes(host / "auth.json")
        parts["config.toml"] = login_part(login_bytes(host / "config.toml"))
        return login_digest(parts)

    def parse(self, lines: Iterable[str], *, model: str | None = None) -> Iterator[Event]:
        # codex names no model in its output: usage is priced as the model the run was started with, when
        # the runner says, else as an unknown model (tsk.agents.pricing.FALLBACK)
        state = _State(model)
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
            yield state.failed(state.pending_error)

    def result(self, events: Iterable[Event], exit_code: int) -> AgentResult:
        return verdict("codex", events, exit_code)


# Codex reports an API failure only as text (AGENT-FACTS): "unexpected status 401 Unauthorized: ...",
# "exceeded retry limit, last status: 429 Too Many Requests", and for a 503 "Selected model is at capacity.
# ...". Matched at the start of the message, status codes only in those phrasings; anything else is the
# agent's own failure.
_API_STATUS = re.compile(r"(?:unexpected status|exceeded retry limit, last status:) ([1-5][0-9]{2})\b")
_AT_CAPACITY = re.compile(r"Selected model is at capacity\.")


_USAGE_KEYS = ("input_tokens", "cached_input_tokens", "cache_write_input_tokens", "output_tokens")


def classify(message: str) -> Failure | None:
    """The API failure a codex error message names, or None when it names none."""
    if m := _API_STATUS.match(message):
        failure = from_status(int(m.group(1)))
        return failure if failure != "agent_error" else None
    if _AT_CAPACITY.match(message):
        return "api_overloaded"
    return None


class _State:
    """What the verdict needs from earlier lines: the last answer, an error not yet resolved, the thread,
    and the usage so far."""

    def __init__(self, model: str | None = None) -> None:
        self.model = model
        self.last_message = ""
        self.pending_error: str | None = None
        self.last_error: str | None = None
        self.turns = 0
        self.started: set[str] = set()
        self.thread: str | None = None
        self.cost: float | None = None

    def failed(self, why: str) -> Final:
        # the final message first; the last error event's when it names no API failure
        failure = classify(why) or (classify(self.last_error) if self.last_error else None) or "agent_error"
        return Final(success=False, summary=self.last_message, error=why, failure=failure, session_id=self.thread,
                     cost_usd=self.cost)

    def events(self, obj: dict[str, Any]) -> Iterator[Event]:
        kind = obj.get("type")
        if kind == "thread.started":
            yield Message("codex started", "system")
            thread = obj.get("thread_id")
            if self.thread is None and isinstance(thread, str) and thread:
                # a resumed thread starts again with the same id; the first one names the session
                self.thread = thread
                yield Session(thread)
        elif kind in ("item.started", "item.updated", "item.completed"):
            item = obj.get("item")
            if isinstance(item, dict):
                yield from self._item(item, done=kind == "item.completed")
        elif kind == "turn.started":
            self.last_error = None  # an error an earlier turn recovered from says nothing about this one
        elif kind == "turn.completed":
            self.turns += 1
            self.pending_error = self.last_error = None
            yield from self._usage(obj.get("usage"))
            yield Final(success=True, summary=self.last_message, turns=self.turns, session_id=self.thread,
                        cost_usd=self.cost)
        elif kind == "turn.failed":
            err = obj.get("error")
            why = text_of(err.get("message")) if isinstance(err, dict) else text_of(err)
            self.pending_error = None
            yield from self._usage(obj.get("usage"))
            yield self.failed(why or "codex reported a failed turn")
        elif kind == "error":
            # not yet a failure: codex may recover within the turn; turn.failed or the end of output decides
            self.pending_error = self.last_error = text_of(obj.get("message")) or "codex reported an error"
            yield Message(self.pending_error, "error")

    def _usage(self, usage: object) -> Iterator[Usage]:
        if not isinstance(usage, dict):
            return
        count = {k: max(integer(usage.get(k)) or 0, 0) for k in _USAGE_KEYS}
        # OpenAI's input count includes the cached part (and the part written to the cache), and its output
        # count includes the reasoning tokens
        read, written, out = count["cached_input_tokens"], count["cache_write_input_tokens"], count["output_tokens"]
        fresh = max(count["input_tokens"] - read - written, 0)
        if not (fresh or read or written or out):
            return
        price = cost(self.model, input_tokens=fresh, output_tokens=out, cache_read_tokens=read,
                     cache_write_tokens=written)
        self.cost = (self.cost or 0.0) + price
        yield Usage(self.model, fresh, out, cache_read_tokens=read, cache_write_tokens=written, cost_usd=price)

    def _item(self, item: dict[str, Any], done: bool) -> Iterator[Event]:
        kind, ident = item.get("type"), str(item.get("id", ""))
        first = ident not in self.started
        self.started.add(ident)
        if kind == "command_execution":
            if first:
                command = text_of(item.get("command"))
                yield ToolUse("shell", command, tool_key("shell", command))
            if done:
                code = item.get("exit_code")
                failed = (isinstance(code, int) and code != 0) or item.get("status") == "failed"
                yield ToolResult(text_of(item.get("aggregated_output")), failed)
        elif kind == "mcp_tool_call":
            if first:
                tool = f"{text_of(item.get('server'))}.{text_of(item.get('tool'))}"
                yield ToolUse(tool, key=tool_key(tool, item.get("arguments")))
            if done:
                yield ToolResult(text_of(item.get("status")), item.get("status") == "failed")
        elif kind == "file_change" and done:
            paths = [f"{text_of(c.get('kind'))} {text_of(c.get('path'))}".strip()
                     for c in _dicts(item.get("changes"))]
            yield ToolUse("file_change", ", ".join(paths), tool_key("file_change", item.get("changes")))
        elif kind == "web_search" and first:
            query = text_of(item.get("query"))
            yield ToolUse("web_search", query, tool_key("web_search", query))
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
