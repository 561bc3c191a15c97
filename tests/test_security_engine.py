"""The sandbox holds against the code inside it and against the repository's own config, on the real
engine (issue: a hostile repository or agent cannot reach the host). Each test can fail: it sets the
trap a hostile task would, then checks that the host did not fall into it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TSK, git, make_repo, run_tsk, trust, wait_until

pytestmark = pytest.mark.docker


@pytest.fixture
def repo(tmp_path: Path, engine) -> Path:  # type: ignore[no-untyped-def]
    return make_repo(tmp_path / "sec", {"README.md": "hello\n", ".tsk/tsk.toml": 'stack = "default"\n'})


def _tasks(repo: Path) -> dict[str, dict]:
    return {t["id"]: t for t in json.loads(run_tsk("list", "--json", cwd=repo).stdout)}


def _labelled(tid: str) -> list[str]:
    out = []
    for kind in ("ps", "volume"):
        cmd = ["docker", "ps", "-a", "-q"] if kind == "ps" else ["docker", "volume", "ls", "-q"]
        out += subprocess.run([*cmd, "--filter", f"label=dev.tsk.task={tid}"], capture_output=True, text=True,
                              check=True).stdout.split()
    return out


def _until(check, timeout: float = 120, what: str = "") -> None:  # type: ignore[no-untyped-def]
    wait_until(check, timeout=timeout, what=what, every=0.1)


def _running_container(repo: Path) -> tuple[str, str]:
    """(task id, container id) of the one task container running for this repo's data dir."""
    found: list[tuple[str, str]] = []

    def one() -> bool:
        for tid in _tasks(repo):
            ids = subprocess.run(["docker", "ps", "-q", "--filter", f"label=dev.tsk.task={tid}",
                                  "--filter", "label=dev.tsk.kind=task"], capture_output=True, text=True,
                                 check=True).stdout.split()
            if ids:
                found.append((tid, ids[0]))
                return True
        return False

    _until(one, what="a running task container")
    return found[0]


def _inspect(cid: str) -> dict:
    return json.loads(subprocess.run(["docker", "inspect", cid], capture_output=True, text=True, check=True).stdout)[0]


def _locked_down(info: dict, tid: str, data: Path, *, sudo: bool = False) -> None:
    """What every task container must be: no network, no capabilities (sudo adds only what sudo uses),
    no new privileges, a pids limit, no engine socket, writable only where the task writes, and its
    processes never root (sudo starts as root only to make the user, then drops)."""
    host = info["HostConfig"]
    assert host["NetworkMode"] == "none", host["NetworkMode"]
    assert host["CapDrop"] == ["ALL"] and not host["Privileged"]
    assert (host["SecurityOpt"] or []) == ([] if sudo else ["no-new-privileges"])
    assert (host["PidsLimit"] or 0) > 0 and host["Memory"] > 0 and host["NanoCpus"] > 0
    task_dir = str(data / "tasks" / tid)
    for m in info["Mounts"]:
        assert "docker.sock" not in (m.get("Source") or "") + m["Destination"], m
        if m["RW"]:
            ok = (m["Type"] == "volume" and m["Name"] == f"tsk-task-{tid}") or \
                 (m["Type"] == "bind" and m["Source"].startswith(task_dir + "/"))
            assert ok, f"a writable mount that is not the task's: {m}"
    if not sudo:
        assert info["Config"]["User"] not in ("", "0", "root", "0:0", "0:0")
    top = subprocess.run(["docker", "top", info["Id"], "-eo", "pid,uid,args"], capture_output=True, text=True,
                         check=True).stdout.splitlines()[1:]
    agent = [line for line in top if "sleep" in line]
    assert agent and all(line.split()[1] != "0" for line in agent), top


def _data(tsk_home: Path) -> Path:
    return tsk_home / "data" / "tsk"


# -- outputs the host must not trust --------------------------------------------------------------------


def test_outputs_turned_into_links_fifos_and_devices_and_a_gitlink_with_shell_in_its_path_are_inert(
        repo: Path, tmp_path: Path, tsk_home: Path) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text("the host's own file\n")
    before = canary.stat().st_mtime_ns
    pwned = tmp_path / "pwned"
    script = f"""
set -e
ln -sf {shlex.quote(str(canary))} /tsk/output/timing
ln -sf {shlex.quote(str(canary))} /tsk/output/agent.log
rm -f /tsk/output/base-commit && mkfifo /tsk/output/base-commit
ln -sf /dev/zero /tsk/output/agent.stderr
echo evil > evil.txt && git add evil.txt
git update-index --add --cacheinfo "160000,$(git rev-parse HEAD),sub\\$(touch {pwned})"
git commit -qm 'an evil gitlink'
printf '\\033]0;pwned-title\\007\\033[2Jshown plainly\\n'
"""
    t0 = time.monotonic()
    res = run_tsk("run", "-a", "exec", "-p", script, cwd=repo, timeout=120)
    assert time.monotonic() - t0 < 60, "the task did not end within a minute"
    assert res.returncode == 0, res.stderr
    assert canary.read_text() == "the host's own file\n" and canary.stat().st_mtime_ns == before
    assert not pwned.exists(), "a path from the sandbox was run as shell on the host"
    assert "\x1b" not in res.stdout + res.stderr and "\x07" not in res.stdout + res.stderr
    assert "shown plainly" in res.stdout
    branch = next(line.split()[2] for line in res.stdout.splitlines() if line.startswith("tsk: branch "))
    assert "evil.txt" in git(repo, "ls-tree", "--name-only", branch)
    # Nothing the task left blocks the server that starts next (it once hung in recovery on the FIFO).
    served = run_tsk("server", "start", "--plain", "-q", cwd=repo, timeout=60)
    assert served.returncode == 0, served.stderr


