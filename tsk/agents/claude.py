"""Claude Code, run headless with stream-json output (see AGENT-FACTS: a run that failed can still say
`subtype: "success"`, so the verdict reads `is_error` and the exit code)."""

from __future__ import annotations

import math
import shlex
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from tsk.agents.base import (
    AGENT_HOME,
    AgentResult,
    HomeFile,
    HomeFiles,
    integer,
    json_keys,
    login_bytes,
    login_digest,
    number,
    option_value,
    read_credential,
    read_json_line,
    text_of,
    tool_key,
    verdict,
)
from tsk.agents.events import Event, Final, Message, Raw, Session, TodoItem, TodoList, ToolResult, ToolUse, Usage
from tsk.agents.failures import Failure, from_status
from tsk.agents.homefiles import config_file, copy_trees
from tsk.agents.pricing import cost

PASS_THROUGH = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "CLAUDE_CODE_OAUTH_TOKEN")
FIXED_ENV = {
    # the binary is root-owned in the image and cannot update itself; the rest is traffic that is not
    # the model API, which the proxy would refuse anyway
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    # unbounded, it retries an unreachable API for minutes before giving up
    "CLAUDE_CODE_MAX_RETRIES": "3",
    # --dangerously-skip-permissions refuses root without it; the container is the sandbox
    "IS_SANDBOX": "1",
}

# The dirs of ~/.claude that hold the user's own config, copied whole (plugins last: the largest).
CONFIG_DIRS = ("agents", "commands", "skills", "plugins")

# Which input field names the thing a tool acts on, for a one-line summary.
_SUBJECT = {
    "Bash": "command", "Write": "file_path", "Edit": "file_path", "MultiEdit": "file_path", "Read": "file_path",
    "NotebookEdit": "notebook_path", "Glob": "pattern", "Grep": "pattern", "WebFetch": "url",
    "WebSearch": "query", "Task": "description", "Agent": "description",
}


class ClaudeAgent(msgspec.Struct, frozen=True):
    home: str = AGENT_HOME

    @property
    def name(self) -> str:
        return "claude"

    @property
    def home_dirs(self) -> tuple[str, ...]:
        return (".claude",)

    @property
    def structured_output(self) -> bool:
        return True

    def command(self, prompt_file: str, *, resume: str | None = None, model: str | None = None) -> list[str]:
        # The prompt goes in as an argument after `--`, so instructions that start with "-" are not read as
        # options; `p=... &&` stops before starting claude when the file cannot be read.
        options = ""
        if resume is not None:
            options += f" --resume {shlex.quote(option_value(resume, 'session id'))}"
        if model is not None:
            options += f" --model {shlex.quote(option_value(model, 'model'))}"
        script = (f"p=\"$(cat {shlex.quote(prompt_file)})\" && exec claude -p --output-format stream-json"
                  f' --verbose --dangerously-skip-permissions{options} -- "$p" </dev/null')
        return ["sh", "-c", script]

    def env(self, host_env: Mapping[str, str]) -> dict[str, str]:
        passed = {k: host_env[k] for k in PASS_THROUGH if host_env.get(k)}
        return {**passed, **FIXED_ENV}

    def home_files(self, host_home: Path, host_env: Mapping[str, str]) -> HomeFiles:
        # Logins, then the user's own Claude config: settings, memory, subagents, commands, skills, plugins.
        # The MCP servers of the user's scope live in ~/.claude.json, which is copied whole.
        notes: list[str] = []
        claude, inside = host_home / ".claude", f"{self.home}/.claude"
        found = [
            read_credential(claude / ".credentials.json", f"{inside}/.credentials.json"),
            read_credential(host_home / ".claude.json", f"{self.home}/.claude.json"),
            # settings may carry env with keys and an apiKeyHelper: private, as a login is
            config_file(claude / "settings.json", f"{inside}/settings.json", host_home, notes, secret=True),
            config_file(claude / "CLAUDE.md", f"{inside}/CLAUDE.md", host_home, notes),
        ]
        files = [f for f in found if f is not None]
        trees = copy_trees([(claude / d, f"{inside}/{d}") for d in CONFIG_DIRS], host_home, notes)
        files += [_rehomed(f, f"{inside}/plugins/", str(claude), inside) for f in trees]
        return HomeFiles(files, notes)

    def credential_files(self, host_home: Path, host_env: Mapping[str, str]) -> list[HomeFile]:
        return self.home_files(host_home, host_env).files

    def credential_digest(self, host_home: Path, host_env: Mapping[str, str]) -> str:
        parts = {f"env {k}": host_env[k].encode() if host_env.get(k) else None for k in PASS_THROUGH}
        parts[".claude/.credentials.json"] = login_bytes(host_home / ".claude" / ".credentials.json")
        # Claude rewrites ~/.claude.json on every run (counters, tips, project stats): only its login counts
        parts[".claude.json"] = json_keys(login_bytes(host_home / ".claude.json"), _LOGIN_KEYS)
        parts[".claude/settings.json"] = json_keys(login_bytes(host_home / ".claude" / "settings.json"),
                                                   _SETTINGS_LOGIN_KEYS)
        return login_digest(parts)

    def parse(self, lines: Iterable[str], *, model: str | None = None) -> Iterator[Event]:
        state = _State(model)
        for line in lines:
            obj = read_json_line(line)
            if obj is None:
                continue
            if isinstance(obj, Raw):
                yield obj
                continue
            yield from state.events(obj)

    def result(self, events: Iterable[Event], exit_code: int) -> AgentResult:
        return verdict("claude", events, exit_code)


