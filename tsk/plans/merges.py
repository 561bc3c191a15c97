"""A plan's results in the user's repository: which pairs conflict, what each changed, landing them onto an
integration branch, pushing them.

Merges are made in memory (`git merge-tree --write-tree`, then `git commit-tree`): they add objects and
nothing else. Landing moves one branch's ref with `git update-ref <ref> <new> <old>`, so a branch that
moved meanwhile is never overwritten; no index or working tree is ever touched, which is why a branch
checked out in a working tree is refused. No hook runs (tsk/snapshot/git.py's NO_HOOKS)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import msgspec

from tsk.engine import proc
from tsk.errors import CommandFailed, TskError, UsageError
from tsk.plans.forge import redact_urls
from tsk.snapshot import git as g
from tsk.snapshot.merge import identity, merge_one, merge_tree
from tsk.text import one_line


class LandRefused(UsageError):
    """The integration branch cannot be moved without leaving someone's working tree stale."""


class Pair(msgspec.Struct, frozen=True, kw_only=True):
    a: str
    b: str
    conflict: bool
    files: tuple[str, ...] = ()  # the conflicted files, when they conflict (made printable: for showing)


class ConflictMatrix(msgspec.Struct, frozen=True, kw_only=True):
    branches: tuple[str, ...]
    pairs: tuple[Pair, ...]  # every pair once, in the order of `branches`

    def conflicting(self) -> list[Pair]:
        return [p for p in self.pairs if p.conflict]

    def between(self, a: str, b: str) -> Pair:
        for p in self.pairs:
            if {p.a, p.b} == {a, b}:
                return p
        raise KeyError((a, b))


class Landed(msgspec.Struct, frozen=True, kw_only=True):
    branch: str
    commit: str  # the branch's head that was landed
    how: Literal["fast-forward", "merge", "already"]  # already: it was in the integration branch
    head: str  # the integration branch's head after it


class LandConflict(msgspec.Struct, frozen=True, kw_only=True):
    branch: str
    files: tuple[str, ...]


class LandReport(msgspec.Struct, frozen=True, kw_only=True):
    into: str
    base: str  # the commit `into` was created at, or its head before landing when it existed
    created: bool
    before: str | None  # the ref's value before (None: it did not exist)
    head: str  # its value now
    landed: tuple[Landed, ...]  # in order, up to the first conflict
    conflict: LandConflict | None = None  # landing stopped here; later results were not tried
    not_tried: tuple[str, ...] = ()


class Pushed(msgspec.Struct, frozen=True, kw_only=True):
    branch: str
    result: Literal["new", "updated", "forced", "up to date", "rejected", "error"]
    summary: str = ""


class PushReport(msgspec.Struct, frozen=True, kw_only=True):
    remote: str
    pushed: tuple[Pushed, ...]

    @property
    def ok(self) -> bool:
        return all(p.result not in ("rejected", "error") for p in self.pushed)


def _commit(repo: Path, rev: str) -> str:
    sha = g.resolve_commit(repo, rev)
    if sha is None:
        raise UsageError(f"`{one_line(rev)}` is not a branch or commit in {repo}",
                         hint="name a result branch (tsk/<type>/<name>/<id>) that `git branch` lists")
    return sha


def conflicts(repo: Path, branches: Sequence[str]) -> ConflictMatrix:
    """Merge every pair of `branches` in memory and say which conflict, and in which files."""
    heads = {b: _commit(repo, b) for b in branches}
    pairs = []
    for a, b in itertools.combinations(dict.fromkeys(branches), 2):
        _, files = merge_tree(repo, heads[a], heads[b])
        pairs.append(Pair(a=a, b=b, conflict=bool(files), files=files))
    return ConflictMatrix(branches=tuple(dict.fromkeys(branches)), pairs=tuple(pairs))


def changed_files(repo: Path, base: str, branch: str) -> list[str]:
    """The files `branch` changed since it left `base` (added, modified, deleted; a rename as both paths).

    The names are exactly git's, control characters and all, so that a scope check sees the real path (a
    name made printable could look inside a scope it is not in); make them printable before showing them."""
    out = g.git(["-C", str(repo), "diff", "--name-only", "-z", "--no-renames", "--no-ext-diff", "--no-textconv",
                 f"{_commit(repo, base)}...{_commit(repo, branch)}", "--"])
    return g.split_z(out)


