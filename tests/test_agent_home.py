"""What an agent takes from the user's home: the digest of its login (a task blocked on bad credentials is
retried when it changes), and the files it copies into the task's home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tsk.agents import ClaudeAgent, CodexAgent, ExecAgent, GenericAgent

SECRET = "sk-ant-very-secret-0123456789"


def write(path: Path, content: str | bytes, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    path.chmod(mode)
    return path


# --- the login digest ------------------------------------------------------------------------------------

def test_claude_digest_follows_its_env_and_login_files(tmp_path: Path) -> None:
    agent = ClaudeAgent()
    seen: set[str] = set()

    def digest(env: dict[str, str]) -> str:
        d = agent.credential_digest(tmp_path, env)
        assert len(d) == 64 and int(d, 16) >= 0
        assert SECRET not in d
        return d

    base = digest({})
    assert digest({"PATH": "/bin", "OPENAI_API_KEY": "x", "ANTHROPIC_API_KEY": ""}) == base  # not what it uses
    for env in ({"ANTHROPIC_API_KEY": SECRET}, {"ANTHROPIC_API_KEY": SECRET + "2"}, {"CLAUDE_CODE_OAUTH_TOKEN": SECRET},
                {"ANTHROPIC_API_KEY": SECRET, "ANTHROPIC_BASE_URL": "http://gw:8"}):
        seen.add(digest(env))
    assert len(seen) == 4 and base not in seen
    assert digest({"ANTHROPIC_API_KEY": SECRET}) == digest({"ANTHROPIC_API_KEY": SECRET})  # stable

    write(tmp_path / ".claude" / ".credentials.json", '{"claudeAiOauth": {"accessToken": "a1"}}')
    with_login = digest({})
    assert with_login != base
    write(tmp_path / ".claude" / ".credentials.json", '{"claudeAiOauth": {"accessToken": "a2"}}')  # refreshed
    refreshed = digest({})
    assert refreshed != with_login

    config = tmp_path / ".claude.json"
    write(config, json.dumps({"oauthAccount": {"emailAddress": "a@example.com"}, "numStartups": 1}))
    logged_in = digest({})
    assert logged_in != refreshed
    # Claude rewrites its config on every run; that is no new login
    write(config, json.dumps({"numStartups": 2, "tipsHistory": {"x": 3}, "oauthAccount": {"emailAddress": "a@example.com"}}))
    assert digest({}) == logged_in
    write(config, json.dumps({"numStartups": 2, "oauthAccount": {"emailAddress": "b@example.com"}}))
    assert digest({}) != logged_in
    write(config, "not json")
    assert digest({}) != logged_in


def test_an_unreadable_login_file_is_a_state_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = write(tmp_path / ".codex" / "auth.json", '{"tokens": 1}')
    agent = CodexAgent()
    readable = agent.credential_digest(tmp_path, {})

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    unreadable = agent.credential_digest(tmp_path, {})
    monkeypatch.undo()
    creds.unlink()
    assert len({readable, unreadable, agent.credential_digest(tmp_path, {})}) == 3


def test_codex_digest_follows_its_key_endpoint_and_login(tmp_path: Path) -> None:
    agent = CodexAgent()
    base = agent.credential_digest(tmp_path, {"ANTHROPIC_API_KEY": "a"})
    assert agent.credential_digest(tmp_path, {}) == base
    with_key = agent.credential_digest(tmp_path, {"OPENAI_API_KEY": SECRET})
    other_url = agent.credential_digest(tmp_path, {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": "http://llm:1/v1"})
    write(tmp_path / ".codex" / "auth.json", '{"tokens": {"access_token": "t"}}')
    logged_in = agent.credential_digest(tmp_path, {})
    assert len({base, with_key, other_url, logged_in}) == 4


def test_a_key_moved_between_names_changes_the_digest(tmp_path: Path) -> None:
    agent = ClaudeAgent()
    assert (agent.credential_digest(tmp_path, {"ANTHROPIC_API_KEY": SECRET})
            != agent.credential_digest(tmp_path, {"CLAUDE_CODE_OAUTH_TOKEN": SECRET}))


@pytest.mark.parametrize("agent", [ExecAgent(), GenericAgent("aider")])
def test_exec_logs_in_with_nothing(agent: ExecAgent, tmp_path: Path) -> None:
    write(tmp_path / ".claude" / ".credentials.json", "x")
    assert agent.credential_digest(tmp_path, {"ANTHROPIC_API_KEY": SECRET}) == agent.credential_digest(Path("/nonexistent"), {})
