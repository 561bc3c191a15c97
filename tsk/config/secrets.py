"""Which values are secrets: environment variables whose names say so (key, token, secret, password,
credential, auth). Their values are never printed, never logged and never stored in clear in a task's
record; the sandbox gets them from a 0600 file read at start, not from the container's environment."""

from __future__ import annotations

import re
from collections.abc import Mapping

_SECRET_NAME = re.compile(r"key|token|secret|passw(or)?d|credential|auth", re.IGNORECASE)
HIDDEN = "***"


def is_secret(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: (HIDDEN if is_secret(k) else v) for k, v in env.items()}
