"""What an agent takes from the user's home: the digest of its login (a task blocked on bad credentials is
retried when it changes), and the files it copies into the task's home."""

from __future__ import annotations

import datetime as dt
import json
import os
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsk.agents import ClaudeAgent, CodexAgent, CredentialFile, ExecAgent, GenericAgent, HomeFile, HomeFiles
from tsk.agents.homefiles import TREE_BYTES, copy_trees
from tsk.agents.toml_write import dumps
from tsk.errors import ConfigError

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


# --- the files for the task's home: Claude ---------------------------------------------------------------

def by_path(files: list[HomeFile]) -> dict[str, HomeFile]:
    return {f.container_path: f for f in files}


def test_claude_copies_the_users_own_config(tmp_path: Path) -> None:
    home = tmp_path / "h"
    claude = home / ".claude"
    write(claude / "settings.json", '{"model": "opus", "env": {"X": "1"}}', 0o644)
    write(claude / "CLAUDE.md", "# my rules\n", 0o640)
    write(claude / "agents" / "reviewer.md", "---\nname: reviewer\n---\n", 0o664)
    write(claude / "commands" / "ship.md", "ship it", 0o644)
    write(claude / "skills" / "pdf" / "SKILL.md", "---\nname: pdf\n---\n", 0o644)
    write(claude / "skills" / "pdf" / "scripts" / "fill.py", "print(1)\n", 0o755)
    registry = {"version": 2, "plugins": {"p@m": [{"installPath": f"{claude}/plugins/cache/m/p/1.0.0"}]}}
    write(claude / "plugins" / "installed_plugins.json", json.dumps(registry), 0o644)
    write(claude / "plugins" / "known_marketplaces.json",
          json.dumps({"m": {"installLocation": f"{claude}/plugins/marketplaces/m"}}), 0o644)
    write(claude / "plugins" / "cache" / "m" / "p" / "1.0.0" / "plugin.json", f'{{"note": "{claude}/"}}', 0o644)
    write(claude / "plugins" / "marketplaces" / "m" / ".git" / "HEAD", "ref: refs/heads/main\n", 0o644)
    write(claude / "plugins" / "marketplaces" / "m" / "marketplace.json", "{}", 0o644)
    write(claude / "projects" / "-w" / "s.jsonl", "history", 0o600)  # sessions: the task's own, never the host's
    write(claude / "history.jsonl", "prompts", 0o600)
    write(home / ".claude.json", '{"mcpServers": {"gh": {"command": "gh-mcp"}}}')

    got = ClaudeAgent().home_files(home, {})
    files = by_path(got.files)
    a = "/home/agent/.claude"
    assert sorted(files) == sorted([
        "/home/agent/.claude.json", f"{a}/settings.json", f"{a}/CLAUDE.md", f"{a}/agents/reviewer.md",
        f"{a}/commands/ship.md", f"{a}/skills/pdf/SKILL.md", f"{a}/skills/pdf/scripts/fill.py",
        f"{a}/plugins/installed_plugins.json", f"{a}/plugins/known_marketplaces.json",
        f"{a}/plugins/cache/m/p/1.0.0/plugin.json", f"{a}/plugins/marketplaces/m/marketplace.json",
    ])
    assert got.notes == []
    # a login or what may hold one is private; the rest keeps its mode, at most 0644 (never executable)
    assert {p: oct(f.mode) for p, f in files.items() if f.mode != 0o644} == {
        "/home/agent/.claude.json": "0o600", f"{a}/settings.json": "0o600", f"{a}/CLAUDE.md": "0o640"}
    assert files[f"{a}/skills/pdf/scripts/fill.py"].content == b"print(1)\n"
    assert files[f"{a}/settings.json"].origin == str(claude / "settings.json")
    # the plugin registries name install dirs by absolute path: the agent's home, not the host's
    installed = json.loads(files[f"{a}/plugins/installed_plugins.json"].content)
    assert installed["plugins"]["p@m"][0]["installPath"] == f"{a}/plugins/cache/m/p/1.0.0"
    known = json.loads(files[f"{a}/plugins/known_marketplaces.json"].content)
    assert known["m"]["installLocation"] == f"{a}/plugins/marketplaces/m"
    assert files[f"{a}/plugins/cache/m/p/1.0.0/plugin.json"].content == f'{{"note": "{claude}/"}}'.encode()  # only those
    # the runner's name for it still works, and gives the same files
    assert ClaudeAgent().credential_files(home, {}) == got.files
    assert CredentialFile is HomeFile


