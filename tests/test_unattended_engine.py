"""Unattended tasks on the real engine, with the exec agent (and a scripted stand-in for Claude Code)
playing the misbehaving agent: stalls, timeouts, loops and injected infra failures end attempts with
their class, the ladder makes the next one, and a validation gate decides "done"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import git, make_repo, run_tsk

pytestmark = pytest.mark.docker


@pytest.fixture
def repo(tmp_path: Path, engine) -> Path:  # type: ignore[no-untyped-def]
    return make_repo(tmp_path / "unattended", {"README.md": "hello\n", ".tsk/tsk.toml": 'stack = "default"\n'})


def _run(repo: Path, script: str, *flags: str, env: dict[str, str] | None = None) -> dict:
    res = run_tsk("run", "-a", "exec", "--json", *flags, "-p", script, cwd=repo, env=env, timeout=600)
    assert res.stdout.strip().startswith("{"), res.stderr
    task = json.loads(res.stdout)
    assert res.returncode == (0 if task["status"] == "COMPLETE" else 1), res.stderr
    return task


def _attempts(task_id: str) -> list[dict]:
    import sqlite3

    from tsk.paths import Paths

    rows = sqlite3.connect(Paths.from_env().data / "tasks.db").execute(
        "SELECT data FROM attempts WHERE task = ? ORDER BY n", (task_id,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def test_a_silent_agent_is_stalled_retried_and_fails_with_its_class(repo: Path) -> None:
    task = _run(repo, "echo started; sleep 120", "--idle-timeout", "3s", "--attempts", "2")
    assert task["status"] == "FAILED" and task["failure_class"] == "stalled" and task["attempts"] == 2
    attempts = _attempts(task["id"])
    assert [a["failure_class"] for a in attempts] == ["stalled", "stalled"]
    assert all(a["finished"] - a["started"] < 60 for a in attempts)  # stopped at the limit, not at the end
    listed = {t["id"]: t for t in json.loads(run_tsk("list", "--json", cwd=repo).stdout)}[task["id"]]
    assert (listed["attempts"], listed["max_attempts"], listed["failure_class"]) == (2, 2, "stalled")
    assert "2/2" in run_tsk("list", cwd=repo).stdout


def test_a_task_that_passes_validation_only_on_its_second_attempt_completes_having_seen_the_first(
        repo: Path) -> None:
    script = """
echo "attempt $TSK_ATTEMPT"
if [ "$TSK_ATTEMPT" = 1 ]; then
  echo bad > out.txt
else
  cp /tsk/previous-attempt.md seen.md
  echo good > out.txt
fi
git add -A && git commit -qm "attempt $TSK_ATTEMPT"
"""
    check = 'grep -q good out.txt || { echo "out.txt says: $(cat out.txt)"; exit 1; }'
    task = _run(repo, script, "--validate", check)
    assert task["status"] == "COMPLETE" and task["attempts"] == 2 and task["failure_class"] is None, task
    first, second = _attempts(task["id"])
    assert first["failure_class"] == "validation" and first["validation_exit"] == 1
    assert "out.txt says: bad" in first["validation_tail"]
    assert second["failure_class"] is None and second["validation_exit"] == 0
    branch = task["result_branch"]
    seen = git(repo, "show", f"{branch}:seen.md")
    assert "validation" in seen and "out.txt says: bad" in seen  # the second attempt knew why the first failed
    assert git(repo, "show", f"{branch}:out.txt").strip() == "good"
    # the second attempt started from the first one's work, not from the original snapshot
    log = git(repo, "log", "--format=%s", branch)
    assert log.index("attempt 2") < log.index("attempt 1")


def test_a_timeout_stops_the_attempt_and_keeps_its_work(repo: Path) -> None:
    task = _run(repo, "echo partial > p.txt && git add p.txt && git commit -qm partial; sleep 120",
                "--timeout", "4s", "--idle-timeout", "1h", "--attempts", "1")
    assert task["status"] == "FAILED" and task["failure_class"] == "timeout"
    assert "timeout" in task["error"] and "p.txt" in git(repo, "ls-tree", "--name-only", task["result_branch"])


def test_an_infra_failure_injected_once_gets_a_fresh_attempt(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"
    task = _run(repo, "echo done > d.txt && git add d.txt && git commit -qm done",
                env={"TSK_TEST_FAIL_ONCE": f"create:{marker}"})
    assert marker.exists()
    assert task["status"] == "COMPLETE" and task["attempts"] == 2
    assert [a["failure_class"] for a in _attempts(task["id"])] == ["infra", None]


def test_the_same_tool_call_again_and_again_is_a_loop(repo: Path, tsk_home: Path) -> None:
    """A stand-in for Claude Code (the real stream-json shape, one Bash call repeated) installed by the
    user's own config in place of the claude agent layer."""
    lines = [{"type": "system", "subtype": "init", "session_id": "loop-session", "model": "claude-sonnet-4-5"}]
    call = {"type": "assistant", "message": {"content": [{"type": "tool_use", "id": "t", "name": "Bash",
                                                          "input": {"command": "ls"}}]}}
    fake = "#!/bin/sh\n" + "".join(f"echo '{json.dumps(x)}'\n" for x in [*lines, *[call] * 6]) + "sleep 120\n"
    (repo / "fake-claude.sh").write_text(fake)
    git(repo, "add", "fake-claude.sh")
    git(repo, "commit", "-qm", "a stand-in for claude")
    config = tsk_home / "config" / "tsk" / "tsk.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[defaults.agent_config.claude]\nsetup = '''\n"
                      "COPY fake-claude.sh /usr/local/bin/claude\nRUN chmod 755 /usr/local/bin/claude\n'''\n")
    res = run_tsk("run", "-a", "claude", "--json", "--attempts", "1", "-p", "list the files", cwd=repo,
                  env={"ANTHROPIC_API_KEY": "sk-not-used"}, timeout=600)
    task = json.loads(res.stdout)
    assert task["status"] == "FAILED" and task["failure_class"] == "looping", res.stderr
    assert "Bash" in task["error"] and "5 times" in task["error"]
    assert _attempts(task["id"])[0]["session_id"] == "loop-session"


