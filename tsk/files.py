"""Files tsk makes and reads where the sandbox can reach: private dirs, 0600 files written atomically,
bounded reads that never follow a link or block, and removing trees that are not plain to remove."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def remove_tree(path: Path) -> None:
    """Remove `path` as far as this user can, never raising. Two kinds of dir stop a plain rmtree:
    read-only dirs (a checkout keeps the repo's modes), and the dir an overlay mount leaves in its
    workdir (`work/work`, made by the kernel for dockerd: root's, mode 000, empty), which a user who
    is not root cannot list but may remove, since rmdir needs only the parent's permission."""

    import shutil  # here: the launcher imports this module, and shutil's import costs ~2 ms

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


def read_bounded(path: Path, limit: int) -> bytes | None:
    """A file the sandbox may have written, read the only safe way: never following a link (the sandbox
    can point one anywhere on the host), never blocking (a FIFO or a device opens at once and is
    refused), and at most `limit` bytes (it may be huge). None unless it is a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks: list[bytes] = []
        left = limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_tail(path: Path, limit: int) -> bytes | None:
    """The last `limit` bytes of a file the sandbox may have written, read as safely as read_bounded."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        os.lseek(fd, max(0, st.st_size - limit), os.SEEK_SET)
        chunks: list[bytes] = []
        left = limit
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 16))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def private_dir(path: Path) -> Path:
    """Make `path` (and missing parents) as a dir only its owner may enter: task dirs hold credentials."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write a file as 0600 from its first byte, atomically: a reader sees the old file or the new one,
    never a half-written or world-readable one, and never follows a link left where the file goes."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def real_dir(root: Path, rel: str, *, make: bool = False) -> Path | None:
    """`root/rel` if it is a directory reached without following any symlink (the sandbox may have
    swapped a dir for a link into the user's repo or anywhere on the host), else None. With `make`,
    missing dirs are made."""
    here = root
    for part in Path(rel).parts:
        if part in (".", "..", "/"):
            return None
        here = here / part
        if make and not here.is_symlink() and not here.exists():
            here.mkdir()
        try:
            if not stat.S_ISDIR(here.lstat().st_mode):
                return None
        except OSError:
            return None
    return here


def clear_special_bits(root: Path) -> None:
    """Remove setuid, setgid and sticky bits from every file and dir under `root`, following no link: a
    sandbox with sudo can make a setuid-root binary in a dir it shares with the host."""
    if not root.is_dir() or root.is_symlink():
        return
    for dirpath, dirs, files in os.walk(root, followlinks=False):
        for name in (*dirs, *files):
            path = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o7000:
                    continue
                os.chmod(path, stat.S_IMODE(st.st_mode) & 0o777)


def chown_tree(root: Path, uid: int, gid: int) -> None:
    """Give `root` and everything under it to uid:gid, following no link."""
    os.lchown(root, uid, gid)
    for dirpath, dirs, files in os.walk(root, followlinks=False):
        for name in (*dirs, *files):
            os.lchown(os.path.join(dirpath, name), uid, gid)


def owned_private_dir(path: str, *, close: bool = True) -> bool:
    """Make `path` if missing; True only if it is a real dir (not a link), ours, and closed to everyone
    else. In a shared place (/tmp) anyone may have made it first, to read or plant what tsk keeps there.
    One of ours that others could only read (an older tsk made it 0755) is closed now when `close`
    (tsk's own dirs; a dir the user named stays as it is, and is refused); one that others could write
    into may hold what they planted, and is refused."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
            return False
        if st.st_mode & 0o077:
            if not close:
                return False
            os.chmod(path, 0o700)
    except OSError:
        return False
    return True
