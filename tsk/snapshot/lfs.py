"""git-lfs objects made in the sandbox, brought back with the branch that points to them.

In the sandbox git-lfs's clean filter (set up system-wide in the image) keeps a new file's content in
the task's git dir, `lfs/objects/<ab>/<cd>/<oid>`, and commits a pointer. When the branch is fetched,
the objects that its new commits point to and the user's repo lacks are copied into the user's
`<common git dir>/lfs/objects`: each read without following links, checked against its oid, written
to a temp file and linked into place, never over a file already there. The host needs no git-lfs."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import uuid
from collections.abc import Iterable
from pathlib import Path

import msgspec

from tsk.files import real_dir
from tsk.snapshot.git import TASK_GIT_TIMEOUT, git

POINTER_MAX = 1024  # git-lfs never reads a blob this big as a pointer
OBJECT_MAX = 2 << 30  # one object copied back at most; the sandbox decides how big its files are
TOTAL_MAX = 8 << 30  # all of one task's objects together
_POINTER = re.compile(rb"\Aversion https://(?:git-lfs|hawser)\.github\.com/spec/v1\n"
                      rb"(?:.*\n)*?oid sha256:([0-9a-f]{64})\n")
_CHUNK = 1 << 20


class LfsCopy(msgspec.Struct, frozen=True, kw_only=True):
    copied: tuple[str, ...] = ()
    present: int = 0  # already in the user's store
    missing: tuple[str, ...] = ()  # pointed to, but not in the sandbox's store either
    corrupt: tuple[str, ...] = ()  # the sandbox's file does not hash to its oid
    errors: tuple[str, ...] = ()  # could not be written: what the OS said
    refused: tuple[str, ...] = ()  # too big, sparse, or past the task's total: not copied

    def notes(self, store: str) -> list[str]:
        """What the user should know about the objects that did not come back into `store`."""
        out = []
        if self.missing:
            out.append(f"{len(self.missing)} git-lfs object(s) the task branch points to are neither in your "
                       f"repo nor in the sandbox: {', '.join(o[:12] for o in self.missing[:5])}")
        if self.corrupt:
            out.append(f"the sandbox's copy of git-lfs object(s) {', '.join(o[:12] for o in self.corrupt)} "
                       "does not match its oid; not copied")
        if self.errors:
            out.append(f"git-lfs object(s) could not be copied into {store}: {'; '.join(self.errors)}")
        if self.refused:
            out.append(f"git-lfs object(s) not copied into {store}: {'; '.join(self.refused)} (at most "
                       f"{OBJECT_MAX >> 30} GiB each and {TOTAL_MAX >> 30} GiB per task; never a sparse file)")
        return out


def bring_back(task_git_dir: Path, user_common_dir: Path, source: str, head: str) -> LfsCopy:
    """Copy the objects that `head`'s new commits (beyond `source`) point to into the user's store."""
    return copy_objects(task_git_dir, user_common_dir, pointed_oids(task_git_dir, source, head))


def pointed_oids(git_dir: Path, source: str, head: str) -> list[str]:
    """The oids of the git-lfs pointers among the blobs reachable from `head` but not from `source`."""
    gd = ["--git-dir", str(git_dir)]
    listing = git([*gd, "rev-list", "--objects", "--no-object-names", head, f"^{source}"], timeout=TASK_GIT_TIMEOUT)
    if not listing.strip():
        return []
    checked = git([*gd, "cat-file", "--batch-check=%(objecttype) %(objectname) %(objectsize)"], input=listing,
                  timeout=TASK_GIT_TIMEOUT)
    small = [name for kind, name, size in (line.split() for line in checked.splitlines())
             if kind == b"blob" and int(size) < POINTER_MAX]
    if not small:
        return []
    raw = git([*gd, "cat-file", "--batch"], input=b"\n".join(small) + b"\n", timeout=TASK_GIT_TIMEOUT)
    oids: list[str] = []
    pos = 0
    while pos < len(raw):
        header_end = raw.index(b"\n", pos)
        size = int(raw[pos:header_end].split()[2])
        body = raw[header_end + 1:header_end + 1 + size]
        pos = header_end + 1 + size + 1
        found = _POINTER.match(body)
        if found:
            oids.append(found.group(1).decode())
    return list(dict.fromkeys(oids))


def copy_objects(task_git_dir: Path, dest_common_dir: Path, oids: Iterable[str]) -> LfsCopy:
    """Copy the objects named by `oids` from the task git dir's store into the user's, where missing."""
    copied: list[str] = []
    missing: list[str] = []
    corrupt: list[str] = []
    errors: list[str] = []
    refused: list[str] = []
    present = 0
    budget = [TOTAL_MAX]
    for oid in oids:
        rel = f"lfs/objects/{oid[:2]}/{oid[2:4]}"
        dest = dest_common_dir / rel / oid
        if dest.is_symlink() or dest.exists():
            present += 1
            continue
        src_dir = real_dir(task_git_dir, rel)
        try:
            result = _copy_checked(src_dir / oid, dest, oid, budget) if src_dir is not None else None
        except OSError as exc:  # the branch is already back: say what is missing, do not fail the task
            errors.append(f"{oid[:12]}: {exc}")
            continue
        except _Refused as exc:
            refused.append(f"{oid[:12]}: {exc}")
            continue
        if result is None:
            missing.append(oid)
        elif result:
            copied.append(oid)
        else:
            corrupt.append(oid)
    return LfsCopy(copied=tuple(copied), present=present, missing=tuple(missing), corrupt=tuple(corrupt),
                   errors=tuple(errors), refused=tuple(refused))


class _Refused(Exception):
    """An object the sandbox made that tsk will not copy (see OBJECT_MAX, TOTAL_MAX)."""


def _copy_checked(src: Path, dest: Path, oid: str, budget: list[int]) -> bool | None:
    """True when copied (or found there meanwhile), False when the content does not match `oid`, None
    when the sandbox has no such regular file; _Refused when it is too big or sparse (a file of a few
    blocks that reads as terabytes of zeros must not be expanded on the host)."""
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fin:
        st = os.fstat(fin.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size > OBJECT_MAX:
            raise _Refused(f"too big ({st.st_size} bytes)")
        if st.st_blocks * 512 + (64 << 10) < st.st_size:
            raise _Refused(f"sparse ({st.st_size >> 20} MiB in {st.st_blocks * 512 >> 20} MiB of disk)")
        if st.st_size > budget[0]:
            raise _Refused("past the task's total")
        budget[0] -= st.st_size
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{oid}.tsk-{uuid.uuid4().hex[:8]}")
        try:
            digest = hashlib.sha256()
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb") as fout:
                while chunk := fin.read(_CHUNK):
                    digest.update(chunk)
                    fout.write(chunk)
            if digest.hexdigest() != oid:
                return False
            _publish(tmp, dest)
            return True
        finally:
            tmp.unlink(missing_ok=True)


def _publish(tmp: Path, dest: Path) -> None:
    """Move a finished temp file to `dest` unless something is there already: a link cannot replace a
    file, so a git-lfs writing the same object at the same moment keeps its own."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        return
    except OSError:  # a filesystem without hard links
        if not (dest.is_symlink() or dest.exists()):
            os.rename(tmp, dest)
