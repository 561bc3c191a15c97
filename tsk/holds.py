"""Seams for the tests that break tsk on purpose. With TSK_TEST_HOLD=<phase>:<file> in a process's
environment, reaching <phase> writes the process's pid to <file> and waits there to be killed
(tests/test_security_engine.py kills tsk at each phase). With TSK_TEST_FAIL_ONCE=<phase>:<file>, the
first process to reach <phase> makes <file> and fails there as the engine would (an `infra` failure for
tests/test_unattended_engine.py); later ones pass. TSK_TEST_BACKOFF=<seconds> shortens the first API
back-off, so a test sees a rate-limited task come back. TSK_TEST_NO_WATCHER=1 runs the agent without
the time and disk checks (bench/run.py times a warm run with and without them). Unset, a call costs
one lookup in the environment."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping


def hold(environ: Mapping[str, str], phase: str) -> None:
    wanted = environ.get("TSK_TEST_HOLD")
    if not wanted:
        return
    name, _, marker = wanted.partition(":")
    if name != phase or not marker:
        return
    with open(marker, "w") as f:
        f.write(f"{os.getpid()}\n")
    while True:
        time.sleep(3600)


def fail_once(environ: Mapping[str, str], phase: str) -> None:
    wanted = environ.get("TSK_TEST_FAIL_ONCE")
    if not wanted:
        return
    name, _, marker = wanted.partition(":")
    if name != phase or not marker:
        return
    try:
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    from tsk.errors import EngineError

    raise EngineError(f"the engine refused the request: a failure injected at {phase} (TSK_TEST_FAIL_ONCE)")


def backoff_first(environ: Mapping[str, str], default: float) -> float:
    wanted = environ.get("TSK_TEST_BACKOFF")
    try:
        return float(wanted) if wanted else default
    except ValueError:
        return default


def unwatched(environ: Mapping[str, str]) -> bool:
    return environ.get("TSK_TEST_NO_WATCHER") == "1"
