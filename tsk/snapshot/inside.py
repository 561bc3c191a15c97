"""The sandbox's side of the snapshot: the overlay volume over the shared checkout, and the shell the
container runs before the agent (lay the uncommitted changes over the tree) and after it (commit what
the agent left)."""

from __future__ import annotations

import shlex
from pathlib import Path

from tsk.snapshot.git import SnapshotError
from tsk.snapshot.submodules import gitfiles
from tsk.snapshot.take import Snapshot

CHANGES_MOUNT = "/tsk/changes"
_RM_BATCH = 200  # paths per `rm` line: keeps each command well under ARG_MAX


def overlay_volume_opts(snapshot: Snapshot, task_dir: Path) -> dict[str, str]:
    """driver_opts for `docker volume create --driver local`: the task's writable layer over the
    shared checkout."""
    upper, work = task_dir / "upper", task_dir / "work"
    upper.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    dirs = (snapshot.checkout_tree, str(upper), str(work))
    for d in dirs:
        if any(c in d for c in ",:\\"):  # the mount option string has no escaping for these
            raise SnapshotError(f"the path {d} contains `,`, `:` or `\\`, which an overlay mount cannot name",
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
