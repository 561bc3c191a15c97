"""`tsk list`'s rendering, importable without the command-line library: main.py calls it directly
for the plain `tsk list [--json]`, since cyclopts' import alone is most of the 300 ms budget for
listing 10,000 tasks as a whole process."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from tsk.cli.render import ago, duration, emit_json
from tsk.tasks.owner import host_name
from tsk.text import printable

if TYPE_CHECKING:
    from tsk.queue.listing import Listing
    from tsk.tasks.store import ListedTask


def show_list(*, json: bool) -> int:
    from tsk.context import Context
    from tsk.queue.listing import list_tasks
    from tsk.queue.stores import open_store

    ctx = Context()
    store = open_store(ctx)
    try:
        listing = list_tasks(store, ctx)  # results waiting on the git remote come back first
    finally:
        store.close()
    for problem in listing.not_fetched:
        print(f"tsk: result not fetched from the git remote: {printable(problem)}", file=sys.stderr)
    if json:
        emit_json(listing.tasks)
    else:
        sys.stdout.write(render_text(listing))
    return 0


def _why(t: ListedTask) -> str:
    """Why a task waits, is blocked or failed, on one line of the table (--json has it whole)."""
    if t.status in ("WAITING", "BLOCKED") and t.blocked:
        text = t.blocked
    elif t.status == "FAILED" and t.error:
        text = (f"{t.failure_class}: " if t.failure_class else "") + t.error
    else:
        return ""
    flat = " ".join(printable(text).split())
    return flat if len(flat) <= 80 else flat[:79] + "…"


def render_text(listing: Listing) -> str:
    """A plain table (fixed columns, no terminal library) and a summary line."""
    now = time.time()
    head: tuple[str, ...] = ("ID", "NAME", "TYPE", "STATUS", "TRY", "DURATION", "PARENTS", "SOURCE", "AGENT",
                             "BRANCH", "CREATED", "WHY")
    # a fleet's tasks run on several hosts: then a column says where (one machine alone needs none)
    hosts = bool({t.host for t in listing.tasks if t.host} - {host_name()})
    if hosts:
        head = (*head[:4], "HOST", *head[4:])
    rows: list[tuple[str, ...]] = [head]
    for t in listing.tasks:
        source = t.from_branch or (t.source_commit or "-")[:10]
        took = "-" if t.duration is None else duration(t.duration, tenths=True)
        tries = f"{t.attempts}/{t.max_attempts}" if t.attempts else "-"
        where = (printable(t.host or "-")[:20],) if hosts else ()
        rows.append((t.id, t.name[:30], t.type, t.status, *where, tries, took, ",".join(t.parents) or "-", source,
                     t.agent, t.branch or "-", ago(t.created, now), _why(t)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    fmt = "  ".join(f"{{{i}:<{w}}}" for i, w in enumerate(widths[:-1])) + f"  {{{len(head) - 1}}}"
    lines = [fmt.format(*r) for r in rows]
    c = listing.counts
    order = ("RUNNING", "BLOCKED", "QUEUED", "WAITING", "COMPLETE", "FAILED", "CANCELLED")
    parts = [f"{c[s]} {s.lower()}" for s in order if c.get(s)]
    lines.append(f"{len(listing.tasks)} task(s)" + (": " + ", ".join(parts) if parts else ""))
    return "\n".join(lines) + "\n"
