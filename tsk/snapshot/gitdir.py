"""The task's own small git dir, and fetching from it.

The sandbox gets `tasks/<id>/git` as `/workspace/<project>/.git`: HEAD on the task branch, the index of
the shared checkout, and `objects/info/alternates` naming the user's objects dirs (mounted read-only at
the same paths). Each initialized submodule gets the same under `modules/<name>` (tsk/snapshot/submodules.py).
New objects land in the task's own objects dirs; none is copied, none can be written in the user's
repo. Everything in it is the sandbox's to rewrite, so on the way back tsk trusts nothing there but
the objects: it rewrites the config and alternates, refuses symlinked dirs, and fetches only what it
decided to fetch."""

from __future__ import annotations

import math
import os
import shutil
import stat
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec

from tsk.errors import TskError
from tsk.files import real_dir
from tsk.snapshot.git import TASK_GIT_TIMEOUT, git, git_ok
from tsk.text import printable

CONFIG = """\
[core]
\trepositoryformatversion = {version}
\tbare = false
\tfilemode = true
\tsymlinks = true
\tcheckStat = minimal
\ttrustctime = false
\tlogallrefupdates = true
{worktree}[user]
\tuseConfigOnly = false
[uploadpack]
\tallowAnySHA1InWant = true
{extensions}"""

# Written by fetch: a gc or maintenance run started by it would work in the user's repo on its own.
# Every object coming from the sandbox is checked (fsck) before it lands in the user's repo.
FETCH = ("-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "fetch.fsckObjects=true",
         "-c", "transfer.fsckObjects=true", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
         "--no-recurse-submodules")
MAX_ENTRIES = 1_000_000  # a git dir of a task is small; this many entries is an attack, not work


class Layout(msgspec.Struct, frozen=True, kw_only=True):
    """One git dir in the task: its own, or a submodule's under modules/."""

    commit: str  # HEAD: the task branch at this commit
    alternates: tuple[str, ...]  # the user's objects dirs for it
    index: str  # an index whose stat data matches the shared checkout
    exclude: str = ""  # info/exclude: the user's ignore rules that live outside the tree
    worktree: str | None = None  # core.worktree, relative to the git dir (a submodule's)


def object_format_of(commit: str) -> str:
    return "sha256" if len(commit) == 64 else "sha1"


def _config(object_format: str, worktree: str | None = None) -> str:
    wt = f"\tworktree = {worktree}\n" if worktree else ""
    if object_format == "sha1":
        return CONFIG.format(version=0, worktree=wt, extensions="")
    return CONFIG.format(version=1, worktree=wt, extensions=f"[extensions]\n\tobjectformat = {object_format}\n")


def _write(path: Path, text: str) -> None:
    """Replace a file without following a symlink the sandbox may have left in its place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tsk-tmp")
    tmp.unlink(missing_ok=True)
    tmp.write_text(text, errors="surrogateescape")
    os.replace(tmp, path)


class TaskGitDirError(TskError):
    """The sandbox left the task git dir in a shape tsk will not fetch from."""


def _lay_out(d: Path, branch: str, layout: Layout, stamp: float) -> None:
    for sub in ("objects/info", "objects/pack", "refs/tags", "info"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    ref = d / "refs" / "heads" / branch
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(f"{layout.commit}\n")
    (d / "HEAD").write_text(f"ref: refs/heads/{branch}\n")
    (d / "config").write_text(_config(object_format_of(layout.commit), layout.worktree))
    (d / "objects" / "info" / "alternates").write_text("".join(f"{a}\n" for a in layout.alternates))
    (d / "info" / "exclude").write_text(layout.exclude, errors="surrogateescape")
    shutil.copyfile(layout.index, d / "index")
    os.utime(d / "index", (stamp, stamp))


def check_branch(branch: str) -> None:
    """Refuse a branch name git would refuse: it becomes a path under refs/heads."""
    if git_ok(["check-ref-format", "--branch", branch]) is None:
        raise ValueError(f"not a valid branch name: {branch!r}")


def make_git_dir(dest: Path, *, branch: str, top: Layout, modules: Mapping[str, Layout] | None = None,
                 index_after: float) -> None:
    """Lay out the task git dir by hand (a handful of small files each) in a temp dir, then move it in.
    `modules` maps a dir under it (`modules/<name>`) to a submodule's git dir. `branch` has passed
    check_branch (take_snapshot asks git while it reads the working tree)."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # An entry whose mtime is not older than the index file is "racily clean" and git rehashes it.
    # Stamp the copies past the second the checkout was finished in (git may compare whole seconds), so
    # the first git status in the sandbox trusts the whole index instead of rehashing the tree.
    stamp = max(time.time(), math.floor(index_after) + 1.0)
    _lay_out(tmp, branch, top, stamp)
    for rel, layout in (modules or {}).items():
        _lay_out(tmp / rel, branch, layout, stamp)
    os.rename(tmp, dest)


