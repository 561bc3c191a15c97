"""Code travelling through a git remote (DESIGN §10), the git side of it: no store, no engine.

The adding host pushes a task's snapshot as one commit (its source commit plus the uncommitted files,
made with a private index in the task's own git dir) to `refs/tsk/snapshots/<id>`. A worker on any
host fetches it into its mirror of that remote (`<data>/mirrors/<hash of the remote>/<repo name>`, a
repo whose working tree is never checked out), snapshots the task from there as from a user's repo,
and pushes the result branch to `refs/tsk/results/<id>`. The adding host fetches that back into the
user's repo as the task branch, and never over a branch that is already there at another commit.

The remote's URL goes to git as config in the environment (a remote named `tsk-fleet`), never on a
command line, so a token in it stays out of logs and errors; what tsk shows of it has no userinfo."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import xxhash

from tsk.errors import CommandFailed, TskError
from tsk.snapshot import git as g
from tsk.snapshot.gitdir import check_branch
from tsk.snapshot.take import Snapshot

SNAPSHOTS = "refs/tsk/snapshots/"
RESULTS = "refs/tsk/results/"
NAME = "tsk-fleet"  # the remote's name in the config given to git through the environment
MESSAGE = "tsk: uncommitted changes in the working tree when the task was created"

# Written by a fetch into a repo: nothing but the refs asked for and their objects, all of them checked.
_FETCH = ("-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "fetch.writeCommitGraph=false",
          "-c", "fetch.fsckObjects=true", "-c", "transfer.fsckObjects=true", "fetch", "--quiet", "--no-tags",
          "--no-write-fetch-head", "--no-recurse-submodules", "--no-prune")
_ARGS_BYTES = 64 << 10  # paths per hash-object call: well under ARG_MAX


class RemoteError(TskError):
    """The git remote refused or failed a push or a fetch."""


class BranchTaken(TskError):
    """The task's branch already exists in the user's repo at another commit: it is left as it is."""


def snapshot_ref(task_id: str) -> str:
    return SNAPSHOTS + task_id


def result_ref(task_id: str) -> str:
    return RESULTS + task_id


def shown(remote: str) -> str:
    """The remote as tsk prints it: without a user or token before the host."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", remote, flags=re.IGNORECASE)


def _env(remote: str) -> dict[str, str]:
    """The remote's URL as one more entry of git's config from the environment (after any already there)."""
    raw = os.environ.get("GIT_CONFIG_COUNT", "")
    n = int(raw) if raw.isdigit() else 0
    return {"GIT_CONFIG_COUNT": str(n + 1), f"GIT_CONFIG_KEY_{n}": f"remote.{NAME}.url",
            f"GIT_CONFIG_VALUE_{n}": remote}


def _talk(args: Sequence[str], remote: str, what: str) -> str:
    """A git command that talks to the remote, and what it printed; its failure said with the remote
    shown, not spelled."""
    try:
        return g.git_text(args, env=_env(remote))
    except CommandFailed as exc:
        said = exc.output.replace(remote, shown(remote)).strip().splitlines()[-5:]
        raise RemoteError(f"{what} {shown(remote)} failed (git exit code {exc.returncode}): " + " / ".join(said),
                          hint="check `[server] remote` in tsk.toml and that this host can push to and fetch "
                          "from it") from None


# -- the adding host -------------------------------------------------------------------------------

def snapshot_commit(snap: Snapshot, env: dict[str, str]) -> str:
    """The snapshot as a commit: its source commit when nothing was uncommitted, else one commit on top
    of it with the files of `changes_dir` (exact bytes: no filter, no line-ending change; a symlink as a
    link, the exec bit kept) and without the deleted ones. Made in the task git dir with an index of its
    own, so nothing of the user's (repo, index, refs) is touched; `env` is the committer."""
    source = snap.source_commit
    if not snap.changed and not snap.deleted:
        return source
    gd = ["--git-dir", snap.git_dir]
    with tempfile.TemporaryDirectory(dir=Path(snap.git_dir).parent, prefix=".snapshot-") as tmp:
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        g.git([*gd, "-c", "core.splitIndex=false", "read-tree", source], env=index)
        zero = "0" * len(source)
        entries: list[bytes] = [f"0 {zero}\t".encode() + os.fsencode(p) + b"\0" for p in snap.deleted]
        blobs: list[tuple[str, str, str]] = []  # (mode, file to hash, path)
        for n, rel in enumerate(snap.changed):
            src = Path(snap.changes_dir) / rel
            try:
                st = src.lstat()
            except OSError:  # gone before it was copied: gone in the sandbox too
                entries.insert(0, f"0 {zero}\t".encode() + os.fsencode(rel) + b"\0")
                continue
            if stat.S_ISLNK(st.st_mode):
                link = Path(tmp) / f"link-{n}"
                link.write_bytes(os.fsencode(os.readlink(src)))
                blobs.append(("120000", str(link), rel))
            elif stat.S_ISREG(st.st_mode):
                blobs.append(("100755" if st.st_mode & stat.S_IXUSR else "100644", str(src), rel))
        for (mode, _, rel), sha in zip(blobs, _hash_files([b[1] for b in blobs], gd), strict=True):
            entries.append(f"{mode} {sha}\t".encode() + os.fsencode(rel) + b"\0")
        g.git([*gd, "update-index", "-z", "--index-info"], env=index, input=b"".join(entries))
        tree = g.git_text([*gd, "write-tree"], env=index)
    if tree == g.git_text([*gd, "rev-parse", f"{source}^{{tree}}"]):
        return source
    return g.git_text([*gd, "-c", "commit.gpgsign=false", "commit-tree", tree, "-p", source, "-m", MESSAGE],
                      env=env)