# -- Claude's API and session, with a scripted stand-in for the binary -----------------------------------

SAMPLES = Path(__file__).parent / "data" / "agent-samples"
# It prints `.scenario/<attempt>.jsonl` as its stream-json output, exits with `.scenario/<attempt>.exit`,
# and leaves the arguments it was given in `args-<attempt>.txt` (committed with the work, so a test can
# read them on the branch).
FAKE_CLAUDE = """#!/bin/sh
n=${TSK_ATTEMPT:-1}
printf '%s\\n' "$@" > "args-$n.txt"
cat ".scenario/$n.jsonl"
exit "$(cat ".scenario/$n.exit")"
"""
SUCCESS = ('{"type":"result","subtype":"success","is_error":false,"result":"done","total_cost_usd":COST,'
           '"num_turns":2,"session_id":"s-ok"}')


def _claude_repo(tmp_path: Path, tsk_home: Path, scenario: dict[int, tuple[str, int]]) -> Path:
    files = {"README.md": "hello\n", ".tsk/tsk.toml": 'stack = "default"\nagent = "claude"\n',
             "fake-claude.sh": FAKE_CLAUDE, ".gitignore": "args-*.txt\n!args-*.txt\n"}
    for n, (stream, code) in scenario.items():
        files[f".scenario/{n}.jsonl"] = stream
        files[f".scenario/{n}.exit"] = f"{code}\n"
    repo = make_repo(tmp_path / "claudy", files)
    config = tsk_home / "config" / "tsk" / "tsk.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[defaults.agent_config.claude]\nsetup = '''\n"
                      "COPY fake-claude.sh /usr/local/bin/claude\nRUN chmod 755 /usr/local/bin/claude\n'''\n")
    return repo


def _serve(repo: Path, *flags: str, env: dict[str, str] | None = None) -> None:
    res = run_tsk("server", "start", "--plain", "-q", *flags, cwd=repo, env=env, timeout=600)
    assert res.returncode == 0, res.stderr + res.stdout


def _task(repo: Path, task_id: str) -> dict:
    return {t["id"]: t for t in json.loads(run_tsk("list", "--json", cwd=repo).stdout)}[task_id]


def test_a_rate_limit_blocks_the_task_and_holds_the_agent_for_a_back_off_then_it_runs(
        tmp_path: Path, tsk_home: Path, engine) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from tsk.paths import Paths

    repo = _claude_repo(tmp_path, tsk_home, {1: ((SAMPLES / "claude-api-429.jsonl").read_text(), 1),
                                             2: (SUCCESS.replace("COST", "0.25"), 0)})
    env = {"TSK_TEST_BACKOFF": "2", "ANTHROPIC_API_KEY": "sk-test"}
    (tid,) = run_tsk("add", "-p", "do it", cwd=repo, env=env).stdout.split()
    _serve(repo, env=env)
    task = _task(repo, tid)
    assert task["status"] == "COMPLETE" and task["attempts"] == 2, task
    assert [a["failure_class"] for a in _attempts(tid)] == ["api_rate_limit", None]
    db = sqlite3.connect(Paths.from_env().data / "tasks.db")
    moves = [r[0] for r in db.execute("SELECT to_status FROM transitions WHERE task = ? ORDER BY seq", (tid,))]
    assert "BLOCKED" in moves and moves[-1] == "COMPLETE", moves
    assert db.execute("SELECT agent FROM agent_holds").fetchall() == [("claude",)]  # its other tasks waited too
    assert task["cost_usd"] == 0.25
    (waited,) = json.loads(run_tsk("wait", tid, "--json", cwd=repo).stdout)
    assert {k: waited[k] for k in ("attempts", "max_attempts", "failure_class", "cost_usd", "turns")} == {
        "attempts": 2, "max_attempts": 3, "failure_class": None, "cost_usd": 0.25, "turns": 3}  # 1 + 2
    shown = run_tsk("wait", tid, cwd=repo).stdout
    assert "attempt 2 of 3, $0.2500, 3 turns" in shown, shown


