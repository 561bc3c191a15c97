"""A pull request's title and body from a task and its result. Pure.

The agent's summary and the validation output come from the sandbox: they are kept from acting on the
repository through the body. Closing keywords (`fixes #3`) and @mentions in them are made inert, and
output goes in code blocks, whose fences are longer than any run of backticks inside."""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec

from tsk.plans.model import PlanTask
from tsk.text import printable

MAX_BODY = 60_000  # GitHub refuses bodies over 65536 characters
MAX_INSTRUCTIONS = 20_000
MAX_SUMMARY = 10_000
MAX_OUTPUT_LINES = 80
MAX_OUTPUT = 12_000
MAX_ATTEMPTS = 50  # rows; the earliest are dropped first
_JOINER = "\u2060"  # WORD JOINER: invisible, and breaks a reference or mention apart


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    outcome: str  # "complete", or the failure class: timeout, stalled, validation, agent_error, ...
    reason: str | None = None
    seconds: float | None = None


class Validation(msgspec.Struct, frozen=True, kw_only=True):
    command: str
    passed: bool
    output: str = ""


def pr_title(task: PlanTask) -> str:
    return " ".join(task.title.split())[:250] or task.id


def pr_body(*, instructions: str, summary: str | None = None, attempts: Sequence[Attempt] = (),
            validation: Validation | None = None, issue: int | None = None, task: str | None = None,
            branch: str | None = None) -> str:
    """Summary first (what a reviewer reads), then `Closes #N`, the attempts, the validation and the
    instructions the agent was given (folded)."""
    parts: list[str] = []
    said = _inert(summary or "").strip()
    parts.append(_cut(said, MAX_SUMMARY) if said else "_The agent left no summary._")
    if issue is not None:
        parts.append(f"Closes #{int(issue)}")
    if attempts:
        rows = ["| # | outcome | reason | time |", "|---|---|---|---|"]
        if len(attempts) > MAX_ATTEMPTS:
            rows.append(f"| … | {len(attempts) - MAX_ATTEMPTS} earlier attempts | | |")
        for a in attempts[-MAX_ATTEMPTS:]:
            reason = _inert(a.reason or "").replace("|", "\\|").replace("\n", " ").strip()[:200]
            rows.append(f"| {a.number} | {_inert(a.outcome)} | {reason} | {_duration(a.seconds)} |")
        parts.append("### Attempts\n\n" + "\n".join(rows))
    if validation is not None:
        verdict = "passed" if validation.passed else "failed"
        lines = printable(validation.output).rstrip().splitlines()
        tail = "\n".join(lines[-MAX_OUTPUT_LINES:])[-MAX_OUTPUT:]
        shown = f"last {MAX_OUTPUT_LINES} lines" if len(lines) > MAX_OUTPUT_LINES else "output"
        block = f"\n\n<details><summary>{shown}</summary>\n\n{_fenced(tail)}\n\n</details>" if tail else ""
        parts.append(f"### Validation\n\n{_code(validation.command)} {verdict}.{block}")
    parts.append("<details><summary>Instructions given to the agent</summary>\n\n"
                 + _fenced(_cut(printable(instructions).strip(), MAX_INSTRUCTIONS)) + "\n\n</details>")
    made = "Made by tsk" + (f" from task `{task}`" if task else "") + (f", branch `{branch}`" if branch else "")
    parts.append(f"---\n{made}.")
    return _cut("\n\n".join(parts), MAX_BODY) + "\n"


_CLOSING = re.compile(r"\b(close[sd]?|fix(?:e[sd])?|resolve[sd]?)\b(\s*:?\s*)(?=[\w.-]*/?[\w.-]*#\d)", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w`])@(?=[A-Za-z0-9])")


def _inert(text: str) -> str:
    text = printable(text)
    text = _CLOSING.sub(lambda m: m[1][0] + _JOINER + m[1][1:] + m[2], text)
    return _MENTION.sub("@" + _JOINER, text)


def _fenced(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _code(text: str) -> str:
    one = " ".join(printable(text).split())
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", one)), default=0) + 1)
    return f"{ticks} {one} {ticks}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 30].rstrip() + "\n\n… (cut short)"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
