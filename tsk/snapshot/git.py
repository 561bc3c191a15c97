"""Read-only questions to the user's repository. Every git command here runs with
GIT_OPTIONAL_LOCKS=0 (status and diff never rewrite the user's index) and without any GIT_* variables
inherited from a hook, so the answers are about the repo asked for and nothing is ever written to it."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec

from tsk.engine import proc
from tsk.errors import UsageError


class SnapshotError(UsageError):
    """The repo cannot be snapshotted as asked: not a repo, no commits, no such branch."""


# Inherited from a git hook or a wrapper, these would point our commands at another repo or index.
_REPO_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
              "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX", "GIT_CEILING_DIRECTORIES",
              "GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_QUARANTINE_PATH")

# Filters that would fetch or rewrite content: git-lfs files stay pointers, no hook or fsmonitor runs.
NO_SMUDGE = ("-c", "filter.lfs.smudge=", "-c", "filter.lfs.process=", "-c", "filter.lfs.required=false")
NO_HOOKS = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPO_VARS}
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env["GIT_LFS_SKIP_SMUDGE"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.update(extra or {})
    return env


# No git command may hang tsk forever; those on a task's git dir (the sandbox's) get far less.
GIT_TIMEOUT = 900.0
TASK_GIT_TIMEOUT = 120.0


def git(args: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        input: bytes | None = None, timeout: float = GIT_TIMEOUT) -> bytes:
    """Run git and return its raw stdout (paths with -z are bytes, not text)."""
    return proc.run(["git", *NO_HOOKS, *args], cwd=cwd, env=git_env(env), input=input, timeout=timeout).stdout


def git_text(args: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    return git(args, cwd=cwd, env=env).decode(errors="surrogateescape").strip()


def git_ok(args: Sequence[str], *, cwd: Path | None = None, timeout: float = GIT_TIMEOUT) -> str | None:
    """stdout of a git command that may legitimately fail (a lookup), or None when it did."""
    done = proc.run(["git", *NO_HOOKS, *args], cwd=cwd, env=git_env(), check=False, timeout=timeout)
    return done.stdout.decode(errors="surrogateescape").strip() if done.returncode == 0 else None


def split_z(raw: bytes) -> list[str]:
    return [os.fsdecode(p) for p in raw.split(b"\0") if p]


class RepoInfo(msgspec.Struct, frozen=True, kw_only=True):
    top: str  # the working tree's top: a linked worktree's own dir, not the main repo's
    git_dir: str  # this working tree's git dir (HEAD, index); .git/worktrees/<name> for a worktree
    common_dir: str  # objects, refs and config shared by all worktrees
    object_format: str  # sha1 or sha256
    head: str | None = None  # HEAD's commit when asked, None before the first commit


def repo_info(start: Path) -> RepoInfo:
    """Where the repo's parts are, and HEAD's commit, in one git call (a snapshot costs a handful)."""
    if not start.is_dir():
        raise SnapshotError(f"{start} is not inside a git repository (no such directory)",
                            hint="run tsk from your project, or pass --repo")
    done = proc.run(["git", *NO_HOOKS, "rev-parse", "--path-format=absolute", "--show-toplevel", "--git-dir",
                     "--git-common-dir", "--show-object-format", "--verify", "-q", "--end-of-options",
                     "HEAD^{commit}"], cwd=start, env=git_env(), check=False)
    lines = done.stdout.decode(errors="surrogateescape").splitlines()
    if done.returncode != 0 and len(lines) < 4:  # failed before naming the dirs: HEAD is not the problem
        raise SnapshotError(f"{start} is not inside a git repository",
                            hint="run tsk from your project, or pass --repo")
    if len(lines) not in (4, 5):  # a bare repo or a .git dir has no top level
        raise SnapshotError(f"{start} is not inside a git working tree",
                            hint="run tsk from your project, or pass --repo")
    top, git_dir, common, fmt = lines[:4]
    return RepoInfo(top=os.path.realpath(top), git_dir=os.path.realpath(git_dir),
                    common_dir=os.path.realpath(common), object_format=fmt,
                    head=lines[4] if done.returncode == 0 and len(lines) == 5 else None)


def objects_dirs(git_dir: Path) -> list[str]:
    """The repo's objects dir and every dir it borrows objects from (alternates, recursively)."""
    out: list[str] = []
    todo = [git_dir / "objects"]
    while todo:
        d = Path(os.path.realpath(todo.pop(0)))
        if str(d) in out or not d.is_dir():
            continue
        out.append(str(d))
        alt = d / "info" / "alternates"
        if alt.is_file():
            for line in alt.read_text(errors="surrogateescape").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    todo.append(d / line)  # relative lines are relative to the objects dir
    return out


