"""The launcher (tsk/launcher.py): a command forked from a warm process behaves like the same
command run in-process: output, exit code, stdin, environment, working dir, signals, and death with
its own process. Each test has a launcher dir of its own, so it sees its launcher start and stop."""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import TSK, make_repo, run_tsk, wait_until

from tsk.launcher import PRELOAD, code_digest, stop_launchers


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
    assert shared.stat().st_mode & 0o777 == 0o755  # the user named it: tsk does not chmod it


def test_stopping_launchers_spares_the_process_that_reuses_a_dead_launchers_pid(launcher_dir: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        (launcher_dir / "0123456789abcdef.lock").write_text(f"{other.pid}\n")  # a launcher that exited
        stop_launchers(str(launcher_dir))
        time.sleep(0.2)
        assert other.poll() is None, "stop_launchers killed a process that is no launcher"
    finally:
        other.kill()
        other.wait()


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

    for argv in (["run", "-p", "x"], ["list", "--json"], ["layers", "build"], ["layers", "ls", "--json"],
                 ["layers", "why"], ["docker", "build"], ["template", "list"], ["template", "show", "feat"],
                 ["--help"], ["-h"], ["run", "--help"], ["shell", "--help"], ["template", "edit", "-h"], [],
                 ["layers"]):
        assert _forkable(argv), argv  # quick and plain; help only prints, whatever it is about
    for argv in (["shell"], ["server", "start"], ["run", "-e", "-p", "x"], ["add", "--edit"], ["server"],
                 ["template", "edit", "feat"], ["--version"], ["shell", "--", "--help"],
                 ["add", "--edit", "--help"], ["layers", "nosuch"]):
        assert not _forkable(argv), argv


def test_every_preloaded_module_imports() -> None:
    # the launcher skips a module that fails to import (the command then imports its own); a module
    # renamed or moved must not drop out of the preload unseen
    for name in PRELOAD:
        importlib.import_module(name)


def _started(where: Path, repo: Path) -> int:
    run_tsk("--help", cwd=repo)  # a forked command: the first one runs in-process and starts the launcher
    return _launcher_pid(where)


@pytest.mark.parametrize(("argv", "forked"), [
    (["--help"], True), ([], True), (["layers", "--help"], True), (["layers", "build", "--help"], True),
    (["template", "edit", "--help"], True), (["layers", "build", "--no-such-flag"], True),
    (["template", "list"], True), (["template", "show", "nosuch"], True),
    (["--version"], False),  # answered without the launcher or cyclopts (tests/test_cli.py)
    (["nosuch"], False),
])
def test_help_version_and_errors_are_the_same_through_the_launcher(launcher_dir: Path, tmp_path: Path,
                                                                    argv: list[str], forked: bool) -> None:
    repo = make_repo(tmp_path / "repo")
    pid = _started(launcher_dir, repo)
    via = run_tsk(*argv, cwd=repo)
    direct = run_tsk(*argv, cwd=repo, env={"TSK_LAUNCHER": "0"})
    assert (via.returncode, via.stdout, via.stderr) == (direct.returncode, direct.stdout, direct.stderr)
    assert direct.stdout or direct.stderr
    debug = run_tsk(*argv, cwd=repo, env={"TSK_DEBUG": "1"})
    assert _forked_by(debug.stderr) == (pid if forked else None), debug.stderr


def _on_a_terminal(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, bytes]:
    """tsk with a 100x30 terminal as its stdin, stdout and stderr: its exit code and what it wrote."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    full = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES")}
    proc = subprocess.Popen([*TSK, *argv], cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
                            env={**full, "TERM": "xterm-256color", **env})
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every holder of the terminal's other end has closed it
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout=30), out


@pytest.mark.parametrize("argv", [["--help"], ["layers", "build", "--help"], ["template", "list"]])
def test_on_a_terminal_the_forked_command_renders_as_in_process(launcher_dir: Path, tmp_path: Path,
                                                                 argv: list[str]) -> None:
    # rich decides colours and width from the terminal it writes to: the child must see the caller's
    repo = make_repo(tmp_path / "repo")
    _started(launcher_dir, repo)
    forked = _on_a_terminal(argv, repo, {})
    direct = _on_a_terminal(argv, repo, {"TSK_LAUNCHER": "0"})
    assert forked == direct
    assert forked[0] == 0 and b"\x1b[" in forked[1]  # coloured: rich saw a terminal
    assert max(len(line) for line in forked[1].decode().splitlines()) > 80  # its width, not a default 80


def test_a_ctrl_c_before_the_pid_is_known_still_reaches_the_child(launcher_dir: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    _started(launcher_dir, repo)
    added = run_tsk("add", "-a", "exec", "-p", "true", cwd=repo)
    assert added.returncode == 0, added.stderr
    task_id = json.loads(run_tsk("list", "--json", cwd=repo).stdout)[0]["id"]
    proc = subprocess.Popen([*TSK, "wait", task_id], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "TSK_LAUNCHER_TEST_HOLD_SECONDS": "2"})
    assert proc.stderr is not None
    try:
        line = proc.stderr.readline()  # the child is forked; the command's process waits for its pid
        assert "holds its pid back" in line, line
        child = int(line.split()[4])
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "tsk: interrupted" in err
    assert _gone(child), "the Ctrl-C never reached the forked command"


def test_a_ctrl_c_while_a_launcher_never_forks_ends_the_command_as_in_process(launcher_dir: Path,
                                                                              tmp_path: Path) -> None:
    # A launcher that takes the request and goes away without forking: nothing ran, so the Ctrl-C
    # that came meanwhile is the command's own, and nothing runs after it.
    repo = make_repo(tmp_path / "repo")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(launcher_dir / f"{code_digest()}.sock"))
    listener.listen(1)
    got_request, go_away = threading.Event(), threading.Event()

    def fake_launcher() -> None:
        conn, _ = listener.accept()
        _header, fds, _flags, _addr = socket.recv_fds(conn, 8, 3)
        for fd in fds:
            os.close(fd)
        got_request.set()
        go_away.wait(30)
        conn.close()

    thread = threading.Thread(target=fake_launcher, daemon=True)
    thread.start()
    proc = subprocess.Popen([*TSK, "list"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert got_request.wait(30), "the command never reached the fake launcher"
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    finally:
        go_away.set()
    out, err = proc.communicate(timeout=30)
    thread.join(10)
    listener.close()
    assert proc.returncode == 130, err
    assert err == "tsk: interrupted\n" and out == ""
    assert not list(launcher_dir.glob("*.lock")), "it went on to start a launcher after the Ctrl-C"


# -- who may use the launcher ----------------------------------------------------------------------------


@pytest.mark.parametrize("wrapper", [["setpriv", "--no-new-privs"], ["unshare", "--user", "--map-root-user"]])
def test_a_caller_confined_otherwise_runs_the_command_itself(launcher_dir: Path, tmp_path: Path,
                                                              wrapper: list[str]) -> None:
    """A process under no-new-privileges, or in other namespaces (a sandbox sharing the socket), must not
    get an unconfined child of the launcher: the launcher tells it to run the command in-process."""
    repo = make_repo(tmp_path / "repo")
    run_tsk("list", cwd=repo)
    pid = _launcher_pid(launcher_dir)
    plain = run_tsk("list", cwd=repo, env={"TSK_DEBUG": "1"})
    assert _forked_by(plain.stderr) == pid  # an unconfined caller is forked
    confined = subprocess.run([*wrapper, *TSK, "list"], cwd=repo, capture_output=True, text=True,
                              env={**os.environ, "TSK_DEBUG": "1"}, check=False)
    assert confined.returncode == 0, confined.stderr
    assert _forked_by(confined.stderr) is None and "task(s)" in confined.stdout
    assert _launcher_pid(launcher_dir) == pid  # and no second launcher was started for it


def test_another_user_is_refused_and_a_malformed_request_keeps_none_of_its_fds(tmp_path: Path) -> None:
    import socket
    import tempfile

    from tsk.launcher import _fork_command, confinement, peer_verdict

    shared = Path(tempfile.mkdtemp(prefix="tsk-peer-", dir="/tmp"))  # tmp_path's parents are closed to others
    shared.chmod(0o777)
    path = str(shared / "s.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o777)
    listener.listen(1)
    listener.settimeout(20)
    child = os.fork()
    if child == 0:  # another user of this host, reaching the socket
        try:
            os.setgid(65534)
            os.setuid(65534)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            time.sleep(5)
        finally:
            os._exit(0)
    try:
        conn, _ = listener.accept()
        assert peer_verdict(conn, confinement(os.getpid())) == "refuse"
        conn.close()
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)

    # ours, with a garbled body: every fd it passed is closed again (a leaked write end keeps a pipe open)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    conn, _ = listener.accept()
    r, w = os.pipe()
    socket.send_fds(client, [(16).to_bytes(8, "big")], [w, w, w])
    os.close(w)
    client.sendall(b"not marshal data")
    _fork_command(listener, os.open(os.devnull, os.O_RDONLY), conn, confinement(os.getpid()))
    os.set_blocking(r, False)
    assert os.read(r, 1) == b""  # EOF: no write end is left open anywhere
    client.close()
    listener.close()
    shutil.rmtree(shared)


def test_the_tmp_fallback_runtime_dir_must_be_private_and_ours(tmp_path: Path) -> None:
    from tsk.context import _check_shared_runtime
    from tsk.errors import TskError
    from tsk.paths import Paths

    assert Paths.from_env({"HOME": str(tmp_path)}).runtime_shared
    assert not Paths.from_env({"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path)}).runtime_shared
    _check_shared_runtime(tmp_path / "fresh")  # made, 0700
    assert oct((tmp_path / "fresh").stat().st_mode & 0o777) == "0o700"
    (tmp_path / "readable").mkdir()
    (tmp_path / "readable").chmod(0o755)  # an older tsk made it so: closed now
    _check_shared_runtime(tmp_path / "readable")
    assert oct((tmp_path / "readable").stat().st_mode & 0o777) == "0o700"
    (tmp_path / "open").mkdir(mode=0o777)
    (tmp_path / "open").chmod(0o777)  # others could have planted something in it
    (tmp_path / "link").symlink_to(tmp_path / "fresh")
    for bad in ("open", "link"):
        with pytest.raises(TskError, match="not a private directory"):
            _check_shared_runtime(tmp_path / bad)
