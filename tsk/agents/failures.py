"""How an agent's failed run is classed, for the runner's remediation ladder (DESIGN §7): an API that refused
the credentials, rate-limited, or was overloaded is waited out or blocked on; anything else is the agent's
own failure. Each plug-in finds the HTTP status in its own structured output; this maps it to a class."""

from __future__ import annotations

from typing import Literal, get_args

Failure = Literal["agent_error", "api_auth", "api_rate_limit", "api_overloaded"]
FAILURES: tuple[Failure, ...] = get_args(Failure)


def from_status(status: int) -> Failure:
    """The class of an HTTP status the model API answered with. 529 is Anthropic's "overloaded"."""
    if status in (401, 403):
        return "api_auth"
    if status == 429:
        return "api_rate_limit"
    if status == 529 or 500 <= status <= 599:
        return "api_overloaded"
    return "agent_error"


def as_failure(value: str | None) -> Failure:
    """A class read back from an event; one this tsk does not know (a later one wrote the log) is agent_error."""
    for failure in FAILURES:
        if value == failure:
            return failure
    return "agent_error"