def checked_out(repo: Path) -> dict[str, str]:
    """Branches checked out in any working tree of `repo` (the main one or a linked one): branch → its tree."""
    out = g.git_text(["-C", str(repo), "worktree", "list", "--porcelain"])
    found: dict[str, str] = {}
    tree = ""
    for line in out.splitlines():
        if line.startswith("worktree "):
            tree = line[len("worktree "):]
        elif line.startswith("branch refs/heads/"):
            found[line[len("branch refs/heads/"):]] = tree
    return found


def land(repo: Path, results_in_order: Sequence[str], into: str, base: str) -> LandReport:
    """Merge each result onto branch `into` (created at `base` when missing) in the given order, stopping at
    the first conflict; what merged before it is landed. Landing again after the conflict is resolved on
    `into` skips what is there already."""
    if into.startswith("-") or g.git_ok(["-C", str(repo), "check-ref-format", "--branch", into]) is None:
        raise UsageError(f"`{one_line(into)}` is not a valid branch name")
    where = checked_out(repo).get(into)
    if where is not None:
        raise LandRefused(
            f"refusing to land into `{into}`: it is checked out in {where}, and moving its ref behind git's back "
            "would leave that working tree's index and files stale (they would look like changes undoing the merge)",
            hint=f"land into a branch that is not checked out (e.g. tsk/land/{into}), then merge or push that")
    ref = f"refs/heads/{into}"
    before = g.resolve_commit(repo, ref)
    start = before or _commit(repo, base)
    current = start
    landed: list[Landed] = []
    conflict: LandConflict | None = None
    todo = list(results_in_order)
    ident = identity(repo)
    while todo:
        branch = todo.pop(0)
        commit = _commit(repo, branch)
        step = merge_one(repo, current, commit, f"Merge {one_line(branch)} into {into}\n\nLanded by tsk.", ident)
        if step.how == "conflict":
            conflict = LandConflict(branch=branch, files=step.files)
            break
        current = step.head
        landed.append(Landed(branch=branch, commit=commit, how=step.how, head=current))
    if current != before:
        _move(repo, ref, current, before, into)
    return LandReport(into=into, base=start, created=before is None, before=before, head=current,
                      landed=tuple(landed), conflict=conflict, not_tried=tuple(todo))


def _move(repo: Path, ref: str, new: str, old: str | None, into: str) -> None:
    try:
        g.git(["-C", str(repo), "update-ref", "-m", "tsk: land results", ref, new, old or ""])
    except CommandFailed as exc:
        raise TskError(f"`{into}` moved while tsk was landing onto it; nothing was changed",
                       hint="land again: what is in it already is skipped") from exc


_FLAGS: dict[str, Literal["new", "updated", "forced", "up to date", "rejected", "error"]] = {
    "*": "new", " ": "updated", "+": "forced", "=": "up to date", "!": "rejected"}


def push(repo: Path, branches: Sequence[str], remote: str) -> PushReport:
    """Push each branch to the same name on `remote` (a remote's name or URL), without force, from the host
    with the user's own git credentials. A rejected branch is reported, not raised."""
    if remote.startswith("-"):
        raise UsageError(f"`{remote}` is not a remote's name or URL")
    refspecs = []
    for b in dict.fromkeys(branches):
        _commit(repo, f"refs/heads/{b}")
        refspecs.append(f"refs/heads/{b}:refs/heads/{b}")
    done = proc.run(["git", *g.NO_HOOKS, "-C", str(repo), "push", "--porcelain", "--no-follow-tags", remote,
                     *refspecs], env=g.git_env(), check=False, timeout=g.GIT_TIMEOUT)
    results: dict[str, Pushed] = {}
    for line in done.stdout.decode(errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or not parts[0] or parts[0][0] not in _FLAGS or ":" not in parts[1]:
            continue
        src = parts[1].split(":", 1)[0].removeprefix("refs/heads/")
        results[src] = Pushed(branch=src, result=_FLAGS[parts[0][0]],
                              summary=one_line(parts[2]) if len(parts) > 2 else "")
    if done.returncode != 0 and not results:
        said = one_line(done.stderr.decode(errors="replace").strip().splitlines()[-1] if done.stderr.strip() else "")
        raise TskError(f"could not push to `{redact_urls(remote)}`: {redact_urls(said)}",
                       hint="check the remote's name or URL and your access to it")
    pushed = tuple(results.get(b, Pushed(branch=b, result="error", summary="not reported by git push"))
                   for b in dict.fromkeys(branches))
    return PushReport(remote=redact_urls(remote), pushed=pushed)


def remote_url(repo: Path, remote: str = "origin") -> str | None:
    """The URL `remote` fetches from (forge.parse_repo reads the owner and name from it), or None."""
    return g.git_ok(["-C", str(repo), "remote", "get-url", remote])
