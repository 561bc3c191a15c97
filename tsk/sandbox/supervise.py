"""Watching a running sandbox from the host: a thread that checks its limits every moment and stops the
container when one is passed, saying which and how the attempt ends (its failure class). The agent's
partial work still comes back: stopping is what Ctrl-C does too.

The limits (DESIGN §7): the attempt's wall clock (`timeout`), silence (`idle_timeout`: no event and no
output), the same tool call with the same input `loop_limit` times in a row, and the task's `budget_usd`
across its attempts. The stream of events feeds a Progress; loops and the budget are checked as events
arrive, time-based limits by the watcher's thread.

The disk: everything the sandbox writes lands on the host's disk (the overlay's upper dir, its git
dir, its home and output), and no engine bounds a bind mount. So the watcher adds up what those dirs
hold and stops the task past `disk_gb`, or when the host's own free space falls under a floor."""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from tsk.tasks.model import FailureClass

if TYPE_CHECKING:
    from tsk.engine.ports import Engine

Check = Callable[[], "Stop | None"]  # None: fine; else why the sandbox must stop
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


class Stop(msgspec.Struct, frozen=True):
    failure_class: FailureClass
    reason: str


class Progress:
    """What the attempt has done so far, as the log stream tells it; read by the watcher's thread."""

    def __init__(self, *, loop_limit: int, budget_usd: float | None, spent_before: float = 0.0) -> None:
        self.started = self.last_sign = time.monotonic()
        self.loop_limit, self.budget_usd, self.spent_before = loop_limit, budget_usd, spent_before
        self.spent = 0.0
        self._last_key = ""
        self._repeats = 0

    def sign_of_life(self) -> None:
        self.last_sign = time.monotonic()

    def tool(self, key: str, name: str) -> Stop | None:
        """A tool call: the same one (same input) `loop_limit` times in a row is a loop."""
        if not key:
            return None
        self._repeats = self._repeats + 1 if key == self._last_key else 1
        self._last_key = key
        if self._repeats >= self.loop_limit:
            return Stop("looping", f"the agent called {name} with the same input {self._repeats} times in a row")
        return None

    def cost(self, usd: float) -> Stop | None:
        """Money the agent reported spending; past the task's budget (all its attempts together) it stops."""
        self.spent += usd
        total = self.spent_before + self.spent
        if self.budget_usd is not None and total > self.budget_usd:
            return Stop("budget", f"the task has cost ${total:.2f}, over its budget of ${self.budget_usd:.2f}")
        return None


def time_check(progress: Progress, *, timeout: float, idle_timeout: float) -> Check:
    def check() -> Stop | None:
        now = time.monotonic()
        if now - progress.started > timeout:
            return Stop("timeout", f"the attempt ran longer than its timeout of {_secs(timeout)}")
        if now - progress.last_sign > idle_timeout:
            return Stop("stalled", f"the agent printed nothing for {_secs(idle_timeout)} (idle_timeout)")
        return None
    return check


def _secs(seconds: float) -> str:
    from tsk.durations import show

    return show(seconds)


def disk_check(roots: list[Path], limit_bytes: int, host_dir: Path, *, every: int = 1) -> Check:
    """Past `disk_gb` the agent wrote too much (agent_error); a full host disk is the host's (infra).
    Adding up the dirs costs a walk: done every `every`-th call."""
    calls = [0]

    def check() -> Stop | None:
        calls[0] += 1
        if calls[0] % every:
            return None
        used = used_bytes(roots)
        if used > limit_bytes:
            return Stop("agent_error", f"the sandbox wrote {used / (1 << 30):.1f} GiB, over its disk_gb limit of "
                        f"{limit_bytes / (1 << 30):g} GiB")
        free = shutil.disk_usage(host_dir).free
        if free < HOST_FREE_FLOOR:
            return Stop("infra", f"the host's disk holding {host_dir} has only {free >> 20} MiB free")
        return None
    return check


class Watcher:
    """Runs the checks every `every` seconds while the container runs; the first that fails stops it."""

    def __init__(self, engine: Engine, container: str, checks: list[Check], every: float = 1.0) -> None:
        self.engine, self.container, self.checks, self.every = engine, container, checks, every
        self.stop: Stop | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tsk-watch-{container[:12]}", daemon=True)

    def __enter__(self) -> Watcher:
        if self.checks:  # nothing to check, no thread
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    @property
    def reason(self) -> str | None:
        return None if self.stop is None else self.stop.reason

    def stop_now(self, stop: Stop) -> None:
        """Stop the container for `stop`, once (the first limit passed is the one that counts)."""
        with self._lock:
            if self.stop is not None:
                return
            self.stop = stop
        self.engine.container_stop(self.container, timeout=20)

    def _run(self) -> None:
        while not self._done.wait(self.every):
            for check in self.checks:
                found = check()
                if found is not None:
                    self.stop_now(found)
                    return
