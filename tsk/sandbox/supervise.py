"""Watching a running sandbox from the host: a thread that checks its limits every few seconds and stops
the container when one is passed, saying which. The agent's partial work still comes back: stopping is
what Ctrl-C does too.

The disk: everything the sandbox writes lands on the host's disk (the overlay's upper dir, its git
dir, its home and output), and no engine bounds a bind mount. So the watcher adds up what those dirs
hold and stops the task past `disk_gb`, or when the host's own free space falls under a floor."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tsk.engine.ports import Engine

Check = Callable[[], str | None]  # None: fine; else why the sandbox must stop
HOST_FREE_FLOOR = 1 << 30  # stop before the host's disk is full, whatever the task's own limit


def used_bytes(roots: Iterable[Path]) -> int:
    """What the files under `roots` take on disk (allocated blocks: a sparse file counts as what it holds)."""
    total = 0
    todo = [str(r) for r in roots]
    while todo:
        try:
            with os.scandir(todo.pop()) as it:
                for entry in it:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        todo.append(entry.path)
        except OSError:
            continue
    return total


def disk_check(roots: list[Path], limit_bytes: int, host_dir: Path) -> Check:
    def check() -> str | None:
        used = used_bytes(roots)
        if used > limit_bytes:
            return (f"the sandbox wrote {used / (1 << 30):.1f} GiB, over its disk_gb limit of "
                    f"{limit_bytes / (1 << 30):g} GiB")
        free = shutil.disk_usage(host_dir).free
        if free < HOST_FREE_FLOOR:
            return f"the host's disk holding {host_dir} has only {free >> 20} MiB free"
        return None
    return check


class Watcher:
    """Runs the checks every `every` seconds while the container runs; the first that fails stops it."""

    def __init__(self, engine: Engine, container: str, checks: list[Check], every: float = 10.0) -> None:
        self.engine, self.container, self.checks, self.every = engine, container, checks, every
        self.reason: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tsk-watch-{container[:12]}", daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._done.wait(self.every):
            for check in self.checks:
                reason = check()
                if reason is not None:
                    self.reason = reason
                    self.engine.container_stop(self.container, timeout=20)
                    return
