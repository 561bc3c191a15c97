"""Code through a git remote (tsk/snapshot/remote.py, tsk/queue/transport.py), with real git and a bare
repo as the remote: the snapshot commit (changed, deleted, a symlink, the exec bit, a file name with a
newline) and its tree on the remote; a worker's mirror and a snapshot taken from it in another data dir;
the result pushed back and fetched into the user's repo as the task branch, never over a branch already
there at another commit; and nothing else of the user's repo changing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import git, make_repo

from tsk.config.fleet import check_remote
from tsk.context import Context
from tsk.errors import TskError, UsageError
from tsk.queue import transport
from tsk.queue.db import SqliteStore
from tsk.snapshot import remote as rmt
from tsk.snapshot.merge import identity
from tsk.snapshot.take import take_snapshot
from tsk.tasks import model
from tsk.tasks.model import Task
from tsk.tasks.owner import host_name

ODD = "odd\nname\twith tab.txt"


def _user_state(repo: Path) -> tuple[str, bytes, str, list[str]]:
    """Everything of the user's repo but its objects: refs, index, HEAD, and the git dir's top files."""
    return (git(repo, "for-each-ref", "--format=%(refname) %(objectname)"), (repo / ".git" / "index").read_bytes(),
            (repo / ".git" / "HEAD").read_text(), sorted(os.listdir(repo / ".git")))


def _tree(repo: Path, rev: str) -> dict[str, tuple[str, bytes]]:
    """path -> (mode, content) of every file in `rev` (names with newlines too: -z)."""
    raw = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "-z", rev], capture_output=True,
                         check=True).stdout
    out: dict[str, tuple[str, bytes]] = {}
    for item in raw.split(b"\0"):
        if not item:
            continue
        meta, _, path = item.partition(b"\t")
        mode, _, sha = meta.decode().split(" ")
        blob = subprocess.run(["git", "-C", str(repo), "cat-file", "blob", sha], capture_output=True,
                              check=True).stdout
        out[os.fsdecode(path)] = (mode, blob)
    return out


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    return bare


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A repo with every kind of uncommitted change."""
    repo = make_repo(tmp_path / "demo", {"a.txt": "a\n", "gone.txt": "bye\n", "run.sh": "echo hi\n",
                                         "df": "a file, then a dir\n", "keep.txt": "same\n"})
    (repo / "a.txt").write_text("a changed\n")
    (repo / "gone.txt").unlink()
    (repo / "run.sh").chmod(0o755)
    (repo / "df").unlink()
    (repo / "df").mkdir()
    (repo / "df" / "inner.txt").write_text("inside\n")
    os.symlink("a.txt", repo / "link")
    (repo / ODD).write_text("hostile name\n")
    git(repo, "add", "keep.txt")  # staged or not, a change is a change; here: nothing new
    return repo


def test_the_snapshot_commit_on_the_remote_is_the_working_tree_and_the_users_repo_is_untouched(
        tmp_path: Path, work: Path, remote: Path) -> None:
    data = tmp_path / "data"
    before = _user_state(work)
    head = git(work, "rev-parse", "HEAD").strip()
    snap = take_snapshot(work, data / "tasks" / "t1", data_dir=data, branch="tsk/generic/x/t1")
    ref = rmt.push_snapshot(snap, str(remote), "t1", identity(work))
    assert ref == "refs/tsk/snapshots/t1"
    commit = git(remote, "rev-parse", ref).strip()
    assert commit != head
    assert git(remote, "rev-parse", f"{commit}^@").split() == [head]  # one commit on top of the source
    assert git(remote, "log", "-1", "--format=%an <%ae>|%s", commit).strip() == (
        f"tsk test <tsk-test@example.com>|{rmt.MESSAGE}")
    tree = _tree(remote, commit)
    assert tree == {
        "a.txt": ("100644", b"a changed\n"),
        "run.sh": ("100755", b"echo hi\n"),
        "df/inner.txt": ("100644", b"inside\n"),
        "link": ("120000", b"a.txt"),
        ODD: ("100644", b"hostile name\n"),
        "keep.txt": ("100644", b"same\n"),
    }
    assert _user_state(work) == before