def test_a_project_asking_for_the_docker_socket_is_refused_until_trusted(repo: Path, tsk_home: Path) -> None:
    (repo / ".tsk" / "tsk.toml").write_text(
        'stack = "default"\nvolumes = [{host = "/var/run/docker.sock", container = "/var/run/docker.sock"}]\n')
    probe = "test -S /var/run/docker.sock && echo SOCKET-IS-THERE"
    refused = run_tsk("run", "-a", "exec", "-p", probe, cwd=repo)
    assert refused.returncode == 2 and "volumes[0].host" in refused.stderr and "tsk trust" in refused.stderr
    assert _tasks(repo) == {}
    trust(repo)
    accepted = run_tsk("run", "-a", "exec", "-p", probe, cwd=repo, timeout=300)
    assert accepted.returncode == 0 and "SOCKET-IS-THERE" in accepted.stdout, accepted.stderr


# -- what every task container is, and signals to tsk run ------------------------------------------------


@pytest.mark.parametrize(("sig", "extra"), [(signal.SIGTERM, ()), (signal.SIGHUP, ("--sudo",))])
def test_run_containers_are_locked_down_and_a_signal_stops_them_keeping_the_work(
        repo: Path, tsk_home: Path, sig: signal.Signals, extra: tuple[str, ...]) -> None:
    script = "echo partial > partial.txt && git add partial.txt && git commit -qm partial && sleep 300"
    proc = subprocess.Popen([*TSK, "run", "-a", "exec", *extra, "-p", script], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        tid, cid = _running_container(repo)
        _locked_down(_inspect(cid), tid, _data(tsk_home), sudo=bool(extra))
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    task = _tasks(repo)[tid]
    assert task["status"] == "CANCELLED" and sig.name in (task["error"] or ""), task
    assert _labelled(tid) == []
    assert "partial.txt" in git(repo, "ls-tree", "--name-only", task["branch"])


@pytest.mark.parametrize("launcher", ["1", "0"])
def test_under_nohup_a_hangup_leaves_tsk_run_running(repo: Path, launcher: str) -> None:
    """`nohup tsk run …` survives the terminal closing, forked by the launcher or in-process alike."""
    proc = subprocess.Popen(["nohup", *TSK, "run", "-a", "exec", "-p", "sleep 300"], cwd=repo,
                            env={**os.environ, "TSK_LAUNCHER": launcher}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        tid, cid = _running_container(repo)
        proc.send_signal(signal.SIGHUP)
        time.sleep(2)
        assert proc.poll() is None and _inspect(cid)["State"]["Running"]
        assert _tasks(repo)[tid]["status"] == "RUNNING"
        proc.send_signal(signal.SIGTERM)  # not ignored: it still stops the task, keeping its work
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    assert _tasks(repo)[tid]["status"] == "CANCELLED"


def test_queued_and_shell_containers_are_locked_down(repo: Path, tsk_home: Path) -> None:
    added = run_tsk("add", "-a", "exec", "-p", "sleep 300", cwd=repo)
    assert added.returncode == 0, added.stderr
    server = subprocess.Popen([*TSK, "server", "start", "--plain"], cwd=repo, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        tid, cid = _running_container(repo)
        _locked_down(_inspect(cid), tid, _data(tsk_home))
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=120)
    assert _labelled(tid) == []

    assert shutil.which("tmux"), "tmux is needed to drive tsk shell"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in os.environ.items() if k.startswith("TSK_"))
    cmd = f"cd {shlex.quote(str(repo))} && env {env} {shlex.quote(sys.executable)} -m tsk shell; sleep 600"
    sock = f"tsk-sec-{os.getpid()}"
    subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-s", "s", "-x", "120", "-y", "30", cmd], check=True)
    try:
        shell_id, shell_cid = _running_container(repo)
        subprocess.run(["tmux", "-L", sock, "send-keys", "-t", "s", "sleep 300", "Enter"], check=True)
        _until(lambda: any("sleep 300" in line for line in subprocess.run(
            ["docker", "top", shell_cid, "-eo", "pid,args"], capture_output=True, text=True).stdout.splitlines()),
            what="the shell's sleep")
        _locked_down(_inspect(shell_cid), shell_id, _data(tsk_home))
        # the terminal goes away: tsk shell gets SIGHUP and must not leave its container running
        subprocess.run(["tmux", "-L", sock, "kill-server"], check=True)
        _until(lambda: _labelled(shell_id) == [], timeout=60, what="the shell's container to go")
        _until(lambda: _tasks(repo)[shell_id]["status"] == "CANCELLED", timeout=60, what="the shell to be recorded")
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, check=False)


