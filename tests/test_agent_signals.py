"""What the runner supervises attempts with, from the agents' structured output only: how each run ended
(failure classes), its session for resuming, its usage and cost, and tool-call keys for loop detection.
Every class is checked on the real captures in tests/data/agent-samples (see AGENT-FACTS.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsk.agents import (
    AGENTS,
    FAILURES,
    AgentResult,
    ClaudeAgent,
    CodexAgent,
    ExecAgent,
    Final,
    GenericAgent,
    Message,
    Session,
    ToolUse,
    Usage,
    decode_event,
    encode_event,
    render,
)
from tsk.agents.base import tool_key
from tsk.agents.codex import classify
from tsk.agents.pricing import FALLBACK, PRICES, cost, price_of

SAMPLES = Path(__file__).parent / "data" / "agent-samples"
T = TypeVar("T")


def sample(name: str) -> list[str]:
    return (SAMPLES / name).read_text().splitlines()


def of_type(events: Sequence[object], kind: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]


def lines(*objs: object) -> list[str]:
    return [json.dumps(o) for o in objs]


# --- how each captured run ends --------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "exit_code", "failure", "session"), [
    ("claude-success.jsonl", 0, None, "6984b7ec-1072-49c4-ba2b-ee32e13dc44b"),
    ("claude-api-error.jsonl", 1, "agent_error", "13206be4-7250-4f8e-8f7f-68525084b988"),
    ("claude-api-401.jsonl", 1, "api_auth", "ee07af09-c31e-45ca-b3c3-9b281a717319"),
    ("claude-api-429.jsonl", 1, "api_rate_limit", "9be34a6c-da58-41fd-bd43-1db10031b48e"),
    ("claude-api-529.jsonl", 1, "api_overloaded", "c582507a-9c6c-4f6f-8df4-6ec1f44ef3ce"),
    ("codex-success.jsonl", 0, None, "01a1ffab-4843-7fc0-81fe-6f885317278a"),
    ("codex-api-error.jsonl", 1, "agent_error", "01a1ffab-4a32-7912-91e8-12f9444f5d08"),
    ("codex-api-401.jsonl", 1, "api_auth", "01a23438-3ae8-7fa1-bef5-05e0e3da63e8"),
    ("codex-api-429.jsonl", 1, "api_rate_limit", "01a23438-3390-7d52-a3fc-c945fa9816c9"),
    ("codex-api-503.jsonl", 1, "api_overloaded", "01a23438-3f12-7412-abb5-4ec9f410288a"),
])
def test_every_capture_classifies(name: str, exit_code: int, failure: str | None, session: str) -> None:
    agent = ClaudeAgent() if name.startswith("claude") else CodexAgent()
    events = list(agent.parse(sample(name)))
    result = agent.result(events, exit_code)
    assert result.success is (failure is None)
    assert result.failure == failure
    assert result.session_id == session
    assert of_type(events, Session) == [Session(session)]
    # what the runner keeps of a long run is every Final and the last events: the Final alone suffices
    alone = agent.result([e for e in events if isinstance(e, Final)], exit_code)
    assert (alone.failure, alone.session_id, alone.cost_usd) == (result.failure, result.session_id, result.cost_usd)


@pytest.mark.parametrize("name", ["claude-api-error.jsonl", "claude-api-401.jsonl", "claude-api-429.jsonl",
                                  "claude-api-529.jsonl"])
def test_claude_failed_runs_say_success_and_still_fail(name: str) -> None:
    last = json.loads(sample(name)[-1])
    assert (last["type"], last["subtype"], last["is_error"]) == ("result", "success", True)
    agent = ClaudeAgent()
    for exit_code in (1, 0):  # the exit code cannot rescue it either
        result = agent.result(list(agent.parse(sample(name))), exit_code)
        assert not result.success and result.failure is not None


def test_a_successful_run_with_a_failing_exit_code_is_the_agents_failure() -> None:
    for agent, name in ((ClaudeAgent(), "claude-success.jsonl"), (CodexAgent(), "codex-success.jsonl")):
        result = agent.result(list(agent.parse(sample(name))), 1)
        assert (result.success, result.failure) == (False, "agent_error")


def test_no_result_at_all_is_the_agents_failure_with_what_is_known() -> None:
    agent = ClaudeAgent()
    events = list(agent.parse(sample("claude-success.jsonl")[:-1]))
    result = agent.result(events, 0)
    assert (result.success, result.failure) == (False, "agent_error")
    assert result.session_id == "6984b7ec-1072-49c4-ba2b-ee32e13dc44b"
    assert result.cost_usd == pytest.approx(sum(u.cost_usd or 0 for u in of_type(events, Usage)))


# --- Claude: the result's status first, then the retries' ------------------------------------------------

INIT = {"type": "system", "subtype": "init", "session_id": "s", "model": "claude-opus-4-8"}


def retry(status: int | None, error: str) -> dict[str, object]:
    return {"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 1, "error_status": status,
            "error": error}


def failed_result(status: int | None) -> dict[str, object]:
    return {"type": "result", "subtype": "success", "is_error": True, "api_error_status": status,
            "result": "API Error"}


@pytest.mark.parametrize(("objs", "failure"), [
    ([retry(429, "rate_limit"), failed_result(401)], "api_auth"),  # the final status wins over the retries'
    ([retry(529, "overloaded"), failed_result(None)], "api_overloaded"),  # no final status: the retries'
    ([retry(None, "rate_limit"), failed_result(None)], "api_rate_limit"),  # no status at all: the error's name
    ([retry(None, "unknown"), failed_result(None)], "agent_error"),
    ([failed_result(403)], "api_auth"),
    ([failed_result(503)], "api_overloaded"),
    ([failed_result(500)], "api_overloaded"),
    ([failed_result(400)], "agent_error"),
    ([failed_result(404)], "agent_error"),
    ([retry(429, "rate_limit"), failed_result(400)], "agent_error"),
    ([{"type": "assistant", "error": "authentication_failed", "message": {"content": []}}, failed_result(None)],
     "api_auth"),
    ([retry(529, "overloaded"), {"type": "result", "subtype": "success", "is_error": False, "result": "ok"}], None),
])
def test_claude_failure_classes(objs: list[dict[str, object]], failure: str | None) -> None:
    agent = ClaudeAgent()
    result = agent.result(list(agent.parse(lines(INIT, *objs))), 0 if failure is None else 1)
    assert result.failure == failure


# --- Codex: its messages, matched tightly ----------------------------------------------------------------

@pytest.mark.parametrize(("message", "failure"), [
    ("unexpected status 401 Unauthorized: fake invalid_api_key, url: http://127.0.0.1:8089/v1/responses", "api_auth"),
    ("unexpected status 403 Forbidden: Invalid model name passed in model=x", "api_auth"),
    ("exceeded retry limit, last status: 429 Too Many Requests", "api_rate_limit"),
    ("exceeded retry limit, last status: 500 Internal Server Error", "api_overloaded"),
    ("unexpected status 503 Service Unavailable", "api_overloaded"),
    ("Selected model is at capacity. Please try a different model.", "api_overloaded"),
    ("unexpected status 400 Bad Request: no such parameter", None),
    ("unexpected status 404 Not Found", None),
    ("Connection failed: error sending request", None),
    # a status named anywhere else, in other words, or while still retrying, is not the verdict
    ("Reconnecting... 1/1 (unexpected status 401 Unauthorized: x)", None),
    ("the tests print: unexpected status 401", None),
    ("status 429", None),
    ("unexpected status 4290 oops", None),
    ("exceeded retry limit, last status 429", None),
    ("The selected model is at capacity.", None),
    ("", None),
])
def test_codex_message_patterns(message: str, failure: str | None) -> None:
    assert classify(message) == failure


def test_codex_falls_back_to_its_last_error_event() -> None:
    agent = CodexAgent()
    objs = [{"type": "thread.started", "thread_id": "t"}, {"type": "turn.started"},
            {"type": "error", "message": "exceeded retry limit, last status: 429 Too Many Requests"},
            {"type": "turn.failed", "error": {"message": "stream disconnected before completion"}}]
    result = agent.result(list(agent.parse(lines(*objs))), 1)
    assert (result.failure, result.error) == ("api_rate_limit", "stream disconnected before completion")
    # cut off after the error, with no turn.failed: the same
    result = agent.result(list(agent.parse(lines(*objs[:3]))), 1)
    assert result.failure == "api_rate_limit"


def test_codex_recovered_errors_do_not_class_a_success_or_a_later_turn() -> None:
    agent = CodexAgent()
    objs = [{"type": "turn.started"}, {"type": "error", "message": "unexpected status 401 Unauthorized: x"},
            {"type": "turn.completed"}]
    result = agent.result(list(agent.parse(lines(*objs))), 0)
    assert (result.success, result.failure) == (True, None)
    later = [{"type": "turn.started"}, {"type": "turn.failed", "error": {"message": "tool call failed"}}]
    result = agent.result(list(agent.parse(lines(*objs, *later))), 1)
    assert (result.success, result.failure) == (False, "agent_error")


# --- exec and config-defined agents ----------------------------------------------------------------------

@pytest.mark.parametrize("agent", [ExecAgent(), GenericAgent("aider")])
def test_exec_exit_code_is_the_verdict(agent: ExecAgent) -> None:
    events = list(agent.parse(["401 Unauthorized\n", "rate limit\n"]))  # its text is never read for a class
    assert agent.result(events, 0) == AgentResult(success=True, summary="rate limit")
    for code in (1, 2, 137):
        result = agent.result(events, code)
        assert (result.success, result.failure, result.session_id) == (False, "agent_error", None)


def test_agent_result_failure_is_none_exactly_on_success() -> None:
    assert AgentResult(success=False, error="stopped").failure == "agent_error"
    assert AgentResult(success=True).failure is None
    assert AgentResult(success=False, failure="api_auth").failure == "api_auth"
    with pytest.raises(ValueError, match="successful run has no failure"):
        AgentResult(success=True, failure="api_auth")


# --- usage and cost --------------------------------------------------------------------------------------

def test_claude_usage_on_the_success_capture() -> None:
    agent = ClaudeAgent()
    events = list(agent.parse(sample("claude-success.jsonl")))
    usage = of_type(events, Usage)
    # one per API message, though Claude Code repeats a message's usage on each of its content blocks
    assert [u.input_tokens for u in usage] == [19527, 19693, 19811, 19918, 20073]
    assert [u.output_tokens for u in usage] == [1, 1, 1, 1, 1]
    assert {u.model for u in usage} == {"claude-opus-4-8"}
    assert sum(u.input_tokens for u in usage) == json.loads(sample("claude-success.jsonl")[-1])["usage"]["input_tokens"]
    priced = (99022 * 5 + 5 * 25) / 1e6  # Opus 4.8 at $5 in, $25 out per million
    assert sum(u.cost_usd or 0 for u in usage) == pytest.approx(priced)
    # the final result's own total wins over tsk's estimate
    assert agent.result(events, 0).cost_usd == 0.50171


def test_claude_usage_prices_cache_reads_and_writes() -> None:
    msg = {"id": "m1", "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": "hi"}],
           "usage": {"input_tokens": 10, "output_tokens": 20, "cache_read_input_tokens": 1000,
                     "cache_creation_input_tokens": 300,
                     "cache_creation": {"ephemeral_1h_input_tokens": 100, "ephemeral_5m_input_tokens": 200}}}
    later = {**msg, "usage": {**msg["usage"], "output_tokens": 50}}
    events = list(ClaudeAgent().parse(lines(INIT, {"type": "assistant", "message": msg},
                                            {"type": "assistant", "message": later})))
    first, second = of_type(events, Usage)
    assert (first.model, first.input_tokens, first.output_tokens, first.cache_read_tokens,
            first.cache_write_tokens) == ("claude-sonnet-4-5-20250929", 10, 20, 1000, 300)
    # Sonnet 4.x: $3 in, $15 out, $0.30 cache read, 1.25x input for 5-minute writes, 2x for 1-hour ones
    assert first.cost_usd == pytest.approx((10 * 3 + 20 * 15 + 1000 * 0.30 + 200 * 3.75 + 100 * 6) / 1e6)
    assert (second.input_tokens, second.output_tokens, second.cache_write_tokens) == (0, 30, 0)  # only what is new
    assert second.cost_usd == pytest.approx(30 * 15 / 1e6)


def test_claude_synthetic_messages_report_no_usage() -> None:
    for name in ("claude-api-401.jsonl", "claude-api-429.jsonl", "claude-api-529.jsonl", "claude-api-error.jsonl"):
        assert of_type(list(ClaudeAgent().parse(sample(name))), Usage) == []


@pytest.mark.parametrize("reported", [-1.0, "0.5", True, None, 1e400])
def test_claude_cost_reports_that_are_no_amount_leave_tsks_estimate(reported: object) -> None:
    msg = {"id": "m", "content": [], "usage": {"input_tokens": 1000, "output_tokens": 0}}
    result_line = {"type": "result", "subtype": "success", "is_error": False, "total_cost_usd": reported}
    agent = ClaudeAgent()
    result = agent.result(list(agent.parse(lines(INIT, {"type": "assistant", "message": msg}, result_line))), 0)
    assert result.cost_usd == pytest.approx(1000 * 5 / 1e6)


def test_claude_usage_without_a_message_model_uses_the_sessions() -> None:
    msg = {"content": [], "usage": {"input_tokens": 1000, "output_tokens": 0}}
    [usage] = of_type(list(ClaudeAgent().parse(lines(INIT, {"type": "assistant", "message": msg}))), Usage)
    assert (usage.model, usage.cost_usd) == ("claude-opus-4-8", pytest.approx(1000 * 5 / 1e6))


def test_codex_usage_on_the_success_capture() -> None:
    agent = CodexAgent()
    events = list(agent.parse(sample("codex-success.jsonl"), model="gpt-5.5"))
    assert of_type(events, Usage) == [Usage("gpt-5.5", 200, 40, cost_usd=pytest.approx((200 * 5 + 40 * 30) / 1e6))]
    assert agent.result(events, 0).cost_usd == pytest.approx((200 * 5 + 40 * 30) / 1e6)


def test_codex_usage_counts_cached_input_apart() -> None:
    usage = {"input_tokens": 1000, "cached_input_tokens": 600, "cache_write_input_tokens": 100, "output_tokens": 50,
             "reasoning_output_tokens": 20}
    events = list(CodexAgent().parse(lines({"type": "turn.completed", "usage": usage}), model="gpt-6.2-sol"))
    [u] = of_type(events, Usage)
    assert (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens) == (300, 600, 100, 50)
    assert u.cost_usd == pytest.approx((300 * 2 + 600 * 0.10 + 100 * 2.50 + 50 * 10) / 1e6)
    assert of_type(events, Final)[0].cost_usd == u.cost_usd


def test_failed_codex_runs_cost_nothing_reported() -> None:
    for name in ("codex-api-401.jsonl", "codex-api-429.jsonl", "codex-api-503.jsonl", "codex-api-error.jsonl"):
        events = list(CodexAgent().parse(sample(name)))
        assert of_type(events, Usage) == []
        assert CodexAgent().result(events, 1).cost_usd is None


@pytest.mark.parametrize(("model", "expected"), [
    ("claude-opus-4-8[1m]", "claude-opus-4-8"),
    ("claude-opus-4-8", "claude-opus-4-8"),
    ("claude-opus-4-1-20250805", "claude-opus-4"),
    ("claude-opus-4-20250514", "claude-opus-4"),
    ("us.anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4"),
    ("claude-sonnet-5-5", "claude-sonnet-5-5"),
    ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
    ("gpt-5.5", "gpt-5.5"),
    ("gpt-5-codex", "gpt-5"),
    ("gpt-5.1-codex-max", "gpt-5.1"),
    ("gpt-5.1-codex-mini", "gpt-5.1-codex-mini"),
    ("gpt-5.3-codex-spark", "gpt-5.3-codex"),
    ("openai/GPT-5.4-mini", "gpt-5.4-mini"),
    ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
])
def test_prices_match_by_prefix_at_a_separator(model: str, expected: str) -> None:
    assert price_of(model) == PRICES[expected]


@pytest.mark.parametrize("model", [None, "", "gpt-5.9", "gpt-7", "llama-3.3-70b", "claude-opus-6", "o3x", "opus"])
def test_unknown_models_are_priced_high(model: str | None) -> None:
    assert price_of(model) == FALLBACK


def test_the_fallback_is_dearer_than_every_row_but_the_pro_models() -> None:
    for key, price in PRICES.items():
        if not key.endswith("-pro"):
            assert all(f >= p for f, p in zip(FALLBACK, price, strict=True)), key
    assert cost(None, input_tokens=1_000_000, output_tokens=0) == FALLBACK.input


# --- sessions --------------------------------------------------------------------------------------------

def test_a_resumed_codex_thread_names_its_session_once() -> None:
    objs = [{"type": "thread.started", "thread_id": "abc"}, {"type": "turn.completed"},
            {"type": "thread.started", "thread_id": "abc"}, {"type": "thread.started", "thread_id": ""}]
    events = list(CodexAgent().parse(lines(*objs)))
    assert of_type(events, Session) == [Session("abc")]


def test_sessions_need_an_id() -> None:
    objs = [{"type": "system", "subtype": "init", "session_id": 5}, {"type": "system", "subtype": "init"}]
    assert of_type(list(ClaudeAgent().parse(lines(*objs))), Session) == []
    assert of_type(list(CodexAgent().parse(lines({"type": "thread.started", "thread_id": None}))), Session) == []


# --- tool keys -------------------------------------------------------------------------------------------

def claude_tool(name: str, args: object, ident: str = "t1") -> str:
    block = {"type": "tool_use", "id": ident, "name": name, "input": args}
    return json.dumps({"type": "assistant", "message": {"id": f"m-{ident}", "content": [block]}})


def test_tool_keys_are_equal_for_equal_calls_and_differ_for_different_input() -> None:
    agent = ClaudeAgent()
    same = [claude_tool("Bash", {"command": "pytest -q", "description": "run"}, "a"),
            claude_tool("Bash", {"description": "run", "command": "pytest -q"}, "b")]  # another id, another order
    other = [claude_tool("Bash", {"command": "pytest -q ", "description": "run"}),
             claude_tool("Bash", {"command": "pytest -q"}),
             claude_tool("Read", {"command": "pytest -q", "description": "run"})]
    keys = [e.key for e in of_type(list(agent.parse(same + other)), ToolUse)]
    assert keys[0] == keys[1]
    assert len(set(keys[1:])) == 4
    # the summary is cut; the key is of the whole input
    long_a, long_b = ("x" * 500 + "a"), ("x" * 500 + "b")
    a, b = of_type(list(agent.parse([claude_tool("Bash", {"command": long_a}), claude_tool("Bash", {"command": long_b})])),
                   ToolUse)
    assert a.key != b.key


def test_tool_keys_are_stable() -> None:
    """A key is kept in agent.log and compared across tsk versions: its encoding must not drift."""
    assert tool_key("Bash", {"command": "ls", "description": "list"}) == "fb56fdeeed42b0aa"
    assert tool_key("Bash", {"description": "list", "command": "ls"}) == "fb56fdeeed42b0aa"


def test_claude_sample_keys() -> None:
    uses = of_type(list(ClaudeAgent().parse(sample("claude-success.jsonl"))), ToolUse)
    assert uses[0].key != uses[3].key  # TodoWrite twice, with other statuses
    assert len({u.key for u in uses}) == 4


def test_codex_commands_key_on_the_command() -> None:
    def item(ident: str, command: str) -> dict[str, object]:
        return {"type": "item.started", "item": {"id": ident, "type": "command_execution", "command": command}}

    uses = of_type(list(CodexAgent().parse(lines(item("1", "ls"), item("2", "ls"), item("3", "ls -la")))), ToolUse)
    assert uses[0].key == uses[1].key == tool_key("shell", "ls") != uses[2].key


# --- the log: old lines still read, new events render ----------------------------------------------------

def test_lines_from_older_logs_still_decode() -> None:
    old_tool = b'{"type":"tool_use","tool":"Bash","summary":"ls"}'
    old_final = (b'{"type":"final","success":false,"summary":"","cost_usd":0.5,"turns":2,"duration_ms":1500,'
                 b'"error":"API Error: refused"}')
    tool, final = decode_event(old_tool), decode_event(old_final)
    assert tool == ToolUse("Bash", "ls", "")
    assert final == Final(False, "", 0.5, 2, 1500, "API Error: refused")
    assert (final.failure, final.session_id) == (None, None)
    assert render(tool) == "⏺ Bash: ls"
    assert render(final) == "✗ failed in 1.5s, 2 turns, $0.5000: API Error: refused"
    assert ClaudeAgent().result([final], 1).failure == "agent_error"


def test_a_class_from_a_later_tsk_reads_as_agent_error() -> None:
    final = decode_event(b'{"type":"final","success":false,"failure":"api_quota"}')
    assert isinstance(final, Final) and final.failure == "api_quota"
    assert CodexAgent().result([final], 1).failure == "agent_error"


def test_new_events_render_on_one_line() -> None:
    assert render(Session("6984b7ec")) == "⚙ session 6984b7ec"
    assert render(Usage("gpt-5.5", 200, 40, cost_usd=0.0022)) == "⚙ tokens (gpt-5.5): 200 in, 40 out, $0.0022"
    assert render(Usage(None, 1, 2, 3, 4)) == "⚙ tokens: 1 in, 3 cached, 4 to cache, 2 out"
    assert render(ToolUse("Bash", "ls", "abc")) == render(ToolUse("Bash", "ls"))
    assert render(Session("a\nb\x1b[2J")) == "⚙ session a b[2J"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "subtype", "message", "content", "usage", "id", "model", "input_tokens",
                         "output_tokens", "cache_read_input_tokens", "cached_input_tokens", "error_status", "error",
                         "api_error_status", "is_error", "session_id", "thread_id", "item", "command", "name",
                         "input", "total_cost_usd"]), kids, max_size=5),
    max_leaves=14,
)
kinds = st.sampled_from(["system", "assistant", "result", "thread.started", "turn.completed", "turn.failed",
                         "error", "item.started"])


@given(st.lists(st.builds(lambda t, rest: json.dumps({**rest, "type": t} if isinstance(rest, dict) else rest),
                          kinds, json_values), max_size=8), st.sampled_from([0, 1]))
def test_any_output_gives_a_consistent_verdict(objs: list[str], exit_code: int) -> None:
    for agent in AGENTS.values():
        events = list(agent.parse(objs, model="gpt-5.5"))
        result = agent.result(events, exit_code)
        assert (result.failure is None) is result.success
        assert result.failure is None or result.failure in FAILURES
        assert result.cost_usd is None or result.cost_usd >= 0
        for event in events:
            assert decode_event(encode_event(event)) == event
            if isinstance(event, Usage):
                assert min(event.input_tokens, event.output_tokens, event.cache_read_tokens,
                           event.cache_write_tokens) >= 0
            elif isinstance(event, Message):
                render(event)
