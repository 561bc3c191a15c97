"""Removing trees tsk made that are not plain to remove."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path


def remove_tree(path: Path) -> None:
    """Remove `path` as far as this user can, never raising. Two kinds of dir stop a plain rmtree:
    read-only dirs (a checkout keeps the repo's modes), and the dir an overlay mount leaves in its
    workdir (`work/work`, made by the kernel for dockerd: root's, mode 000, empty), which a user who
    is not root cannot list but may remove, since rmdir needs only the parent's permission."""

    def onerror(func: object, target: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), 0o700)
        with contextlib.suppress(OSError):
            if os.path.isdir(target) and not os.path.islink(target):
                try:
                    os.rmdir(target)  # the unreadable empty dir
                except OSError:
                    os.chmod(target, 0o700)
                    shutil.rmtree(target, ignore_errors=True)
            else:
                os.unlink(target)

    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path, onerror=onerror)
