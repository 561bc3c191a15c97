"""What a repo looks like from the outside: its project name and its stack."""

from __future__ import annotations

import os
import re
from pathlib import Path

# First match wins, so a Rust crate with a Python helper script is still "rust".
_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rust", ("Cargo.toml",)),
    ("lua", ("*.rockspec", ".luacheckrc", "init.lua")),
    ("python", ("pyproject.toml", "requirements.txt", "setup.py")),
    ("node", ("package.json",)),
    ("go", ("go.mod",)),
    ("java", ("pom.xml", "build.gradle", "build.gradle.kts")),
)

_NOT_NAME = re.compile(r"[^a-z0-9._-]+")


def detect_stack(repo: Path) -> str | None:
    """The stack named by marker files at the repo root, or None when nothing matches."""
    if not repo.is_dir():
        return None
    for stack, patterns in _MARKERS:
        for pattern in patterns:
            if any(p.is_file() for p in repo.glob(pattern)):
                return stack
    return None


def project_name(repo: Path) -> str:
    """The repo directory's name, made safe for image tags and container names."""
    # abspath, not resolve(): the name the user sees, even when the repo is reached through a symlink.
    base = os.path.basename(os.path.abspath(repo))
    return clean_name(base)


def clean_name(raw: str) -> str:
    cleaned = _NOT_NAME.sub("-", raw.lower()).strip("-.")
    return cleaned or "project"
