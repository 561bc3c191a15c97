"""What a task's result changed, recorded once it has ended and its commits are in its repo: by the
server that ran it (tsk/queue/server.py), or, for a result that came through the fleet's git remote, by
the host that brought it back (tsk/queue/transport.py)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from tsk.errors import TskError
from tsk.tasks import model
from tsk.tasks.model import Task
from tsk.tasks.store import ENDED, TaskStore
from tsk.text import printable


def record_changes(store: TaskStore, task_id: str, data: Path) -> None:
    """Once a task has ended with a result: the files it changed, and those its write scope does not cover
    (a scope is a promise the scheduler relies on; a change outside it is reported, in its summary too)."""
    from tsk.plans.merges import changed_files
    from tsk.plans.scopes import outside_scope

    task = store.get(task_id)
    if task is None or task.status not in ENDED or not task.result_branch or not task.result_commit:
        return
    repo = Path(task.repo)
    try:
        base = _baseline(task, repo, data) or task.source_commit
        if base is None:
            return
        task.changed_files = tuple(changed_files(repo, base, task.result_commit))
    except TskError:
        return
    task.outside_scope = tuple(outside_scope(task.changed_files, task.scope)) if task.scope else ()
    if task.outside_scope:
        shown = ", ".join(printable(f) for f in task.outside_scope[:10])
        more = f" and {len(task.outside_scope) - 10} more" if len(task.outside_scope) > 10 else ""
        note = f"changed outside its scope ({', '.join(task.scope)}): {shown}{more}"
        task.summary = f"{task.summary}\n{note}" if task.summary else note
    store.save(task)


def _baseline(task: Task, repo: Path, data: Path) -> str | None:
    """The commit the sandbox made of the user's uncommitted changes, if it is only that: the sandbox's
    word is taken when the commit sits right on the source, touches no file but those the user had
    changed (the snapshot, written by tsk, lists them), and the result grew from it. Else None, and the
    result is compared with the source."""
    from tsk.plans.merges import changed_files
    from tsk.snapshot import git as g
    from tsk.snapshot.merge import is_ancestor
    from tsk.snapshot.take import load_snapshot

    base, source = task.baseline_commit, task.source_commit
    if base is None or source is None or task.result_commit is None or base == source:
        return None
    try:
        snap = load_snapshot(model.task_dir(data, task.id))
    except (OSError, ValueError, msgspec.DecodeError):
        return None
    line = g.git_ok(["-C", str(repo), "rev-list", "--parents", "-n", "1", base])
    if line is None or line.split()[1:] != [source] or not is_ancestor(repo, base, task.result_commit):
        return None
    users = {*snap.changed, *snap.deleted}
    return base if set(changed_files(repo, source, base)) <= users else None
