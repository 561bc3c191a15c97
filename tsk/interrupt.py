"""SIGTERM and SIGHUP end a foreground task the way Ctrl-C does: `tsk run` or `tsk shell` killed by a
timeout, a closed terminal or a service manager stops its sandbox, brings the partial work back and
records the task CANCELLED, instead of leaving the container running and the task RUNNING.

The CLI installs the handlers (`install`); a signal raises `Stopped`, a KeyboardInterrupt, so the
runner's Ctrl-C path handles both. Cleanup runs `deferred()`: a signal that comes while the sandbox
is being removed and the end recorded waits until that is done."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Stopped(KeyboardInterrupt):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def reason_of(exc: KeyboardInterrupt) -> str:
    return exc.reason if isinstance(exc, Stopped) else "cancelled by the user (Ctrl-C)"


class _State:
    installed = False
    deferring = 0
    pending: Stopped | None = None
    seen = False


_state = _State()


def install(command: str) -> None:
    """In the main thread of a foreground command: SIGTERM and SIGHUP stop it (once; later ones are ignored
    so cleanup can finish). One the process was started with ignored (`nohup tsk run`) stays ignored, as
    the launcher's relay keeps it (tsk/launcher.py)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        if _state.seen:
            return
        _state.seen = True
        stop = Stopped(f"cancelled: {command} got {signal.Signals(signum).name}")
        if _state.deferring:
            _state.pending = stop
            return
        raise stop

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, handler)
    _state.installed = True


@contextmanager
def deferred() -> Iterator[None]:
    """A section a signal must not cut short; one that came meanwhile is raised after it."""
    if not _state.installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
        if not _state.deferring and _state.pending is not None:
            stop, _state.pending = _state.pending, None
            raise stop
