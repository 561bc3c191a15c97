"""`tsk fetch ID…`: results that ran through the fleet's git remote (`[server] remote`), brought into
the repo they were added from as their `tsk/<type>/<name>/<id>` branches. `tsk wait` and `tsk list` do
the same for the tasks they show; this says why, when one cannot come back."""

from __future__ import annotations

import sys

from tsk.cli.queue import JsonOpt
from tsk.cli.render import emit_json
from tsk.context import Context
from tsk.text import printable


def fetch(*ids: str, json: JsonOpt = False) -> int:
    """Bring tasks' results from the git remote (`[server] remote`) into their repo as their task branches.
    A branch already there at another commit is left as it is. Exit 0 only if every result is here."""
    from tsk.queue.transport import fetch as fetch_tasks

    done = fetch_tasks(Context(), list(ids))
    if json:
        emit_json(done)
    else:
        for f in done:
            if f.problem:
                print(f"tsk: error: {printable(f.problem)}", file=sys.stderr)
            else:
                print(f"{f.id}: {f.action}: branch {f.branch}" + (f" at {f.head[:12]}" if f.head else ""))
    return 1 if any(f.problem for f in done) else 0