def test_no_changes_push_the_source_commit_itself(tmp_path: Path, remote: Path) -> None:
    repo = make_repo(tmp_path / "clean")
    snap = take_snapshot(repo, tmp_path / "data" / "tasks" / "t2", data_dir=tmp_path / "data", branch="b/t2")
    rmt.push_snapshot(snap, str(remote), "t2", identity(repo))
    assert git(remote, "rev-parse", "refs/tsk/snapshots/t2") == git(repo, "rev-parse", "HEAD")


def _commit_in_task(git_dir: Path, branch: str, name: str, text: str) -> str:
    """What an agent does in the sandbox: one commit on the task branch, in the task git dir."""
    env = {**os.environ, "GIT_INDEX_FILE": str(git_dir.parent / "agent-index"), "GIT_AUTHOR_NAME": "Agent",
           "GIT_AUTHOR_EMAIL": "a@example.com", "GIT_COMMITTER_NAME": "Agent", "GIT_COMMITTER_EMAIL": "a@example.com"}

    def run(*args: str, stdin: bytes | None = None) -> str:
        return subprocess.run(["git", "--git-dir", str(git_dir), *args], env=env, input=stdin, capture_output=True,
                              check=True).stdout.decode().strip()

    run("read-tree", f"refs/heads/{branch}")
    blob = run("hash-object", "-w", "--stdin", stdin=text.encode())
    run("update-index", "--add", "--cacheinfo", f"100644,{blob},{name}")
    commit = run("commit-tree", run("write-tree"), "-p", f"refs/heads/{branch}", "-m", f"add {name}")
    run("update-ref", f"refs/heads/{branch}", commit)
    return commit


def test_a_worker_snapshots_from_its_mirror_pushes_the_result_and_the_adding_side_fetches_it(
        tmp_path: Path, work: Path, remote: Path) -> None:
    branch = "tsk/generic/x/t3"
    snap = take_snapshot(work, tmp_path / "desk" / "tasks" / "t3", data_dir=tmp_path / "desk", branch=branch)
    rmt.push_snapshot(snap, str(remote), "t3", identity(work))
    before = _user_state(work)

    # the worker: another data dir, the remote only
    data = tmp_path / "worker"
    mirror = rmt.fetch_into_mirror(data, str(remote), "demo", ["refs/tsk/snapshots/t3"])
    assert mirror == rmt.mirror_path(data, str(remote), "demo") and mirror.name == "demo"
    start = rmt.resolve(mirror, "refs/tsk/snapshots/t3")
    tdir = data / "tasks" / "t3"
    there = take_snapshot(mirror, tdir, data_dir=data, branch=branch, from_commit=start)
    assert (there.repo, there.project, there.source_commit) == (str(mirror), "demo", start)
    assert there.changed == () and there.deleted == () and there.head_branch is None
    checkout = Path(there.checkout_tree)
    files = {str(p.relative_to(checkout)): (p.readlink().as_posix().encode() if p.is_symlink() else p.read_bytes())
             for p in checkout.rglob("*") if p.is_symlink() or p.is_file()}
    assert files == {k: v for k, (_, v) in _tree(remote, start).items()}
    assert os.access(checkout / "run.sh", os.X_OK) and (checkout / "link").is_symlink()
    assert [p.name for p in mirror.iterdir()] == [".git"]  # its working tree is never checked out

    head = _commit_in_task(Path(there.git_dir), branch, "agent.txt", "from the agent\n")
    task = Task(id="t3", name="x", type="generic", agent="exec", stack="default", project="demo", repo=str(work),
                branch=branch, source_commit=git(work, "rev-parse", "HEAD").strip(), snapshot_ref="refs/tsk/snapshots/t3")
    notes = transport.worker_fetch(str(remote), mirror, ("a note",))(task, tdir)
    assert notes[0] == "a note"
    assert (task.result_ref, task.result_commit, task.result_branch, task.commits) == (
        "refs/tsk/results/t3", head, None, 1)
    assert git(remote, "rev-parse", "refs/tsk/results/t3").strip() == head

    # the adding side
    assert rmt.bring_back(work, str(remote), "t3", branch, head) is True
    assert git(work, "rev-parse", f"refs/heads/{branch}").strip() == head
    assert git(work, "show", f"{branch}:agent.txt") == "from the agent\n"
    assert git(work, "show", f"{branch}:a.txt") == "a changed\n"  # the uncommitted change, under the agent's commit
    refs, index, head_file, top = before
    after = _user_state(work)
    assert after[1:] == (index, head_file, top)
    assert sorted(after[0].splitlines()) == sorted([*refs.splitlines(), f"refs/heads/{branch} {head}"])
    assert rmt.bring_back(work, str(remote), "t3", branch, head) is False  # there already: nothing to do