def _hash_files(files: list[str], gd: list[str]) -> list[str]:
    """Each file written as a blob, as it is on disk (no filter), in as few git calls as fit."""
    out: list[str] = []
    start = 0
    while start < len(files):
        end, size = start, 0
        while end < len(files) and (end == start or size + len(files[end]) < _ARGS_BYTES):
            size += len(files[end]) + 1
            end += 1
        out += g.git_text([*gd, "hash-object", "-w", "--no-filters", "--", *files[start:end]]).split()
        start = end
    return out


def push_snapshot(snap: Snapshot, remote: str, task_id: str, env: dict[str, str]) -> str:
    """Push the task's snapshot commit to `refs/tsk/snapshots/<id>` on the remote; returns that ref."""
    ref = snapshot_ref(task_id)
    commit = snapshot_commit(snap, env)
    _talk(["--git-dir", snap.git_dir, "push", "--quiet", "--no-verify", NAME, f"{commit}:{ref}"], remote,
          "pushing the task's snapshot to")
    return ref


def bring_back(repo: Path, remote: str, task_id: str, branch: str, head: str | None) -> bool:
    """Fetch the task's result from the remote into the user's repo as `refs/heads/<branch>`, never
    forced. `head` is the commit the worker pushed, when known. True when the branch was made now, False
    when it was there already at that commit; BranchTaken when it is there at another commit."""
    check_branch(branch)
    there = g.resolve_commit(repo, f"refs/heads/{branch}")
    if there is not None:
        if there == head:
            return False
        raise BranchTaken(
            f"task {task_id}: the branch {branch} already exists in {repo} at {there[:12]}, not at the task's "
            f"result {head[:12] if head else '(unknown)'}; it is left as it is",
            hint=f"rename or delete that branch and run `tsk fetch {task_id}` again, or fetch the result under "
            f"another name: git fetch {shown(remote)} {result_ref(task_id)}:refs/heads/<name>")
    _talk(["-C", str(repo), *_FETCH, NAME, f"{result_ref(task_id)}:refs/heads/{branch}"], remote,
          f"fetching the result of task {task_id} from")
    return True


# -- a worker --------------------------------------------------------------------------------------

def mirror_path(data_dir: Path, remote: str, repo_name: str) -> Path:
    name = repo_name if repo_name not in ("", ".", "..") else "repo"
    return data_dir / "mirrors" / xxhash.xxh3_64_hexdigest(remote.encode(errors="surrogateescape")) / name


def fetch_into_mirror(data_dir: Path, remote: str, repo_name: str, refs: Iterable[str],
                      object_format: str = "sha1") -> Path:
    """This host's mirror of `remote` for a repo of that name (made on first use), with `refs` fetched
    into it at the same names. Under a lock: a server's workers fetch at once."""
    from filelock import FileLock

    mirror = mirror_path(data_dir, remote, repo_name)
    mirror.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(mirror.parent / f"{mirror.name}.lock")):
        if not (mirror / ".git" / "HEAD").is_file():
            _make_mirror(mirror, object_format)
        wanted = [f"+{r}:{r}" for r in dict.fromkeys(refs)]
        if wanted:
            _talk(["-C", str(mirror), *_FETCH, NAME, *wanted], remote, "fetching the task's code from")
    return mirror


def _make_mirror(mirror: Path, object_format: str) -> None:
    """A repo with no working tree checked out and HEAD on no branch (a task's git-town parent is not
    the mirror's), built aside and moved in whole."""
    import shutil

    tmp = mirror.with_name(f".{mirror.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    g.git(["-c", "init.defaultBranch=tsk-mirror", "init", "-q", "--template=", f"--object-format={object_format}",
           str(tmp)])
    for key, value in (("gc.auto", "0"), ("maintenance.auto", "false"), ("core.logAllRefUpdates", "false")):
        g.git(["-C", str(tmp), "config", key, value])
    (tmp / ".git" / "HEAD").write_text("ref: refs/tsk/mirror\n")
    os.rename(tmp, mirror)


def resolve(mirror: Path, ref: str) -> str:
    sha = g.resolve_commit(mirror, ref)
    if sha is None:
        raise RemoteError(f"{ref} is not a commit in {mirror} after fetching it")
    return sha


def delete_refs(mirror: Path, remote: str, refs: Sequence[str]) -> list[str]:
    """Remove those of `refs` that are on the remote (deleted tasks' snapshots and results); returns
    the ones removed. One listing and at most one push."""
    listed = _talk(["-C", str(mirror), "ls-remote", "--refs", NAME, *refs], remote, "listing refs on")
    there = [line.split("\t", 1)[1] for line in listed.splitlines() if "\t" in line]
    gone = [r for r in dict.fromkeys(refs) if r in there]
    if gone:
        _talk(["-C", str(mirror), "push", "--quiet", "--no-verify", NAME, *(f":{r}" for r in gone)], remote,
              "deleting refs on")
    return gone


def push_from_mirror(mirror: Path, remote: str, commit: str, ref: str) -> None:
    """Push `commit` to `ref` on the remote, replacing what is there (the worker running the task owns it)."""
    _talk(["-C", str(mirror), "push", "--quiet", "--no-verify", NAME, f"+{commit}:{ref}"], remote,
          f"pushing {ref} to")
