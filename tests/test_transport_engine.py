"""Code through a git remote against the real engine, with the exec agent: with `[server] remote` set to
a bare repo, `tsk add` pushes the snapshot (uncommitted file included), the server's worker runs the
task from its own mirror of the remote (not from the user's repo) and pushes the result; the branch
reaches the user's repo only through `tsk wait` and `tsk fetch`. A child starts from its parent's
result on the remote. (One data dir here: two hosts need a shared store, tests/test_fleet_engine.py.)"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import git, run_tsk

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("engine")]


def _has(repo: Path, ref: str) -> bool:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "-q", ref], capture_output=True,
                          check=False).returncode == 0


def test_a_task_travels_through_the_remote_and_comes_back_by_wait_and_fetch(
        repo: Path, tsk_home: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    cfg = tsk_home / "config" / "tsk" / "tsk.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f'[server]\nremote = "{remote}"\n')
    (repo / "wip.txt").write_text("uncommitted\n")
    git(repo, "config", "user.name", "Ada Desk")  # the worker has no such config: the task carries it
    git(repo, "config", "user.email", "ada@desk.example")

    add = run_tsk("add", "-a", "exec", "-p", "test -f wip.txt && echo agent > agent.txt && git add agent.txt && "
                  "git commit -qm 'the agent commits'", cwd=repo)
    assert add.returncode == 0, add.stderr
    tid = add.stdout.split()[0]
    child = run_tsk("add", "-a", "exec", "-p", "test -f agent.txt && echo child > child.txt", "--parent", tid,
                    cwd=repo)
    assert child.returncode == 0, child.stderr
    cid = child.stdout.split()[0]
    assert _has(remote, f"refs/tsk/snapshots/{tid}")
    snapshot = git(remote, "rev-parse", f"refs/tsk/snapshots/{tid}").strip()
    assert git(remote, "show", f"{snapshot}:wip.txt") == "uncommitted\n"
    git(repo, "config", "user.name", "Not Read")  # the worker does not read the repo's config: the add-time one
    before = git(repo, "for-each-ref") + (repo / ".git" / "HEAD").read_text()

    served = run_tsk("server", "start", "--plain", "-q", "-w", "1", cwd=repo, timeout=1500)
    assert served.returncode == 0, served.stderr + served.stdout
    data = tsk_home / "data" / "tsk"
    tasks = {t["id"]: t for t in (json.loads((data / "tasks" / i / "task.json").read_text()) for i in (tid, cid))}
    assert tasks[tid]["status"] == "COMPLETE", tasks[tid]
    assert tasks[cid]["status"] == "COMPLETE", tasks[cid]
    for t in tasks.values():
        assert t["result_ref"] == f"refs/tsk/results/{t['id']}" and t["result_branch"] is None
        assert git(remote, "rev-parse", t["result_ref"]).strip() == t["result_commit"]
    # the worker ran from its mirror of the remote, not from the user's repo
    mirrors = data / "mirrors"
    for i in (tid, cid):
        snap = json.loads((data / "tasks" / i / "snapshot.json").read_text())
        assert Path(snap["repo"]).parent.parent == mirrors and snap["project"] == repo.name
    assert tasks[cid]["source_commit"] == tasks[tid]["result_commit"]  # the child started from its parent's result
    # ... and the user's repo has not been written to yet
    assert git(repo, "for-each-ref") + (repo / ".git" / "HEAD").read_text() == before
    assert not _has(repo, tasks[tid]["branch"])

    waited = run_tsk("wait", tid, "--json", cwd=repo)
    assert waited.returncode == 0, waited.stderr
    got = json.loads(waited.stdout)[0]
    branch = tasks[tid]["branch"]
    assert got["branch"] == branch and got["not_fetched"] is None
    assert git(repo, "rev-parse", branch).strip() == tasks[tid]["result_commit"]
    assert git(repo, "show", f"{branch}:wip.txt") == "uncommitted\n"
    assert git(repo, "show", f"{branch}:agent.txt") == "agent\n"
    assert git(repo, "log", "-1", "--format=%s|%an <%ae>", branch) == "the agent commits|Ada Desk <ada@desk.example>\n"

    fetched = run_tsk("fetch", cid, "--json", cwd=repo)
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)[0]["action"] == "fetched"
    cbranch = tasks[cid]["branch"]
    assert set(git(repo, "ls-tree", "--name-only", cbranch).split()) >= {"wip.txt", "agent.txt", "child.txt"}
    again = run_tsk("fetch", cid, cwd=repo)
    assert again.returncode == 0 and "already fetched" in again.stdout
    new_refs = [ln for ln in git(repo, "for-each-ref").splitlines() if ln not in before.splitlines()]
    assert sorted(ln.split()[-1] for ln in new_refs) == sorted([f"refs/heads/{branch}", f"refs/heads/{cbranch}"])
    assert (repo / "wip.txt").read_text() == "uncommitted\n"  # the working tree as it was
