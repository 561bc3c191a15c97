"""`tsk shell` driven through tmux as a person would: type a command, resize, exit, find the branch."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import make_repo

pytestmark = pytest.mark.docker


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", "tsk-test", *args], capture_output=True, text=True, check=True).stdout


def _wait_for(text: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-t", "shell", "-S", "-200")
        if text in screen:
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never appeared on the screen:\n{screen}")


def test_shell_through_tmux(tmp_path: Path, engine, tsk_home: Path) -> None:  # type: ignore[no-untyped-def]
    assert shutil.which("tmux"), "tmux is needed to drive tsk shell (scripts/test installs it)"
    repo = make_repo(tmp_path / "shelly", {"README.md": "hi\n", ".tsk/tsk.toml": 'stack = "default"\n'})
    env = " ".join(f"{k}={shlex.quote(str(tsk_home / v))}" for k, v in
                   (("TSK_CONFIG_HOME", "config"), ("TSK_DATA_HOME", "data"), ("TSK_CACHE_HOME", "cache"),
                    ("TSK_RUNTIME_DIR", "run")))
    cmd = f"cd {shlex.quote(str(repo))} && env {env} {shlex.quote(sys.executable)} -m tsk shell; echo TSK-DONE-$?; sleep 600"
    _tmux("new-session", "-d", "-s", "shell", "-x", "120", "-y", "40", cmd)
    try:
        _wait_for("/workspace/shelly")
        _tmux("send-keys", "-t", "shell", "echo typed-by-a-person > typed.txt && echo COLS=$(tput cols)", "Enter")
        _wait_for("COLS=120")
        _tmux("resize-window", "-t", "shell", "-x", "90", "-y", "40")
        time.sleep(0.5)
        _tmux("send-keys", "-t", "shell", "clear; echo COLS=$(tput cols)", "Enter")
        _wait_for("COLS=90")
        _tmux("send-keys", "-t", "shell", "exit", "Enter")
        screen = _wait_for("TSK-DONE-")
    finally:
        subprocess.run(["tmux", "-L", "tsk-test", "kill-server"], capture_output=True, check=False)
    assert "TSK-DONE-0" in screen, screen
    branch = next(line.split()[2] for line in screen.splitlines() if line.startswith("tsk: branch "))
    assert branch.startswith("tsk/shell/")
    content = subprocess.run(["git", "-C", str(repo), "show", f"{branch}:typed.txt"], capture_output=True, text=True,
                             check=True).stdout
    assert content == "typed-by-a-person\n"
    assert not (repo / "typed.txt").exists()


def test_shell_without_a_terminal_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    res = subprocess.run([sys.executable, "-m", "tsk", "shell"], cwd=repo, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 2 and "needs a terminal" in res.stderr
