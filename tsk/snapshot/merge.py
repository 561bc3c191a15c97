"""Where a child task starts: its parent's result, or the merge of its parents' results.

The merge is made with `git merge-tree --write-tree` and `git commit-tree` in the user's repo: it adds
objects and nothing else (no ref, no index, no working tree is touched). The child's snapshot is taken
from that commit when its parents are complete."""

from __future__ import annotations

import os
from pathlib import Path

from tsk.engine import proc
from tsk.errors import TskError
from tsk.snapshot import git as g
from tsk.tasks.model import Task


class MergeConflict(TskError):
    """The parents' results do not merge."""


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, bytes]:
    done = proc.run(["git", *g.NO_HOOKS, "-C", str(repo), *args], env=g.git_env(env), check=False)
    if done.returncode not in (0, 1):
        raise TskError(f"git {args[0]} failed in {repo}: {done.stderr.decode(errors='replace').strip()}")
    return done.returncode, done.stdout


def _identity(repo: Path) -> dict[str, str]:
    name, email = g.identity(repo)
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email}


def start_commit(repo: Path, parents: list[Task]) -> str:
    """The commit a child of `parents` starts from. A parent that made no branch gives its source commit."""
    commits: list[tuple[str, str]] = []
    for p in parents:
        commit = p.result_commit or p.source_commit
        if commit is None:
            raise TskError(f"parent {p.id} has no result to start from")
        if commit not in (c for c, _ in commits):
            commits.append((commit, p.id))
    current, names = commits[0][0], [commits[0][1]]
    for commit, pid in commits[1:]:
        if _git(repo, "merge-base", "--is-ancestor", commit, current)[0] == 0:
            continue
        if _git(repo, "merge-base", "--is-ancestor", current, commit)[0] == 0:
            current, names = commit, [*names, pid]
            continue
        code, out = _git(repo, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", current, commit)
        fields = [os.fsdecode(f) for f in out.split(b"\0") if f]
        if code == 1:
            files = list(dict.fromkeys(fields[1:]))
            raise MergeConflict(
                f"the results of parents {', '.join([*names, pid])} do not merge: conflicts in "
                + ", ".join(files), hint="merge them yourself, then `tsk add --branch <merged>` the child")
        names.append(pid)
        msg = f"tsk: merge of the results of tasks {', '.join(names)}"
        _, made = _git(repo, "commit-tree", fields[0], "-p", current, "-p", commit, "-m", msg, env=_identity(repo))
        current = made.decode().strip()
    return current
