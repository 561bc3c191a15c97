"""The repo as the task sees it (DESIGN §3 Snapshot).

A task dir gets `snapshot.json`, `changes/` (copies of the uncommitted and untracked-not-ignored
files) and `git/` (the task's own git dir, with one per initialized submodule under `modules/`). The
committed files come from a read-only checkout shared by every task from the same commit; in the
container an overlay volume puts a per-task writable layer over it, the task git dir is bind-mounted
as `.git`, the user's objects dirs are bind-mounted read-only at their own paths, and `prepare_script`
(tsk/snapshot/inside.py) lays the changes over the tree before the agent starts. Taking a second
snapshot of a commit costs the uncommitted changes plus one index copy per repository.

Nothing here writes to the user's repo: every git command runs with GIT_OPTIONAL_LOCKS=0 and anything
that needs an index gets its own; only tsk/snapshot/fetch.py adds the task branch at the end."""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec

from tsk.snapshot import git as g
from tsk.snapshot.checkout import Submodule, ensure_checkout, plan_submodules
from tsk.snapshot.gitdir import Layout, check_branch, make_git_dir
from tsk.snapshot.submodules import layouts

SnapshotError = g.SnapshotError


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    repo: str  # the working tree's top (a linked worktree's own dir)
    project: str  # its dir name: the sandbox mounts it at /workspace/<project>
    git_common_dir: str
    source_commit: str
    branch: str  # the task branch, created at source_commit in the task git dir
    from_branch: str | None  # --branch: started from its committed head, working tree ignored
    head_branch: str | None = None  # the branch the user's HEAD was on (None: detached), git-town's parent
    checkout_tree: str  # the shared read-only checkout (overlay lowerdir)
    git_dir: str  # tasks/<id>/git, mounted read-write at /workspace/<project>/.git
    changes_dir: str  # tasks/<id>/changes, mounted read-only at /tsk/changes
    deleted: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    alternates: tuple[str, ...] = ()  # the user's objects dirs, named in the task git dir's alternates
    ro_mounts: tuple[str, ...] = ()  # host dirs mounted read-only at the same path (objects dirs)
    object_format: str = "sha1"
    seconds: float = 0.0
    submodules: tuple[Submodule, ...] = ()  # the initialized ones, each with a git dir in git_dir/modules
    notes: tuple[str, ...] = ()  # what the task should know: submodules left empty, and why


def take_snapshot(repo: Path, task_dir: Path, *, data_dir: Path, branch: str,
                  from_branch: str | None = None, from_commit: str | None = None) -> Snapshot:
    """Snapshot `repo` into `task_dir` for a task that will work on `branch`. With `from_commit` (a
    queued child: its parent's result, or the merge of its parents') that commit, not the working tree."""
    t0 = time.perf_counter()
    info = g.repo_info(repo)
    top, common = Path(info.top), Path(info.common_dir)
    commit = from_commit or g.source_commit(top, from_branch, head=info.head)
    with ThreadPoolExecutor(max_workers=3) as pool:
        # the user's working tree is read while the checkout, when this commit needs one, is written
        found = pool.submit(g.working_changes, top, commit) if from_branch is None and from_commit is None else None
        exclude = pool.submit(g.excludes, common, top)
        branch_ok = pool.submit(check_branch, branch)
        subs, notes = plan_submodules(top, Path(info.git_dir), common, commit)
        checkout_dir, checkout = ensure_checkout(data_dir, info, commit, subs)
        objects = g.objects_dirs(common)
    branch_ok.result()
    changes = found.result() if found else None

    task_dir.mkdir(parents=True, exist_ok=True)
    changes_dir = task_dir / "changes"
    if changes_dir.exists():
        shutil.rmtree(changes_dir)
    changes_dir.mkdir()
    changed: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    if changes is not None:
        changed, deleted = changes.changed, changes.deleted
        # a copy stamped inside the checkout's build window could pass for the committed file it
        # replaces (same size, same mtime second): push it just before the window
        window = (int(checkout.started), int(checkout.finished))
        for rel in changed:
            _copy(top / rel, changes_dir / rel, window)

    git_dir = task_dir / "git"
    if git_dir.exists():
        shutil.rmtree(git_dir)
    own = Layout(commit=commit, alternates=tuple(objects), index=str(checkout_dir / "index"),
                 exclude=exclude.result())
    make_git_dir(git_dir, branch=branch, top=own, modules=layouts(subs, checkout_dir, top),
                 index_after=checkout.finished)
    snap = Snapshot(
        repo=str(top), project=top.name, git_common_dir=str(common), source_commit=commit, branch=branch,
        from_branch=from_branch, head_branch=_head_branch(Path(info.git_dir)),
        checkout_tree=str(checkout_dir / "tree"), git_dir=str(git_dir),
        changes_dir=str(changes_dir), deleted=deleted, changed=changed, alternates=tuple(objects),
        ro_mounts=tuple(dict.fromkeys([*objects, *checkout.ro_mounts()])),
        object_format=info.object_format, seconds=round(time.perf_counter() - t0, 4), submodules=subs,
        notes=notes,
    )
    (task_dir / "snapshot.json").write_bytes(msgspec.json.encode(snap))
    return snap


def _head_branch(git_dir: Path) -> str | None:
    """The branch HEAD names, read from the user's own HEAD file (no git process); None when detached."""
    try:
        head = (git_dir / "HEAD").read_text(errors="replace").strip()
    except OSError:
        return None
    return head.removeprefix("ref: refs/heads/") if head.startswith("ref: refs/heads/") else None


def load_snapshot(task_dir: Path) -> Snapshot:
    return msgspec.json.decode((task_dir / "snapshot.json").read_bytes(), type=Snapshot)


def _copy(src: Path, dst: Path, window: tuple[int, int]) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():  # broken or not, a link is copied as a link
        os.symlink(os.readlink(src), dst)
    elif src.is_file():
        shutil.copy2(src, dst)
    else:
        return  # gone since git listed it, or a directory where a file was
    st = dst.lstat()
    if window[0] <= int(st.st_mtime) <= window[1]:
        os.utime(dst, (st.st_atime, window[0] - 1), follow_symlinks=False)


def renew(snap: Snapshot, task_dir: Path, data_dir: Path) -> Snapshot:
    """The same snapshot for another attempt: its git dir laid out afresh (the last attempt's is the
    sandbox's and is gone), its uncommitted changes as they were kept. The shared checkout is rebuilt if
    it was pruned meanwhile."""
    info = g.repo_info(Path(snap.repo))
    checkout_dir, checkout = ensure_checkout(data_dir, info, snap.source_commit, snap.submodules)
    git_dir = Path(snap.git_dir)
    if git_dir.exists():
        shutil.rmtree(git_dir)
    own = Layout(commit=snap.source_commit, alternates=snap.alternates, index=str(checkout_dir / "index"),
                 exclude=g.excludes(Path(snap.git_common_dir), Path(snap.repo)))
    make_git_dir(git_dir, branch=snap.branch, top=own, modules=layouts(snap.submodules, checkout_dir, Path(snap.repo)),
                 index_after=checkout.finished)
    return snap
