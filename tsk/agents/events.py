"""What an agent did, as a tagged union of small structs: the executor writes them as JSON lines to
`output/agent.log` and shows `render(event)` on the terminal. Every agent's parser emits these, so the
log, the dashboard and the final result never depend on one CLI's output format."""

from __future__ import annotations

from typing import Final as FinalType

import msgspec

from tsk.text import one_line as text_one_line
from tsk.text import printable

# Tool summaries and terminal lines stay on one line; the full text is in the raw output.
SUMMARY_WIDTH: FinalType = 200


class TodoItem(msgspec.Struct, frozen=True):
    content: str
    status: str  # "pending" | "in_progress" | "completed", as the agents say it


class Message(msgspec.Struct, frozen=True, tag="message", tag_field="type"):
    """Text from the agent. role: assistant, system, reasoning, output (exec), error."""

    text: str
    role: str = "assistant"


class ToolUse(msgspec.Struct, frozen=True, tag="tool_use", tag_field="type"):
    tool: str
    summary: str = ""
    # A digest of the tool and its whole input (base.tool_key): equal keys are the same call, so a run of
    # them is an agent repeating itself. Empty in logs written before keys existed.
    key: str = ""


class ToolResult(msgspec.Struct, frozen=True, tag="tool_result", tag_field="type"):
    summary: str = ""
    is_error: bool = False


class TodoList(msgspec.Struct, frozen=True, tag="todo_list", tag_field="type"):
    items: list[TodoItem] = msgspec.field(default_factory=list)


class Final(msgspec.Struct, frozen=True, tag="final", tag_field="type"):
    """The agent's own verdict on its run. Not the task's verdict: that also needs the exit code."""

    success: bool
    summary: str = ""
    cost_usd: float | None = None
    turns: int | None = None
    duration_ms: int | None = None
    error: str | None = None
    # Why it failed, as tsk classes it (tsk.agents.failures.Failure); a plain string here so a log written
    # by a later tsk with more classes still reads. None on success, and in logs from before classes.
    failure: str | None = None
    # The agent's session as of this verdict, repeated from its Session event: the runner keeps every Final
    # but only the last events besides, and a long run's Session comes first.
    session_id: str | None = None


class Session(msgspec.Struct, frozen=True, tag="session", tag_field="type"):
    """The agent's own id for the conversation, which a later attempt passes back to resume it."""

    id: str


class Usage(msgspec.Struct, frozen=True, tag="usage", tag_field="type"):
    """Tokens the agent reported since its previous Usage, so a run's Usage events add up. input_tokens
    counts the input neither read from nor written to the prompt cache. cost_usd is tsk's price for
    these tokens (tsk/agents/pricing.py), not the provider's bill."""

    model: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None


class Raw(msgspec.Struct, frozen=True, tag="raw", tag_field="type"):
    """A line the parser could not read; kept so nothing the agent printed is lost."""

    text: str


Event = Message | ToolUse | ToolResult | TodoList | Final | Raw | Session | Usage

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)


def encode_event(event: Event) -> bytes:
    """One JSON line (without the newline) for output/agent.log."""
    return _encoder.encode(event)


def decode_event(line: str | bytes) -> Event:
    """Read back a line of output/agent.log; a line that is not an event comes back as Raw."""
    try:
        return _decoder.decode(line)
    except msgspec.DecodeError:
        return Raw(line.decode(errors="replace") if isinstance(line, bytes) else line)


def one_line(text: str, width: int | None = SUMMARY_WIDTH) -> str:
    """Collapse whitespace so a multi-line text fits one terminal line, cut at `width` with an ellipsis."""
    flat = " ".join(printable(text).split())
    if width is not None and len(flat) > width:
        return flat[: max(width - 1, 0)] + "…"
    return flat


_TODO_MARK = {"completed": "✔", "in_progress": "◐"}
_ROLE_MARK = {"assistant": "⏺", "system": "⚙", "reasoning": "∴", "error": "✗", "warning": "⚠", "user": "›"}


def _stats(e: Final) -> str:
    """' in 12.3s, 4 turns, $0.0123', leaving out what the agent did not report."""
    head = f" in {e.duration_ms / 1000:.1f}s" if e.duration_ms is not None else ""
    rest = []
    if e.turns is not None:
        rest.append(f"{e.turns} turn" + ("" if e.turns == 1 else "s"))
    if e.cost_usd is not None:
        rest.append(f"${e.cost_usd:.4f}")
    return ", ".join([head, *rest]) if head else "".join(f", {r}" for r in rest)


def _usage(u: Usage) -> str:
    """' (gpt-5.5): 200 in, 50 cached, 40 out, $0.0022', leaving out cache counts that are zero."""
    parts = [f"{u.input_tokens} in"]
    if u.cache_read_tokens:
        parts.append(f"{u.cache_read_tokens} cached")
    if u.cache_write_tokens:
        parts.append(f"{u.cache_write_tokens} to cache")
    parts.append(f"{u.output_tokens} out")
    if u.cost_usd is not None:
        parts.append(f"${u.cost_usd:.4f}")
    return (f" ({u.model})" if u.model else "") + ": " + ", ".join(parts)


def render(event: Event, width: int | None = SUMMARY_WIDTH) -> str:
    """One readable terminal line for an event."""
    match event:
        case Message(text=text, role="output"):
            # exec output is the script's own line: show it as printed, only cut to one line
            return text_one_line(text)[: width or None]
        case Message(text=text, role=role):
            mark = _ROLE_MARK.get(role, f"[{role}]")
            return f"{mark} {one_line(text, width)}"
        case ToolUse(tool=tool, summary=summary):
            return f"⏺ {tool}: {one_line(summary, width)}" if summary else f"⏺ {tool}"
        case ToolResult(summary=summary, is_error=is_error):
            return f"  ⎿  {'✗ ' if is_error else ''}{one_line(summary, width)}"
        case TodoList(items=items):
            done = sum(1 for i in items if i.status == "completed")
            listed = " · ".join(f"{_TODO_MARK.get(i.status, '☐')} {i.content}" for i in items)
            return one_line(f"☰ todos {done}/{len(items)}: {listed}", width)
        case Final() as final:
            if final.success:
                return f"✓ done{_stats(final)}"
            why = one_line(final.error or final.summary or "no reason given", width)
            return f"✗ failed{_stats(final)}: {why}"
        case Raw(text=text):
            return one_line(text, width)
        case Session(id=ident):
            return f"⚙ session {one_line(ident, width)}"
        case Usage() as usage:
            return one_line(f"⚙ tokens{_usage(usage)}", width)
    raise AssertionError(f"unknown event {event!r}")  # pragma: no cover - the union is closed
