"""The agent plug-in contract and the plain data it hands the container runner. An agent only plans:
it names the argv, environment and the files for its home, and reads the output; the runner executes."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import msgspec
import xxhash

from tsk.agents.events import Event, Final, Message, Raw, Session, Usage
from tsk.agents.failures import Failure, as_failure
from tsk.errors import TskError
from tsk.text import printable

# tsk runs the agent as the non-root `agent` user with this HOME (the runner sets HOME to it).
AGENT_HOME = "/home/agent"


class HomeFile(msgspec.Struct, frozen=True):
    """A file to copy into the task's home before the agent starts, owned by the agent user: a login, or
    the user's own agent config. Copied, never bind-mounted: the agent may rewrite it (token refresh, a
    setting) without touching the host's copy."""

    container_path: str
    content: bytes
    mode: int = 0o600  # 0600 for anything that may hold a secret; else the host file's own, at most 0644
    origin: str = ""  # the host path it was read from, or "generated"; for logs and `tsk` output

    def __repr__(self) -> str:
        # the content may be a secret: keep it out of logs, tracebacks and test failure output
        return (f"HomeFile(container_path={self.container_path!r}, content=<{len(self.content)} bytes>, "
                f"mode={oct(self.mode)}, origin={self.origin!r})")


# The name from when only logins were copied; the runner still uses it.
CredentialFile = HomeFile


class HomeFiles(msgspec.Struct, frozen=True):
    """What an agent copies into the task's home, and what it left out that the user should hear about
    (a config dir over the size cap, an unreadable file)."""

    files: list[HomeFile] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)


class AgentResult(msgspec.Struct, frozen=True):
    """The task's verdict on the agent's run: its own Final combined with the exit code. `failure` is None
    exactly when the run succeeded; a failed result made without one is an agent_error."""

    success: bool
    summary: str = ""
    error: str | None = None
    cost_usd: float | None = None
    turns: int | None = None
    duration_ms: int | None = None
    failure: Failure | None = None
    session_id: str | None = None

    def __post_init__(self) -> None:
        if self.success and self.failure is not None:
            raise ValueError(f"a successful run has no failure class, got {self.failure!r}")
        if not self.success and self.failure is None:
            msgspec.structs.force_setattr(self, "failure", "agent_error")


