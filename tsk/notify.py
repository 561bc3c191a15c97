"""Desktop notifications (notify-send), where there is a desktop to show them on."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Mapping

from tsk.errors import TskError


def notify(title: str, body: str, environ: Mapping[str, str]) -> None:
    if not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")) or shutil.which("notify-send") is None:
        return
    from tsk.engine import proc

    with contextlib.suppress(TskError):
        proc.run(["notify-send", "--app-name=tsk", title, body], check=False, timeout=5)


def task_ended(task_id: str, name: str, status: str, branch: str | None, environ: Mapping[str, str]) -> None:
    if status in ("COMPLETE", "FAILED", "CANCELLED"):
        notify(f"tsk: {name} {status}", f"{task_id}: " + (f"branch {branch}" if branch else "no branch"), environ)
