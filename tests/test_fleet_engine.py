"""A fleet on one machine: two servers with their own data dirs, runtime dirs and host names (`alpha`,
`beta`) share one PostgreSQL task store, one bare git remote and one layer registry; tasks are added from a third
(`desk`), whose repo the servers never read: snapshots and results travel through the remote. Twenty
tasks spread over both and none runs twice; `kill -9` of one server mid-task, then the other recovers
its tasks once its lease has run out; a cancel from the adding side stops a task the other host runs
(through the store's notice: the adding side does not touch a sandbox it does not own)."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import TSK, Lines, git, run_tsk, wait_until
from registry_server import registry, tags

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("engine")]

LEASE = "3"  # seconds: a killed server's tasks are recovered a few seconds later


class Fleet:
    def __init__(self, root: Path, url: str, repo: Path) -> None:
        self.root, self.url, self.repo = root, url, repo
        self.remote = root / "remote.git"
        root.mkdir(parents=True)
        git(root, "init", "-q", "--bare", str(self.remote))
        self.servers: list[tuple[subprocess.Popen[str], Lines]] = []

    def env(self, host: str) -> dict[str, str]:
        return {"TSK_HOST": host, "TSK_DATA_HOME": str(self.root / host / "data"),
                "TSK_RUNTIME_DIR": str(self.root / host / "run"), "TSK_DATABASE_URL": self.url}

    def tsk(self, host: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run_tsk(*args, cwd=self.repo if host == "desk" else self.root, env=self.env(host), timeout=timeout)

    def add(self, script: str, *extra: str) -> str:
        res = self.tsk("desk", "add", "-a", "exec", "-p", script, *extra)
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    def start(self, host: str, *args: str) -> tuple[subprocess.Popen[str], Lines]:
        proc = subprocess.Popen([*TSK, "server", "start", "--plain", "--lease", LEASE, *args], cwd=self.root,
                                env={**os.environ, **self.env(host)}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        self.servers.append((proc, Lines(proc.stdout)))
        return self.servers[-1]

    def tasks(self) -> dict[str, dict]:
        res = self.tsk("desk", "list", "--json")
        assert res.returncode == 0, res.stderr
        return {t["id"]: t for t in json.loads(res.stdout)}

    def stop(self) -> None:
        for proc, lines in self.servers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=30)
            lines.close()


@pytest.fixture(scope="module")
def layer_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The registry the fleet's hosts share, as `[layers] registry` (a local one here)."""
    with registry(tmp_path_factory.mktemp("fleet-registry")) as host:
        yield f"{host}/tsk/layers"


@pytest.fixture
def fleet(tmp_path: Path, repo: Path, pg_url: str, tsk_home: Path, layer_registry: str):  # type: ignore[no-untyped-def]
    config = tsk_home / "config" / "tsk" / "tsk.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    f = Fleet(tmp_path / "fleet", pg_url, repo)
    config.write_text(f'[server]\nremote = "{f.remote}"\n[layers]\nregistry = "{layer_registry}"\n')
    # images first (the test is the fleet), in the shared registry: every host pulls rather than builds
    built = run_tsk("layers", "build", "--push", "-a", "exec", cwd=repo, timeout=1500)
    assert built.returncode == 0, built.stderr
    planned = json.loads(run_tsk("layers", "build", "--dry-run", "--json", "-a", "exec", cwd=repo).stdout)
    host = layer_registry.split("/", 1)[0]
    assert {f"{p['kind']}-{p['key']}" for p in planned} <= set(tags(host, "tsk/layers")), built.stdout
    try:
        yield f
    finally:
        f.stop()