def check_shape(git_dir: Path) -> None:
    """Refuse a task git dir that holds anything but regular files and dirs: host git must never follow
    a link the sandbox made (to a host file, into the user's repo), nor block on a FIFO or device."""
    count = 0

    def refuse(problem: str) -> TaskGitDirError:
        return TaskGitDirError(f"the sandbox left the task git dir {git_dir} in a shape tsk does not fetch from: "
                               f"{printable(problem)}", hint="nothing of it was brought back; its files stay for "
                               "you to look at until the task is deleted")

    def walk_error(exc: OSError) -> None:
        raise refuse(f"{exc.filename}: {exc.strerror}")

    try:
        top = os.lstat(git_dir)
    except OSError as exc:
        raise refuse(f"{git_dir}: {exc.strerror}") from exc
    if not stat.S_ISDIR(top.st_mode):
        raise refuse("it is not a directory")
    for dirpath, dirs, files in os.walk(git_dir, followlinks=False, onerror=walk_error):
        for name in (*dirs, *files):
            count += 1
            if count > MAX_ENTRIES:
                raise refuse(f"more than {MAX_ENTRIES} entries")
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                kind = "a symlink" if stat.S_ISLNK(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a special file"
                raise refuse(f"{os.path.relpath(path, git_dir)} is {kind}")


def reset_git_dir(git_dir: Path, *, alternates: Sequence[str], object_format: str) -> None:
    """Put back what the sandbox could have rewritten to run commands or to read another repo's refs
    or objects: the config, the alternates, the files that make a git dir borrow another's."""
    info = real_dir(git_dir, "objects/info", make=True)
    if info is None:
        raise TaskGitDirError(f"the sandbox replaced {git_dir}/objects/info with a link or a file; "
                              "nothing is fetched from that git dir")
    _write(git_dir / "config", _config(object_format))
    _write(info / "alternates", "".join(f"{a}\n" for a in alternates))
    for name in ("commondir", "gitdir", "config.worktree"):
        target = git_dir / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.is_symlink() or target.exists():
            target.unlink()


def new_commits(git_dir: Path, *, branch: str, source: str, base: str | None = None) -> tuple[str | None, int]:
    """The task branch's head in a reset task git dir and how many commits it has beyond `source`; 0
    when only the baseline `base` (the commit of the user's uncommitted changes) is new."""
    ref = f"refs/heads/{branch}"
    gd, limit = ["--git-dir", str(git_dir)], TASK_GIT_TIMEOUT
    head = git_ok([*gd, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}"], timeout=limit)
    if head is None:
        return None, 0
    count = int(git([*gd, "rev-list", "--count", f"{source}..{head}"], timeout=limit).decode())
    # `base` was made in the sandbox before the agent started. The sandbox wrote it, so it counts only
    # if it really is one commit on top of `source`.
    if base and base != source and git_ok([*gd, "rev-parse", "-q", "--verify", f"{base}^1"], timeout=limit) == source:
        own = int(git([*gd, "rev-list", "--count", f"{base}..{head}"], timeout=limit).decode())
        if own == 0 or git_ok([*gd, "merge-base", "--is-ancestor", base, head], timeout=limit) is None:
            return head, 0
    return head, count


def fetch_ref(target: Sequence[str], src: Path, rev: str, ref: str) -> None:
    """Fetch `rev` (a ref or a commit) from the task git dir `src` into `ref` of the repo that `target`
    (`-C <top>` or `--git-dir <dir>`) names. Only that ref and the objects it needs are written there."""
    git([*target, *FETCH, str(src), f"+{rev}:{ref}"], timeout=TASK_GIT_TIMEOUT)