def test_refused_credentials_block_until_they_change(tmp_path: Path, tsk_home: Path, engine) -> None:  # type: ignore[no-untyped-def]
    import os

    repo = _claude_repo(tmp_path, tsk_home, {1: ((SAMPLES / "claude-api-401.jsonl").read_text(), 1),
                                             2: (SUCCESS.replace("COST", "0.1"), 0)})
    bin_dir, shown = tmp_path / "bin", tmp_path / "notifications"
    bin_dir.mkdir()
    (bin_dir / "notify-send").write_text(f'#!/bin/sh\nprintf "%s|" "$@" >> {shown}\necho >> {shown}\n')
    (bin_dir / "notify-send").chmod(0o755)
    desktop = {"DISPLAY": ":99", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    old, new = {**desktop, "ANTHROPIC_API_KEY": "sk-old"}, {**desktop, "ANTHROPIC_API_KEY": "sk-new"}
    (tid,) = run_tsk("add", "-p", "do it", cwd=repo, env=old).stdout.split()
    _serve(repo, env=old)  # it ends with the task blocked: nothing it can do
    blocked = _task(repo, tid)
    assert blocked["status"] == "BLOCKED" and blocked["failure_class"] == "api_auth", blocked
    assert "credentials" in blocked["blocked"] and "BLOCKED" in run_tsk("list", cwd=repo).stdout
    _serve(repo, env=old)
    assert _task(repo, tid)["status"] == "BLOCKED"  # the same credentials: still blocked
    said = shown.read_text().splitlines()
    assert len(said) == 1 and "credentials refused" in said[0], said  # told once, not on every look
    _serve(repo, env=new)
    done = _task(repo, tid)
    assert done["status"] == "COMPLETE" and done["attempts"] == 2, done
    assert "COMPLETE" in shown.read_text().splitlines()[-1]  # and told when it ended


def test_claude_is_resumed_in_its_session_knowing_why_the_last_attempt_failed(
        tmp_path: Path, tsk_home: Path, engine) -> None:  # type: ignore[no-untyped-def]
    failed = ('{"type":"system","subtype":"init","session_id":"session-one","model":"claude-sonnet-4-5"}\n'
              '{"type":"result","subtype":"error_during_execution","is_error":true,"result":"gave up",'
              '"session_id":"session-one"}')
    repo = _claude_repo(tmp_path, tsk_home, {1: (failed, 1), 2: (SUCCESS.replace("COST", "0.1"), 0)})
    res = run_tsk("run", "--json", "-p", "do the thing", cwd=repo, env={"ANTHROPIC_API_KEY": "sk"}, timeout=600)
    task = json.loads(res.stdout)
    assert task["status"] == "COMPLETE" and task["attempts"] == 2, res.stderr
    first_args = git(repo, "show", f"{task['result_branch']}:args-1.txt")
    second_args = git(repo, "show", f"{task['result_branch']}:args-2.txt")
    assert "--resume" not in first_args and "do the thing" in first_args
    assert "--resume\nsession-one\n" in second_args  # its own session, so it keeps its context
    assert "did not succeed: agent_error" in second_args and "gave up" in second_args


def test_a_server_budget_stops_claiming_once_its_tasks_have_spent_it(
        tmp_path: Path, tsk_home: Path, engine) -> None:  # type: ignore[no-untyped-def]
    repo = _claude_repo(tmp_path, tsk_home, {1: (SUCCESS.replace("COST", "0.6"), 0)})
    ids = [run_tsk("add", "-p", f"task {n}", cwd=repo).stdout.split()[0] for n in range(3)]
    _serve(repo, "--budget", "1.0")
    tasks = [_task(repo, t) for t in ids]
    assert [t["status"] for t in tasks] == ["COMPLETE", "COMPLETE", "QUEUED"], [(t["status"], t["error"]) for t in tasks]