def test_a_branch_already_there_at_another_commit_is_not_overwritten(tmp_path: Path, remote: Path) -> None:
    repo = make_repo(tmp_path / "demo")
    (repo / "new.txt").write_text("new\n")
    snap = take_snapshot(repo, tmp_path / "d" / "tasks" / "t4", data_dir=tmp_path / "d", branch="tsk/g/x/t4")
    rmt.push_snapshot(snap, str(remote), "t4", identity(repo))
    pushed = git(remote, "rev-parse", "refs/tsk/snapshots/t4").strip()
    git(remote, "update-ref", "refs/tsk/results/t4", pushed)
    git(repo, "branch", "tsk/g/x/t4")  # the user's own, at HEAD
    mine = git(repo, "rev-parse", "tsk/g/x/t4").strip()
    with pytest.raises(rmt.BranchTaken) as caught:
        rmt.bring_back(repo, str(remote), "t4", "tsk/g/x/t4", pushed)
    assert "already exists" in caught.value.message and "left as it is" in caught.value.message
    assert caught.value.hint and "refs/tsk/results/t4:refs/heads/<name>" in caught.value.hint
    assert git(repo, "rev-parse", "tsk/g/x/t4").strip() == mine


def test_remotes_are_checked_and_shown_without_their_token() -> None:
    assert check_remote("ssh://git@host/r.git") == "ssh://git@host/r.git"
    assert check_remote("host:path/r.git") == "host:path/r.git"
    assert check_remote("~/r.git") == str(Path.home() / "r.git")
    with pytest.raises(UsageError, match="relative path"):
        check_remote("r.git")
    assert rmt.shown("https://me:s3cret@example.com/r.git") == "https://example.com/r.git"


def test_a_push_that_fails_says_where_without_the_token(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "demo")
    snap = take_snapshot(repo, tmp_path / "d" / "tasks" / "t5", data_dir=tmp_path / "d", branch="b/t5")
    url = f"file://tok:s3cret@{tmp_path}/missing.git"
    with pytest.raises(rmt.RemoteError) as caught:
        rmt.push_snapshot(snap, url, "t5", identity(repo))
    assert "s3cret" not in str(caught.value) and "missing.git" in str(caught.value)


# -- the queue's side: the store, the config, `tsk fetch` --------------------------------------------------

def _configure(tsk_home: Path, remote: Path | None) -> Context:
    cfg = tsk_home / "config" / "tsk" / "tsk.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f'[server]\nremote = "{remote}"\n' if remote else "")
    return Context()


