"""`tsk server start|stop`: the process that runs queued tasks, N at once."""

from __future__ import annotations

import signal
import sys
import time
from typing import Annotated

from cyclopts import Parameter

from tsk.context import Context


class PlainLines:
    """One line per transition, for logs and pipes."""

    def transition(self, task: str, name: str, old: str | None, new: str, reason: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        arrow = f"{old} → {new}" if old else new
        print(f"{stamp} {task} {name[:30]} {arrow}" + (f" ({reason})" if reason else ""), flush=True)

    def note(self, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} tsk: {text}", flush=True)


def start(
    *,
    workers: Annotated[int, Parameter(name=["--workers", "-w"], help="How many tasks run at once.")] = 1,
    quit: Annotated[bool, Parameter(name=["--quit", "-q"], negative=(),
                                    help="Exit once nothing is queued or running.")] = False,
    plain: Annotated[bool, Parameter(negative=(), help="Plain lines even on a terminal (no dashboard).")] = False,
) -> int:
    """Run queued tasks, up to N at once, until stopped (Ctrl-C, SIGTERM, `tsk server stop`) or, with -q,
    until nothing is left; running tasks are then cancelled and their partial work kept."""
    from tsk.errors import UsageError
    from tsk.queue.server import Server, ServerOptions

    if workers < 1:
        raise UsageError("--workers must be at least 1")
    ctx = Context()
    server = Server(ctx, ServerOptions(workers=workers, quit_when_idle=quit), PlainLines())

    def on_signal(signum: int, frame: object) -> None:
        server.stop(f"the server was stopped ({signal.Signals(signum).name})")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"tsk: server for {ctx.paths.data} with {workers} worker(s)" + (" (quits when idle)" if quit else ""),
          file=sys.stderr, flush=True)
    del plain  # the dashboard is wired in when it lands; until then every terminal gets plain lines
    report = server.run()
    print(f"tsk: server stopped; it ran {report.ran} task(s)", file=sys.stderr)
    return 0


def stop() -> int:
    """Stop the running server gracefully (its running tasks are cancelled, their partial work kept)."""
    from tsk.errors import TskError
    from tsk.queue.server import stop_server

    ctx = Context()
    pid = stop_server(ctx.paths.data)
    if pid is None:
        raise TskError(f"no tsk server is running for {ctx.paths.data}")
    print(f"tsk: server (pid {pid}) stopped")
    return 0
