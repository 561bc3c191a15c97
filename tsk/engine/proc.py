"""The one place tsk runs host commands. Every call is logged with its argv; a failure raises
CommandFailed carrying argv, exit code and output."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tsk.errors import CommandFailed, TskError

log = logging.getLogger("tsk.proc")


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command to completion, capturing its output."""
    args = [str(a) for a in argv]
    log.debug("run %s (cwd=%s)", args, cwd)
    try:
        done = subprocess.run(
            args, cwd=cwd, env=None if env is None else dict(env), input=input,
            capture_output=True, timeout=timeout, check=False,
        )
    except FileNotFoundError as exc:
        raise TskError(f"`{args[0]}` is not installed or not on PATH", hint="install it, then retry") from exc
    except subprocess.TimeoutExpired as exc:
        raise TskError(f"`{' '.join(args)}` did not finish within {timeout} s") from exc
    if check and done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace")
        raise CommandFailed(args, done.returncode, output)
    return done


def text(argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """Run a command and return its stdout as text, stripped."""
    return run(argv, cwd=cwd, env=env).stdout.decode(errors="replace").strip()


def interactive(argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run a command with the terminal attached (an editor, a shell); return its exit code."""
    args = [str(a) for a in argv]
    log.debug("interactive %s (cwd=%s)", args, cwd)
    try:
        child = subprocess.Popen(args, cwd=cwd, env=None if env is None else dict(env))
    except FileNotFoundError as exc:
        raise TskError(f"`{args[0]}` is not installed or not on PATH", hint="install it, or set $EDITOR") from exc
    try:
        return child.wait()
    except BaseException:  # tsk is stopping (a signal): the child must not hold it up
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise


def spawn_detached(argv: Sequence[str], *, cwd: str) -> None:
    """Start a process that outlives this one, in its own session, with no terminal and no output."""
    args = [str(a) for a in argv]
    log.debug("spawn %s (cwd=%s)", args, cwd)
    try:
        subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    except OSError as exc:
        log.debug("could not spawn %s: %s", args, exc)