def test_claude_config_follows_no_link_out_of_its_dirs(tmp_path: Path) -> None:
    home = tmp_path / "h"
    claude = home / ".claude"
    skills = claude / "skills"
    write(skills / "a" / "SKILL.md", "a", 0o644)
    write(home / ".ssh" / "id_ed25519", "PRIVATE KEY", 0o600)
    (skills / "stolen").symlink_to(home / ".ssh" / "id_ed25519")
    (skills / "keys").symlink_to(home / ".ssh", target_is_directory=True)
    (skills / "alias.md").symlink_to(skills / "a" / "SKILL.md")  # stays inside: followed
    (skills / "dangling").symlink_to(skills / "nowhere")
    os.mkfifo(skills / "pipe")  # would block a reader: not a regular file
    # the user's own links to their dotfiles, for a whole dir or a top-level file, are theirs to make
    write(home / "dotfiles" / "commands" / "c.md", "c", 0o644)
    (claude / "commands").symlink_to(home / "dotfiles" / "commands", target_is_directory=True)
    write(home / "dotfiles" / "settings.json", "{}", 0o644)
    (claude / "settings.json").symlink_to(home / "dotfiles" / "settings.json")

    got = ClaudeAgent().home_files(home, {})
    files = by_path(got.files)
    a = "/home/agent/.claude"
    assert sorted(files) == [f"{a}/commands/c.md", f"{a}/settings.json", f"{a}/skills/a/SKILL.md",
                             f"{a}/skills/alias.md"]
    assert files[f"{a}/skills/alias.md"].content == b"a"
    assert not any(b"PRIVATE KEY" in f.content for f in got.files)
    assert got.notes == ["~/.claude/skills: 3 links that lead out of it, or to a dir, were not followed"]


def test_config_dirs_over_the_cap_are_left_out_whole(tmp_path: Path) -> None:
    home = tmp_path / "h"
    write(home / "a" / "one", b"x" * 600)
    write(home / "b" / "big", b"y" * 500)
    write(home / "b" / "small", b"z")
    write(home / "c" / "two", b"w" * 300)
    notes: list[str] = []
    files = copy_trees([(home / d, f"/in/{d}") for d in "abc"], home, notes, max_bytes=1000)
    assert [f.container_path for f in files] == ["/in/a/one", "/in/c/two"]
    assert notes == ["~/b was not copied into the task's home: its 2 files of 0.0 MiB would pass what tsk copies "
                     "of an agent's config (0 MiB, 10000 files); the agent runs without it"]
    notes = []
    files = copy_trees([(home / d, f"/in/{d}") for d in "abc"], home, notes, max_files=2)
    assert [f.container_path for f in files] == ["/in/a/one", "/in/c/two"] and len(notes) == 1


def test_a_huge_plugin_dir_is_noted_not_copied(tmp_path: Path) -> None:
    home = tmp_path / "h"
    write(home / ".claude" / "skills" / "s" / "SKILL.md", "s", 0o644)
    big = write(home / ".claude" / "plugins" / "cache" / "blob.bin", b"")
    with big.open("wb") as f:
        f.truncate(TREE_BYTES + 1)  # sparse: no real disk used
    got = ClaudeAgent().home_files(home, {})
    assert [f.container_path for f in got.files] == ["/home/agent/.claude/skills/s/SKILL.md"]
    assert len(got.notes) == 1 and got.notes[0].startswith("~/.claude/plugins was not copied")


