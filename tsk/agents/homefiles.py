"""The user's own agent config, read from their home for copying into a task's home: files and whole
config dirs (skills, plugins, ...). The user's home is trusted, but not everything in it belongs in a
sandbox: a dir's links that lead out of it are not followed, only regular files are read (a FIFO would
block), `.git` dirs stay behind, and all the dirs of one agent together stay under a size cap."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from tsk.agents.base import HomeFile

TREE_BYTES = 64 << 20  # all of an agent's config dirs together
TREE_FILES = 10_000


def copy_mode(st_mode: int) -> int:
    """The host file's own mode, at most 0644 (nothing executable, nothing group- or world-writable), and
    always readable and writable by the agent, whose copy it is."""
    return (stat.S_IMODE(st_mode) & 0o644) | 0o600


def shown(path: Path, host_home: Path) -> str:
    """A host path as the user would say it: under ~ when it is."""
    try:
        return f"~/{path.relative_to(host_home).as_posix()}"
    except ValueError:
        return str(path)


def _read_regular(path: Path, limit: int, *, follow: bool) -> tuple[bytes, int] | None:
    """(content, st_mode) of a regular file, at most `limit` bytes; None for anything else or on an error."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        chunks: list[bytes] = []
        left = limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks), st.st_mode
    except OSError:
        return None
    finally:
        os.close(fd)


def config_file(host_path: Path, container_path: str, host_home: Path, notes: list[str], *,
                secret: bool = False) -> HomeFile | None:
    """A config file of the user's (it may be a link into their dotfiles), None when there is none. Mode
    0600 when it may hold a secret, else its own at most 0644. One that cannot be read is left out, noted."""
    if not host_path.exists():
        return None
    got = _read_regular(host_path, TREE_BYTES, follow=True)
    if got is None:
        notes.append(f"{shown(host_path, host_home)} was not copied into the task's home: it is not a regular file "
                     "this user can read")
        return None
    content, mode = got
    return HomeFile(container_path=container_path, content=content, mode=0o600 if secret else copy_mode(mode),
                    origin=str(host_path))


def _entries(root: Path) -> tuple[list[tuple[Path, str]], int]:
    """(file to read, path relative to root) for each file under root, and how many links were not followed:
    a link to a file is followed while it stays inside root; a linked dir is never entered."""
    real = root.resolve()
    out: list[tuple[Path, str]] = []
    left_out = 0
    for dirpath, dirnames, filenames in os.walk(real):  # followlinks=False
        here = Path(dirpath)
        left_out += sum(1 for d in dirnames if (here / d).is_symlink())
        dirnames[:] = sorted(d for d in dirnames if d != ".git" and not (here / d).is_symlink())
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(real).as_posix()
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(real) or not target.is_file():
                    left_out += 1
                    continue
                path = target
            out.append((path, rel))
    return out, left_out


def copy_trees(trees: Sequence[tuple[Path, str]], host_home: Path, notes: list[str], *,
               max_bytes: int = TREE_BYTES, max_files: int = TREE_FILES) -> list[HomeFile]:
    """The regular files of each (host dir, container dir), in order, while they fit the caps together. A dir
    that would pass them is left out whole, noted: half a plugin is worse than none."""
    files: list[HomeFile] = []
    used = 0
    for host_dir, container_dir in trees:
        if not host_dir.is_dir():
            continue
        entries, left_out = _entries(host_dir)
        sized: list[tuple[Path, str, int]] = []
        for path, rel in entries:
            try:
                st = path.stat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                sized.append((path, rel, st.st_size))
        total = sum(size for _, _, size in sized)
        where = shown(host_dir, host_home)
        if used + total > max_bytes or len(files) + len(sized) > max_files:
            notes.append(f"{where} was not copied into the task's home: its {len(sized)} files of "
                         f"{total / (1 << 20):.1f} MiB would pass what tsk copies of an agent's config "
                         f"({max_bytes >> 20} MiB, {max_files} files); the agent runs without it")
            continue
        unread = 0
        for path, rel, size in sized:
            got = _read_regular(path, size, follow=False)
            if got is None:
                unread += 1
                continue
            content, mode = got
            used += len(content)
            files.append(HomeFile(container_path=f"{container_dir}/{rel}", content=content, mode=copy_mode(mode),
                                  origin=str(path)))
        if left_out:
            notes.append(f"{where}: {left_out} links that lead out of it, or to a dir, were not followed")
        if unread:
            notes.append(f"{where}: {unread} files could not be read and were not copied")
    return files