# The keys of ~/.claude.json that say who is logged in: the account of an OAuth login (its tokens are in
# ~/.claude/.credentials.json) and a Console API key with the user's answer on using it.
_LOGIN_KEYS = ("oauthAccount", "primaryApiKey", "customApiKeyResponses")
# The settings that change how Claude logs in: a key helper, env (a key, a gateway), a forced login.
_SETTINGS_LOGIN_KEYS = ("apiKeyHelper", "env", "forceLoginMethod", "forceLoginOrgUUID", "awsAuthRefresh",
                        "awsCredentialExport")
# Claude Code's names for the API errors it retries, for a retry event without a status.
_ERROR_NAMES: dict[str, Failure] = {
    "authentication_failed": "api_auth", "rate_limit": "api_rate_limit", "overloaded": "api_overloaded",
}


class _Counts(NamedTuple):
    input: int
    output: int
    cache_read: int
    cache_write: int


_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
_NONE = _Counts(0, 0, 0, 0)
# Assistant events repeat their message's usage once per content block: the last few messages' counts are
# remembered, so only what is new is reported (blocks of one message come together).
_REMEMBERED = 32


class _State:
    """What later lines need from earlier ones: the model, the session, usage reported so far, and the
    last API error the retries saw."""

    def __init__(self, model: str | None) -> None:
        self.model = model
        self.session: str | None = None
        self.reported: OrderedDict[str, _Counts] = OrderedDict()
        self.cost: float | None = None
        self.retry_failure: Failure | None = None
        self.message_failure: Failure | None = None

    def events(self, obj: dict[str, Any]) -> Iterator[Event]:
        kind, subtype = obj.get("type"), obj.get("subtype")
        if kind == "system" and subtype == "init":
            model = obj.get("model")
            if isinstance(model, str) and model:
                self.model = model
            yield Message(f"claude started, model {model}" if isinstance(model, str) else "claude started", "system")
            session = obj.get("session_id")
            if self.session is None and isinstance(session, str) and session:
                self.session = session
                yield Session(session)
        elif kind == "system" and subtype == "api_retry":
            attempt, most = integer(obj.get("attempt")), integer(obj.get("max_retries"))
            status = obj.get("error_status") or obj.get("error") or "no answer"
            code, name = integer(obj.get("error_status")), obj.get("error")
            if code is not None:
                self.retry_failure = from_status(code)
            elif isinstance(name, str) and name in _ERROR_NAMES:
                self.retry_failure = _ERROR_NAMES[name]
            yield Message(f"API retry {attempt}/{most} ({status})", "system")
        elif kind in ("assistant", "user"):
            message = obj.get("message")
            message = message if isinstance(message, dict) else {}
            if kind == "assistant":
                name = obj.get("error")
                if isinstance(name, str) and name in _ERROR_NAMES:
                    self.message_failure = _ERROR_NAMES[name]
                yield from self._usage(message)
            content = message.get("content")
            if isinstance(content, str) and content.strip():
                yield Message(content, kind)
            elif isinstance(content, list):
                for block in content:
                    if isinstance(block, dict):
                        yield from _block(block, kind)
        elif kind == "result":
            yield self._final(obj)
        # Anything else (hooks, partial stream events, rate-limit notes) is noise for the log; the raw output
        # keeps it.

    def _usage(self, message: dict[str, Any]) -> Iterator[Usage]:
        usage = message.get("usage")
        if not isinstance(usage, dict):
            return
        now = _Counts(*(max(integer(usage.get(k)) or 0, 0) for k in _USAGE_KEYS))
        ident = message.get("id")
        before = _NONE
        if isinstance(ident, str) and ident:
            before = self.reported.get(ident, _NONE)
            self.reported[ident] = _Counts(*map(max, now, before))
            self.reported.move_to_end(ident)
            while len(self.reported) > _REMEMBERED:
                self.reported.popitem(last=False)
        new = _Counts(*(max(a - b, 0) for a, b in zip(now, before, strict=True)))
        if new == _NONE:
            return
        model = message.get("model")
        # the message's own model, which differs from the session's for a subagent; "<synthetic>" marks a
        # message Claude Code made up itself (an API error), which has no tokens anyway
        model = model if isinstance(model, str) and model and not model.startswith("<") else self.model
        split = usage.get("cache_creation")
        long = integer(split.get("ephemeral_1h_input_tokens")) if isinstance(split, dict) and before == _NONE else 0
        price = cost(model, input_tokens=new.input, output_tokens=new.output, cache_read_tokens=new.cache_read,
                     cache_write_tokens=new.cache_write, cache_write_long_tokens=long or 0)
        self.cost = (self.cost or 0.0) + price
        yield Usage(model, new.input, new.output, cache_read_tokens=new.cache_read,
                    cache_write_tokens=new.cache_write, cost_usd=price)

    def _final(self, obj: dict[str, Any]) -> Final:
        final = _final(obj)
        failure: Failure | None = None
        if not final.success:
            # the result's own status first; the retries' when it has none; else it is the agent's failure
            status = integer(obj.get("api_error_status"))
            failure = (from_status(status) if status is not None
                       else self.retry_failure or self.message_failure or "agent_error")
        session = obj.get("session_id")
        session = session if isinstance(session, str) and session else self.session
        reported = final.cost_usd if final.cost_usd is not None else self.cost
        return msgspec.structs.replace(final, failure=failure, session_id=session, cost_usd=reported)