def _ended_on_the_remote(ctx: Context, store: SqliteStore, repo: Path, remote: Path, tid: str) -> Task:
    """A task added here whose worker (elsewhere) has pushed a result with one commit."""
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    result = git(repo, "commit-tree", tree, "-p", head, "-m", "the agent's").strip()
    git(repo, "push", "-q", str(remote), f"{result}:refs/tsk/results/{tid}", f"{head}:refs/tsk/snapshots/{tid}")
    task = Task(id=tid, name="x", type="generic", agent="exec", stack="default", project="demo", repo=str(repo),
                branch=f"tsk/generic/x/{tid}", status="COMPLETE", source_commit=head, result_commit=result,
                commits=1, origin=host_name(ctx.environ), host="elsewhere", snapshot_ref=f"refs/tsk/snapshots/{tid}",
                result_ref=f"refs/tsk/results/{tid}")
    store.add(task, instructions="do it", reason="test")
    return task


def test_wait_list_and_fetch_bring_results_back_once(tsk_home: Path, tmp_path: Path, remote: Path) -> None:
    from tsk.queue.control import wait
    from tsk.queue.listing import list_tasks

    repo = make_repo(tmp_path / "demo")
    ctx = _configure(tsk_home, remote)
    store = SqliteStore(ctx.paths.data)
    try:
        a, b, c = (_ended_on_the_remote(ctx, store, repo, remote, t) for t in ("ta", "tb", "tc"))
        other = Task(id="td", name="y", type="generic", agent="exec", stack="default", project="demo", repo=str(repo),
                     branch="tsk/generic/y/td", status="COMPLETE", origin="another-host", host="h",
                     result_ref="refs/tsk/results/ta", result_commit=a.result_commit)
        store.add(other, instructions="x", reason="test")
    finally:
        store.close()

    waited = wait(ctx, ["ta"])
    assert waited[0].branch == a.branch and waited[0].not_fetched is None
    assert git(repo, "rev-parse", a.branch).strip() == a.result_commit

    store = SqliteStore(ctx.paths.data)
    try:
        listing = list_tasks(store, ctx)
        rows = {t.id: t for t in listing.tasks}
        assert rows["tb"].branch == b.branch and rows["tc"].branch == c.branch
        assert rows["td"].branch is None  # added on another host: its repo is there
        assert listing.not_fetched == []
        assert all((got := store.get(t)) is not None and got.result_branch for t in ("ta", "tb", "tc"))
        assert store.get("tc").changed_files == ()  # type: ignore[union-attr]  # recorded, now the commits are here
        assert list_tasks(store, ctx).not_fetched == []  # nothing due any more: no git at all
    finally:
        store.close()
    assert git(repo, "rev-parse", c.branch).strip() == c.result_commit

    done = transport.fetch(ctx, ["ta"])
    assert [(f.action, f.branch, f.problem) for f in done] == [("already fetched", a.branch, None)]
    with pytest.raises(UsageError, match="no task `nope`"):
        transport.fetch(ctx, ["nope"])
    with pytest.raises(UsageError, match="was added on another-host"):
        transport.fetch(ctx, ["td"])


def test_fetch_says_what_is_wrong(tsk_home: Path, tmp_path: Path, remote: Path) -> None:
    repo = make_repo(tmp_path / "demo")
    ctx = _configure(tsk_home, None)
    with pytest.raises(UsageError, match=r"\[server\] remote` is not set"):
        transport.fetch(ctx, ["x"])
    ctx = _configure(tsk_home, remote)
    store = SqliteStore(ctx.paths.data)
    try:
        store.add(Task(id="local1", name="x", type="generic", agent="exec", stack="default", project="demo",
                       repo=str(repo), branch="tsk/generic/x/local1", status="COMPLETE", origin=host_name()),
                  instructions="x", reason="test")
        store.add(Task(id="run1", name="x", type="generic", agent="exec", stack="default", project="demo",
                       repo=str(repo), branch="tsk/generic/x/run1", status="RUNNING"), instructions="x", reason="t")
    finally:
        store.close()
    with pytest.raises(UsageError, match="did not go through the git remote"):
        transport.fetch(ctx, ["local1"])
    with pytest.raises(UsageError, match="is RUNNING"):
        transport.fetch(ctx, ["run1"])
    with pytest.raises(UsageError, match="needs the id"):
        transport.fetch(ctx, [])