def test_claude_settings_that_change_the_login_change_the_digest(tmp_path: Path) -> None:
    agent = ClaudeAgent()
    settings = write(tmp_path / ".claude" / "settings.json", '{"theme": "dark", "env": {"A": "1"}}')
    before = agent.credential_digest(tmp_path, {})
    write(settings, '{"theme": "light", "env": {"A": "1"}}')
    assert agent.credential_digest(tmp_path, {}) == before
    write(settings, '{"theme": "light", "env": {"ANTHROPIC_BASE_URL": "http://gw"}}')
    assert agent.credential_digest(tmp_path, {}) != before


def test_exec_copies_nothing(tmp_path: Path) -> None:
    write(tmp_path / ".claude" / "settings.json", "{}")
    assert ExecAgent().home_files(tmp_path, {}) == HomeFiles()
    assert GenericAgent("aider").credential_files(tmp_path, {}) == []


# --- the files for the task's home: Codex ----------------------------------------------------------------

USER_CONFIG = '''
model = "gpt-5.5"
model_reasoning_effort = "high"
notify = ["/home/me/bin/notify", "--quiet"]
checked = 2026-11-21T19:52:46Z

[features]
unbounded_connection_retries = true
web_search_request = true

[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-mcp"]
env = { DOCS_TOKEN = "t0k" }

[profiles.fast]
model = "gpt-5.4-mini"

[projects."/home/me/src/demo"]
trust_level = "trusted"

[[hooks]]
on = "start"
run = "echo hi"

[[hooks]]
on = "stop"
'''


def codex_config(files: list[HomeFile]) -> dict[str, object]:
    [config] = [f for f in files if f.container_path == "/home/agent/.codex/config.toml"]
    assert config.mode == 0o600
    return tomllib.loads(config.content.decode())


def test_codex_keeps_the_users_config_and_forces_what_tsk_needs(tmp_path: Path) -> None:
    write(tmp_path / ".codex" / "config.toml", USER_CONFIG, 0o644)
    got = CodexAgent().home_files(tmp_path, {})
    doc = codex_config(got.files)
    expected = tomllib.loads(USER_CONFIG)
    expected["features"] = {"unbounded_connection_retries": False, "web_search_request": True, "plugins": False}
    assert doc == expected  # every key of the user's kept, theirs or not known to tsk
    assert "model_provider" not in doc and "tsk" not in doc.get("model_providers", {})
    [config] = [f for f in got.files if f.container_path.endswith("config.toml")]
    assert config.origin == f"{tmp_path}/.codex/config.toml, with tsk's settings"


def test_codex_adds_its_provider_only_when_the_user_has_none(tmp_path: Path) -> None:
    url = {"OPENAI_BASE_URL": "http://llm.internal:8080/v1"}
    config = write(tmp_path / ".codex" / "config.toml", 'model = "o3"\n[model_providers.azure]\nname = "Azure"\n')
    doc = codex_config(CodexAgent().credential_files(tmp_path, url))
    assert doc["model_provider"] == "tsk"
    assert doc["model_providers"] == {"azure": {"name": "Azure"}, "tsk": {
        "name": "tsk", "base_url": "http://llm.internal:8080/v1", "wire_api": "responses", "env_key": "OPENAI_API_KEY"}}
    assert doc["model"] == "o3"
    # the user's own choice of provider wins, at the top or in their active profile
    write(config, 'model_provider = "azure"\n[model_providers.azure]\nname = "Azure"\n')
    doc = codex_config(CodexAgent().credential_files(tmp_path, url))
    assert (doc["model_provider"], list(doc["model_providers"])) == ("azure", ["azure"])
    write(config, 'profile = "work"\n[profiles.work]\nmodel_provider = "azure"\n[profiles.work.features]\nplugins = true\n')
    doc = codex_config(CodexAgent().credential_files(tmp_path, url))
    assert "model_provider" not in doc
    # and the profile cannot turn tsk's features back on
    assert doc["profiles"] == {"work": {"model_provider": "azure", "features": {
        "plugins": False, "unbounded_connection_retries": False}}}


def test_codex_without_a_config_of_the_users_gets_tsks(tmp_path: Path) -> None:
    [config] = CodexAgent().credential_files(tmp_path, {})
    assert (config.origin, config.content) == ("generated", b"[features]\nunbounded_connection_retries = false\nplugins = false\n")