def _rehomed(f: HomeFile, plugins: str, host_dir: str, inside: str) -> HomeFile:
    """Claude's plugin registries (plugins/*.json) name where each plugin is installed by absolute path,
    under the host's ~/.claude; in the task they are under the agent's."""
    rest = f.container_path.removeprefix(plugins)
    if rest == f.container_path or "/" in rest or not rest.endswith(".json"):
        return f
    old, new = (msgspec.json.encode(p + "/")[1:-1] for p in (host_dir, inside))
    return msgspec.structs.replace(f, content=f.content.replace(old, new)) if old != new else f


def _block(block: dict[str, Any], role: str) -> Iterator[Event]:
    kind = block.get("type")
    if kind == "text":
        text = text_of(block.get("text"))
        if text.strip():
            yield Message(text, role)
    elif kind == "tool_use":
        name, args = block.get("name"), block.get("input")
        tool = name if isinstance(name, str) else "tool"
        args = args if isinstance(args, dict) else {}
        key = tool_key(tool, block.get("input"))
        if tool == "TodoWrite":
            todos = _todos(args.get("todos"))
            yield ToolUse(tool, f"{len(todos)} todo" + ("" if len(todos) == 1 else "s"), key)
            yield TodoList(todos)
        else:
            yield ToolUse(tool, _subject(tool, args), key)
    elif kind == "tool_result":
        yield ToolResult(text_of(block.get("content")), block.get("is_error") is True)


def _subject(tool: str, args: dict[str, Any]) -> str:
    value = args.get(_SUBJECT.get(tool, ""))
    if not isinstance(value, str):
        # an unknown tool: its first string argument is the best guess at what it acts on
        value = next((v for v in args.values() if isinstance(v, str)), "")
    return value


def _todos(value: object) -> list[TodoItem]:
    items = value if isinstance(value, list) else []
    return [TodoItem(text_of(i.get("content")), text_of(i.get("status")) or "pending")
            for i in items if isinstance(i, dict)]


def _final(obj: dict[str, Any]) -> Final:
    subtype = obj.get("subtype")
    is_error = obj.get("is_error")
    failed = is_error if isinstance(is_error, bool) else subtype != "success"
    failed = failed or (isinstance(subtype, str) and subtype.startswith("error"))
    text = text_of(obj.get("result"))
    error = None
    if failed:
        errors = obj.get("errors")
        detail = "; ".join(e for e in errors if isinstance(e, str)) if isinstance(errors, list) else ""
        error = text or detail or (subtype if isinstance(subtype, str) else "") or "claude reported an error"
    # a cost is a finite amount of at least zero; anything else is no report (and tsk's estimate stands)
    reported = number(obj.get("total_cost_usd"))
    cost_usd = reported if reported is not None and 0 <= reported < math.inf else None
    return Final(success=not failed, summary=text, cost_usd=cost_usd,
                 turns=integer(obj.get("num_turns")), duration_ms=integer(obj.get("duration_ms")), error=error)
