"""The entry point and the one error boundary: TskError becomes a message and an exit code
(1 failed operation, 2 bad usage or config, 130 Ctrl-C); a traceback only with TSK_DEBUG=1."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging


def _debug() -> bool:
    return os.environ.get("TSK_DEBUG", "") not in ("", "0")


def run(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:  # before the command itself began (imports, parsing): the same as during it
        return interrupted()


def _dispatch(args: list[str]) -> int:
    if args == ["--version"]:
        # what cyclopts prints for it, without importing cyclopts (most of a `--version` otherwise)
        from tsk import __version__

        print(__version__)
        return 0
    import logging

    if _debug():
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    _notices(logging.getLogger("tsk.notice"))
    if args[:1] == ["list"] and set(args[1:]) <= {"--json"}:
        # `tsk list` must stay fast at 10,000 tasks as a whole process; the command-line library's
        # import is most of that budget, so this one fixed form skips it (its --help still uses it)
        from tsk.cli.listing import show_list

        return _guarded(lambda: show_list(json="--json" in args))
    from cyclopts import CycloptsError

    from tsk.cli.app import app

    try:
        return _guarded(lambda: app(args, exit_on_error=False, print_error=True, result_action="return_value"),
                        passthrough=(CycloptsError,))
    except CycloptsError:
        return 2  # cyclopts has printed what was wrong with the command line


def _notices(log: logging.Logger) -> None:
    """What the core has to tell the user in passing (a migrated database, an old config key), as one
    `tsk: ...` line each on stderr, whatever stderr is when it is said."""
    import logging

    class Line(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            print(f"tsk: {record.getMessage()}", file=sys.stderr)

    if not any(type(h).__name__ == "Line" for h in log.handlers):  # once, however often tsk runs in a process
        log.addHandler(Line())
    log.setLevel(logging.INFO)
    log.propagate = False


def _guarded(call: Callable[[], object], passthrough: tuple[type[BaseException], ...] = ()) -> int:
    from tsk.errors import TskError

    try:
        result = call()
    except passthrough:
        raise
    except TskError as exc:
        if _debug():
            raise
        print(f"tsk: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return interrupted()
    except Exception as exc:
        if _debug():
            raise
        print(f"tsk: internal error: {type(exc).__name__}: {exc}\n  rerun with TSK_DEBUG=1 for a traceback",
              file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


def interrupted() -> int:
    """Ctrl-C ends a command with this message and exit code, never a traceback."""
    print("tsk: interrupted", file=sys.stderr)
    return 130


def flush_stdio() -> None:
    """Before a process ends with os._exit, which skips the interpreter's own flush."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # the reader went away, or the stream was closed
            stream.flush()


def main(argv: Sequence[str] | None = None) -> None:
    """The console script. Once the command is done and its output flushed, the process ends without
    the interpreter's teardown of every module (30-50 ms measured on `tsk run`): every file tsk writes
    is closed by then, and locks die with the process."""
    code = run(argv)
    flush_stdio()
    if threading.active_count() > 1:  # a worker still running: let the normal shutdown join it
        sys.exit(code)
    os._exit(code)
