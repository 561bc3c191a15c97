"""Upstream tsk's flags as this tsk takes them, without an engine: the parser, `tsk retry`'s overrides and
its terminal questions, -d/--description, --device's globs, exec with a prose template, --proxy-only,
the server's bounds, `tsk help`, completion scripts, notifications and the terminal title."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from helpers import PROJECT, TSK, make_repo, run_tsk

from tsk.cli.app import app
from tsk.errors import UsageError
from tsk.tasks.model import Task


def _bound(*args: str) -> dict[str, object]:
    _, bound, _ = app.parse_args(list(args))
    return dict(bound.kwargs)


def _stored(task_id: str) -> Task:
    from tsk.paths import Paths
    from tsk.queue.db import SqliteStore

    store = SqliteStore(Paths.from_env().data)
    try:
        task = store.get(task_id)
    finally:
        store.close()
    assert task is not None
    return task


def _added(repo: Path, *args: str) -> str:
    res = run_tsk("add", "-a", "exec", *args, cwd=repo)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


@pytest.mark.parametrize("command", ["run", "shell", "add", "retry"])
def test_dind_and_repeatable_device_on_every_task_command(command: str) -> None:
    got = _bound(command, "--dind", "--device", "/dev/null", "--device", "/dev/zero", "--privileged", "--sudo")
    assert got["dind"] is True and got["device"] == ["/dev/null", "/dev/zero"]
    assert got["privileged"] is True and got["sudo"] is True


@pytest.mark.parametrize("command", ["run", "shell", "add"])
def test_hidden_description_is_the_old_spelling_of_prompt(command: str) -> None:
    assert _bound(command, "-d", "fix it")["description"] == "fix it"
    shown = run_tsk(command, "--help").stdout
    assert "--description" not in shown and "--prompt" in shown


def test_description_warns_and_both_at_once_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from tsk.cli.task_opts import prompt_of

    assert prompt_of("p", None) == "p"
    assert prompt_of(None, "d") == "d"
    assert "-d/--description is the old spelling of -p/--prompt" in capsys.readouterr().err
    with pytest.raises(UsageError, match="both given"):
        prompt_of("p", "d")


def test_description_reaches_the_queued_task(repo: Path, tsk_home: Path) -> None:
    res = run_tsk("add", "-a", "exec", "-d", "echo from-description", cwd=repo)
    assert res.returncode == 0, res.stderr
    assert "old spelling" in res.stderr
    tdir = tsk_home / "data" / "tsk" / "tasks" / res.stdout.strip()
    assert (tdir / "instructions.md").read_text() == "echo from-description\n"


def test_shell_takes_template_prompt_edit_and_privileged() -> None:
    got = _bound("shell", "-t", "feat", "-p", "look around", "--prompt-file", "x.md", "-e", "--privileged")
    assert got == {"type": "feat", "prompt": "look around", "prompt_file": "x.md", "edit": True, "privileged": True}
    assert _bound("shell") == {}  # the `shell` template, no prompt


def test_shell_program_shows_the_instructions_and_the_agents_command_then_a_shell() -> None:
    from tsk.sandbox.plan import INSTRUCTIONS, shell_argv

    argv = shell_argv(["claude", "-p", "--model", "x y", INSTRUCTIONS])
    assert argv[:2] == ["bash", "-c"]
    script = argv[2]
    assert f"cat {INSTRUCTIONS}" in script and script.endswith("exec bash -l")
    shown = subprocess.run(["bash", "-c", script], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           check=False).stdout  # no instructions here; the login shell ends with its stdin
    assert "=== The agent's command ===\nclaude -p --model 'x y' /tsk/instructions.md\n" in shown
    assert "exit it to bring the work back as a branch" in shown
    shown = subprocess.run(shell_argv(["sh", "-c", "echo hi | tee x"]), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, check=False).stdout
    assert "=== The agent's command ===\necho hi | tee x\n" in shown  # a shell command is shown as it is


def test_add_wait_has_upstreams_short_flag() -> None:
    assert _bound("add", "-w")["wait"] is True


def test_device_globs_expand_to_devices_and_a_missing_one_is_refused() -> None:
    from tsk.config.devices import expand_devices

    assert expand_devices(["/dev/nul[l]", "/dev/zero", "/dev/null"]) == ("/dev/null", "/dev/zero")
    with pytest.raises(UsageError, match="matches no device"):
        expand_devices(["/dev/tsk-no-such-*"])
    with pytest.raises(UsageError, match="no such device"):
        expand_devices(["/dev/tsk-no-such"])
    with pytest.raises(UsageError, match="not an absolute path"):
        expand_devices(["dev/null"])


def test_a_device_flag_reaches_the_tasks_config(repo: Path) -> None:
    tid = _added(repo, "--device", "/dev/nul?", "--dind", "-p", "true")
    cfg = _stored(tid).config
    assert cfg["devices"] == ["/dev/null"] and cfg["dind"] is True
    res = run_tsk("add", "-a", "exec", "--device", "/dev/tsk-nothing", "-p", "true", cwd=repo)
    assert res.returncode == 2 and "no such device" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("command", [("add",), ("run",)])
def test_exec_with_a_prose_template_is_refused_before_anything_is_made(repo: Path, tsk_home: Path,
                                                                      command: tuple[str, ...]) -> None:
    res = run_tsk(*command, "-a", "exec", "-t", "feat", "-p", "add a feature", cwd=repo)
    assert res.returncode == 2, res.stderr
    assert "exec agent runs its instructions as a bash script" in res.stderr and "script: true" in res.stderr
    assert not (tsk_home / "data" / "tsk" / "tasks").exists() or not any((tsk_home / "data" / "tsk" / "tasks").iterdir())


def test_exec_with_a_script_template_is_taken(repo: Path) -> None:
    (repo / ".tsk" / "templates").mkdir(parents=True)
    (repo / ".tsk" / "templates" / "lint.md").write_text("---\nscript: true\n---\nset -e\n{{PROMPT}}\n")
    _added(repo, "-t", "lint", "-p", "true")


def test_exec_as_the_configured_agent_with_a_prose_template_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".tsk/tsk.toml": 'stack = "default"\nagent = "exec"\n'})
    res = run_tsk("add", "-t", "fix", "-p", "the bug", cwd=repo)
    assert res.returncode == 2 and "exec agent" in res.stderr


def test_retry_carries_every_override_into_the_new_task(repo: Path) -> None:
    first = _added(repo, "-n", "first", "-p", "true")
    other = _added(repo, "-n", "other", "-p", "true")
    assert run_tsk("cancel", first, other, cwd=repo).returncode == 0
    res = run_tsk("retry", first, "-n", "renamed", "-a", "codex", "--stack", "python", "--model", "gpt-x",
                  "--sudo", "--privileged", "--dind", "--device", "/dev/null", "--parent", other, "--json", cwd=repo)
    assert res.returncode == 0, res.stderr
    [outcome] = json.loads(res.stdout)
    new = _stored(outcome["new_id"])
    assert new.name == "renamed" and new.agent == "codex" and new.stack == "python"
    assert new.parents == (other,) and new.retry_of == first
    cfg = new.config
    assert (cfg["model"], cfg["sudo"], cfg["privileged"], cfg["dind"], cfg["devices"]) == (
        "gpt-x", True, True, True, ["/dev/null"])
    sources = cfg["sources"]
    assert isinstance(sources, dict) and sources["agent"] == sources["dind"] == "cli"
    again = json.loads(run_tsk("retry", other, "--json", cwd=repo).stdout)[0]
    plain = _stored(again["new_id"])  # no flags: the old task's config as it was
    assert plain.name == "other" and plain.agent == "exec" and plain.config["dind"] is False


def test_retry_with_a_project_resolves_that_projects_settings(repo: Path, tsk_home: Path) -> None:
    (tsk_home / "config" / "tsk").mkdir(parents=True)
    (tsk_home / "config" / "tsk" / "tsk.toml").write_text('[project.other]\nmemory_gb = 3.0\n')
    tid = _added(repo, "-p", "true")
    run_tsk("cancel", tid, cwd=repo)
    new_id = json.loads(run_tsk("retry", tid, "--project", "other", "--json", cwd=repo).stdout)[0]["new_id"]
    new = _stored(new_id)
    assert new.project == "other" and new.config["memory_gb"] == 3.0 and new.agent == "exec"


def test_retry_from_cwd_starts_from_the_working_tree_here(repo: Path, tmp_path: Path) -> None:
    parent = _added(repo, "-p", "true")
    child = _added(repo, "-p", "true", "--parent", parent)
    run_tsk("cancel", parent, cwd=repo)
    elsewhere = make_repo(tmp_path / "elsewhere", PROJECT)
    res = run_tsk("retry", child, "--from-cwd", "--json", cwd=elsewhere)
    assert res.returncode == 0, res.stderr
    new = _stored(json.loads(res.stdout)[0]["new_id"])
    assert new.repo == str(elsewhere) and new.parents == () and new.status == "QUEUED"


def test_retry_refuses_a_parent_that_follows_it_and_exec_with_a_prose_template(repo: Path) -> None:
    parent = _added(repo, "-p", "true")
    child = _added(repo, "-p", "true", "--parent", parent)
    run_tsk("cancel", parent, cwd=repo)
    res = run_tsk("retry", parent, "--parent", child, cwd=repo)
    assert res.returncode == 2 and "cannot wait for itself or for a task that follows it" in res.stderr
    res = run_tsk("add", "-a", "claude", "-t", "feat", "-p", "x", cwd=repo)
    feat = res.stdout.strip()
    run_tsk("cancel", feat, cwd=repo)
    res = run_tsk("retry", feat, "-a", "exec", cwd=repo)
    assert res.returncode == 2 and "template `feat` is prose" in res.stderr
    assert run_tsk("retry", cwd=repo).returncode == 2
    assert "one agent" in run_tsk("retry", feat, "-a", "exec,claude", cwd=repo).stderr


def _on_a_terminal(argv: list[str], cwd: Path, answers: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run a command with a terminal for stdin and stdout, answering each question (a prompt's text)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=follower, stdout=follower, stderr=follower,
                            env={**os.environ, "TSK_LAUNCHER": "0"})
    os.close(follower)
    seen, answered = "", set()
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                seen += os.read(leader, 4096).decode(errors="replace")
            except OSError:
                break
        for question, answer in answers.items():
            if question in seen and question not in answered:
                answered.add(question)
                os.write(leader, answer.encode() + b"\n")
    try:
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        while select.select([leader], [], [], 0.1)[0]:  # what it wrote last
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the other side is closed: all read
                break
            if not chunk:
                break
            seen += chunk.decode(errors="replace")
    finally:
        proc.kill()
        proc.wait()
        os.close(leader)
    return code, seen


def test_retry_on_a_terminal_asks_whether_the_children_follow(repo: Path) -> None:
    parent = _added(repo, "-p", "true")
    child = _added(repo, "-p", "true", "--parent", parent)
    run_tsk("cancel", parent, cwd=repo)  # the child is cancelled with it
    code, seen = _on_a_terminal([*TSK, "retry", parent], repo, {"Retry them too?": "n"})
    assert code == 0, seen
    assert "has 1 dependent task(s): " in seen and child in seen
    assert seen.count(": retried as ") == 1  # the parent alone
    code, seen = _on_a_terminal([*TSK, "retry", child], repo, {"Start from the parents' results again?": "y"})
    assert code == 0, seen
    assert f"{child} (after {parent})" in seen


def test_retry_edit_opens_the_old_instructions_in_the_editor(repo: Path, tsk_home: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    tid = _added(repo, "-p", "echo before")
    run_tsk("cancel", tid, cwd=repo)
    monkeypatch.setenv("EDITOR", "sed -i s/before/after/")
    code, seen = _on_a_terminal([*TSK, "retry", tid, "-e", "--no-children"], repo, {})
    assert code == 0, seen
    new_id = seen.split(": retried as ")[1].split()[0]
    assert (tsk_home / "data" / "tsk" / "tasks" / new_id / "instructions.md").read_text() == "echo after\n"
    assert (tsk_home / "data" / "tsk" / "tasks" / tid / "instructions.md").read_text() == "echo before\n"


def test_retry_without_a_terminal_asks_nothing_and_the_children_follow(repo: Path) -> None:
    parent = _added(repo, "-p", "true")
    _added(repo, "-p", "true", "--parent", parent)
    run_tsk("cancel", parent, cwd=repo)
    res = run_tsk("retry", parent, cwd=repo)
    assert res.returncode == 0 and res.stdout.count(": retried as ") == 2 and "[Y/n]" not in res.stdout


def test_proxy_only_builds_the_proxy_alone_and_refuses_what_would_not_apply(repo: Path) -> None:
    from tsk.context import Context
    from tsk.layers.service import TargetRequest, targets

    ctx = Context(cwd=repo)
    got = targets(ctx, TargetRequest(repo=str(repo), sandbox=False), base_id="sha256:" + "0" * 64)
    assert [t.label for t in got] == ["proxy"]
    for extra in (("--stack", "go"), ("--dry-run",), ("--agent", "codex")):
        for group in ("layers", "docker"):
            res = run_tsk(group, "build", "--proxy-only", *extra, cwd=repo)
            assert res.returncode == 2 and f"{extra[0]} would not apply" in res.stderr, res.stderr


@pytest.mark.parametrize("workers", ["0", "33"])
def test_server_workers_are_bounded_as_upstreams(workers: str, tmp_path: Path) -> None:
    res = run_tsk("server", "start", "-w", workers, "--plain", cwd=tmp_path)
    assert res.returncode == 2 and "must be from 1 to 32" in res.stderr


def test_server_start_takes_sound() -> None:
    assert _bound("server", "start", "-s", "-w", "32") == {"sound": True, "workers": 32}


def _fake_notify_send(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "notify.log"
    (bin_dir / "notify-send").write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" >> {log}\necho --- >> {log}\n")
    (bin_dir / "notify-send").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return log


def test_a_task_end_is_notified_with_a_sound_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tsk.notify import task_ended

    log = _fake_notify_send(tmp_path, monkeypatch)
    env = {"DISPLAY": ":0"}
    task_ended("t1", "fix", "COMPLETE", "tsk/generic/fix/t1", env, sound=True)
    task_ended("t2", "fix", "FAILED", None, env)
    task_ended("t3", "fix", "RUNNING", None, env, sound=True)  # not an end
    task_ended("t4", "fix", "COMPLETE", None, {}, sound=True)  # no desktop
    first, second = log.read_text().split("---\n")[:2]
    assert first.splitlines() == ["--app-name=tsk", "--hint=string:sound-name:message-new-instant",
                                  "tsk: fix COMPLETE", "t1: branch tsk/generic/fix/t1"]
    assert second.splitlines() == ["--app-name=tsk", "tsk: fix FAILED", "t2: no branch"]
    assert log.read_text().count("---") == 2


def test_tsk_run_notifies_its_tasks_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fakes import FakeBuilder, FakeEngine

    from tsk.context import Context
    from tsk.queue.control import Quiet
    from tsk.queue.db import SqliteStore
    from tsk.sandbox import runner

    repo = make_repo(tmp_path / "repo", {"README.md": "x\n", ".tsk/tsk.toml": 'stack = "default"\n'})
    engine = FakeEngine()
    engine.add("debian:trixie")
    builder = FakeBuilder(engine)
    ctx = Context(cwd=repo, engine=engine, builder=lambda: builder)
    ended: list[tuple[str, str]] = []
    monkeypatch.setattr(runner, "task_ended", lambda tid, name, status, branch, environ, **_: ended.append(
        (tid, status)))
    store = SqliteStore(ctx.paths.data)
    try:
        result = runner.run_task(ctx, runner.RunRequest(instructions="echo hi\n", agent="exec", repo=str(repo)),
                                 Quiet(), store)
    finally:
        store.close()
    assert ended == [(result.task.id, result.task.status)] and result.task.status == "COMPLETE"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_terminal_title_is_set_while_working_and_the_old_one_given_back() -> None:
    from tsk.cli.title import POP, PUSH, terminal_title

    out = _Tty()
    with terminal_title("tsk run: fix\x1b]bad", {"TERM": "xterm"}, out):
        assert out.getvalue() == f"{PUSH}\x1b]0;tsk run: fix]bad\x07"
    assert out.getvalue().endswith(POP)
    for stream, term in ((io.StringIO(), "xterm"), (_Tty(), "dumb")):
        with terminal_title("x", {"TERM": term}, stream):
            pass
        assert stream.getvalue() == ""


def test_tsk_help_is_the_commands_help() -> None:
    for words in (["run"], ["layers", "build"], ["retry"]):
        assert run_tsk("help", *words).stdout == run_tsk(*words, "--help").stdout
    res = run_tsk("help", "layers", "nope")
    assert res.returncode == 2 and "`tsk layers` has no command `nope`" in res.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_name_the_commands_and_parse(shell: str, tmp_path: Path) -> None:
    res = run_tsk("completion", shell)
    assert res.returncode == 0, res.stderr
    script = res.stdout
    assert "retry" in script and "dind" in script and "completion" in script
    checker = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-execute"]}[shell]
    if shell != "bash" and shutil.which(checker[0]) is None:
        return  # bash always checks; the others when they are installed
    path = tmp_path / f"tsk.{shell}"
    path.write_text(script)
    done = subprocess.run([*checker, str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_completion_refuses_an_unknown_shell() -> None:
    res = run_tsk("completion", "tcsh")
    assert res.returncode == 2


def test_help_and_completion_are_forked_by_the_launcher() -> None:
    from tsk.launcher import _forkable

    assert _forkable(["help", "run"]) and _forkable(["completion", "bash"])

