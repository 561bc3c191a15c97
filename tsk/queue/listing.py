"""`tsk list` in one query: it must stay fast at 10,000 tasks as a whole process, so this module imports
nothing heavy (no engine, no rich) and renders plain text."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from tsk.queue.db import Store

_ORDER = ("CASE status WHEN 'RUNNING' THEN 0 WHEN 'QUEUED' THEN 1 WHEN 'WAITING' THEN 2 ELSE 3 END, "
          "created DESC, id DESC")
_SQL = ("SELECT id, name, type, status, agent, stack, project, repo, source_commit, from_branch, result_branch, "
        "created, started, finished, error, blocked, "
        "(SELECT group_concat(parent, ',') FROM parents WHERE child = tasks.id) FROM tasks ORDER BY " + _ORDER)


class ListedTask(msgspec.Struct, kw_only=True):
    id: str
    name: str
    type: str
    status: str
    agent: str
    stack: str
    project: str
    repo: str
    source_commit: str | None
    from_branch: str | None
    branch: str | None  # the result branch, once fetched
    created: float
    started: float | None
    finished: float | None
    duration: float | None
    error: str | None
    blocked: str | None
    parents: list[str]


class Listing(msgspec.Struct, kw_only=True):
    tasks: list[ListedTask]
    counts: dict[str, int]


def list_tasks(data_dir: Path) -> Listing:
    """Every task: active first (running, queued, waiting), then newest first."""
    store = Store(data_dir)
    try:
        rows = store.conn.execute(_SQL).fetchall()
    finally:
        store.close()
    now = time.time()
    tasks = []
    counts: dict[str, int] = {}
    for (tid, name, typ, status, agent, stack, project, repo, source, from_branch, branch, created, started,
         finished, error, blocked, parents) in rows:
        counts[status] = counts.get(status, 0) + 1
        tasks.append(ListedTask(
            id=tid, name=name, type=typ, status=status, agent=agent, stack=stack, project=project, repo=repo,
            source_commit=source, from_branch=from_branch, branch=branch, created=created, started=started,
            finished=finished, duration=None if started is None else round((finished or now) - started, 2),
            error=error, blocked=blocked, parents=parents.split(",") if parents else []))
    return Listing(tasks=tasks, counts=counts)


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"


def _ago(stamp: float, now: float) -> str:
    s = max(0.0, now - stamp)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.0f}{unit} ago"
    return f"{s:.0f}s ago"


def render_text(listing: Listing) -> str:
    """A plain table (fixed columns, no terminal library) and a summary line."""
    now = time.time()
    head = ("ID", "NAME", "TYPE", "STATUS", "DURATION", "PARENTS", "SOURCE", "AGENT", "BRANCH", "CREATED")
    rows = [head]
    for t in listing.tasks:
        source = t.from_branch or (t.source_commit or "-")[:10]
        rows.append((t.id, t.name[:30], t.type, t.status, _dur(t.duration), ",".join(t.parents) or "-", source,
                     t.agent, t.branch or "-", _ago(t.created, now)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    fmt = "  ".join(f"{{{i}:<{w}}}" for i, w in enumerate(widths[:-1])) + f"  {{{len(head) - 1}}}"
    lines = [fmt.format(*r) for r in rows]
    c = listing.counts
    order = ("RUNNING", "QUEUED", "WAITING", "COMPLETE", "FAILED", "CANCELLED")
    parts = [f"{c[s]} {s.lower()}" for s in order if c.get(s)]
    lines.append(f"{len(listing.tasks)} task(s)" + (": " + ", ".join(parts) if parts else ""))
    return "\n".join(lines) + "\n"
