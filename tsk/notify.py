"""Desktop notifications (notify-send), where there is a desktop to show them on: one for every task
that ends (a server's and `tsk run`'s, as upstream tsk does), with a sound on request."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Mapping

from tsk.errors import TskError

# The freedesktop sound theme's names, as upstream tsk asks for them.
SOUNDS = {"COMPLETE": "message-new-instant", "FAILED": "dialog-warning", "CANCELLED": "dialog-warning"}


def notify_argv(title: str, body: str, *, sound: str | None = None) -> list[str]:
    hint = [f"--hint=string:sound-name:{sound}"] if sound else []
    return ["notify-send", "--app-name=tsk", *hint, title, body]


def notify(title: str, body: str, environ: Mapping[str, str], *, sound: str | None = None) -> None:
    if not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")) or shutil.which("notify-send") is None:
        return
    from tsk.engine import proc

    with contextlib.suppress(TskError):
        proc.run(notify_argv(title, body, sound=sound), check=False, timeout=5)


def task_ended(task_id: str, name: str, status: str, branch: str | None, environ: Mapping[str, str], *,
               sound: bool = False) -> None:
    if status in SOUNDS:
        notify(f"tsk: {name} {status}", f"{task_id}: " + (f"branch {branch}" if branch else "no branch"), environ,
               sound=SOUNDS[status] if sound else None)
