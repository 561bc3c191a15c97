"""The launcher (tsk/launcher.py): a command forked from a warm process behaves like the same
command run in-process: output, exit code, stdin, environment, working dir, signals, and death with
its own process. Each test has a launcher dir of its own, so it sees its launcher start and stop."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import TSK, make_repo, run_tsk, wait_until

from tsk.launcher import stop_launchers


@pytest.fixture
def launcher_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    where = tmp_path / "launcher"
    where.mkdir(mode=0o700)
    monkeypatch.setenv("TSK_LAUNCHER_DIR", str(where))
    yield where
    stop_launchers(str(where))


def _launcher_pid(where: Path, timeout: float = 30) -> int:
    """The pid of the launcher once its socket listens (it is started by the first command)."""
    def listening() -> int | None:
        locks = list(where.glob("*.lock"))
        if list(where.glob("*.sock")) and locks and locks[0].read_text().strip():
            return int(locks[0].read_text().split()[0])
        return None

    return wait_until(listening, timeout=timeout,
                      what=lambda: f"a launcher to listen in {where}: {sorted(p.name for p in where.iterdir())}")


def _launchers_in(where: Path) -> list[int]:
    """The processes running `python -m tsk.launcher <where>`."""
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):  # not a process, or one that just ended
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if proc.name.isdigit() and b"tsk.launcher" in argv and os.fsencode(where) in argv:
                found.append(int(proc.name))
    return found


def _catches(pid: int, sig: signal.Signals) -> bool:
    """Whether process `pid` has a handler of its own for `sig` (its SigCgt mask)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def _has_open(pid: int, path: Path) -> bool:
    target = os.path.realpath(path)
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            if os.readlink(fd) == target:
                return True
    return False


def _forked_by(stderr: str) -> int | None:
    """The launcher's pid, from the debug line of a command it forked."""
    ids = _debug_pids(stderr)
    return ids[1] if ids else None


def _debug_pids(stderr: str) -> tuple[int, int] | None:
    """(the command's process, the launcher) from `tsk: debug: command process N, forked by the launcher M`."""
    for line in stderr.splitlines():
        if "forked by the launcher" in line:
            words = line.replace(",", "").split()
            return int(words[4]), int(words[-1])
    return None


