"""The shared read-only checkout of one source commit: `<data>/checkouts/<repo-id>/<key>/` with the
files (`tree/`) and an index whose stat data matches them (`index`). Made once per commit, under a lock
(check, lock, check again, build in a temp dir, publish by rename), and used by every task from that
commit as the lower layer of its overlay. Initialized submodules are checked out inside it at their
recorded commits, each with an index of its own (`index.<key>`, see `sub_index`); git-lfs files stay
pointers."""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from pathlib import Path

import msgspec
import xxhash

from tsk.files import remove_tree
from tsk.snapshot.git import NO_SMUDGE, RepoInfo, git, git_ok, objects_dirs

log = logging.getLogger("tsk.sandbox")

GITLINK = "160000"


class Submodule(msgspec.Struct, frozen=True, kw_only=True):
    path: str  # relative to the parent's tree
    name: str  # its name in the parent's .gitmodules: the task keeps its git dir at modules/<name>
    git_dir: str  # the user's git dir for it (read only until the task's branch is fetched into it)
    common_dir: str  # the user's common git dir for it (refs, lfs/objects)
    commit: str
    objects: tuple[str, ...]  # its objects dirs, mounted read-only in the sandbox
    children: tuple[Submodule, ...] = ()


class Checkout(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    commit: str
    started: float  # the build's clock: no file in tree/ has an mtime outside [started, finished]
    finished: float
    submodules: tuple[Submodule, ...] = ()

    def ro_mounts(self) -> list[str]:
        out: list[str] = []
        todo = list(self.submodules)
        while todo:
            sub = todo.pop(0)
            out.extend(o for o in sub.objects if o not in out)
            todo.extend(sub.children)
        return out


def _submodule_git_dir(work: Path | None, git_dir: Path, common_dir: Path, path: str, name: str) -> Path | None:
    """The git dir of an initialized submodule, or None when it is not initialized."""
    if work is not None:
        dot = work / path / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():
            line = dot.read_text(errors="surrogateescape").strip()
            if line.startswith("gitdir:"):
                target = (dot.parent / line.removeprefix("gitdir:").strip()).resolve()
                if target.is_dir():
                    return target
    for d in (git_dir / "modules" / name, common_dir / "modules" / name):
        if (d / "HEAD").is_file():
            return d
    return None


def safe_name(name: str) -> bool:
    """A submodule name that stays inside `modules/` (git refuses the same ones)."""
    parts = name.replace("\\", "/").split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def plan_submodules(work: Path | None, git_dir: Path, common_dir: Path, commit: str,
                    prefix: str = "") -> tuple[tuple[Submodule, ...], tuple[str, ...]]:
    """The gitlinks in `commit` whose submodule the user has initialized and whose recorded commit is
    present; the others stay empty dirs, as in a fresh clone, and get a note saying so. O(submodules),
    not O(files)."""
    raw = git_ok(["--git-dir", str(common_dir), "config", "--blob", f"{commit}:.gitmodules", "-z",
                  "--get-regexp", r"^submodule\..*\.path$"])
    if not raw:
        return (), ()
    names: dict[str, str] = {}
    for entry in raw.split("\0"):
        key, _, value = entry.partition("\n")
        if key and value:
            names[value] = key.removeprefix("submodule.").removesuffix(".path")
    listing = git(["--git-dir", str(common_dir), "ls-tree", "-z", commit, "--", *names], cwd=common_dir)
    out: list[Submodule] = []
    notes: list[str] = []
    for item in listing.split(b"\0"):
        if not item:
            continue
        meta, _, raw_path = item.partition(b"\t")
        mode, _, sha = meta.decode().split(" ")
        path = os.fsdecode(raw_path)
        if mode != GITLINK:
            continue
        name = names.get(path, path)
        shown = prefix + path
        if not safe_name(name):
            notes.append(f"submodule {shown}: its name {name!r} would leave .git/modules; it stays an empty "
                         "directory in the sandbox and nothing in it comes back")
            continue
        sub = _submodule_git_dir(work, git_dir, common_dir, path, name)
        if sub is None:
            notes.append(f"submodule {shown} is not initialized in your repo, so it was an empty directory in "
                         "the sandbox and nothing in it comes back; `git submodule update --init --recursive` "
                         "gives later tasks its files")
            continue
        if git_ok(["--git-dir", str(sub), "cat-file", "-e", f"{sha}^{{commit}}"]) is None:
            notes.append(f"submodule {shown}: its recorded commit {sha[:12]} is not in {sub}, so it was an empty "
                         "directory in the sandbox; run `git submodule update` to fetch it")
            continue
        sub_common = Path(git_ok(["--git-dir", str(sub), "rev-parse", "--path-format=absolute",
                                  "--git-common-dir"]) or sub)
        children, child_notes = plan_submodules(work / path if work else None, sub, sub_common, sha,
                                                prefix=f"{shown}/")
        notes.extend(child_notes)
        out.append(Submodule(path=path, name=name, git_dir=str(sub), common_dir=os.path.realpath(sub_common),
                             commit=sha, objects=tuple(objects_dirs(sub_common)), children=children))
    if not prefix:
        for note in notes:
            log.info("%s", note)
    return tuple(out), tuple(notes)


def sub_index(checkout_dir: Path, path: str) -> Path:
    """The index of the submodule at `path` (from the top of the superproject) in a checkout."""
    return checkout_dir / f"index.{xxhash.xxh3_64_hexdigest(path.encode(errors='surrogateescape'))}"


def checkout_key(commit: str, submodules: tuple[Submodule, ...]) -> str:
    if not submodules:
        return commit
    return f"{commit}-{xxhash.xxh3_64_hexdigest(msgspec.json.encode(submodules))}"


def repo_id(info: RepoInfo) -> str:
    return xxhash.xxh3_64_hexdigest(info.common_dir.encode(errors="surrogateescape"))


def _workers() -> int:
    """Parallel checkout's processes: one per core this process may use, at most 8 (git's own
    measurements gain little past that)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def _check_out(git_dir: Path, commit: str, tree: Path, index: Path, subs: tuple[Submodule, ...],
               prefix: str = "") -> None:
    tree.mkdir(parents=True, exist_ok=True)
    env = {"GIT_INDEX_FILE": str(index)}
    # One pass fills the empty index from the commit, writes the files (in parallel) and records each
    # file's stat data as written. Whatever the user's config says: all of the commit (no sparse
    # checkout; submodules come next, from their own git dirs) and a plain index (a split one would put
    # a sharedindex file in their git dir and leave the task's index pointing at it).
    git(["--git-dir", str(git_dir), "--work-tree", str(tree), *NO_SMUDGE, "-c", "core.splitIndex=false",
         "-c", f"checkout.workers={_workers()}", "read-tree", "--reset", "-u", "--no-sparse-checkout",
         "--no-recurse-submodules", commit], cwd=tree, env=env)
    for sub in subs:
        # kept beside the superproject's: a task's submodule git dir starts from it
        path = prefix + sub.path
        _check_out(Path(sub.git_dir), sub.commit, tree / sub.path, sub_index(index.parent, path), sub.children,
                   prefix=f"{path}/")


def ensure_checkout(data_dir: Path, info: RepoInfo, commit: str, subs: tuple[Submodule, ...]) -> tuple[Path, Checkout]:
    """The checkout dir for `commit`, built now if no task has needed it before."""
    from filelock import FileLock

    root = data_dir / "checkouts" / repo_id(info)
    key = checkout_key(commit, subs)
    final = root / key
    meta_path = final / "checkout.json"
    if meta_path.is_file():
        _mark_used(final)
        return final, msgspec.json.decode(meta_path.read_bytes(), type=Checkout)
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{key}.lock")):
        if meta_path.is_file():  # another process built it while we waited
            return final, msgspec.json.decode(meta_path.read_bytes(), type=Checkout)
        for stale in root.glob(f".tmp-{key}-*"):  # left by a build that crashed
            shutil.rmtree(stale, ignore_errors=True)
        tmp = root / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            started = time.time()
            _check_out(Path(info.common_dir), commit, tmp / "tree", tmp / "index", subs)
            finished = time.time()
            meta = Checkout(key=key, commit=commit, started=started, finished=finished, submodules=subs)
            (tmp / "checkout.json").write_bytes(msgspec.json.encode(meta))
            for d in (tmp, tmp / "tree"):  # readable by others (dockerd mounts it), writable by the user only
                d.chmod(0o755)
            os.rename(tmp, final)
            _mark_used(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final, meta


def _mark_used(checkout: Path) -> None:
    """The checkout's last use, for `prune_checkouts` (a file's mtime: no read-modify-write race)."""
    (checkout / "used").touch()


def prune_checkouts(data_dir: Path, *, keep: set[str], older_than: float, now: float | None = None) -> list[Path]:
    """Remove shared checkouts no task has used for `older_than` seconds, except the trees in `keep`
    (the checkout trees of tasks that are not finished: an overlay's lower layer must not change under
    it). Each removal holds the checkout's build lock, so a task taking a snapshot of that commit at
    the same moment either finds it whole or builds it again."""
    from filelock import FileLock, Timeout

    now = time.time() if now is None else now
    removed = []
    for meta in sorted((data_dir / "checkouts").glob("*/*/checkout.json")):
        final = meta.parent
        if str(final / "tree") in keep:
            continue
        used = final / "used"
        last = used.stat().st_mtime if used.exists() else meta.stat().st_mtime
        if now - last < older_than:
            continue
        lock = FileLock(str(final.parent / f"{final.name}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        try:
            trash = final.parent / f".trash-{final.name}-{uuid.uuid4().hex[:8]}"
            os.rename(final, trash)
            remove_tree(trash)
            removed.append(final)
        finally:
            lock.release()
    return removed