def test_twenty_tasks_spread_over_two_hosts_none_twice(fleet: Fleet) -> None:
    (fleet.repo / "wip.txt").write_text("uncommitted\n")  # travels in the snapshot, never read by a server
    ids = [fleet.add(f"echo {n} > out-{n}.txt; sleep 1") for n in range(20)]
    alpha, _ = fleet.start("alpha", "-q", "-w", "2")
    beta, _ = fleet.start("beta", "-q", "-w", "2")
    for proc in (alpha, beta):
        assert proc.wait(timeout=600) == 0
    res = fleet.tsk("desk", "wait", *ids, timeout=120)  # brings every result back into the repo
    assert res.returncode == 0, res.stdout + res.stderr
    tasks = fleet.tasks()
    assert all(tasks[t]["status"] == "COMPLETE" for t in ids), [tasks[t]["error"] for t in ids]
    hosts = collections.Counter(tasks[t]["host"] for t in ids)
    assert set(hosts) == {"alpha", "beta"}, hosts  # both took a share
    for n, tid in enumerate(ids):
        branch = tasks[tid]["branch"]
        assert branch == f"tsk/generic/{tasks[tid]['name']}/{tid}"
        assert git(fleet.repo, "show", f"{branch}:out-{n}.txt") == f"{n}\n"
        assert git(fleet.repo, "show", f"{branch}:wip.txt") == "uncommitted\n"
        refs = git(fleet.remote, "for-each-ref", "--format=%(refname)", f"refs/tsk/*/{tid}").split()
        assert sorted(refs) == [f"refs/tsk/results/{tid}", f"refs/tsk/snapshots/{tid}"]
    runs = collections.Counter(tr["task"] for tr in _transitions(fleet) if tr["to"] == "RUNNING")
    assert all(runs[t] == 1 for t in ids), runs  # no task ran twice
    for host in ("alpha", "beta"):  # a server never wrote into the adding side's repo or data dir
        assert not (fleet.root / host / "data" / "tsk" / "tasks" / ids[0]).exists() or tasks[ids[0]]["host"] == host


def _transitions(fleet: Fleet) -> list[dict]:
    import psycopg

    with psycopg.connect(fleet.url) as conn:
        rows = conn.execute("SELECT task, to_status FROM transitions ORDER BY seq").fetchall()
    return [{"task": t, "to": s} for t, s in rows]


def test_kill_9_of_one_host_and_the_other_recovers_once_its_lease_runs_out(fleet: Fleet) -> None:
    long = fleet.add("echo WORKING; sleep 120")
    alpha, alpha_lines = fleet.start("alpha", "-w", "1")
    wait_until(lambda: fleet.tasks()[long]["status"] == "RUNNING" and fleet.tasks()[long]["host"] == "alpha"
               and fleet.tasks()[long]["duration"] is not None, timeout=120, what=lambda: f"alpha to run it:\n{alpha_lines}")
    queued = fleet.add("echo after > after.txt")  # alpha's only worker is busy: it waits
    os.kill(alpha.pid, signal.SIGKILL)
    alpha.wait(timeout=30)
    beta, beta_lines = fleet.start("beta", "-w", "1")
    wait_until(lambda: fleet.tasks()[long]["status"] == "FAILED" and fleet.tasks()[queued]["status"] == "COMPLETE",
               timeout=180, what=lambda: f"beta to recover alpha's task and run the queued one:\n{beta_lines}")
    tasks = fleet.tasks()
    assert "its server on alpha" in tasks[long]["error"] and "stopped renewing its lease" in tasks[long]["error"]
    assert tasks[queued]["host"] == "beta"
    trs = [tr for tr in _transitions(fleet) if tr["task"] == long]
    assert [tr["to"] for tr in trs] == ["QUEUED", "RUNNING", "FAILED"]  # recovered exactly once
    res = fleet.tsk("desk", "server", "status", "--json")
    assert res.returncode == 0 and [s["host"] for s in json.loads(res.stdout)] == ["beta"]  # alpha is gone


def test_a_cancel_from_the_adding_side_stops_a_task_the_other_host_runs(fleet: Fleet) -> None:
    tid = fleet.add("echo partial > partial.txt; echo WORKING; sleep 120")
    _, lines = fleet.start("beta", "-w", "1")
    wait_until(lambda: fleet.tasks()[tid]["status"] == "RUNNING" and fleet.tasks()[tid]["duration"] is not None,
               timeout=120, what=lambda: f"beta to run it:\n{lines}")
    wait_until(lambda: lines.having(tid, "RUNNING"), timeout=30, what=lambda: str(lines))
    res = fleet.tsk("desk", "cancel", tid)
    assert res.returncode == 0 and "its server on beta stops it" in res.stdout, res.stdout + res.stderr
    wait_until(lambda: fleet.tasks()[tid]["status"] == "CANCELLED", timeout=60, what=lambda: f"the cancel:\n{lines}")
    assert lines.having(tid, "cancel asked; stopping its sandbox")  # beta's listener did it
