"""The remediation ladder (DESIGN §7): after an attempt, what comes next. Pure: it reads the attempts so
far and returns a decision; the runner and the server carry it out.

- infra (engine, image, proxy; a process that died under the task): a fresh attempt, soon.
- stalled, timeout, looping, validation, agent_error: a new attempt that starts from the last one's work
  and is told why it failed (the agent's own session resumed where it can be).
- api_rate_limit, api_overloaded: BLOCKED for a back-off that doubles with each such attempt in a row,
  and the agent's other tasks held back as long; api_auth: BLOCKED until the credentials change.
- budget, cancelled, conflict: final.

The attempts the API refused are not the task's fault: they do not use up `max_attempts`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec

from tsk.tasks.model import Attempt, FailureClass

CONTINUE: frozenset[FailureClass] = frozenset({"stalled", "timeout", "looping", "validation", "agent_error"})
API_LIMITS: frozenset[FailureClass] = frozenset({"api_rate_limit", "api_overloaded"})
FINAL: frozenset[FailureClass] = frozenset({"budget", "cancelled", "conflict"})
BACKOFF_FIRST = 60.0
BACKOFF_MOST = 3600.0
INFRA_PAUSE = 5.0


class Step(msgspec.Struct, frozen=True, kw_only=True):
    action: Literal["complete", "retry", "block", "fail", "cancel"]
    why: str
    carry_on: bool = False  # retry: start from the last attempt's work, knowing why it failed
    wait: float = 0.0  # retry: seconds to wait first; block: the back-off (0 with credentials: until they change)
    hold_agent: bool = False  # block: hold the agent's other tasks back for as long


def counted(attempts: Sequence[Attempt]) -> int:
    """The attempts that use up max_attempts: all but those the API refused."""
    return sum(1 for a in attempts if a.failure_class not in API_LIMITS and a.failure_class != "api_auth")


def next_step(attempts: Sequence[Attempt], max_attempts: int, *, retryable: bool = True,
              backoff_first: float = BACKOFF_FIRST) -> Step:
    """After the last of `attempts`. `retryable` False: its failure cannot get better by trying again (bad
    config, a usage error), whatever its class. `backoff_first`: the first API back-off, in seconds."""
    last = attempts[-1]
    cls = last.failure_class
    why = last.reason or (cls or "")
    if cls is None:
        return Step(action="complete", why="done")
    if cls == "cancelled":
        return Step(action="cancel", why=why)
    if cls in FINAL or not retryable:
        return Step(action="fail", why=why)
    if cls == "api_auth":
        return Step(action="block", why=f"the agent's credentials were refused: {why}; fix them and the task runs "
                    "again", wait=0.0)
    if cls in API_LIMITS:
        in_a_row = 0
        for a in reversed(attempts):
            if a.failure_class not in API_LIMITS:
                break
            in_a_row += 1
        wait = min(backoff_first * 2 ** (in_a_row - 1), BACKOFF_MOST)
        return Step(action="block", why=f"{why}; trying again in {wait:.0f}s", wait=wait, hold_agent=True)
    made = counted(attempts)
    if made >= max_attempts:
        return Step(action="fail", why=f"{why} (attempt {made} of {max_attempts}, the last)")
    if cls == "infra":
        return Step(action="retry", why=why, wait=INFRA_PAUSE * made)
    assert cls in CONTINUE, cls
    return Step(action="retry", why=why, carry_on=True)


def classify(*, cancelled: str | None, stopped: tuple[FailureClass, str] | None, success: bool,
             agent_failure: FailureClass | None, agent_error: str | None, validates: bool,
             validation_exit: int | None) -> tuple[FailureClass | None, str | None]:
    """How an attempt ended, first reason first: a cancel, a limit tsk stopped it for, the agent's own
    failure (its API's, by the agent's structured events), then the validation command's verdict."""
    if cancelled is not None:
        return "cancelled", cancelled
    if stopped is not None:
        return stopped
    if not success:
        return agent_failure or "agent_error", agent_error or "the agent failed"
    if validates:
        if validation_exit is None:
            return "validation", "the validation command did not run to its end"
        if validation_exit != 0:
            return "validation", f"the validation command exited with code {validation_exit}"
    return None, None


def previous_attempt(last: Attempt, max_attempts: int, log_lines: Sequence[str]) -> str:
    """/tsk/previous-attempt.md: what the next attempt should know of the last one (also added to the
    prompt of an agent that reads prose)."""
    parts = [f"# Attempt {last.n} of {max_attempts} did not succeed: {last.failure_class}", "",
             last.reason or "", ""]
    if last.validation_exit is not None:
        parts += [f"## The validation command exited with code {last.validation_exit}; its last output", "",
                  "```", last.validation_tail.rstrip("\n"), "```", ""]
    if log_lines:
        parts += ["## The last lines of the agent's log", "", "```", *log_lines, "```", ""]
    parts += ["The work that attempt committed, and what it left uncommitted, is in the repository: "
              "go on from there."]
    return "\n".join(parts) + "\n"
