"""`--device`: host devices for the sandbox, as a person names them on the command line. A glob
(`/dev/dri/*`) is expanded on the host when the task is made, as a shell would, so the engine is
given the devices themselves; a name that is not there is refused before anything runs."""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Iterable

from tsk.errors import UsageError

_HINT = "give a host device path such as /dev/fuse, or a glob such as '/dev/dri/*' (quoted)"


def _is_device(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def expand_devices(patterns: Iterable[str], flag: str = "--device") -> tuple[str, ...]:
    """Each pattern's devices, in order, each once. A glob keeps the character and block devices it
    matches (not `/dev/dri/by-path` and its kind); a plain path must exist (a directory is the engine's
    to walk)."""
    out: list[str] = []
    for pattern in patterns:
        if not os.path.isabs(pattern):
            raise UsageError(f"{flag} {pattern}: not an absolute path", hint=_HINT)
        if glob.has_magic(pattern):
            found = sorted(p for p in glob.glob(pattern) if _is_device(p))
            if not found:
                raise UsageError(f"{flag} {pattern} matches no device on this host", hint=_HINT)
            out.extend(found)
        elif os.path.exists(pattern):
            out.append(pattern)
        else:
            raise UsageError(f"{flag} {pattern}: no such device on this host", hint=_HINT)
    return tuple(dict.fromkeys(out))
