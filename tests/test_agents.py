"""Agent plug-ins: command lines, environment, credential files, and the parsers over the real output of
Claude Code and Codex (tests/data/agent-samples, copied from captured runs; see AGENT-FACTS.md)."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsk.agents import (
    AGENTS,
    AgentResult,
    ClaudeAgent,
    CodexAgent,
    CredentialFile,
    Event,
    ExecAgent,
    Final,
    GenericAgent,
    Message,
    Raw,
    Session,
    TodoItem,
    TodoList,
    ToolResult,
    ToolUse,
    Usage,
    decode_event,
    encode_event,
    get_agent,
    render,
)
from tsk.agents.base import tool_key
from tsk.errors import TskError, UsageError

SAMPLES = Path(__file__).parent / "data" / "agent-samples"
SHARED_SAMPLES = Path(__file__).parent.parent.parent / "shared" / "samples"
PROMPT = "/tsk/instructions.md"
T = TypeVar("T")


def sample(name: str) -> list[str]:
    return (SAMPLES / name).read_text().splitlines()


def of_type(events: Sequence[object], kind: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]


def calls(events: Sequence[object]) -> list[tuple[str, str]]:
    """The tool uses as (tool, summary), their keys left aside."""
    return [(e.tool, e.summary) for e in of_type(events, ToolUse)]


SAMPLE_NAMES = ["claude-success.jsonl", "claude-api-error.jsonl", "claude-api-401.jsonl", "claude-api-429.jsonl",
                "claude-api-529.jsonl", "codex-success.jsonl", "codex-api-error.jsonl", "codex-api-401.jsonl",
                "codex-api-429.jsonl", "codex-api-503.jsonl"]


def test_every_capture_has_a_copy_and_each_is_json_lines() -> None:
    assert sorted(p.name for p in SAMPLES.glob("*.jsonl")) == sorted(SAMPLE_NAMES)
    for name in SAMPLE_NAMES:
        lines = (SAMPLES / name).read_text().splitlines()
        assert lines and all(isinstance(json.loads(ln), dict) for ln in lines if ln.strip()), name
    # Where the shared captures are (the machine they were taken on), the copies are theirs byte for byte;
    # a clone elsewhere has the copies alone.
    if SHARED_SAMPLES.is_dir():
        assert sorted(p.name for p in SHARED_SAMPLES.glob("*.jsonl")) == sorted(SAMPLE_NAMES)
        assert [n for n in SAMPLE_NAMES if (SAMPLES / n).read_bytes() != (SHARED_SAMPLES / n).read_bytes()] == []


# --- Claude Code ---------------------------------------------------------------------------------------

def test_claude_success_sample() -> None:
    agent = ClaudeAgent()
    events = list(agent.parse(sample("claude-success.jsonl")))
    assert events[0] == Message("claude started, model claude-opus-4-8[1m]", "system")
    assert events[1] == Session("6984b7ec-1072-49c4-ba2b-ee32e13dc44b")
    assert calls(events) == [
        ("TodoWrite", "2 todos"),
        ("Write", "/workspace/demo/greeting.txt"),
        ("Bash", "git add greeting.txt && git commit -qm 'Add greeting' && git log --oneline | head -1"),
        ("TodoWrite", "2 todos"),
    ]
    assert of_type(events, TodoList) == [
        TodoList([TodoItem("Write greeting", "in_progress"), TodoItem("Commit", "pending")]),
        TodoList([TodoItem("Write greeting", "completed"), TodoItem("Commit", "completed")]),
    ]
    results = of_type(events, ToolResult)
    assert [r.is_error for r in results] == [True, False, False, True]
    assert results[2].summary == "71c123f Add greeting"
    assert results[1].summary.startswith("File created successfully at: /workspace/demo/greeting.txt")
    assert [m.text for m in of_type(events, Message) if m.role == "assistant"] == [
        "I'll plan this.", "Added greeting.txt and committed it."]
    final = Final(success=True, summary="Added greeting.txt and committed it.", cost_usd=0.50171, turns=5,
                  duration_ms=455, session_id="6984b7ec-1072-49c4-ba2b-ee32e13dc44b")
    assert events[-1] == final
    assert of_type(events, Final) == [final]
    result = agent.result(events, 0)
    assert (result.success, result.summary, result.error) == (True, "Added greeting.txt and committed it.", None)
    assert (result.cost_usd, result.turns, result.duration_ms) == (0.50171, 5, 455)
    assert (result.failure, result.session_id) == (None, "6984b7ec-1072-49c4-ba2b-ee32e13dc44b")


def test_claude_success_with_a_failing_exit_code_fails() -> None:
    agent = ClaudeAgent()
    result = agent.result(list(agent.parse(sample("claude-success.jsonl"))), 1)
    assert not result.success
    assert result.error == "claude exited with code 1"
    assert result.failure == "agent_error"
    assert result.cost_usd == 0.50171  # what the run cost is still known


def test_claude_api_error_fails_although_subtype_says_success() -> None:
    lines = sample("claude-api-error.jsonl")
    assert json.loads(lines[-1])["subtype"] == "success"
    agent = ClaudeAgent()
    events = list(agent.parse(lines))
    assert Message("API retry 1/1 (unknown)", "system") in events
    error = "API Error: Unable to connect to API (ConnectionRefused)"
    assert events[-1] == Final(success=False, summary=error, cost_usd=0.0, turns=1, duration_ms=768, error=error,
                               failure="agent_error", session_id="13206be4-7250-4f8e-8f7f-68525084b988")
    for exit_code in (1, 0):  # is_error alone is enough, whatever the exit code
        result = agent.result(events, exit_code)
        assert (result.success, result.error) == (False, error)
        # an unreachable API answers with no status: not the API's refusal, the run's own failure
        assert result.failure == "agent_error"


def test_claude_without_a_result_event_fails() -> None:
    agent = ClaudeAgent()
    events = list(agent.parse(sample("claude-success.jsonl")[:-1]))
    result = agent.result(events, 0)
    assert not result.success
    assert result.error == "claude exited with code 0 without reporting a result"
    assert result.summary == "Added greeting.txt and committed it."


def test_claude_error_subtype_fails_even_without_is_error() -> None:
    line = json.dumps({"type": "result", "subtype": "error_max_turns", "is_error": False, "num_turns": 9,
                       "errors": ["reached the maximum number of turns"]})
    [final] = ClaudeAgent().parse([line])
    assert final == Final(success=False, turns=9, error="reached the maximum number of turns", failure="agent_error")


def test_claude_tool_summaries_and_content_shapes() -> None:
    blocks = [
        {"type": "tool_use", "name": "Edit", "input": {"file_path": "/w/a.py", "old_string": "x"}},
        {"type": "tool_use", "name": "Grep", "input": {"pattern": "TODO", "path": "src"}},
        {"type": "tool_use", "name": "mcp__x__y", "input": {"n": 3, "what": "thing"}},
        {"type": "tool_use", "name": "Nothing", "input": {}},
    ]
    user = {"type": "user", "message": {"content": [
        {"type": "tool_result", "content": [{"type": "text", "text": "one"}, {"type": "image"}, {"type": "text",
                                                                                                "text": "two"}]}]}}
    lines = [json.dumps({"type": "assistant", "message": {"content": blocks}}), json.dumps(user),
             json.dumps({"type": "user", "message": {"role": "user", "content": "plain prompt"}})]
    events = list(ClaudeAgent().parse(lines))
    assert calls(events) == [("Edit", "/w/a.py"), ("Grep", "TODO"), ("mcp__x__y", "thing"), ("Nothing", "")]
    assert [e for e in events if not isinstance(e, ToolUse)] == [
        ToolResult("one\n\ntwo", False), Message("plain prompt", "user"),
    ]


def test_claude_command_line() -> None:
    assert ClaudeAgent().command(PROMPT) == [
        "sh", "-c",
        'p="$(cat /tsk/instructions.md)" && exec claude -p --output-format stream-json --verbose'
        ' --dangerously-skip-permissions -- "$p" </dev/null',
    ]
    # a path with shell characters is quoted, not interpreted
    assert "cat '/tsk/my instr$(x).md'" in ClaudeAgent().command("/tsk/my instr$(x).md")[2]


def test_claude_env_passes_only_what_the_host_sets() -> None:
    fixed = {"DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
             "CLAUDE_CODE_MAX_RETRIES": "3", "IS_SANDBOX": "1"}
    assert ClaudeAgent().env({}) == fixed
    host = {"ANTHROPIC_API_KEY": "sk-1", "ANTHROPIC_BASE_URL": "http://api:8", "CLAUDE_CODE_OAUTH_TOKEN": "",
            "OPENAI_API_KEY": "o", "HOME": "/root", "PATH": "/bin"}
    assert ClaudeAgent().env(host) == {"ANTHROPIC_API_KEY": "sk-1", "ANTHROPIC_BASE_URL": "http://api:8", **fixed}
    assert ClaudeAgent().env({"CLAUDE_CODE_OAUTH_TOKEN": "t"}) == {"CLAUDE_CODE_OAUTH_TOKEN": "t", **fixed}


def test_claude_credential_files_only_when_present(tmp_path: Path) -> None:
    agent = ClaudeAgent()
    assert agent.credential_files(tmp_path, {}) == []
    (tmp_path / ".claude.json").write_text('{"oauthAccount": {}}')
    assert agent.credential_files(tmp_path, {}) == [
        CredentialFile("/home/agent/.claude.json", b'{"oauthAccount": {}}', 0o600, str(tmp_path / ".claude.json"))]
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / ".credentials.json").write_bytes(b'{"claudeAiOauth": 1}')
    files = ClaudeAgent(home="/home/u").credential_files(tmp_path, {})
    assert [(f.container_path, f.content, f.mode) for f in files] == [
        ("/home/u/.claude/.credentials.json", b'{"claudeAiOauth": 1}', 0o600),
        ("/home/u/.claude.json", b'{"oauthAccount": {}}', 0o600),
    ]


def test_unreadable_credential_file_is_a_tsk_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".claude.json").write_text("{}")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(TskError, match=r"cannot read the agent credential file .*\.claude\.json: Permission denied"):
        ClaudeAgent().credential_files(tmp_path, {})


def test_credential_repr_hides_the_secret() -> None:
    f = CredentialFile("/home/agent/.codex/auth.json", b"sk-very-secret", origin="/h/.codex/auth.json")
    assert "sk-very-secret" not in repr(f)
    assert "<14 bytes>" in repr(f)


# --- Codex ---------------------------------------------------------------------------------------------

CODEX_COMMAND = "/bin/bash -lc \"printf 'hello\\\\n' > hello.txt && git add hello.txt && git commit -q -m 'from codex' && git log --oneline | head -1\""


CODEX_THREAD = "01a1ffab-4843-7fc0-81fe-6f885317278a"


def test_codex_success_sample() -> None:
    agent = CodexAgent()
    events = list(agent.parse(sample("codex-success.jsonl")))
    # no model in codex's output and none given: priced as an unknown model, high
    fallback = (200 * 15 + 40 * 75) / 1e6
    assert events == [
        Message("codex started", "system"),
        Session(CODEX_THREAD),
        ToolUse("shell", CODEX_COMMAND, tool_key("shell", CODEX_COMMAND)),
        ToolResult("2562182 from codex\n", False),
        Message("Created hello.txt and committed it."),
        Usage(None, 200, 40, cost_usd=pytest.approx(fallback)),
        Final(success=True, summary="Created hello.txt and committed it.", turns=1, session_id=CODEX_THREAD,
              cost_usd=pytest.approx(fallback)),
    ]
    result = agent.result(events, 0)
    assert (result.success, result.summary, result.error, result.turns) == (
        True, "Created hello.txt and committed it.", None, 1)
    assert (result.failure, result.session_id, result.cost_usd) == (None, CODEX_THREAD, pytest.approx(fallback))


def test_codex_api_error_sample() -> None:
    agent = CodexAgent()
    events = list(agent.parse(sample("codex-api-error.jsonl")))
    error = "Connection failed: error sending request"
    thread = "01a1ffab-4a32-7912-91e8-12f9444f5d08"
    assert events == [Message("codex started", "system"), Session(thread), Message(error, "error"),
                      Final(success=False, error=error, failure="agent_error", session_id=thread)]
    for exit_code in (1, 0):
        result = agent.result(events, exit_code)
        assert (result.success, result.error, result.failure) == (False, error, "agent_error")


def test_codex_exit_zero_alone_is_not_success() -> None:
    agent = CodexAgent()
    events = list(agent.parse(sample("codex-success.jsonl")[:-1]))  # no turn.completed
    result = agent.result(events, 0)
    assert not result.success
    assert result.error == "codex exited with code 0 without reporting a result"
    assert result.summary == "Created hello.txt and committed it."


def test_codex_error_decides_by_what_follows() -> None:
    agent = CodexAgent()
    recovered = ['{"type":"turn.started"}', '{"type":"error","message":"Reconnecting... 1/5"}',
                 '{"type":"item.completed","item":{"id":"i","type":"agent_message","text":"ok"}}',
                 '{"type":"turn.completed","usage":{}}']
    assert agent.result(list(agent.parse(recovered)), 0).success
    cut_off = ['{"type":"turn.started"}', '{"type":"error","message":"stream closed"}']
    events = list(agent.parse(cut_off))
    assert events[-1] == Final(success=False, error="stream closed", failure="agent_error")
    assert agent.result(events, 0).error == "stream closed"


def test_codex_item_types() -> None:
    lines = [
        {"type": "item.completed", "item": {"id": "r", "type": "reasoning", "text": "thinking about it"}},
        {"type": "item.started", "item": {"id": "t", "type": "todo_list",
                                          "items": [{"text": "a", "completed": True}, {"text": "b", "completed": False}]}},
        {"type": "item.completed", "item": {"id": "f", "type": "file_change", "status": "completed",
                                            "changes": [{"path": "x.py", "kind": "update"}, {"path": "y.py", "kind": "add"}]}},
        {"type": "item.completed", "item": {"id": "c", "type": "command_execution", "command": "false",
                                            "aggregated_output": "", "exit_code": 1, "status": "failed"}},
        {"type": "item.completed", "item": {"id": "e", "type": "error", "message": "Code Mode is unavailable"}},
        {"type": "item.started", "item": {"id": "w", "type": "web_search", "query": "msgspec"}},
        {"type": "item.started", "item": {"id": "m", "type": "mcp_tool_call", "server": "gh", "tool": "issues"}},
        {"type": "item.completed", "item": {"id": "m", "type": "mcp_tool_call", "server": "gh", "tool": "issues",
                                            "status": "completed"}},
    ]
    events = list(CodexAgent().parse(json.dumps(x) for x in lines))
    assert [msgspec.structs.replace(e, key="") if isinstance(e, ToolUse) else e for e in events] == [
        Message("thinking about it", "reasoning"),
        TodoList([TodoItem("a", "completed"), TodoItem("b", "pending")]),
        ToolUse("file_change", "update x.py, add y.py"),
        ToolUse("shell", "false"), ToolResult("", True),
        Message("Code Mode is unavailable", "warning"),
        ToolUse("web_search", "msgspec"),
        ToolUse("gh.issues"), ToolResult("completed", False),
    ]
    assert all(e.key for e in of_type(events, ToolUse))


def test_codex_command_line() -> None:
    assert CodexAgent().command(PROMPT) == [
        "sh", "-c",
        'p="$(cat /tsk/instructions.md)" && exec codex exec --json --dangerously-bypass-approvals-and-sandbox'
        ' -- "$p" </dev/null',
    ]


def test_codex_env() -> None:
    assert CodexAgent().env({}) == {"CODEX_HOME": "/home/agent/.codex"}
    host = {"OPENAI_API_KEY": "sk-o", "OPENAI_BASE_URL": "http://x/v1", "ANTHROPIC_API_KEY": "a"}
    assert CodexAgent(home="/home/u").env(host) == {"OPENAI_API_KEY": "sk-o", "CODEX_HOME": "/home/u/.codex"}


def test_codex_credential_files(tmp_path: Path) -> None:
    agent = CodexAgent()
    [config] = agent.credential_files(tmp_path, {})
    assert (config.container_path, config.mode, config.origin) == ("/home/agent/.codex/config.toml", 0o600, "generated")
    assert config.content == b"[features]\nunbounded_connection_retries = false\nplugins = false\n"
    (tmp_path / ".codex").mkdir()
    (tmp_path / ".codex" / "auth.json").write_bytes(b'{"tokens": 1}')
    files = agent.credential_files(tmp_path, {})
    assert [(f.container_path, f.content) for f in files[1:]] == [("/home/agent/.codex/auth.json", b'{"tokens": 1}')]


def test_codex_config_for_a_custom_endpoint(tmp_path: Path) -> None:
    [config] = CodexAgent().credential_files(tmp_path, {"OPENAI_BASE_URL": "http://llm.internal:8080/v1"})
    assert config.content.decode() == (
        'model_provider = "tsk"\n\n'
        '[model_providers.tsk]\nname = "tsk"\nbase_url = "http://llm.internal:8080/v1"\nwire_api = "responses"\n'
        'env_key = "OPENAI_API_KEY"\n\n'
        "[features]\nunbounded_connection_retries = false\nplugins = false\n"
    )


@given(st.text(st.characters(blacklist_categories=["Cs"]), min_size=1))
def test_codex_config_is_valid_toml_for_any_url(url: str) -> None:
    [config] = CodexAgent().credential_files(Path("/nonexistent"), {"OPENAI_BASE_URL": url})
    parsed = tomllib.loads(config.content.decode())
    assert parsed["model_providers"]["tsk"]["base_url"] == url
    assert parsed["model_provider"] == "tsk"
    assert parsed["features"] == {"unbounded_connection_retries": False, "plugins": False}


# --- exec and config-defined agents --------------------------------------------------------------------

def test_exec_agent() -> None:
    agent = ExecAgent()
    assert agent.command(PROMPT) == ["bash", PROMPT]
    assert agent.env({"ANTHROPIC_API_KEY": "x", "OPENAI_API_KEY": "y"}) == {}
    assert agent.credential_files(Path("/nonexistent"), {}) == []
    events = list(agent.parse(["building\n", "{\"type\": \"result\"}\n", "done\r\n", ""]))
    assert events == [Message("building", "output"), Message('{"type": "result"}', "output"),
                      Message("done", "output"), Message("", "output")]
    assert agent.result(events, 0) == AgentResult(success=True, summary="done")
    failed = agent.result(events, 3)
    assert (failed.success, failed.error, failed.summary) == (False, "exit code 3", "done")


def test_get_agent() -> None:
    assert set(AGENTS) == {"claude", "codex", "exec"}
    assert isinstance(get_agent("claude"), ClaudeAgent)
    assert isinstance(get_agent("codex"), CodexAgent)
    assert get_agent("exec").name == "exec"
    custom = get_agent("aider", known_extra=["aider"])
    assert isinstance(custom, GenericAgent)
    assert (custom.name, custom.command(PROMPT), custom.env({"OPENAI_API_KEY": "x"})) == ("aider", ["bash", PROMPT], {})
    # a config setup for a built-in name changes how it is installed, not how it runs
    assert isinstance(get_agent("claude", known_extra=["claude"]), ClaudeAgent)


def test_unknown_agent_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        get_agent("claud", known_extra=["aider"])
    assert info.value.exit_code == 2
    assert info.value.message == "unknown agent 'claud'; available: aider, claude, codex, exec"
    assert info.value.hint is not None and info.value.hint.startswith("did you mean 'claude'?")
    assert "agent_config.claud.setup" in info.value.hint
    with pytest.raises(UsageError) as info:
        get_agent("zzz")
    assert info.value.hint is not None and "did you mean" not in info.value.hint


# --- robustness ----------------------------------------------------------------------------------------

MALFORMED = [
    "not json at all", '{"type": "assistant", "message": {"content": [', "[1, 2]", '"a string"', "null", "", "\n",
    '{"type": "weird.new.event"}', '{"type": "assistant", "message": "x"}', '{"type": "assistant", "message": {}}',
    '{"type": "assistant", "message": {"content": [{"type": "tool_use", "name": 5, "input": []}, 7, null]}}',
    '{"type": "assistant", "message": {"content": [{"type": "tool_use", "name": "TodoWrite", "input": {"todos": "x"}}]}}',
    '{"type": "result", "total_cost_usd": "a", "num_turns": true, "result": {"x": 1}}',
    '{"type": "system", "subtype": "api_retry", "attempt": "x"}', '{"type": "system"}',
    '{"type": "item.completed", "item": {"type": "command_execution", "command": null, "exit_code": "x"}}',
    '{"type": "item.completed", "item": null}', '{"type": "item.started", "item": {"id": [1]}}',
    '{"type": "item.completed", "item": {"type": "todo_list", "items": [1, {"text": 2}]}}',
    '{"type": "item.completed", "item": {"type": "file_change", "changes": {"a": 1}}}',
    '{"type": "turn.failed", "error": 5}', '{"type": "error"}', '{"type": "turn.completed"}',
    "\x00\x01 binary junk \udcff",
]


@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_malformed_lines_never_raise(agent: str) -> None:
    plugin = AGENTS[agent]
    events = list(plugin.parse(MALFORMED))
    for event in events:
        render(event)
        assert decode_event(encode_event(event)) == event
    for code in (0, 1):
        plugin.result(events, code)
    if agent != "exec":
        raws = [e.text for e in of_type(events, Raw)]
        assert raws[:2] == ["not json at all", '{"type": "assistant", "message": {"content": [']


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "subtype", "message", "content", "item", "text", "name", "input", "is_error",
                         "result", "error", "items", "exit_code", "id", "todos", "changes"]), kids, max_size=4),
    max_leaves=12,
)
event_types = st.sampled_from(["assistant", "user", "system", "result", "item.started", "item.completed",
                               "turn.completed", "turn.failed", "error", "thread.started"])


@given(st.lists(st.one_of(st.text(max_size=30), st.builds(
    lambda t, rest: json.dumps({**rest, "type": t}) if isinstance(rest, dict) else json.dumps(rest),
    event_types, json_values)), max_size=8))
def test_any_output_parses_without_raising(lines: list[str]) -> None:
    for plugin in AGENTS.values():
        events = list(plugin.parse(lines))
        plugin.result(events, 0)
        for event in events:
            render(event)


# --- events on the terminal and in the log -------------------------------------------------------------

@pytest.mark.parametrize(("event", "line"), [
    (Message("Added greeting.txt\nand committed it."), "⏺ Added greeting.txt and committed it."),
    (Message("API retry 1/3 (503)", "system"), "⚙ API retry 1/3 (503)"),
    (Message("thinking", "reasoning"), "∴ thinking"),
    (Message("  indented  output ", "output"), "  indented  output "),
    (Message("x", "critic"), "[critic] x"),
    (ToolUse("Bash", "git commit -m x"), "⏺ Bash: git commit -m x"),
    (ToolUse("Nothing"), "⏺ Nothing"),
    (ToolResult("71c123f Add greeting"), "  ⎿  71c123f Add greeting"),
    (ToolResult("no such tool", is_error=True), "  ⎿  ✗ no such tool"),
    (TodoList([TodoItem("Write", "completed"), TodoItem("Commit", "in_progress"), TodoItem("Push", "pending")]),
     "☰ todos 1/3: ✔ Write · ◐ Commit · ☐ Push"),
    (Final(True, "ok", cost_usd=0.0123, turns=4, duration_ms=12345), "✓ done in 12.3s, 4 turns, $0.0123"),
    (Final(True, "ok", turns=1), "✓ done, 1 turn"),
    (Final(False, "", error="API Error: refused", duration_ms=768, turns=1), "✗ failed in 0.8s, 1 turn: API Error: refused"),
    (Final(False), "✗ failed: no reason given"),
    (Raw("plain   text"), "plain text"),
])
def test_render(event: Event, line: str) -> None:
    assert render(event) == line


def test_render_stays_on_one_short_line() -> None:
    line = render(ToolUse("Bash", "echo " + "x" * 500 + "\nsecond line"))
    assert "\n" not in line
    assert len(line) <= 210 and line.endswith("…")
    assert render(Message("a" * 50), width=10) == "⏺ aaaaaaaaa…"


def test_events_round_trip_as_tagged_json_lines() -> None:
    event = ToolUse("Bash", "ls", "k1")
    assert msgspec.json.decode(encode_event(event)) == {"type": "tool_use", "tool": "Bash", "summary": "ls", "key": "k1"}
    assert json.loads(encode_event(Final(True, turns=2)))["type"] == "final"
    events: list[Event] = [Message("x"), event, ToolResult("y", True), TodoList([TodoItem("a", "pending")]),
                           Final(False), Raw("r"), Session("s-1"), Usage("gpt-5.5", 1, 2, 3, 4, 0.5),
                           Final(False, failure="api_auth", session_id="s-1")]
    for e in events:
        assert decode_event(encode_event(e)) == e
    assert decode_event("garbage") == Raw("garbage")
    assert decode_event(b'{"type": "unknown"}') == Raw('{"type": "unknown"}')


# --- the command lines, run by a real shell --------------------------------------------------------------

@pytest.mark.parametrize("agent", ["claude", "codex"])
def test_command_feeds_the_prompt_whole_and_closes_stdin(agent: str, tmp_path: Path) -> None:
    """The argv as the container runs it, with a stub agent binary: the prompt (leading dash, quotes, $(...),
    newlines) arrives as one argument after `--`, and stdin is /dev/null even when the caller's is a pipe."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / agent
    stub.write_text('#!/bin/sh\nreadlink /proc/self/fd/0 > "$OUT.stdin"\n'
                    'for a in "$@"; do printf "%s\\0" "$a"; done > "$OUT"\n')
    stub.chmod(0o755)
    prompt = "- fix the bug in `x`\nuse \"$(rm -rf /)\" and 'quotes' \\ $HOME\n"
    prompt_file = tmp_path / "my instructions.md"
    prompt_file.write_text(prompt)
    out = tmp_path / "argv"
    argv = get_agent(agent).command(str(prompt_file))
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OUT": str(out)}
    proc = subprocess.run(argv, stdin=subprocess.PIPE, env=env, timeout=30, check=False)
    assert proc.returncode == 0
    args = out.read_bytes().split(b"\0")[:-1]
    assert args[-2:] == [b"--", prompt.rstrip("\n").encode()]
    assert Path(f"{out}.stdin").read_text().strip() == "/dev/null"


