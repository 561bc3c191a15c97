"""The repo as the task sees it (DESIGN §3 Snapshot and Result).

A task dir gets `snapshot.json`, `changes/` (copies of the uncommitted and untracked-not-ignored
files) and `git/` (the task's own git dir, with one per initialized submodule under `modules/`). The
committed files come from a read-only checkout shared by every task from the same commit; in the
container an overlay volume puts a per-task writable layer over it, the task git dir is bind-mounted
as `.git`, the user's objects dirs are bind-mounted read-only at their own paths, and `prepare_script`
lays the changes over the tree before the agent starts. Taking a second snapshot of a commit costs the
uncommitted changes plus one index copy per repository.

Nothing here writes to the user's repo: every git command runs with GIT_OPTIONAL_LOCKS=0, anything
that needs an index gets its own, and only `fetch_result` adds the task branch at the end (to the
superproject and to each submodule the branch moved), with the git-lfs objects it points to."""

from __future__ import annotations

import os
import shlex
import shutil
import time
from pathlib import Path

import msgspec

from tsk.sandbox import git as g
from tsk.sandbox.gitcheckout import Submodule, ensure_checkout, plan_submodules
from tsk.sandbox.gitdir import Layout, fetch_ref, make_git_dir, new_commits, reset_git_dir
from tsk.sandbox.gitlfs import bring_back
from tsk.sandbox.gitsub import fetch_submodules, gitfiles, layouts

__all__ = ["FetchResult", "Snapshot", "SnapshotError", "commit_script", "fetch_result", "load_snapshot",
           "overlay_volume_opts", "prepare_script", "take_snapshot"]

SnapshotError = g.SnapshotError
CHANGES_MOUNT = "/tsk/changes"
_RM_BATCH = 200  # paths per `rm` line: keeps each command well under ARG_MAX


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    repo: str  # the working tree's top (a linked worktree's own dir)
    project: str  # its dir name: the sandbox mounts it at /workspace/<project>
    git_common_dir: str
    source_commit: str
    branch: str  # the task branch, created at source_commit in the task git dir
    from_branch: str | None  # --branch: started from its committed head, working tree ignored
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


class FetchResult(msgspec.Struct, frozen=True, kw_only=True):
    branch: str | None  # None: the task made no commits, so no branch was made
    commits: int
    head: str | None
    submodules: tuple[str, ...] = ()  # paths of the submodules that got the branch too
    lfs_objects: int = 0  # git-lfs objects copied into the user's stores
    notes: tuple[str, ...] = ()


def take_snapshot(repo: Path, task_dir: Path, *, data_dir: Path, branch: str,
                  from_branch: str | None = None, from_commit: str | None = None) -> Snapshot:
    """Snapshot `repo` into `task_dir` for a task that will work on `branch`. With `from_commit` (a
    queued child: its parent's result, or the merge of its parents') that commit, not the working tree."""
    t0 = time.perf_counter()
    info = g.repo_info(repo)
    top, common = Path(info.top), Path(info.common_dir)
    commit = from_commit or g.source_commit(top, from_branch)
    subs, notes = plan_submodules(top, Path(info.git_dir), common, commit)
    checkout_dir, checkout = ensure_checkout(data_dir, info, commit, subs)
    objects = g.objects_dirs(common)

    task_dir.mkdir(parents=True, exist_ok=True)
    changes_dir = task_dir / "changes"
    if changes_dir.exists():
        shutil.rmtree(changes_dir)
    changes_dir.mkdir()
    changed: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    if from_branch is None and from_commit is None:
        found = g.working_changes(top)
        changed, deleted = found.changed, found.deleted
        # a copy stamped inside the checkout's build window could pass for the committed file it
        # replaces (same size, same mtime second): push it just before the window
        window = (int(checkout.started), int(checkout.finished))
        for rel in changed:
            _copy(top / rel, changes_dir / rel, window)

    git_dir = task_dir / "git"
    if git_dir.exists():
        shutil.rmtree(git_dir)
    own = Layout(commit=commit, alternates=tuple(objects), index=str(checkout_dir / "index"),
                 exclude=g.excludes(common, top))
    make_git_dir(git_dir, branch=branch, top=own, modules=layouts(subs, checkout_dir, top),
                 index_after=checkout.finished)
    snap = Snapshot(
        repo=str(top), project=top.name, git_common_dir=str(common), source_commit=commit, branch=branch,
        from_branch=from_branch, checkout_tree=str(checkout_dir / "tree"), git_dir=str(git_dir),
        changes_dir=str(changes_dir), deleted=deleted, changed=changed, alternates=tuple(objects),
        ro_mounts=tuple(dict.fromkeys([*objects, *checkout.ro_mounts()])),
        object_format=info.object_format, seconds=round(time.perf_counter() - t0, 4), submodules=subs,
        notes=notes,
    )
    (task_dir / "snapshot.json").write_bytes(msgspec.json.encode(snap))
    return snap


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


