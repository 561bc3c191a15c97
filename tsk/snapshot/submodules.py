"""Submodules in the sandbox, and their work coming back.

Each initialized submodule gets a git dir of its own inside the task git dir, where a clone keeps it:
`modules/<name>`, and `modules/<name>/modules/<child>` for a nested one. Like the task git dir it has
HEAD on the task branch at the recorded commit, an index matching the shared checkout, and alternates
naming the user's objects dirs for that submodule (mounted read-only): the submodule's history is
shared, and the commits and git-lfs objects made in it land in the task dir. `prepare_script` gives
each submodule's working dir a `.git` file pointing there.

After the task, the gitlinks that its branch changed say which submodule commits to bring back: each
is fetched from the task's git dir for that submodule into the user's, as `refs/heads/<task branch>`.
Nothing else there changes."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import msgspec

from tsk.errors import TskError
from tsk.files import real_dir
from tsk.snapshot.checkout import GITLINK, Submodule, sub_index
from tsk.snapshot.git import TASK_GIT_TIMEOUT, excludes, git, git_ok
from tsk.snapshot.gitdir import Layout, TaskGitDirError, fetch_ref, object_format_of, reset_git_dir

_ROOT = "/w"  # any absolute dir: only the relative paths between the sandbox's places matter


class Placed(NamedTuple):
    path: str  # from the top of the superproject
    git_dir: str  # relative to the task git dir: modules/<name>[/modules/<child>...]
    sub: Submodule


def placed(subs: tuple[Submodule, ...], prefix: str = "", parent: str = "") -> Iterator[Placed]:
    """Every submodule, parents before their children."""
    for sub in subs:
        here = Placed(path=prefix + sub.path, git_dir=f"{parent}modules/{sub.name}", sub=sub)
        yield here
        yield from placed(sub.children, prefix=f"{here.path}/", parent=f"{here.git_dir}/")


def layouts(subs: tuple[Submodule, ...], checkout_dir: Path, top: Path) -> dict[str, Layout]:
    """The submodules' git dirs to make inside the task git dir."""
    return {p.git_dir: Layout(commit=p.sub.commit, alternates=p.sub.objects,
                              index=str(sub_index(checkout_dir, p.path)),
                              exclude=excludes(Path(p.sub.common_dir), top),
                              worktree=posixpath.relpath(f"{_ROOT}/{p.path}", f"{_ROOT}/.git/{p.git_dir}"))
            for p in placed(subs)}


def gitfiles(subs: tuple[Submodule, ...]) -> list[tuple[str, str]]:
    """(path of the `.git` file from the top, its text) for each submodule's working dir."""
    return [(f"{p.path}/.git", f"gitdir: {posixpath.relpath(f'{_ROOT}/.git/{p.git_dir}', f'{_ROOT}/{p.path}')}")
            for p in placed(subs)]


class Fetched(msgspec.Struct, frozen=True, kw_only=True):
    """A submodule whose new commit was brought back."""

    path: str  # from the top of the superproject
    git_dir: str  # the task's git dir for it (where its git-lfs objects are)
    common_dir: str  # the user's common git dir for it
    source: str  # the commit recorded in the task's source commit
    head: str  # the commit recorded on the task branch


def changed_gitlinks(git_dir: Path, source: str, head: str) -> dict[str, str]:
    """path -> new commit, for every gitlink added or moved between two commits."""
    raw = git(["--git-dir", str(git_dir), "diff-tree", "-r", "-z", "--no-renames", source, head],
              timeout=TASK_GIT_TIMEOUT)
    fields = raw.split(b"\0")
    out: dict[str, str] = {}
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        parts = meta.decode().lstrip(":").split(" ")
        if len(parts) == 5 and parts[1] == GITLINK:
            out[os.fsdecode(path)] = parts[3]
    return out


def fetch_submodules(parent_dir: Path, subs: tuple[Submodule, ...], *, source: str, head: str, branch: str,
                     prefix: str = "") -> tuple[list[Fetched], list[str]]:
    """Bring back the submodule commits that `head` records in place of those `source` recorded (in the
    git dir `parent_dir`, the task's or a submodule's), children first, so that every commit fetched
    into the user's repo finds its submodules' commits there. Returns them, and notes on what could not
    be brought back."""
    fetched: list[Fetched] = []
    notes: list[str] = []
    planned = {s.path: s for s in subs}
    for path, sha in changed_gitlinks(parent_dir, source, head).items():
        shown = prefix + path
        sub = planned.get(path)
        if sub is None:
            notes.append(f"submodule {shown}: the task branch records commit {sha[:12]} for it, but your repo "
                         "had no initialized submodule there when the task was created, so that commit was not "
                         "brought back")
            continue
        task_dir = real_dir(parent_dir, f"modules/{sub.name}")
        try:
            if task_dir is None:
                raise TaskGitDirError(f"{parent_dir}/modules/{sub.name} is not a directory of the task's own")
            reset_git_dir(task_dir, alternates=sub.objects, object_format=object_format_of(sha))
        except TaskGitDirError as exc:
            notes.append(f"submodule {shown}: commit {sha[:12]} was not brought back: {exc.message}")
            continue
        has = git_ok(["--git-dir", str(task_dir), "cat-file", "-e", f"{sha}^{{commit}}"], timeout=TASK_GIT_TIMEOUT)
        if has is None:
            notes.append(f"submodule {shown}: the task branch records commit {sha[:12]}, which the sandbox's git "
                         "dir for it does not have, so it was not brought back")
            continue
        deeper, deeper_notes = fetch_submodules(task_dir, sub.children, source=sub.commit, head=sha, branch=branch,
                                                prefix=f"{shown}/")
        fetched += deeper
        notes += deeper_notes
        try:
            fetch_ref(["--git-dir", sub.common_dir], task_dir, sha, f"refs/heads/{branch}")
        except TskError as exc:  # the superproject's branch still comes back, and says what is missing
            notes.append(f"submodule {shown}: commit {sha[:12]} could not be fetched into {sub.common_dir}: "
                         f"{exc.message}")
            continue
        fetched.append(Fetched(path=shown, git_dir=str(task_dir), common_dir=sub.common_dir, source=sub.commit,
                               head=sha))
    return fetched, notes