def test_resume_and_model_on_the_command_line() -> None:
    assert ClaudeAgent().command(PROMPT, resume="6984b7ec-1072", model="claude-opus-4-8[1m]") == [
        "sh", "-c",
        'p="$(cat /tsk/instructions.md)" && exec claude -p --output-format stream-json --verbose'
        " --dangerously-skip-permissions --resume 6984b7ec-1072 --model 'claude-opus-4-8[1m]' -- \"$p\" </dev/null",
    ]
    # codex resumes with exec's `resume` subcommand, after exec's own options
    assert CodexAgent().command(PROMPT, resume="01a1ffab-4843", model="gpt-5.5") == [
        "sh", "-c",
        'p="$(cat /tsk/instructions.md)" && exec codex exec --json --dangerously-bypass-approvals-and-sandbox'
        ' --model gpt-5.5 resume 01a1ffab-4843 -- "$p" </dev/null',
    ]
    assert CodexAgent().command(PROMPT, model="o3")[2].endswith(' --model o3 -- "$p" </dev/null')
    for agent in (ExecAgent(), GenericAgent("aider")):
        assert agent.command(PROMPT, resume="s", model="m") == ["bash", PROMPT]


HOSTILE = ["x'y\"z$(touch${IFS}pwned)`id`;|&<>*?~#!\\", "a'b", '"', "$HOME", "x--y", "é☃"]