def current_branch(top: Path) -> str | None:
    """The branch checked out in `top`; None when HEAD is detached."""
    return git_ok(["symbolic-ref", "--quiet", "--short", "HEAD"], cwd=top) or None


def resolve_commit(top: Path, rev: str) -> str | None:
    return git_ok(["rev-parse", "--verify", "-q", "--end-of-options", f"{rev}^{{commit}}"], cwd=top)


def branch_names(top: Path) -> list[str]:
    return git_text(["for-each-ref", "--format=%(refname:short)", "refs/heads"], cwd=top).splitlines()


def source_commit(top: Path, from_branch: str | None, *, head: str | None = None) -> str:
    """`from_branch`'s commit, or HEAD's (`head` when repo_info has already resolved it)."""
    if from_branch is None:
        sha = head or resolve_commit(top, "HEAD")
        if sha is None:
            raise SnapshotError(f"the repository at {top} has no commits yet; commit something first")
        return sha
    for ref in (f"refs/heads/{from_branch}", f"refs/remotes/{from_branch}"):
        sha = resolve_commit(top, ref)
        if sha is not None:
            return sha
    names = branch_names(top)
    listed = ", ".join(names) if names else "none"
    raise SnapshotError(f"branch `{from_branch}` does not exist; existing branches: {listed}",
                        hint="pass --branch with one of them, or leave it out to start from HEAD")


class Changes(msgspec.Struct, frozen=True, kw_only=True):
    changed: tuple[str, ...]  # modified, added, type-changed or untracked: copied into the task
    deleted: tuple[str, ...]  # tracked in HEAD but gone from the working tree
    skipped: tuple[str, ...]  # untracked nested repositories, not carried over


def working_changes(top: Path, commit: str) -> Changes:
    """What differs from `commit` (HEAD when the snapshot was taken) in the working tree (staged or
    not), and what is untracked but not ignored. The two scans run side by side."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        others = pool.submit(git, ["ls-files", "--others", "--exclude-standard", "-z"], cwd=top)
        raw = git(["diff", "--no-renames", "--no-ext-diff", "--name-status", "-z", "--ignore-submodules=all",
                   commit, "--"], cwd=top)
        untracked = others.result()
    fields = split_z(raw)
    changed: list[str] = []
    deleted: list[str] = []
    for status, path in zip(fields[::2], fields[1::2], strict=True):
        (deleted if status.startswith("D") else changed).append(path)
    skipped: list[str] = []
    for path in split_z(untracked):
        # a nested repository is listed as `dir/`; copying it would smuggle in a whole .git
        (skipped if path.endswith("/") else changed).append(path)
    return Changes(changed=tuple(changed), deleted=tuple(deleted), skipped=tuple(skipped))


def excludes(common_dir: Path, top: Path) -> str:
    """The user's ignore rules that live outside the tree (info/exclude, core.excludesFile), so files
    they ignore are not committed by the sandbox either."""
    parts: list[str] = []
    info = common_dir / "info" / "exclude"
    if info.is_file():
        parts.append(info.read_text(errors="surrogateescape"))
    configured = git_ok(["config", "--path", "core.excludesFile"], cwd=top)
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    global_file = Path(configured) if configured else Path(xdg) / "git" / "ignore"
    if global_file.is_file():
        parts.append(global_file.read_text(errors="surrogateescape"))
    return "\n".join(p.rstrip("\n") for p in parts if p.strip()) + "\n"


def identity(repo: Path) -> tuple[str, str]:
    """The user's git name and email for `repo` (one git call; the last value wins, as with `--get`),
    or tsk's own when unset."""
    done = proc.run(["git", "-C", str(repo), "config", "--get-regexp", r"^user\.(name|email)$"], check=False)
    found: dict[str, str] = {}
    for line in done.stdout.decode(errors="replace").splitlines():
        key, _, value = line.partition(" ")
        found[key] = value.strip()
    return found.get("user.name") or "tsk", found.get("user.email") or "tsk@localhost"
