"""The task's work coming back: the task branch fetched from the task git dir into the user's repo,
with the submodule commits it records and the git-lfs objects its new commits point to. The only
place tsk writes to the user's repo."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from tsk.files import chown_tree
from tsk.snapshot.git import git
from tsk.snapshot.gitdir import check_shape, fetch_ref, new_commits, reset_git_dir
from tsk.snapshot.lfs import bring_back
from tsk.snapshot.submodules import fetch_submodules
from tsk.snapshot.take import Snapshot


class FetchResult(msgspec.Struct, frozen=True, kw_only=True):
    branch: str | None  # None: the task made no commits, so no branch was made
    commits: int
    head: str | None
    submodules: tuple[str, ...] = ()  # paths of the submodules that got the branch too
    lfs_objects: int = 0  # git-lfs objects copied into the user's stores
    notes: tuple[str, ...] = ()


def fetch_result(snapshot: Snapshot, base: str | None = None, *, git_town: bool = False) -> FetchResult:
    """After the container ends: bring the task branch into the user's repo if the agent added
    commits (beyond `base`, the commit of the user's uncommitted changes, when there was one);
    otherwise no branch ("no changes, no branch"). With the branch come the submodule commits it
    records and the git-lfs objects its new commits point to. With `git_town`, the branch's parent is
    recorded as git-town keeps it (`git-town-branch.<branch>.parent`): the branch it started from."""
    git_dir, source, branch = Path(snapshot.git_dir), snapshot.source_commit, snapshot.branch
    check_shape(git_dir)
    if os.getuid() != git_dir.stat().st_uid:
        # the agent ran as another uid (tsk runs as root): take its git dir back before host git reads it,
        # rather than telling git to trust a dir someone else owns
        chown_tree(git_dir, os.getuid(), os.getgid())
    reset_git_dir(git_dir, alternates=snapshot.alternates, object_format=snapshot.object_format)
    head, count = new_commits(git_dir, branch=branch, source=source, base=base)
    if head is None or count == 0:
        return FetchResult(branch=None, commits=0, head=head, notes=snapshot.notes)
    subs, sub_notes = fetch_submodules(git_dir, snapshot.submodules, source=source, head=head, branch=branch)
    fetch_ref(["-C", snapshot.repo], git_dir, head, f"refs/heads/{branch}")
    notes = [*snapshot.notes, *sub_notes]
    parent = snapshot.from_branch or snapshot.head_branch
    if git_town and parent:
        git(["config", f"git-town-branch.{branch}.parent", parent], cwd=Path(snapshot.repo))
    elif git_town:
        notes.append(f"git_town: no parent recorded for {branch}: the task started from a detached HEAD")
    copied = 0
    stores = [("", git_dir, snapshot.git_common_dir, source, head),
              *((f"submodule {s.path}: ", Path(s.git_dir), s.common_dir, s.source, s.head) for s in subs)]
    for where, task_dir, user_dir, old, new in stores:
        lfs = bring_back(task_dir, Path(user_dir), old, new)
        copied += len(lfs.copied)
        notes += [where + note for note in lfs.notes(f"{user_dir}/lfs/objects")]
    return FetchResult(branch=branch, commits=count, head=head, submodules=tuple(s.path for s in subs),
                       lfs_objects=copied, notes=tuple(notes))
