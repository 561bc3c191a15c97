"""A seam for the tests that kill tsk at each phase of a task (tests/test_security_engine.py): with
TSK_TEST_HOLD=<phase>:<file> in a process's environment, reaching <phase> writes the process's pid to
<file> and waits there to be killed. Unset, a call costs one lookup in the environment it is given."""

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
