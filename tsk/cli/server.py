"""`tsk server start|stop|status`: the process that runs queued tasks, N at once, and the live ones."""

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
    lease: Annotated[float, Parameter(help=(
        "Seconds this server's claim on a task lasts unrenewed (it renews every third); past it, another "
        "server sharing the task store recovers the task."))] = 30.0,
    container_engine: EngineOpt = None,
) -> int:
    """Run queued tasks, up to N at once, until stopped (Ctrl-C, SIGTERM, `tsk server stop`) or, with -q,
    until nothing is left; running tasks are then cancelled and their partial work kept."""
    from tsk.errors import UsageError

    if not 1 <= workers <= MAX_WORKERS:
        raise UsageError(f"--workers {workers}: must be from 1 to {MAX_WORKERS}",
                         hint=f"each worker runs a sandbox of its own; for more than {MAX_WORKERS}, start "
                              "another server on another data dir")
    if not 1 <= lease <= 3600:
        raise UsageError(f"--lease {lease:g}: must be from 1 to 3600 seconds",
                         hint="a short lease recovers a dead server's tasks sooner and renews more often")
    ctx = Context(container_engine=container_engine)
    dashboard = not plain and sys.stdin.isatty() and sys.stdout.isatty()
    events = _Hidden() if dashboard else PlainLines()  # on the dashboard the task list shows the changes
    server = Server(ctx, ServerOptions(workers=workers, quit_when_idle=quit, budget_usd=budget, sound=sound,
                                          lease=lease), events)

    def on_signal(signum: int, frame: object) -> None:
        server.stop(f"the server was stopped ({signal.Signals(signum).name})")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if not dashboard:
        print(f"tsk: server on {server.host} for {ctx.paths.data} with {workers} worker(s)"
              + (" (quits when idle)" if quit else ""), file=sys.stderr, flush=True)
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


def status(*, json: Annotated[bool, Parameter(negative=(), help="The servers as a JSON list.")] = False) -> int:
    """The live servers of this task store (every host's, in a fleet): their capacity and load."""
    import msgspec

    from tsk.cli.render import ago, duration
    from tsk.queue.stores import open_store

    store = open_store(Context())
    try:
        now = time.time()
        live = store.servers(now)
        queued = store.count(("QUEUED",))
    finally:
        store.close()
    if json:
        print(msgspec.json.encode(live).decode())
        return 0
    if not live:
        print(f"no live server; {queued} task(s) queued")
        return 0
    rows = [("HOST", "PID", "RUNNING", "UP", "SEEN")]
    rows += [(printable(s.host), str(s.pid), f"{s.running}/{s.workers}", duration(now - s.started), ago(s.seen, now))
             for s in live]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(f"{len(live)} server(s): {sum(s.running for s in live)} running of {sum(s.workers for s in live)} "
          f"worker(s); {queued} queued")
    return 0
