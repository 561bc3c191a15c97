"""Merging results in the user's repository without touching it: where a child task starts (its
parent's result, or the merge of its parents'), and one step of landing results onto a branch
(tsk/plans/merges.py).

A merge is made with `git merge-tree --write-tree` and `git commit-tree`: it adds objects and nothing
else (no ref, no index, no working tree is touched). The child's snapshot is taken from that commit when
its parents are complete."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec

from tsk.engine import proc
from tsk.errors import CommandFailed, TskError
from tsk.snapshot import git as g
from tsk.tasks.model import Task
from tsk.text import one_line


class MergeConflict(TskError):
    """The parents' results do not merge."""


class Merged(msgspec.Struct, frozen=True, kw_only=True):
    head: str  # where the branch being built is now (unchanged on a conflict)
    how: Literal["already", "fast-forward", "merge", "conflict"]
    files: tuple[str, ...] = ()  # the files in conflict


def _run(repo: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, bytes]:
    """git in `repo` where exit code 1 is an answer (a conflict, "not an ancestor"), not a failure."""
    done = proc.run(["git", *g.NO_HOOKS, "-C", str(repo), *args], env=g.git_env(env), check=False,
                    timeout=g.GIT_TIMEOUT)
    if done.returncode not in (0, 1):
        raise CommandFailed(["git", *args], done.returncode, (done.stdout + done.stderr).decode(errors="replace"))
    return done.returncode, done.stdout


def identity(repo: Path) -> dict[str, str]:
    """The user's git identity as the environment of a commit tsk makes for them."""
    name, email = g.identity(repo)
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email}


def is_ancestor(repo: Path, a: str, b: str) -> bool:
    return _run(repo, "merge-base", "--is-ancestor", a, b)[0] == 0


def merge_tree(repo: Path, ours: str, theirs: str) -> tuple[str | None, tuple[str, ...]]:
    """(tree, ()) when they merge cleanly, else (None, the conflicted files)."""
    code, out = _run(repo, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs)
    fields = g.split_z(out)
    if code == 1:
        return None, tuple(dict.fromkeys(one_line(f) for f in fields[1:]))
    return fields[0], ()


def merge_one(repo: Path, current: str, commit: str, message: str, env: dict[str, str] | None = None) -> Merged:
    """`commit` merged onto `current`: nothing to do when it is in already, a fast-forward when `current`
    is in it, else a merge commit of the two (`env`: the committer, default the user)."""
    if is_ancestor(repo, commit, current):
        return Merged(head=current, how="already")
    if is_ancestor(repo, current, commit):
        return Merged(head=commit, how="fast-forward")
    tree, files = merge_tree(repo, current, commit)
    if tree is None:
        return Merged(head=current, how="conflict", files=files)
    made = g.git_text(["-C", str(repo), "commit-tree", tree, "-p", current, "-p", commit, "-m", message],
                      env=env if env is not None else identity(repo))
    return Merged(head=made, how="merge")


def start_commit(repo: Path, parents: list[Task]) -> str:
    """The commit a child of `parents` starts from. A parent that made no branch gives its source commit."""
    if not parents:
        raise TskError("the tasks it was to start from are gone (deleted)",
                       hint="retry it: `tsk retry` snapshots the repository afresh")
    commits: list[tuple[str, str]] = []
    for p in parents:
        commit = p.result_commit or p.source_commit
        if commit is None:
            raise TskError(f"parent {p.id} has no result to start from")
        if commit not in (c for c, _ in commits):
            commits.append((commit, p.id))
    current, names = commits[0][0], [commits[0][1]]
    env = identity(repo)
    for commit, pid in commits[1:]:
        step = merge_one(repo, current, commit, f"tsk: merge of the results of tasks {', '.join([*names, pid])}",
                         env)
        if step.how == "conflict":
            raise MergeConflict(
                f"the results of tasks {', '.join([*names, pid])} do not merge: conflicts in " + ", ".join(step.files),
                hint="merge them yourself, then `tsk add --branch <merged>` the child")
        if step.how != "already":
            names.append(pid)
        current = step.head
    return current
