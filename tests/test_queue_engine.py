"""The queue against the real engine, with the exec agent: the server runs tasks on several stacks in
parallel, task graphs (merge of two parents, a conflict, a failing parent), one task per agent, cancel
and retry of a running task, recovery after `kill -9` of a server, one server per data dir."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import TSK, Lines, git, run_tsk, wait_until

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("engine")]


def _add(repo: Path, script: str, *extra: str) -> list[str]:
    res = run_tsk("add", "-a", "exec", "-p", script, *extra, cwd=repo)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def _tasks(repo: Path) -> dict[str, dict]:
    res = run_tsk("list", "--json", cwd=repo)
    assert res.returncode == 0, res.stderr
    return {t["id"]: t for t in json.loads(res.stdout)}


def _serve(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    res = run_tsk("server", "start", "--plain", *args, cwd=repo, timeout=600)
    assert res.returncode == 0, res.stderr + res.stdout
    return res


def _labelled(engine, tid: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.name for c in engine.containers(f"dev.tsk.task={tid}")] + engine.volumes(f"dev.tsk.task={tid}")


def test_three_tasks_on_three_stacks_run_two_at_a_time(repo: Path, engine) -> None:  # type: ignore[no-untyped-def]
    # Images first: what is tested is the scheduling, and a cold build would keep the tasks apart.
    built = run_tsk("layers", "build", "--stack", "default,python,node", "-a", "exec", cwd=repo, timeout=1500)
    assert built.returncode == 0, built.stderr
    ids = {stack: _add(repo, f"echo {stack} > {stack}.txt; test -n \"$(command -v {cmd})\"; sleep 2", "--stack",
                       stack)[0]
           for stack, cmd in (("default", "git"), ("python", "python3"), ("node", "node"))}
    res = _serve(repo, "-q", "-w", "2")
    tasks = _tasks(repo)
    for stack, tid in ids.items():
        t = tasks[tid]
        assert t["status"] == "COMPLETE", (t["error"], t)
        assert t["stack"] == stack and t["branch"] == f"tsk/generic/{t['name']}/{tid}"
        assert git(repo, "show", f"{t['branch']}:{stack}.txt") == f"{stack}\n"
        assert not _labelled(engine, tid)
    assert "QUEUED → RUNNING" in res.stdout and "RUNNING → COMPLETE" in res.stdout
    # two at a time: some task was claimed while another was still running
    spans = sorted((tasks[t]["started"], tasks[t]["finished"]) for t in ids.values())
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans))


def test_task_graphs_merge_conflict_failure_and_one_task_per_agent(repo: Path, tsk_home: Path, each_engine) -> None:  # type: ignore[no-untyped-def]
    # Queued for the engine under test; the server itself is left to choose Docker: each task runs on the
    # engine it was queued for.
    on = each_engine.flag
    a = _add(repo, f"echo a > a.txt; test -e {each_engine.marker}", *on)[0]
    b = _add(repo, "echo b > b.txt", *on)[0]
    both = _add(repo, "test -f a.txt && test -f b.txt && echo c > c.txt", "--parent", a, "--parent", b, *on)[0]
    x = _add(repo, "echo x > same.txt", *on)[0]
    y = _add(repo, "echo y > same.txt", *on)[0]
    clash = _add(repo, "true", "--parent", x, "--parent", y, *on)[0]
    bad = _add(repo, "echo partial > p.txt; exit 3", *on)[0]
    orphan = _add(repo, "echo never > n.txt", "--parent", bad, *on)[0]
    grandchild = _add(repo, "true", "--parent", orphan, *on)[0]
    res = run_tsk("add", "-a", "exec,exec", "-p", "echo $RANDOM$$ > twin.txt", *on, cwd=repo)
    twins = res.stdout.split()
    assert len(twins) == 2
    recorded = json.loads((tsk_home / "data" / "tsk" / "tasks" / a / "task.json").read_text())
    assert recorded["config"]["container_engine"] == each_engine.name
    assert recorded["config"]["sources"]["container_engine"] == "--container-engine"
    before = git(repo, "for-each-ref") + git(repo, "status", "--porcelain") + (repo / ".git" / "HEAD").read_text()

    _serve(repo, "-q", "-w", "2")
    tasks = _tasks(repo)
    t = tasks[both]
    assert t["status"] == "COMPLETE", (t["error"], t)
    tree = git(repo, "ls-tree", "--name-only", t["branch"]).split()
    assert {"a.txt", "b.txt", "c.txt"} <= set(tree)
    merge = git(repo, "rev-parse", t["source_commit"] + "^@").split()
    assert sorted(merge) == sorted(git(repo, "rev-parse", tasks[a]["branch"], tasks[b]["branch"]).split())
    c = tasks[clash]
    assert c["status"] == "FAILED" and "same.txt" in c["error"] and x in c["error"] and y in c["error"]
    assert tasks[bad]["status"] == "FAILED" and tasks[bad]["branch"]  # its partial work came back
    assert tasks[orphan]["status"] == "FAILED" and f"parent {bad} failed" in tasks[orphan]["error"]
    assert tasks[grandchild]["status"] == "FAILED" and f"parent {orphan} failed" in tasks[grandchild]["error"]
    assert [tasks[i]["status"] for i in twins] == ["COMPLETE", "COMPLETE"]
    assert len({tasks[i]["branch"] for i in twins}) == 2
    assert tasks[a]["status"] == "COMPLETE"  # it found the file only that engine's containers have
    assert not [t for t in (a, b, both, bad, *twins) if _labelled(each_engine.engine, t)]  # nothing left there
    # the merge wrote no ref of its own and touched neither HEAD nor the working tree
    after = git(repo, "for-each-ref") + git(repo, "status", "--porcelain") + (repo / ".git" / "HEAD").read_text()
    new_refs = [ln for ln in after.splitlines() if ln not in before.splitlines()]
    assert all("refs/heads/tsk/" in ln for ln in new_refs)
    res = run_tsk("wait", both, bad, "--json", cwd=repo)
    assert res.returncode == 1
    waited = json.loads(res.stdout)
    assert [w["status"] for w in waited] == ["COMPLETE", "FAILED"] and "exit code 3" in waited[1]["error"]


def _start_server(repo: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*TSK, "server", "start", "--plain", *args], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _log_has(tsk_home: Path, tid: str, text: str) -> bool:
    log = tsk_home / "data" / "tsk" / "tasks" / tid / "log" / "agent.raw.log"
    return log.exists() and text in log.read_text()


def test_cancel_and_retry_of_a_running_task(repo: Path, tsk_home: Path, engine) -> None:  # type: ignore[no-untyped-def]
    tid = _add(repo, "echo partial > partial.txt; test -f go.txt || { echo WORKING; sleep 60; }; echo done > d.txt")[0]
    server = _start_server(repo, "-w", "1")
    try:
        wait_until(lambda: _log_has(tsk_home, tid, "WORKING"), timeout=120, what="the task to start")
        t0 = time.monotonic()
        res = run_tsk("cancel", tid, cwd=repo)
        assert res.returncode == 0 and "stopped" in res.stdout, res.stdout + res.stderr
        res = run_tsk("wait", tid, "--json", cwd=repo, timeout=120)
        assert time.monotonic() - t0 < 40  # stopped, not slept out
        t = json.loads(res.stdout)[0]
        assert res.returncode == 1 and t["status"] == "CANCELLED" and "tsk cancel" in t["error"]
        tree = git(repo, "ls-tree", "--name-only", t["branch"]).split()
        assert "partial.txt" in tree and "d.txt" not in tree
        assert not _labelled(engine, tid)

        (repo / "go.txt").write_text("now finish\n")  # the retry snapshots the repo as it is now
        res = run_tsk("retry", tid, "--json", cwd=repo)
        new = json.loads(res.stdout)[0]["new_id"]
        res = run_tsk("wait", new, cwd=repo, timeout=120)
        assert res.returncode == 0, res.stdout
        t = _tasks(repo)[new]
        assert t["status"] == "COMPLETE"
        assert "d.txt" in git(repo, "ls-tree", "--name-only", t["branch"]).split()
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=120)
    assert server.returncode == 0


def test_kill_9_then_a_new_server_recovers_and_two_servers_are_refused(repo: Path, tsk_home: Path,
                                                                      engine) -> None:  # type: ignore[no-untyped-def]
    # one has no attempt left when its server dies; the other's next attempt is quick and carries on from the
    # partial work recovery brought back
    slow = [_add(repo, "echo partial > p.txt; echo WORKING0; sleep 60", "--attempts", "1")[0],
            _add(repo, 'if [ "$TSK_ATTEMPT" = 1 ]; then echo partial > p.txt; echo WORKING1; sleep 60; '
                       'else test -f p.txt && echo second > s.txt; fi')[0]]
    server = _start_server(repo, "-w", "2")
    assert server.stdout is not None
    shown = Lines(server.stdout)
    try:
        wait_until(lambda: all(_log_has(tsk_home, t, "WORKING") for t in slow), timeout=120, what="both tasks to run")
        res = run_tsk("server", "start", "-q", cwd=repo)  # a second server on the same data dir
        assert res.returncode == 1 and "already running" in res.stderr and str(server.pid) in res.stderr
        queued = _add(repo, "echo after > after.txt")[0]  # waits: both workers are busy
        # Each pass of the server claims what it may, then prints the transitions since the last pass. So
        # once it has printed `queued`, a task added after that is printed by a later pass, whose claim
        # came after `queued` was there to take.
        wait_until(lambda: shown.having(f" {queued} ", "QUEUED"), timeout=60, what=lambda: f"the server to show {queued}:\n{shown}")
        later = _add(repo, "true")[0]
        wait_until(lambda: shown.having(f" {later} ", "QUEUED"), timeout=60, what=lambda: f"the server to show {later}:\n{shown}")
        assert _tasks(repo)[queued]["status"] == "QUEUED"
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        assert all(_tasks(repo)[t]["status"] == "RUNNING" for t in slow)
        assert all(_labelled(engine, t) for t in slow)  # the sandboxes outlived their server
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
        shown.close()
    t0 = time.monotonic()
    res = _serve(repo, "-q", "-w", "2")
    assert time.monotonic() - t0 < 40
    tasks = _tasks(repo)
    assert not [t for t in tasks.values() if t["status"] == "RUNNING"]
    final, again = (tasks[t] for t in slow)
    assert final["status"] == "FAILED" and "died while it ran" in final["error"], final
    assert final["failure_class"] == "infra" and final["attempts"] == 1
    assert again["status"] == "COMPLETE" and again["attempts"] == 2, again
    assert {"p.txt", "s.txt"} <= set(git(repo, "ls-tree", "--name-only", again["branch"]).split())
    for t in slow:
        assert not _labelled(engine, t)
    assert tasks[queued]["status"] == "COMPLETE" and tasks[queued]["branch"]
    assert "recovery: removed container" in res.stdout

    # stop: SIGTERM to the recorded pid; a graceful stop with nothing running
    server = _start_server(repo, "-w", "1")
    wait_until(lambda: (tsk_home / "data" / "tsk" / "server.pid").exists(), timeout=120, what="the server's pid file")
    res = run_tsk("server", "stop", cwd=repo)
    assert res.returncode == 0, res.stderr
    server.communicate(timeout=60)
    assert server.returncode == 0
    res = run_tsk("server", "stop", cwd=repo)
    assert res.returncode == 1 and "no tsk server is running" in res.stderr