@pytest.mark.parametrize("agent", ["claude", "codex"])
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_session_ids_and_models_arrive_as_one_word(agent: str, value: str, tmp_path: Path) -> None:
    """A session id comes from the sandbox's own output: whatever it holds, the shell passes it as one
    argument and runs nothing from it. The scripts parse (`bash -n`), and a stub agent sees the words."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / agent
    stub.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done > "$OUT"\n')
    stub.chmod(0o755)
    prompt_file = tmp_path / "instructions.md"
    prompt_file.write_text("do it")
    out = tmp_path / "argv"
    argv = get_agent(agent).command(str(prompt_file), resume=value, model=value)
    assert subprocess.run(["bash", "-n", "-c", argv[2]], timeout=30, check=False).returncode == 0
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OUT": str(out), "HOME": str(tmp_path)}
    proc = subprocess.run(argv, env=env, cwd=tmp_path, timeout=30, check=False)
    assert proc.returncode == 0
    args = [a.decode() for a in out.read_bytes().split(b"\0")[:-1]]
    if agent == "claude":
        assert args[-6:] == ["--resume", value, "--model", value, "--", "do it"]
    else:
        assert args[-6:] == ["--model", value, "resume", value, "--", "do it"]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("value", ["", "-", "--dangerously-skip-permissions", "-rf", "a b", "a\tb", "a\nb",
                                   "\x1b[2J", "id\x00", "\u202eevil"])
def test_values_that_could_pass_for_options_are_refused(value: str) -> None:
    for agent in (ClaudeAgent(), CodexAgent()):
        with pytest.raises(TskError, match="refusing session id"):
            agent.command(PROMPT, resume=value)
        with pytest.raises(TskError, match="refusing model") as info:
            agent.command(PROMPT, model=value)
        assert info.value.hint == "give the model's name as the agent knows it"


def test_command_stops_when_the_prompt_file_is_missing(tmp_path: Path) -> None:
    argv = ClaudeAgent().command(str(tmp_path / "missing.md"))
    proc = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    assert proc.returncode != 0
    assert b"missing.md" in proc.stderr and b"claude" not in proc.stderr