def test_a_command_forked_by_the_launcher_behaves_as_in_process(launcher_dir: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    first = run_tsk("add", "-a", "exec", "-n", "one", "-p", "echo one", cwd=repo, env={"TSK_DEBUG": "1"})
    assert first.returncode == 0, first.stderr
    assert _forked_by(first.stderr) is None  # no launcher yet: in-process, and it starts one
    pid = _launcher_pid(launcher_dir)

    piped = subprocess.run([*TSK, "add", "-a", "exec", "-n", "two"], input="echo from a pipe\n", cwd=repo,
                           capture_output=True, text=True, env={**os.environ, "TSK_DEBUG": "1"}, check=False)
    assert piped.returncode == 0, piped.stderr
    assert _forked_by(piped.stderr) == pid

    forked = run_tsk("list", "--json", cwd=repo)
    direct = run_tsk("list", "--json", cwd=repo, env={"TSK_LAUNCHER": "0"})
    assert forked.returncode == direct.returncode == 0
    assert forked.stdout == direct.stdout and forked.stderr == direct.stderr
    tasks = {t["name"]: t for t in json.loads(forked.stdout)}
    assert set(tasks) == {"one", "two"}
    data = Path(os.environ["TSK_DATA_HOME"]) / "tsk" / "tasks"
    assert (data / tasks["two"]["id"] / "instructions.md").read_text() == "echo from a pipe\n"  # stdin came along

    # A bad command: the same message and exit code either way; the environment is the caller's.
    other = tmp_path / "other-data"
    bad = run_tsk("cancel", "nosuchtask", cwd=repo, env={"TSK_DATA_HOME": str(other)})
    bad_direct = run_tsk("cancel", "nosuchtask", cwd=repo, env={"TSK_DATA_HOME": str(other), "TSK_LAUNCHER": "0"})
    assert bad.returncode == bad_direct.returncode != 0
    assert bad.stderr == bad_direct.stderr and "nosuchtask" in bad.stderr
    assert run_tsk("list", "--json", cwd=repo, env={"TSK_DATA_HOME": str(other)}).stdout.strip() == "[]"


def _waiting(repo: Path, launcher_dir: Path) -> tuple[subprocess.Popen[str], int]:
    """`tsk wait` on a queued task (no server runs, so it waits until stopped), forked by the launcher."""
    run_tsk("list", cwd=repo)  # starts the launcher
    _launcher_pid(launcher_dir)
    added = run_tsk("add", "-a", "exec", "-p", "true", cwd=repo)
    assert added.returncode == 0, added.stderr
    task_id = json.loads(run_tsk("list", "--json", cwd=repo).stdout)[0]["id"]
    proc = subprocess.Popen([*TSK, "wait", task_id], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "TSK_DEBUG": "1"})
    assert proc.stderr is not None
    line = proc.stderr.readline()
    pids = _debug_pids(line)
    assert pids is not None, line
    return proc, pids[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _gone(pid: int, timeout: float = 10) -> bool:
    try:
        wait_until(lambda: not _alive(pid), timeout=timeout, what=f"process {pid} to end")
    except AssertionError:
        return False
    return True


def test_ctrl_c_reaches_the_forked_command(launcher_dir: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    proc, child = _waiting(repo, launcher_dir)
    # Ctrl-C, once it can land: the command's process passes signals on (SIGCONT is the last it takes
    # over) and its forked child is inside `tsk wait` (it has the task database open).
    from tsk.paths import Paths
    from tsk.queue.db import db_path

    db = db_path(Paths.from_env().data)
    wait_until(lambda: _catches(proc.pid, signal.SIGCONT) and _has_open(child, db), timeout=30,
               what="the command to pass signals on and its child to wait")
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err  # as in-process: Ctrl-C ends a command with 130, no traceback
    assert "Traceback" not in err
    assert _gone(child)


def test_the_forked_command_dies_with_its_process(launcher_dir: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    proc, child = _waiting(repo, launcher_dir)
    proc.kill()
    proc.communicate(timeout=10)
    assert _gone(child), "the command's process was killed, but its forked child lives on"


def test_the_launcher_stops_when_idle_and_refuses_an_unsafe_dir(launcher_dir: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    run_tsk("list", cwd=repo, env={"TSK_LAUNCHER_IDLE_SECONDS": "1"})
    pid = _launcher_pid(launcher_dir)
    assert _gone(pid, timeout=20)
    assert not list(launcher_dir.glob("*.sock"))

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)  # others may read it: the environment (API keys) must not pass through it
    res = run_tsk("list", cwd=repo, env={"TSK_LAUNCHER_DIR": str(shared)})
    assert res.returncode == 0
    # A command starts its launcher before it ends, and the launcher lives until idle: had one been
    # started for `shared`, it would be running now (or have written there already).
    assert _launchers_in(shared) == []
    assert list(shared.iterdir()) == []


def test_a_change_of_tsk_code_names_another_launcher(tmp_path: Path) -> None:
    import tsk
    from tsk.launcher import code_digest

    copy = tmp_path / "tsk"
    shutil.copytree(Path(tsk.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = code_digest(str(copy))
    assert code_digest(str(copy)) == before
    target = copy / "sandbox" / "runner.py"
    target.write_text(target.read_text() + "\n# changed\n")
    assert code_digest(str(copy)) != before


def test_interactive_commands_never_go_through_the_launcher() -> None:
    from tsk.launcher import _forkable

    assert _forkable(["run", "-p", "x"]) and _forkable(["list", "--json"])
    for argv in (["shell"], ["server", "start"], ["run", "-e", "-p", "x"], ["add", "--edit"], ["run", "--help"],
                 ["template", "edit", "feat"], []):
        assert not _forkable(argv), argv
