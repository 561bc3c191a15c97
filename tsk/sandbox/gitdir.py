"""The task's own small git dir, and fetching its branch back.

The sandbox gets `tasks/<id>/git` as `/workspace/<project>/.git`: HEAD on the task branch, the index of
the shared checkout, and `objects/info/alternates` naming the user's objects dirs (mounted read-only at
the same paths). New objects land in the task's own objects dir; none is copied, none can be written
in the user's repo. Everything in it is the sandbox's to rewrite, so on the way back tsk trusts
nothing there but the objects: it rewrites the config and alternates, refuses dirs swapped for links,
and reads the one branch it asked for."""

from __future__ import annotations

import math
import os
import shutil
import stat
import time
from pathlib import Path

import msgspec

from tsk.errors import TskError
from tsk.sandbox.git import git, git_ok

CONFIG = """\
[core]
\trepositoryformatversion = {version}
\tbare = false
\tfilemode = true
\tsymlinks = true
\tcheckStat = minimal
\ttrustctime = false
\tlogallrefupdates = true
[user]
\tuseConfigOnly = false
{extensions}"""


class FetchResult(msgspec.Struct, frozen=True, kw_only=True):
    branch: str | None  # None: the task made no commits, so no branch was made
    commits: int
    head: str | None


def _config(object_format: str) -> str:
    if object_format == "sha1":
        return CONFIG.format(version=0, extensions="")
    return CONFIG.format(version=1, extensions=f"[extensions]\n\tobjectformat = {object_format}\n")


def _write(path: Path, text: str) -> None:
    """Replace a file without following a symlink the sandbox may have left in its place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tsk-tmp")
    tmp.unlink(missing_ok=True)
    tmp.write_text(text, errors="surrogateescape")
    os.replace(tmp, path)


class TaskGitDirError(TskError):
    """The sandbox left the task git dir in a shape tsk will not fetch from."""


def real_dir(root: Path, rel: str, *, make: bool = False) -> Path | None:
    """`root/rel` if it is a directory reached without following any symlink (the sandbox may have
    swapped a dir for a link into the user's repo), else None. With `make`, missing dirs are made."""
    here = root
    for part in Path(rel).parts:
        if part in (".", "..", "/"):
            return None
        here = here / part
        if make and not here.is_symlink() and not here.exists():
            here.mkdir()
        try:
            if not stat.S_ISDIR(here.lstat().st_mode):
                return None
        except OSError:
            return None
    return here


def make_git_dir(dest: Path, *, branch: str, commit: str, alternates: list[str], index: Path,
                 object_format: str, exclude: str, index_after: float) -> None:
    """Lay out the task git dir by hand (a handful of small files) in a temp dir, then move it in."""
    if git_ok(["check-ref-format", "--branch", branch]) is None:
        raise ValueError(f"not a valid branch name: {branch!r}")
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("objects/info", "objects/pack", "refs/tags", "info"):
        (tmp / sub).mkdir(parents=True)
    ref = tmp / "refs" / "heads" / branch
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(f"{commit}\n")
    (tmp / "HEAD").write_text(f"ref: refs/heads/{branch}\n")
    (tmp / "config").write_text(_config(object_format))
    (tmp / "objects" / "info" / "alternates").write_text("".join(f"{a}\n" for a in alternates))
    (tmp / "info" / "exclude").write_text(exclude, errors="surrogateescape")
    # An entry whose mtime is not older than the index file is "racily clean" and git rehashes it.
    # Stamp the copy past the second the checkout was finished in (git may compare whole seconds), so
    # the first git status in the sandbox trusts the whole index instead of rehashing the tree.
    shutil.copyfile(index, tmp / "index")
    stamp = max(time.time(), math.floor(index_after) + 1.0)
    os.utime(tmp / "index", (stamp, stamp))
    os.rename(tmp, dest)


def fetch_branch(*, repo: Path, git_dir: Path, branch: str, source: str, alternates: list[str],
                 object_format: str, base: str | None = None) -> FetchResult:
    """Count the task branch's commits beyond `source`; fetch the branch into the user's repo when
    there are any. Only refs/heads/<branch> and new objects are written there."""
    # the sandbox could rewrite these to run commands or read another repo's refs: put ours back, but
    # not through a dir it swapped for a link (on the host it may lead into the user's repo)
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
    ref = f"refs/heads/{branch}"
    head = git_ok(["--git-dir", str(git_dir), "rev-parse", "--verify", "-q", f"{ref}^{{commit}}"])
    if head is None:
        return FetchResult(branch=None, commits=0, head=None)
    count = int(git(["--git-dir", str(git_dir), "rev-list", "--count", f"{source}..{head}"]).decode())
    # `base` is the commit of the user's uncommitted changes, made in the sandbox before the agent
    # started. The sandbox wrote it, so it counts only if it really is one commit on top of `source`.
    if base and base != source and git_ok(["--git-dir", str(git_dir), "rev-parse", "-q", "--verify",
                                           f"{base}^1"]) == source:
        own = int(git(["--git-dir", str(git_dir), "rev-list", "--count", f"{base}..{head}"]).decode())
        if own == 0 or git_ok(["--git-dir", str(git_dir), "merge-base", "--is-ancestor", base, head]) is None:
            return FetchResult(branch=None, commits=0, head=head)
    if count == 0:
        return FetchResult(branch=None, commits=0, head=head)
    git(["-C", str(repo), "-c", "gc.auto=0", "-c", "maintenance.auto=false", "fetch", "--quiet", "--no-tags",
         "--no-write-fetch-head", "--no-recurse-submodules", str(git_dir), f"+{ref}:{ref}"])
    return FetchResult(branch=branch, commits=count, head=head)
