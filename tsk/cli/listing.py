"""`tsk list`'s rendering, importable without the command-line library: main.py calls it directly
for the plain `tsk list [--json]`, since cyclopts' import alone is most of the 300 ms budget for
listing 10,000 tasks as a whole process."""

from __future__ import annotations

import sys

import msgspec


def show_list(*, json: bool) -> int:
    from tsk.paths import Paths
    from tsk.queue.listing import list_tasks, render_text

    listing = list_tasks(Paths.from_env().data)
    if json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(listing.tasks), indent=2).decode() + "\n")
    else:
        sys.stdout.write(render_text(listing))
    return 0