class Agent(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def home_dirs(self) -> tuple[str, ...]:
        """Dirs under the agent's home where it keeps its state; the task's home gets each one."""
        ...

    @property
    def structured_output(self) -> bool:
        """True when stdout is the agent's event stream (stderr is then kept apart, in agent.stderr);
        False when it is plain text, with stderr merged into it."""
        ...

    def command(self, prompt_file: str, *, resume: str | None = None, model: str | None = None) -> list[str]:
        """The argv run in the repo dir as the agent user; `prompt_file` is the container path of the
        instructions. stdin is never left open: the runner may give the container none at all. `resume` is
        the id of an earlier attempt's Session event, to continue that conversation (the agent needs that
        attempt's home and the same working dir); `model` overrides the agent's own choice. An agent without
        sessions or models ignores both. Raises TskError for a value that could pass for an option."""
        ...

    def env(self, host_env: Mapping[str, str]) -> dict[str, str]:
        """Environment for the container; secrets only when they are set on the host."""
        ...

    def home_files(self, host_home: Path, host_env: Mapping[str, str]) -> HomeFiles:
        """Files to copy into the task's home, read now (plan time) from the host: the agent's logins and
        the user's own config for it, with notes on what was left out."""
        ...

    def credential_files(self, host_home: Path, host_env: Mapping[str, str]) -> list[HomeFile]:
        """home_files' files alone, under the name from when only logins were copied (the runner's)."""
        ...

    def credential_digest(self, host_home: Path, host_env: Mapping[str, str]) -> str:
        """A digest of everything the agent logs in with (the env it passes, the login files it copies), so
        a task blocked on bad credentials is tried again when they change. Secrets are hashed, never shown."""
        ...

    def parse(self, lines: Iterable[str], *, model: str | None = None) -> Iterator[Event]:
        """Events from the agent's stdout lines; lazy, so it follows a live stream. Never raises on bad input.
        `model` is the one the run was started with, for pricing usage the agent reports without a model."""
        ...

    def result(self, events: Iterable[Event], exit_code: int) -> AgentResult:
        """The run's verdict from all parsed events and the process's exit code."""
        ...


def clean_text(text: str) -> str:
    """Text that encodes as UTF-8. Output decoded with surrogateescape carries lone surrogates, which no JSON
    or TOML writer accepts: undecodable bytes become U+FFFD instead."""
    try:
        text.encode()
        return text
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return text.encode("utf-8", "replace").decode()


def read_json_line(line: str) -> dict[str, Any] | Raw | None:
    """A JSON object from one output line; Raw for anything else; None for a blank line."""
    text = clean_text(line).rstrip("\r\n")
    if not text.strip():
        return None
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return Raw(text)
    return value if isinstance(value, dict) else Raw(text)


def text_of(value: object) -> str:
    """A string field, or the text blocks of a content list; anything else reads as empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(text_of(b.get("text")) for b in value if isinstance(b, dict)).strip("\n")
    return ""


def number(value: object) -> float | None:
    # bool is an int in Python; a flag is never a count or a price
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def integer(value: object) -> int | None:
    n = number(value)
    return int(n) if n is not None else None


def tool_key(tool: str, args: object) -> str:
    """A stable digest of a tool call: its tool and whole input in canonical JSON. Equal calls, equal keys."""
    try:
        encoded = msgspec.json.encode([tool, args], order="deterministic")
    except (TypeError, msgspec.EncodeError):  # not from JSON (a plug-in's own value): its text stands in
        encoded = msgspec.json.encode([tool, clean_text(str(args))])
    return str(xxhash.xxh3_64_hexdigest(encoded))


def verdict(agent: str, events: Iterable[Event], exit_code: int) -> AgentResult:
    """Combine the agent's last Final with the exit code: a run succeeds only when both say so. A failed
    Final anywhere wins over a later success, and an agent that stops without a Final has failed. The cost
    is the Final's, else the sum of the Usage events; the session is the last one the agent named."""
    final: Final | None = None
    failed: Final | None = None
    last_text = ""
    session: str | None = None
    usage_cost: float | None = None
    for event in events:
        if isinstance(event, Final):
            final = event
            if not event.success and failed is None:
                failed = event
            session = event.session_id or session
        elif isinstance(event, Message) and event.role in ("assistant", "output") and event.text.strip():
            last_text = event.text
        elif isinstance(event, Session):
            session = event.id
        elif isinstance(event, Usage) and event.cost_usd is not None:
            usage_cost = (usage_cost or 0.0) + event.cost_usd
    chosen = failed or final
    if chosen is None:
        why = f"{agent} exited with code {exit_code} without reporting a result"
        return AgentResult(success=False, summary=last_text, error=why, failure="agent_error", session_id=session,
                           cost_usd=usage_cost)
    failure: Failure | None = None
    if not chosen.success:
        error: str | None = chosen.error or chosen.summary or f"{agent} reported a failure"
        failure = as_failure(chosen.failure)
    elif exit_code != 0:
        error, failure = f"{agent} exited with code {exit_code}", "agent_error"
    else:
        error = None
    cost = chosen.cost_usd if chosen.cost_usd is not None else usage_cost
    return AgentResult(success=error is None, summary=chosen.summary or last_text, error=error, cost_usd=cost,
                       turns=chosen.turns, duration_ms=chosen.duration_ms, failure=failure, session_id=session)


_SPACE = re.compile(r"\s")


def option_value(value: str, what: str) -> str:
    """`value` for an agent's command-line option (the caller still quotes it for the shell), refused when
    the agent would read it as an option of its own, or it holds whitespace or control characters, which
    no session id or model name has: a session id comes from the sandbox's output, which is hostile."""
    if not value or value.startswith("-") or printable(value) != value or _SPACE.search(value):
        hint = ("give the model's name as the agent knows it" if what == "model"
                else "retry the task without resuming the agent's session")
        raise TskError(f"refusing {what} {value!r} for the agent's command line: it is empty, starts with '-', "
                       "or holds whitespace or control characters", hint=hint)
    return value


def login_digest(parts: Mapping[str, bytes | None]) -> str:
    """A digest of named login inputs (None: absent). Each is hashed on its own first, so no secret is ever
    held in what is hashed together, and the names keep a key moved from one place to another a change."""
    hashed = {name: None if value is None else hashlib.sha256(value).hexdigest() for name, value in parts.items()}
    return hashlib.sha256(b"tsk login digest 1\n" + msgspec.json.encode(hashed, order="deterministic")).hexdigest()


def login_bytes(path: Path) -> bytes | None:
    """A login file's content for a digest: None when there is none; a marker when it cannot be read (which
    changes the digest once it can)."""
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return b"\0unreadable"


def json_keys(content: bytes | None, keys: tuple[str, ...]) -> bytes | None:
    """Only `keys` of a JSON object file, canonical; the whole content when it is not a JSON object."""
    if content is None:
        return None
    try:
        obj = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return content
    if not isinstance(obj, dict):
        return content
    return msgspec.json.encode({k: obj[k] for k in keys if k in obj}, order="deterministic")


def read_credential(host_path: Path, container_path: str) -> HomeFile | None:
    """The host file's bytes, or None when it does not exist."""
    if not host_path.is_file():
        return None
    try:
        content = host_path.read_bytes()
    except OSError as exc:
        raise TskError(f"cannot read the agent credential file {host_path}: {exc.strerror}",
                       hint=f"make {host_path} readable by your user, or remove it to run without it") from exc
    return HomeFile(container_path=container_path, content=content, origin=str(host_path))
