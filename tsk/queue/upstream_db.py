"""Upstream tsk's task database, read into this one's records. The Rust tsk keeps its tasks at the same path
(`tasks.db` in the data dir) in one table, `tasks`, with RFC 3339 times and no schema version; tsk/queue/db.py
finds such a file, keeps a copy of it, and imports its rows through `imported` below (pure: no SQL here).

What a row becomes: its id, name, type, agent, stack, project, repository, branch, source commit and branch
as they were; its parents (those that were imported too); its instructions, read from the file it names
(bounded, never through a link). A COMPLETE task stays complete with its branch as the result. A task
upstream left QUEUED or RUNNING cannot go on here (its sandbox and snapshot were upstream's), so it is
imported FAILED, saying so and how to queue it again with `tsk retry`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import msgspec

from tsk.files import read_bounded
from tsk.tasks.model import Status, Task

# The columns that say a `tasks` table is upstream's (ours has none of them).
MARKS = frozenset({"repo_root", "task_type", "instructions_file"})
INSTRUCTIONS_LIMIT = 1 << 20
REASON = "imported from upstream tsk"
_NOT_ENDED = "was {status} under upstream tsk, whose run cannot go on here; `tsk retry {id}` queues it again"


class Imported(msgspec.Struct, frozen=True, kw_only=True):
    task: Task
    instructions: str
    transitions: tuple[tuple[str | None, str, float], ...]  # (from, to, at), oldest first


def is_upstream(columns: set[str]) -> bool:
    return columns >= MARKS


def instructions_of(path: str) -> str:
    """The text of an upstream task's instructions file, if it is still there as a regular file."""
    data = read_bounded(Path(path), INSTRUCTIONS_LIMIT) if path else None
    return "" if data is None else data.decode("utf-8", "replace")


def imported(rows: Sequence[Mapping[str, object]],
             read: Callable[[str], str] = instructions_of) -> list[Imported]:
    """The rows of upstream's `tasks` table (as column → value), each as a task of this tsk."""
    ids = {str(r["id"]) for r in rows}
    return [_one(r, ids, read) for r in rows]


def _one(row: Mapping[str, object], ids: set[str], read: Callable[[str], str]) -> Imported:
    tid = str(row["id"])
    created = _time(row.get("created_at")) or 0.0
    started = _time(row.get("started_at"))
    finished = _time(row.get("completed_at"))
    was = str(row.get("status") or "")
    error = _text(row.get("error_message"))
    status: Status
    if was == "COMPLETE":
        status = "COMPLETE"
    elif was == "FAILED":
        status = "FAILED"
    else:
        status = "FAILED"
        error = _NOT_ENDED.format(status=was or "in an unknown state", id=tid)
        finished = finished or started or created
    branch = _text(row.get("branch_name")) or f"tsk/{row.get('task_type')}/{row.get('name')}/{tid}"
    task = Task(id=tid, name=str(row.get("name") or tid), type=str(row.get("task_type") or "generic"),
                agent=str(row.get("agent") or "claude"), stack=str(row.get("stack") or "default"),
                project=str(row.get("project") or "default"), repo=str(row.get("repo_root") or ""),
                branch=branch, status=status, created=created, started=started, finished=finished,
                source_commit=_text(row.get("source_commit")), from_branch=_text(row.get("source_branch")),
                result_branch=branch if status == "COMPLETE" else None,
                result_commit=_text(row.get("source_commit")), error=error,
                network_isolation=bool(row.get("network_isolation", 1)),
                parents=tuple(p for p in _parents(row.get("parent_ids")) if p in ids and p != tid))
    steps: list[tuple[str | None, str, float]] = [(None, "QUEUED", created)]
    if started is not None:
        steps.append(("QUEUED", "RUNNING", started))
    steps.append((steps[-1][1], status, finished or started or created))
    return Imported(task=task, instructions=read(str(row.get("instructions_file") or "")), transitions=tuple(steps))


def _time(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _parents(value: object) -> list[str]:
    if not isinstance(value, str) or not value:
        return []
    try:
        parsed = json.loads(value)
    except ValueError:
        return []
    return [str(p) for p in parsed] if isinstance(parsed, list) else []
