"""`tsk shell` driven through tmux as a person would: type a command, resize, exit, find the branch."""

from __future__ import annotations

import itertools
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import git, make_repo, wait_until

pytestmark = pytest.mark.docker


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", "tsk-test", *args], capture_output=True, text=True, check=True).stdout


def _screen() -> str:
    return _tmux("capture-pane", "-p", "-t", "shell", "-S", "-200")


def _wait_for(text: str, timeout: float = 120) -> str:
    """The screen, once `text` is on it."""
    def shown() -> str | None:
        screen = _screen()
        return screen if text in screen else None

    return wait_until(shown, timeout=timeout, every=0.3, what=lambda: f"{text!r} on the screen:\n{_screen()}")


def _columns(ask: int) -> int:
    """The width the shell in the sandbox sees now (`ask` tells this answer from earlier ones)."""
    _tmux("send-keys", "-t", "shell", f"clear; echo COLS-{ask}=$(tput cols)", "Enter")
    answer = re.compile(rf"COLS-{ask}=(\d+)")

    def answered() -> int | None:
        found = answer.search(_screen())
        return int(found.group(1)) if found else None

    return wait_until(answered, timeout=120, every=0.3, what=lambda: f"an answer to ask {ask}:\n{_screen()}")


def test_shell_through_tmux(tmp_path: Path, engine, tsk_home: Path) -> None:  # type: ignore[no-untyped-def]
    assert shutil.which("tmux"), "tmux is needed to drive tsk shell (scripts/test installs it)"
    repo = make_repo(tmp_path / "shelly", {"README.md": "hi\n", ".tsk/tsk.toml": 'stack = "default"\n'})
    env = " ".join(f"{k}={shlex.quote(str(tsk_home / v))}" for k, v in
                   (("TSK_CONFIG_HOME", "config"), ("TSK_DATA_HOME", "data"), ("TSK_CACHE_HOME", "cache"),
                    ("TSK_RUNTIME_DIR", "run")))
    cmd = f"cd {shlex.quote(str(repo))} && env {env} {shlex.quote(sys.executable)} -m tsk shell -p shell-prompt-marker; echo TSK-DONE-$?; sleep 600"
    _tmux("new-session", "-d", "-s", "shell", "-x", "120", "-y", "40", cmd)
    try:
        opened = _wait_for("/workspace/shelly")
        # as upstream: the task's instructions (the `shell` template with the prompt), the agent's command
        assert "=== The task's instructions" in opened and "shell-prompt-marker" in opened, opened
        assert "=== The agent's command ===" in opened and "/tsk/instructions.md" in opened, opened
        _tmux("send-keys", "-t", "shell", "echo typed-by-a-person > typed.txt && echo COLS=$(tput cols)", "Enter")
        _wait_for("COLS=120")
        _tmux("resize-window", "-t", "shell", "-x", "90", "-y", "40")
        # The docker CLI passes the new size on when it gets its SIGWINCH, which nothing here can see:
        # ask the sandbox until it has the new width.
        asks = itertools.count()
        wait_until(lambda: _columns(next(asks)) == 90, timeout=60, every=0.3,
                   what=lambda: f"the sandbox to see 90 columns:\n{_screen()}")
        _tmux("send-keys", "-t", "shell", "exit", "Enter")
        screen = _wait_for("TSK-DONE-")
    finally:
        subprocess.run(["tmux", "-L", "tsk-test", "kill-server"], capture_output=True, check=False)
    assert "TSK-DONE-0" in screen, screen
    branch = next(line.split()[2] for line in screen.splitlines() if line.startswith("tsk: branch "))
    assert branch.startswith("tsk/shell/")
    assert git(repo, "show", f"{branch}:typed.txt") == "typed-by-a-person\n"
    assert not (repo / "typed.txt").exists()


def test_shell_without_a_terminal_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    res = subprocess.run([sys.executable, "-m", "tsk", "shell"], cwd=repo, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 2 and "needs a terminal" in res.stderr