def overlay_volume_opts(snapshot: Snapshot, task_dir: Path) -> dict[str, str]:
    """driver_opts for `docker volume create --driver local`: the task's writable layer over the
    shared checkout."""
    upper, work = task_dir / "upper", task_dir / "work"
    upper.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    dirs = (snapshot.checkout_tree, str(upper), str(work))
    for d in dirs:
        if any(c in d for c in ",:\\"):  # the mount option string has no escaping for these
            raise g.SnapshotError(f"the path {d} contains `,`, `:` or `\\`, which an overlay mount cannot name",
                                  hint="set TSK_DATA_HOME to a path without them")
    return {"type": "overlay", "device": "overlay",
            "o": f"lowerdir={dirs[0]},upperdir={dirs[1]},workdir={dirs[2]}"}


def prepare_script(snapshot: Snapshot, workdir: str) -> str:
    """sh run in the container as the agent user before the agent: point each submodule at its git dir,
    lay the uncommitted changes over the checkout, then let git re-stat what changed."""
    lines = ["set -e", f"cd {shlex.quote(workdir)}"]
    for path, text in gitfiles(snapshot.submodules):
        parent = shlex.quote(path.removesuffix("/.git"))
        lines.append(f"if [ -d {parent} ]; then printf '%s\\n' {shlex.quote(text)} > {shlex.quote(path)}; fi")
    # remove first: a deleted file may now be a directory of untracked files, or a file a symlink
    doomed = [*snapshot.deleted, *snapshot.changed]
    for i in range(0, len(doomed), _RM_BATCH):
        lines.append("rm -rf -- " + " ".join(shlex.quote(p) for p in doomed[i:i + _RM_BATCH]))
    if snapshot.changed:
        lines.append(f"cp -a {CHANGES_MOUNT}/. .")
    lines.append("git update-index -q --refresh >/dev/null 2>&1 || true")
    return "\n".join(lines) + "\n"


def commit_script(workdir: str, message: str) -> str:
    """sh run in the container after the agent: commit whatever it left uncommitted, in each submodule
    first (deepest first, so each parent records its children's new commits), then in the repo. A
    submodule that cannot be committed is reported and keeps its last commit. The identity comes from
    GIT_AUTHOR_*/GIT_COMMITTER_* set on the container."""
    return "\n".join([
        "set -e",
        f"cd {shlex.quote(workdir)}",
        "tsk_commit() {",
        "  git add -A || return",
        "  if ! git diff --cached --quiet --no-ext-diff --ignore-submodules=none; then",
        f"    git -c commit.gpgsign=false commit -q --no-verify -m {shlex.quote(message)}",
        "  fi",
        "}",
        "# `git submodule foreach` costs ~25 ms even with none: ask only a repo that has some",
        "if [ -f .gitmodules ]; then",
        "  git submodule foreach --quiet --recursive pwd 2>/dev/null | LC_ALL=C sort -r | while IFS= read -r sm; do",
        '    (cd "$sm" && tsk_commit) || echo "tsk: the changes in submodule $sm could not be committed" >&2',
        "  done",
        "fi",
        "tsk_commit",
    ]) + "\n"


def fetch_result(snapshot: Snapshot, base: str | None = None) -> FetchResult:
    """After the container ends: bring the task branch into the user's repo if the agent added
    commits (beyond `base`, the commit of the user's uncommitted changes, when there was one);
    otherwise no branch ("no changes, no branch"). With the branch come the submodule commits it
    records and the git-lfs objects its new commits point to."""
    git_dir, source, branch = Path(snapshot.git_dir), snapshot.source_commit, snapshot.branch
    reset_git_dir(git_dir, alternates=snapshot.alternates, object_format=snapshot.object_format)
    head, count = new_commits(git_dir, branch=branch, source=source, base=base)
    if head is None or count == 0:
        return FetchResult(branch=None, commits=0, head=head, notes=snapshot.notes)
    subs, sub_notes = fetch_submodules(git_dir, snapshot.submodules, source=source, head=head, branch=branch)
    fetch_ref(["-C", snapshot.repo], git_dir, head, f"refs/heads/{branch}")
    notes = [*snapshot.notes, *sub_notes]
    copied = 0
    stores = [("", git_dir, snapshot.git_common_dir, source, head),
              *((f"submodule {s.path}: ", Path(s.git_dir), s.common_dir, s.source, s.head) for s in subs)]
    for where, task_dir, user_dir, old, new in stores:
        lfs = bring_back(task_dir, Path(user_dir), old, new)
        copied += len(lfs.copied)
        notes += [where + note for note in lfs.notes(f"{user_dir}/lfs/objects")]
    return FetchResult(branch=branch, commits=count, head=head, submodules=tuple(s.path for s in subs),
                       lfs_objects=copied, notes=tuple(notes))
