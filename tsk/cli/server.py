"""`tsk server start|stop`: the process that runs queued tasks, N at once."""

from __future__ import annotations

import signal
import sys
import time
from typing import Annotated

from cyclopts import Parameter

from tsk.cli.engine_opt import EngineOpt
from tsk.context import Context
from tsk.queue.server import Server, ServerOptions
from tsk.text import printable


class PlainLines:
    """One line per transition, for logs and pipes."""

    def transition(self, task: str, name: str, old: str | None, new: str, reason: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        arrow = f"{old} → {new}" if old else new
        print(printable(f"{stamp} {task} {name[:30]} {arrow}" + (f" ({reason})" if reason else "")), flush=True)

    def note(self, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} tsk: {printable(text)}", flush=True)


class _Hidden:
    def transition(self, task: str, name: str, old: str | None, new: str, reason: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass


MAX_WORKERS = 32  # upstream tsk's bound


def start(
    *,
    workers: Annotated[int, Parameter(name=["--workers", "-w"],
                                      help=f"How many tasks run at once (1 to {MAX_WORKERS}).")] = 1,
    quit: Annotated[bool, Parameter(name=["--quit", "-q"], negative=(),
                                    help="Exit once nothing is queued or running.")] = False,
    sound: Annotated[bool, Parameter(name=["--sound", "-s"], negative=(),
                                     help="Play a sound with each task's end notification.")] = False,
    plain: Annotated[bool, Parameter(negative=(), help="Plain lines even on a terminal (no dashboard).")] = False,
    budget: Annotated[float | None, Parameter(help=(
        "Stop starting tasks once the ones this server ran have cost this many USD."))] = None,
    container_engine: EngineOpt = None,
) -> int:
    """Run queued tasks, up to N at once, until stopped (Ctrl-C, SIGTERM, `tsk server stop`) or, with -q,
    until nothing is left; running tasks are then cancelled and their partial work kept."""
    from tsk.errors import UsageError

    if not 1 <= workers <= MAX_WORKERS:
        raise UsageError(f"--workers {workers}: must be from 1 to {MAX_WORKERS}",
                         hint=f"each worker runs a sandbox of its own; for more than {MAX_WORKERS}, start "
                              "another server on another data dir")
    ctx = Context(container_engine=container_engine)
    dashboard = not plain and sys.stdin.isatty() and sys.stdout.isatty()
    events = _Hidden() if dashboard else PlainLines()  # on the dashboard the task list shows the changes
    server = Server(ctx, ServerOptions(workers=workers, quit_when_idle=quit, budget_usd=budget, sound=sound), events)

    def on_signal(signum: int, frame: object) -> None:
        server.stop(f"the server was stopped ({signal.Signals(signum).name})")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if not dashboard:
        print(f"tsk: server for {ctx.paths.data} with {workers} worker(s)" + (" (quits when idle)" if quit else ""),
              file=sys.stderr, flush=True)
        report = server.run()
        print(f"tsk: server stopped; it ran {report.ran} task(s)", file=sys.stderr)
        return 0
    return _with_dashboard(ctx, server)


def _with_dashboard(ctx: Context, server: Server) -> int:
    """The server loop in a thread, the dashboard in this one; either ending ends the other."""
    import threading

    from tsk.cli.dashboard import run_dashboard
    from tsk.errors import TskError
    from tsk.queue.server import QueueSource

    ready = threading.Event()
    failure: list[TskError] = []

    def serve() -> None:
        try:
            server.run(ready=ready.set)
        except TskError as exc:
            failure.append(exc)
        finally:
            ready.set()

    loop = threading.Thread(target=serve, name="tsk-server", daemon=True)
    loop.start()
    ready.wait()
    if failure:
        raise failure[0]
    try:
        run_dashboard(QueueSource(ctx), stop=server.stop, finished=lambda: not loop.is_alive())
    finally:
        server.stop("the server was stopped from the dashboard")
        loop.join()
    if failure:
        raise failure[0]
    print(f"tsk: server stopped; it ran {server.report.ran} task(s)", file=sys.stderr)
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