def test_a_worker_without_a_remote_fails_a_task_whose_code_is_on_one(tsk_home: Path, tmp_path: Path) -> None:
    ctx = _configure(tsk_home, None)
    store = SqliteStore(ctx.paths.data)
    try:
        task = Task(id="t9", name="x", type="generic", agent="exec", stack="default", project="demo",
                    repo="/elsewhere/demo", branch="tsk/generic/x/t9", status="RUNNING", origin="desk",
                    snapshot_ref="refs/tsk/snapshots/t9")
        store.add(task, instructions="x", reason="test")
        with pytest.raises(TskError) as caught:
            transport.prepare(ctx, store, task)
        assert "added on desk" in caught.value.message and "[server] remote" in caught.value.message
        assert "tsk retry t9" in caught.value.message
        plain = Task(id="t8", name="x", type="generic", agent="exec", stack="default", project="demo", repo="/r",
                     branch="b/t8", status="RUNNING")
        assert transport.prepare(ctx, store, plain) is None  # no remote involved: as before
    finally:
        store.close()


def test_a_worker_builds_the_task_dir_from_the_record_and_the_remote(
        tsk_home: Path, tmp_path: Path, work: Path, remote: Path) -> None:
    """Its own task dir, instructions and snapshot from the mirror; a secret env value left on the adding
    host is said to be missing, in the log and in what the fetch returns for the summary."""
    snap = take_snapshot(work, tmp_path / "desk" / "tasks" / "t7", data_dir=tmp_path / "desk", branch="tsk/g/x/t7")
    ref = rmt.push_snapshot(snap, str(remote), "t7", identity(work))
    import msgspec

    from tsk.config.schema import EnvVar, ProjectSettings

    ctx = _configure(tsk_home, remote)
    cfg = ctx.config(work, cli=ProjectSettings(agent="exec"))
    cfg = msgspec.structs.replace(cfg, env=(EnvVar(name="API_TOKEN", value="***"),))  # as tsk add stores it
    store = SqliteStore(ctx.paths.data)
    try:
        task = Task(id="t7", name="x", type="generic", agent="exec", stack="default", project="demo",
                    repo="/on/the/desk/demo", branch="tsk/g/x/t7", status="RUNNING", origin="desk",
                    source_commit=snap.source_commit, snapshot_ref=ref, config=msgspec.to_builtins(cfg))
        store.add(task, instructions="the instructions\n", reason="test")
        fetch = transport.prepare(ctx, store, task)
        assert fetch is not None
    finally:
        store.close()
    tdir = model.task_dir(ctx.paths.data, "t7")
    assert (tdir / "instructions.md").read_text() == "the instructions\n"
    assert model.load(tdir).snapshot_ref == ref
    there = msgspec_snapshot(tdir)
    assert there["repo"] == str(rmt.mirror_path(ctx.paths.data, str(remote), "demo"))
    assert there["source_commit"] == git(remote, "rev-parse", ref).strip()
    assert "API_TOKEN" in model.agent_log(tdir).read_text()


def msgspec_snapshot(tdir: Path) -> dict[str, object]:
    import json

    return dict(json.loads((tdir / "snapshot.json").read_text()))