@pytest.mark.parametrize("content", [b"model = \n", b"[features]\nplugins = false\n[features]\n", b"\xff\xfe"])
def test_a_codex_config_codex_could_not_read_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    write(tmp_path / ".codex" / "config.toml", content)
    with pytest.raises(ConfigError) as info:
        CodexAgent().home_files(tmp_path, {})
    assert info.value.exit_code == 2
    assert str(tmp_path / ".codex" / "config.toml") in info.value.message
    assert info.value.hint is not None and "move it away" in info.value.hint


def test_codex_copies_agents_md_and_reads_codex_home(tmp_path: Path) -> None:
    own = tmp_path / "elsewhere"
    write(own / "AGENTS.md", "# always run the tests\n", 0o664)
    write(own / "auth.json", '{"tokens": 1}')
    write(own / "config.toml", 'model = "gpt-5.5"\n')
    write(tmp_path / ".codex" / "auth.json", '{"tokens": "not these"}')
    got = CodexAgent().home_files(tmp_path, {"CODEX_HOME": str(own)})
    files = by_path(got.files)
    assert sorted(files) == ["/home/agent/.codex/AGENTS.md", "/home/agent/.codex/auth.json",
                             "/home/agent/.codex/config.toml"]
    assert (files["/home/agent/.codex/AGENTS.md"].mode, files["/home/agent/.codex/auth.json"].mode) == (0o644, 0o600)
    assert files["/home/agent/.codex/auth.json"].content == b'{"tokens": 1}'
    assert codex_config(got.files)["model"] == "gpt-5.5"
    # a relative CODEX_HOME would depend on where tsk runs: the default is read
    got = CodexAgent().home_files(tmp_path, {"CODEX_HOME": "elsewhere"})
    assert by_path(got.files)["/home/agent/.codex/auth.json"].content == b'{"tokens": "not these"}'


def test_codex_provider_settings_change_the_digest(tmp_path: Path) -> None:
    agent = CodexAgent()
    config = write(tmp_path / ".codex" / "config.toml", 'model = "o3"\n')
    before = agent.credential_digest(tmp_path, {})
    write(config, 'model = "gpt-5.5"\n')
    assert agent.credential_digest(tmp_path, {}) == before  # another model is no new login
    write(config, 'model = "gpt-5.5"\nmodel_provider = "azure"\n')
    assert agent.credential_digest(tmp_path, {}) != before
    write(config, "not toml [")
    assert agent.credential_digest(tmp_path, {}) != before


# --- the TOML writer -------------------------------------------------------------------------------------

keys = st.text(st.characters(blacklist_categories=["Cs"]), max_size=6)
scalars = (st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
           | st.text(st.characters(blacklist_categories=["Cs"]), max_size=10)
           | st.dates() | st.times() | st.datetimes(timezones=st.none() | st.just(dt.UTC)))
inline = st.recursive(scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(keys, kids, max_size=3),
                      max_leaves=8)
tables = st.recursive(st.dictionaries(keys, inline, max_size=4),
                      lambda kids: st.dictionaries(keys, kids | st.lists(kids, min_size=1, max_size=2) | inline,
                                                   max_size=4),
                      max_leaves=12)


@given(tables)
def test_toml_written_reads_back_equal(doc: dict[str, object]) -> None:
    assert tomllib.loads(dumps(doc)) == doc


def test_toml_layout() -> None:
    doc = {"a": 1, "t": {"x": "y", "sub": {"z": [1, {"k": "v"}]}}, "arr": [{"n": 1}, {"n": 2, "in": {"m": True}}],
           "only": {"tables": {"here": 1.5}}, "empty": {}, "odd key": {"é": "\n"}}
    assert dumps(doc) == (
        'a = 1\n\n[t]\nx = "y"\n\n[t.sub]\nz = [1, {k = "v"}]\n\n[[arr]]\nn = 1\n\n[[arr]]\nn = 2\n\n'
        '[arr.in]\nm = true\n\n[only.tables]\nhere = 1.5\n\n[empty]\n\n["odd key"]\n"é" = "\\u000a"\n')
