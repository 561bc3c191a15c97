"""The remediation ladder's decisions (tsk/sandbox/ladder.py): pure, so every rung is checked here."""

from __future__ import annotations

import pytest

from tsk.sandbox.ladder import next_step
from tsk.tasks.model import Attempt, FailureClass


def _a(*classes: FailureClass | None) -> list[Attempt]:
    return [Attempt(task="t", n=i, started=0.0, failure_class=c, reason=f"why {i}") for i, c in enumerate(classes, 1)]


@pytest.mark.parametrize("cls", ["stalled", "timeout", "looping", "validation", "agent_error"])
def test_an_agent_side_failure_carries_on_from_its_work_until_the_attempts_are_used_up(cls: FailureClass) -> None:
    first = next_step(_a(cls), 3)
    assert first.action == "retry" and first.carry_on and first.wait == 0
    assert next_step(_a(cls, cls), 3).action == "retry"
    last = next_step(_a(cls, cls, cls), 3)
    assert last.action == "fail" and "attempt 3 of 3" in last.why


def test_infra_is_a_fresh_attempt_after_a_pause_and_counts() -> None:
    step = next_step(_a("infra"), 2)
    assert step.action == "retry" and not step.carry_on and step.wait > 0
    assert next_step(_a("infra", "infra"), 2).action == "fail"


def test_api_limits_block_with_a_doubling_back_off_that_uses_up_no_attempt() -> None:
    steps = [next_step(_a(*["api_rate_limit"] * n), 1) for n in (1, 2, 3)]
    assert [s.action for s in steps] == ["block"] * 3 and all(s.hold_agent for s in steps)
    assert [s.wait for s in steps] == [60, 120, 240]
    assert next_step(_a(*["api_overloaded"] * 20), 1).wait == 3600  # capped
    # the refused attempts do not count: one agent failure after them still gets its retry
    assert next_step(_a("api_overloaded", "api_rate_limit", "agent_error"), 2).action == "retry"


def test_bad_credentials_block_until_they_change() -> None:
    step = next_step(_a("api_auth"), 3)
    assert step.action == "block" and step.wait == 0 and not step.hold_agent and "credentials" in step.why


@pytest.mark.parametrize(("cls", "action"), [("budget", "fail"), ("conflict", "fail"), ("cancelled", "cancel"),
                                             (None, "complete")])
def test_final_classes_and_success(cls: FailureClass | None, action: str) -> None:
    assert next_step(_a("timeout", cls), 5).action == action


def test_a_failure_that_cannot_improve_is_final_whatever_its_class() -> None:
    assert next_step(_a("infra"), 3, retryable=False).action == "fail"


def test_classify_takes_the_first_reason_first() -> None:
    from tsk.sandbox.ladder import classify

    base = dict(cancelled=None, stopped=None, success=True, agent_failure=None, agent_error=None, validates=False,
                validation_exit=None)
    assert classify(**base) == (None, None)  # type: ignore[arg-type]
    assert classify(**{**base, "cancelled": "stop", "stopped": ("timeout", "t")}) == ("cancelled", "stop")  # type: ignore[arg-type]
    assert classify(**{**base, "stopped": ("stalled", "quiet"), "success": False}) == ("stalled", "quiet")  # type: ignore[arg-type]
    assert classify(**{**base, "success": False, "agent_failure": "api_rate_limit", "agent_error": "429"}) == (  # type: ignore[arg-type]
        "api_rate_limit", "429")
    assert classify(**{**base, "success": False})[0] == "agent_error"  # type: ignore[arg-type]
    assert classify(**{**base, "validates": True, "validation_exit": 0}) == (None, None)  # type: ignore[arg-type]
    assert classify(**{**base, "validates": True, "validation_exit": 3})[0] == "validation"  # type: ignore[arg-type]
    assert classify(**{**base, "validates": True})[1] == "the validation command did not run to its end"  # type: ignore[arg-type]


def test_the_previous_attempt_text_says_why_with_the_validation_output_and_the_log() -> None:
    from tsk.sandbox.ladder import previous_attempt

    last = Attempt(task="t", n=1, started=0, failure_class="validation", reason="the validation command exited "
                   "with code 1", validation_exit=1, validation_tail="FAILED test_x\n")
    text = previous_attempt(last, 3, ["⏺ Bash: pytest"])
    assert text.startswith("# Attempt 1 of 3 did not succeed: validation")
    assert "FAILED test_x" in text and "⏺ Bash: pytest" in text and "exited with code 1" in text