def test_a_child_starts_from_its_parents_results_on_the_remote(tsk_home: Path, tmp_path: Path, remote: Path) -> None:
    """Its parents' results fetched into the worker's mirror and merged there; where it starts is pushed
    as its own snapshot ref, so any host that runs it again finds it."""
    import msgspec

    from tsk.config.schema import ProjectSettings

    repo = make_repo(tmp_path / "demo")
    head = git(repo, "rev-parse", "HEAD").strip()
    results = {}
    for tid, name in (("p1", "one.txt"), ("p2", "two.txt")):
        (repo / name).write_text(f"{name}\n")
        git(repo, "add", name)
        tree = git(repo, "write-tree").strip()
        git(repo, "rm", "-q", "--cached", name)
        (repo / name).unlink()
        results[tid] = git(repo, "commit-tree", tree, "-p", head, "-m", tid).strip()
        git(repo, "push", "-q", str(remote), f"{results[tid]}:refs/tsk/results/{tid}", f"{head}:refs/tsk/snapshots/{tid}")
    ctx = _configure(tsk_home, remote)
    config = msgspec.to_builtins(ctx.config(repo, cli=ProjectSettings(agent="exec")))
    store = SqliteStore(ctx.paths.data)
    try:
        for tid in ("p1", "p2"):
            store.add(Task(id=tid, name=tid, type="generic", agent="exec", stack="default", project="demo",
                           repo="/desk/demo", branch=f"tsk/generic/{tid}/{tid}", status="COMPLETE", source_commit=head,
                           result_commit=results[tid], snapshot_ref=f"refs/tsk/snapshots/{tid}",
                           result_ref=f"refs/tsk/results/{tid}", config=config), instructions="x", reason="test")
        child = Task(id="c1", name="c", type="generic", agent="exec", stack="default", project="demo",
                     repo="/desk/demo", branch="tsk/generic/c/c1", status="RUNNING", parents=("p1", "p2"),
                     config=config)
        store.add(child, instructions="x", reason="test")
        assert transport.prepare(ctx, store, child) is not None
        saved = store.get("c1")
    finally:
        store.close()
    assert saved is not None and saved.snapshot_ref == "refs/tsk/snapshots/c1"
    start = git(remote, "rev-parse", "refs/tsk/snapshots/c1").strip()
    assert saved.source_commit == start
    assert sorted(git(remote, "rev-parse", f"{start}^@").split()) == sorted(results.values())
    assert set(git(remote, "ls-tree", "--name-only", start).split()) == {"README.md", "one.txt", "two.txt"}


def test_delete_and_clean_take_refs_off_the_remote_but_never_an_unfetched_result(
        tsk_home: Path, tmp_path: Path, remote: Path) -> None:
    from tsk.queue.control import clean, delete

    repo = make_repo(tmp_path / "demo")
    ctx = _configure(tsk_home, remote)
    store = SqliteStore(ctx.paths.data)
    try:
        for tid in ("gone1", "fetched1", "waiting1"):
            _ended_on_the_remote(ctx, store, repo, remote, tid)
    finally:
        store.close()
    assert transport.fetch(ctx, ["fetched1"])[0].action == "fetched"

    def refs() -> set[str]:
        return set(git(remote, "for-each-ref", "--format=%(refname)").split())

    done = delete(ctx, ["gone1"])
    assert [(o.action, o.note) for o in done] == [("deleted", None)]
    assert not any(r.endswith("/gone1") for r in refs())
    assert clean(ctx, older_than=0) == ["fetched1"]  # waiting1's result is only on the remote: it stays
    assert refs() == {"refs/tsk/results/waiting1", "refs/tsk/snapshots/waiting1"}
    assert git(repo, "rev-parse", "--verify", "-q", "refs/heads/tsk/generic/x/fetched1").strip()  # the branch stays

    ctx = _configure(tsk_home, tmp_path / "moved.git")  # a remote out of reach: deleted all the same, and said
    done = delete(ctx, ["waiting1"])
    assert done[0].action == "deleted" and done[0].note and "stay on the git remote" in done[0].note


def test_landing_brings_results_from_the_remote_first(tsk_home: Path, tmp_path: Path, remote: Path) -> None:
    from tsk.queue.plans import land

    repo = make_repo(tmp_path / "demo")
    ctx = _configure(tsk_home, remote)
    store = SqliteStore(ctx.paths.data)
    try:
        task = _ended_on_the_remote(ctx, store, repo, remote, "tl")
    finally:
        store.close()
    done = land(ctx, ["tl"], into="tsk/land/trunk")
    assert done.skipped == []  # not "changed nothing": its branch came back before landing
    assert git(repo, "rev-parse", "tsk/land/trunk").strip() == task.result_commit
    assert git(repo, "rev-parse", task.branch).strip() == task.result_commit
