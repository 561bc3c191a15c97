"""`tsk run` end to end against the real engine, with the exec agent (no API key needed)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from helpers import PROJECT, git, make_repo, run_tsk, trust

pytestmark = pytest.mark.docker


def _raw_log(task: dict) -> str:
    from tsk.paths import Paths

    return (Paths.from_env().data / "tasks" / task["id"] / "log" / "agent.raw.log").read_text()


def _run(repo: Path, script: str, *extra: str, env: dict[str, str] | None = None) -> tuple[dict, subprocess.CompletedProcess]:
    res = run_tsk("run", "--agent", "exec", "--json", "-p", script, *extra, cwd=repo, env=env)
    task = json.loads(res.stdout) if res.stdout.strip().startswith("{") else {}
    return task, res


def _state(repo: Path) -> dict[str, str]:
    """What the user has: refs, HEAD, index bytes, working tree listing with content."""
    files = {}
    for p in sorted(repo.rglob("*")):
        if ".git" in p.relative_to(repo).parts:
            continue
        rel = str(p.relative_to(repo))
        files[rel] = os.readlink(p) if p.is_symlink() else (p.read_text(errors="replace") if p.is_file() else "<dir>")
    return {"refs": git(repo, "for-each-ref"), "head": (repo / ".git" / "HEAD").read_text(),
            "index": (repo / ".git" / "index").read_bytes().hex(), "files": json.dumps(files)}


@pytest.fixture
def repo(tmp_path: Path, engine) -> Path:  # type: ignore[no-untyped-def]
    r = make_repo(tmp_path / "demo", {**PROJECT, "src/app.py": "print('app')\n", ".gitignore": ".env\nbuild/\n"})
    (r / ".env").write_text("SECRET=1\n")
    (r / "build").mkdir()
    (r / "build" / "out.bin").write_text("artifact")
    return r


def test_a_task_that_commits_comes_back_as_a_branch(repo: Path) -> None:
    before = _state(repo)
    task, res = _run(repo, "echo feature > feature.txt && git add feature.txt && git commit -qm 'add feature'")
    assert res.returncode == 0, res.stderr
    assert task["status"] == "COMPLETE" and task["result_branch"] == task["branch"]
    assert task["branch"].startswith("tsk/generic/")
    assert git(repo, "show", f"{task['branch']}:feature.txt") == "feature\n"
    assert git(repo, "log", "-1", "--format=%s", task["branch"]).strip() == "add feature"
    after = _state(repo)
    assert after["head"] == before["head"] and after["index"] == before["index"] and after["files"] == before["files"]
    assert [line for line in after["refs"].splitlines() if task["branch"] not in line] == before["refs"].splitlines()
    for phase in ("snapshot", "image", "container_create", "proxy", "container_start", "agent", "fetch", "cleanup"):
        assert phase in task["timings"]


def test_uncommitted_work_is_committed_and_deletions_and_untracked_files_carry_over(repo: Path) -> None:
    (repo / "README.md").unlink()  # an uncommitted deletion
    (repo / "notes.txt").write_text("untracked, not ignored\n")
    script = ("test ! -e README.md && test -f notes.txt && test ! -e .env && test ! -e build "
              "&& echo left > left.txt")
    task, res = _run(repo, script)
    assert res.returncode == 0, res.stderr + res.stdout
    branch = task["result_branch"]
    tree = git(repo, "ls-tree", "-r", "--name-only", branch).split()
    assert "left.txt" in tree and "notes.txt" in tree and "README.md" not in tree and ".env" not in tree
    assert (repo / "notes.txt").exists() and not (repo / "left.txt").exists()  # the user's tree is untouched


def test_a_task_that_changes_nothing_makes_no_branch(repo: Path) -> None:
    task, res = _run(repo, "git status --short")
    assert res.returncode == 0 and task["status"] == "COMPLETE"
    assert task["result_branch"] is None
    assert "tsk/" not in git(repo, "branch", "--list")
    res = run_tsk("run", "--agent", "exec", "-p", "true", cwd=repo)
    assert "no changes, no branch" in res.stdout


def test_a_failing_task_is_failed_with_its_reason_and_exit_1(repo: Path) -> None:
    task, res = _run(repo, "echo partial > p.txt; echo boom >&2; exit 3")
    assert res.returncode == 1 and task["status"] == "FAILED"
    assert "exit code 3" in task["error"]
    assert task["result_branch"]  # partial work still comes back
    plain = run_tsk("run", "--agent", "exec", "-p", "exit 4", cwd=repo)
    assert plain.returncode == 1 and "FAILED" in plain.stderr and "exit code 4" in plain.stderr


def test_the_log_is_kept_with_the_task(repo: Path, tsk_home: Path) -> None:
    task, res = _run(repo, "echo line-one; echo line-two")
    tdir = tsk_home / "data" / "tsk" / "tasks" / task["id"]
    events = [json.loads(x) for x in (tdir / "log" / "agent.log").read_text().splitlines()]
    assert [e.get("text") for e in events if e["type"] == "message"][:2] == ["line-one", "line-two"]
    assert (tdir / "instructions.md").read_text().startswith("echo line-one")
    assert json.loads((tdir / "task.json").read_text())["status"] == "COMPLETE"


def test_branch_flag_starts_from_that_branch(repo: Path) -> None:
    git(repo, "checkout", "-qb", "other")
    (repo / "only-other.txt").write_text("x\n")
    git(repo, "add", "only-other.txt")
    git(repo, "commit", "-qm", "o")
    git(repo, "checkout", "-q", "trunk")
    (repo / "dirty.txt").write_text("not taken with --branch\n")
    task, res = _run(repo, "test -f only-other.txt && test ! -e dirty.txt && echo ok > ok.txt", "--branch", "other")
    assert res.returncode == 0, res.stderr
    assert git(repo, "rev-parse", f"{task['result_branch']}~1").strip() == git(repo, "rev-parse", "other").strip()


def test_bad_inputs_are_clear_errors(tmp_path: Path, repo: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    res = run_tsk("run", "--agent", "exec", "-p", "true", cwd=plain)
    assert res.returncode == 2 and "not inside a git repository" in res.stderr
    empty = tmp_path / "empty"
    subprocess.run(["git", "init", "-q", str(empty)], check=True)
    res = run_tsk("run", "--agent", "exec", "-p", "true", cwd=empty)
    assert res.returncode == 2 and "no commits" in res.stderr
    res = run_tsk("run", "--agent", "exec", "-p", "true", "--branch", "nope", cwd=repo)
    assert res.returncode == 2 and "nope" in res.stderr
    res = run_tsk("run", "--agent", "nobody", "-p", "true", cwd=repo)
    assert res.returncode == 2 and "exec" in res.stderr and "claude" in res.stderr
    res = subprocess.run([sys.executable, "-m", "tsk", "run", "--agent", "exec"], cwd=repo, capture_output=True,
                         text=True, stdin=subprocess.DEVNULL)
    assert res.returncode == 2 and "prompt" in res.stderr
    for r in (res,):
        assert "Traceback" not in r.stderr


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello from the host")

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def test_network_policy_from_inside_the_sandbox(repo: Path, tsk_home: Path, each_engine) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    server = HTTPServer(("0.0.0.0", port), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (repo / ".tsk" / "tsk.toml").write_text(f'stack = "default"\nhost_ports = [{port}]\n')
    trust(repo)
    script = "\n".join([
        "set -u",
        "check() { if eval \"$2\" >/dev/null 2>&1; then echo \"$1=yes\"; else echo \"$1=no\"; fi; }",
        "check allowed 'curl -fsS --max-time 20 https://pypi.org/simple/ -o /dev/null'",
        "check https_unlisted 'curl -fsS --max-time 10 https://example.com/ -o /dev/null'",
        "check http_unlisted 'curl -fsS --max-time 10 http://example.com/ -o /dev/null'",
        "check http_unlisted_code 'curl -sS --max-time 10 -o /dev/null -w %{http_code} http://example.com/ | grep -q 403'",
        "check direct 'curl -fsS --noproxy \"*\" --max-time 5 https://192.0.2.1/ -o /dev/null'",
        "check dns 'getent hosts pypi.org'",
        "check metadata 'curl -fsS --noproxy \"*\" --max-time 5 http://169.254.169.254/ -o /dev/null'",
        "check metadata_via_proxy 'curl -fsS --max-time 5 http://169.254.169.254/ -o /dev/null'",
        f"check host_port 'curl -fsS --noproxy \"*\" --max-time 10 http://$TSK_PROXY_HOST:{port}/ | grep -q hello'",
        f"check host_port_no_proxy_needed 'curl -fsS --max-time 10 http://$TSK_PROXY_HOST:{port}/ | grep -q hello'",
        "check only_loopback 'test \"$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \")\" = lo'",
        f"check on_engine 'test -e {each_engine.marker}'",
    ])
    try:
        task, res = _run(repo, script, env=each_engine.env)
    finally:
        server.shutdown()
        server.server_close()
    assert res.returncode == 0, res.stderr
    log = (tsk_home / "data" / "tsk" / "tasks" / task["id"] / "log" / "agent.raw.log").read_text()
    seen = dict(line.split("=", 1) for line in log.split() if "=" in line)
    assert seen == {"allowed": "yes", "https_unlisted": "no", "http_unlisted": "no", "http_unlisted_code": "yes",
                    "direct": "no", "dns": "no", "metadata": "no", "metadata_via_proxy": "no", "host_port": "yes",
                    "host_port_no_proxy_needed": "yes", "only_loopback": "yes", "on_engine": "yes"}


def test_same_config_shares_a_proxy_and_another_config_gets_its_own(repo: Path, tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    def proxies() -> set[str]:
        return {c.name for c in engine.containers("dev.tsk.kind=proxy")}

    _run(repo, "true")
    first = proxies()
    # A port no earlier run used, so no proxy of an earlier run (they outlive tasks) has this config.
    port = 20000 + secrets.randbelow(40000)
    other = make_repo(tmp_path / "other", {"x": "1\n", ".tsk/tsk.toml": f'stack = "default"\nhost_ports = [{port}]\n'})
    trust(other)
    task_a, _ = _run(repo, "true")
    assert proxies() == first  # reused, not restarted
    _run(other, "true")
    assert len(proxies() - first) == 1
    assert task_a["status"] == "COMPLETE"


def test_nothing_is_left_on_the_engine_after_a_task(repo: Path, engine) -> None:  # type: ignore[no-untyped-def]
    task, _ = _run(repo, "true")
    tid = task["id"]
    assert not engine.containers(f"dev.tsk.task={tid}")
    vols = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"label=dev.tsk.task={tid}"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert vols == []


def test_the_users_uncommitted_changes_alone_make_no_branch(repo: Path) -> None:
    (repo / "README.md").write_text("edited but not committed\n")
    task, res = _run(repo, "grep -q edited README.md")
    assert res.returncode == 0 and task["status"] == "COMPLETE" and task["result_branch"] is None
    task, _ = _run(repo, "echo agent > agent.txt")
    log = git(repo, "log", "--format=%s", f"{task['result_branch']}").splitlines()
    assert log[:2] == [f"tsk: work left uncommitted by exec in task {task['id']}",
                       "tsk: uncommitted changes in the working tree when the task was created"]


def test_ctrl_c_cancels_and_partial_work_still_comes_back(repo: Path) -> None:
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "tsk", "run", "--agent", "exec", "-p",
                             "echo partial > partial.txt; echo WORKING; sleep 120; echo never > never.txt"],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if "WORKING" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "CANCELLED" in err
    branch = next(line.split()[2] for line in out.splitlines() if line.startswith("tsk: branch "))
    tree = git(repo, "ls-tree", "-r", "--name-only", branch).split()
    assert "partial.txt" in tree and "never.txt" not in tree


def test_sudo_is_granted_only_when_asked(repo: Path) -> None:
    script = "sudo -n apt-get --version >/dev/null 2>&1 && echo sudo=yes || echo sudo=no; id -u"
    plain, res = _run(repo, script)
    assert res.returncode == 0, res.stderr
    granted, res = _run(repo, script, "--sudo")
    assert res.returncode == 0, res.stderr

    def seen(task: dict) -> list[str]:
        return _raw_log(task).split()

    agent_uid = str(os.getuid() or 1000)  # the user's uid; the image's unprivileged agent user when that is root
    assert seen(plain) == ["sudo=no", agent_uid]
    assert seen(granted) == ["sudo=yes", agent_uid]  # the agent still runs as that user


def test_an_idle_proxy_is_stopped_by_the_runtime_dir_that_used_it_and_no_other(
        tmp_path: Path, engine, nonce: str) -> None:  # type: ignore[no-untyped-def]
    port_a, port_b = 20000 + int(nonce[:4], 16) % 20000, 40000 + int(nonce[4:8], 16) % 20000
    a = make_repo(tmp_path / "a", {"x": "1\n", ".tsk/tsk.toml": f'stack = "default"\nhost_ports = [{port_a}]\n'})
    b = make_repo(tmp_path / "b", {"x": "1\n", ".tsk/tsk.toml": f'stack = "default"\nhost_ports = [{port_b}]\n'})
    trust(a)
    trust(b)
    before = {c.name for c in engine.containers("dev.tsk.kind=proxy")}
    _run(a, "true")
    proxy_a = {c.name for c in engine.containers("dev.tsk.kind=proxy")} - before
    assert len(proxy_a) == 1
    other_runtime = tmp_path / "other-runtime"
    vols_before_b = _proxy_volumes()
    task_b, res = _run(b, "true", env={"TSK_RUNTIME_DIR": str(other_runtime), "TSK_PROXY_IDLE_SECONDS": "0"})
    assert res.returncode == 0, res.stderr
    after = {c.name for c in engine.containers("dev.tsk.kind=proxy")}
    assert proxy_a <= after  # used from another runtime dir: not this reaper's to stop
    assert after - before == proxy_a  # b's proxy was idle at once (0 s) and is gone, with its socket volume
    assert (other_runtime / "tsk").is_dir() and not list((other_runtime / "tsk").glob("proxy-*.used"))
    vols = _proxy_volumes()
    assert vols >= proxy_a  # a's proxy keeps its sockets
    assert vols == vols_before_b  # b's socket volume went with b's proxy


def _proxy_volumes() -> set[str]:
    return set(subprocess.run(["docker", "volume", "ls", "-q", "--filter", "name=tsk-proxy-"],
                              capture_output=True, text=True, check=True).stdout.split())


def test_the_jvm_reaches_an_allowed_host_through_the_proxy(repo: Path, tsk_home: Path) -> None:
    # The sandbox has no network but the proxy's: a JVM that ignored it (Maven and Gradle read no
    # HTTP_PROXY) could not reach anything. The JDK's own HTTP client goes to an allowed host.
    fetch = ('public class F { public static void main(String[] a) throws Exception {'
             ' var c = (java.net.HttpURLConnection) new java.net.URI("https://pypi.org/simple/pip/").toURL()'
             '.openConnection(); c.setConnectTimeout(20000); System.out.println("jvm_code=" + c.getResponseCode()); } }')
    task, res = _run(repo, f"printf '%s' '{fetch}' > /tmp/F.java && java /tmp/F.java", "--stack", "java")
    assert res.returncode == 0, res.stderr
    log = (tsk_home / "data" / "tsk" / "tasks" / task["id"] / "log" / "agent.raw.log").read_text()
    assert "jvm_code=200" in log, log[-2000:]


def test_the_python_stack_installs_the_project_into_its_virtualenv(tmp_path: Path, tsk_home: Path, engine) -> None:  # type: ignore[no-untyped-def]
    # What upstream tsk users run first: `uv pip install .` with no flags (no "No virtual environment
    # found"), as the user's uid, its build backend fetched from PyPI through the proxy.
    repo = make_repo(tmp_path / "pkg", {
        "pyproject.toml": ('[project]\nname = "tskdemo"\nversion = "0.1"\n[build-system]\n'
                           'requires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'),
        "tskdemo/__init__.py": "WHO = 'venv'\n",
    })
    task, res = _run(repo, "uv pip install -q . && python -c 'import tskdemo; print(\"imported_from=\" + tskdemo.WHO)'",
                     "--stack", "python")
    assert res.returncode == 0, res.stderr
    log = (tsk_home / "data" / "tsk" / "tasks" / task["id"] / "log" / "agent.raw.log").read_text()
    assert "imported_from=venv" in log, log[-2000:]


def test_a_device_flag_reaches_the_sandbox(repo: Path) -> None:
    device = next(d for d in ("/dev/fuse", "/dev/loop-control", "/dev/kvm") if os.path.exists(d))
    glob = device[:-1] + "?"  # the flag's glob, expanded on the host
    task, res = _run(repo, f"test -c {device} && echo device=yes || echo device=no", "--device", glob)
    assert res.returncode == 0, res.stderr
    plain, res = _run(repo, f"test -c {device} && echo device=yes || echo device=no")
    assert res.returncode == 0, res.stderr
    assert _raw_log(task).split() == ["device=yes"] and _raw_log(plain).split() == ["device=no"]


def test_dind_gives_the_sandbox_what_a_nested_engine_needs(repo: Path) -> None:
    script = ("grep '^Seccomp:' /proc/self/status; grep '^NoNewPrivs:' /proc/self/status; "
              "grep -c ' /home/agent/.local/share/containers tmpfs ' /proc/mounts; echo iso=$BUILDAH_ISOLATION; "
              "touch ~/.local/share/containers/w && echo writable")
    task, res = _run(repo, script, "--dind")
    assert res.returncode == 0, res.stderr
    assert _raw_log(task).split() == ["Seccomp:", "0", "NoNewPrivs:", "0", "1", "iso=chroot", "writable"]
    plain, res = _run(repo, "grep '^Seccomp:' /proc/self/status; grep '^NoNewPrivs:' /proc/self/status")
    assert _raw_log(plain).split() == ["Seccomp:", "2", "NoNewPrivs:", "1"]