# -- kill -9 at each phase, then a server ---------------------------------------------------------------


def _ended(repo: Path, data: Path, tid: str) -> None:
    """Exactly one final state, reached once; the branch fetched at most once; nothing labelled left."""
    import sqlite3

    rows = sqlite3.connect(data / "tasks.db").execute(
        "SELECT to_status FROM transitions WHERE task = ? ORDER BY seq", (tid,)).fetchall()
    finals = [r[0] for r in rows if r[0] in ("COMPLETE", "FAILED", "CANCELLED")]
    assert len(finals) == 1, rows
    assert _labelled(tid) == []
    branch = _tasks(repo)[tid]["branch"]
    if branch:
        log = subprocess.run(["git", "-C", str(repo), "reflog", "show", "--format=%H", branch],
                             capture_output=True, text=True, check=False).stdout.split()
        assert len(log) <= 1, log


@pytest.mark.parametrize("phase", ["created", "started", "fetched"])
def test_kill_9_of_tsk_run_at_each_phase_then_a_server_leaves_one_final_state(
        repo: Path, tsk_home: Path, tmp_path: Path, phase: str) -> None:
    marker = tmp_path / "held"
    env = {**os.environ, "TSK_LAUNCHER": "0", "TSK_TEST_HOLD": f"{phase}:{marker}"}
    proc = subprocess.Popen([*TSK, "run", "-a", "exec", "-p", "echo work > w.txt && git add w.txt && git commit -qm w"],
                            cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _until(lambda: marker.exists() and marker.read_text().strip(), what=f"tsk run to reach {phase}")
        os.kill(int(marker.read_text()), signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    (tid,) = _tasks(repo)
    served = run_tsk("server", "start", "--plain", "-q", cwd=repo, timeout=300)
    assert served.returncode == 0, served.stderr
    _ended(repo, _data(tsk_home), tid)


@pytest.mark.parametrize("phase", ["claimed", "created", "started", "fetched"])
def test_kill_9_of_the_server_at_each_phase_then_a_server_leaves_one_final_state(
        repo: Path, tsk_home: Path, tmp_path: Path, phase: str) -> None:
    marker = tmp_path / "held"
    added = run_tsk("add", "-a", "exec", "-p", "echo work > w.txt && git add w.txt && git commit -qm w", cwd=repo)
    (tid,) = added.stdout.split()
    env = {**os.environ, "TSK_TEST_HOLD": f"{phase}:{marker}"}
    server = subprocess.Popen([*TSK, "server", "start", "--plain"], cwd=repo, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        _until(lambda: marker.exists() and marker.read_text().strip(), what=f"the server to reach {phase}")
        os.kill(server.pid, signal.SIGKILL)  # the whole server: the phase is held in one of its threads
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    served = run_tsk("server", "start", "--plain", "-q", cwd=repo, timeout=300)
    assert served.returncode == 0, served.stderr
    _ended(repo, _data(tsk_home), tid)


def test_a_fork_bomb_stays_inside_its_pids_limit(repo: Path, tsk_home: Path) -> None:
    """Once a fork bomb in an unlimited task froze this machine for minutes. The limit is checked on the
    running container before the bomb goes off (the script waits for a file the test writes only then);
    while it rages the host still starts processes; SIGTERM to tsk run ends it all."""
    (repo / ".tsk" / "tsk.toml").write_text('stack = "default"\npids_limit = 64\n')  # lower: needs no trust
    script = ("while [ ! -e /tsk/output/go ]; do sleep 0.1; done; echo BOMB; "
              "b() { b | b & }; b; sleep 300")
    proc = subprocess.Popen([*TSK, "run", "-a", "exec", "-p", script], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        tid, cid = _running_container(repo)
        assert _inspect(cid)["HostConfig"]["PidsLimit"] == 64  # the limit is in place: only then the bomb
        (_data(tsk_home) / "tasks" / tid / "output" / "go").write_text("")
        _until(lambda: "BOMB" in (_data(tsk_home) / "tasks" / tid / "log" / "agent.raw.log").read_text(),
               what="the bomb to go off")
        def at_the_limit() -> bool:
            out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.PIDs}}", cid],
                                 capture_output=True, text=True, check=False).stdout.strip()
            return out.isdigit() and int(out) >= 60

        _until(at_the_limit, what="the bomb to reach the container's pids limit")
        for _ in range(20):  # the host still forks at will
            assert subprocess.run(["true"], timeout=10).returncode == 0
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
    assert _labelled(tid) == []
    assert _tasks(repo)[tid]["status"] == "CANCELLED"
