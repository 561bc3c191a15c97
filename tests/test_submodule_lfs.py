"""Work inside submodules and new git-lfs files come back with the task branch, against the real engine:
the submodule commits into the user's git dir for each submodule under the task branch's name, the
git-lfs objects into the user's store, and nothing else in the user's repo changes."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest
from helpers import make_repo

from tests import test_snapshot
from tests.test_snapshot import dot_git_hash, git, sandbox, user_state
from tsk.sandbox.runner import fetch_work
from tsk.snapshot.fetch import fetch_result
from tsk.snapshot.inside import commit_script, prepare_script
from tsk.snapshot.take import Snapshot, take_snapshot
from tsk.tasks.model import Task, agent_log

# the snapshot tests' fixtures, found by name: the exec agent's image, and the data dir in tmp_path
image = test_snapshot.image
data_dir = test_snapshot.data_dir

LFS_ATTRS = "*.bin filter=lfs diff=lfs merge=lfs -text\n"
MESSAGE = "tsk: work left uncommitted"


def pointer(content: bytes) -> str:
    return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(content).hexdigest()}\n"
            f"size {len(content)}\n")


def gd(git_dir: Path, *args: str) -> str:
    """git in a submodule's git dir, as the user would ask it."""
    return git(git_dir, "--git-dir", str(git_dir), *args)


def refs(git_dir: Path, *, but: str | None = None) -> list[str]:
    return [line for line in gd(git_dir, "for-each-ref", "--format=%(refname) %(objectname)").splitlines()
            if but is None or line.split()[0] != f"refs/heads/{but}"]


@pytest.fixture
def sub_repo(tmp_path: Path) -> Path:
    """proj has `lib` (named `libname`; git-lfs files; a nested submodule `deps/inner`), `vendor/other`,
    and `ghost`, which is not initialized."""
    inner = make_repo(tmp_path / "inner", {"inner.txt": "inner\n"})
    lib = make_repo(tmp_path / "lib", {"lib.txt": "lib\n", ".gitattributes": LFS_ATTRS})
    git(lib, "submodule", "-q", "add", str(inner), "deps/inner")
    git(lib, "commit", "-qm", "nested submodule")
    other = make_repo(tmp_path / "other", {"other.txt": "other\n"})
    ghost = make_repo(tmp_path / "ghost", {"ghost.txt": "ghost\n"})
    repo = make_repo(tmp_path / "proj", {"README.md": "hello\n", ".gitattributes": LFS_ATTRS})
    git(repo, "submodule", "-q", "add", "--name", "libname", str(lib), "lib")
    git(repo, "submodule", "-q", "add", str(other), "vendor/other")
    git(repo, "submodule", "-q", "add", str(ghost), "ghost")
    git(repo, "commit", "-qm", "submodules")
    git(repo, "submodule", "-q", "update", "--init", "--recursive")
    git(repo, "submodule", "-q", "deinit", "-f", "ghost")
    git(repo, "-c", "core.hooksPath=/dev/null", "rm", "-q", "--cached", "--dry-run", "ghost")
    subprocess.run(["rm", "-rf", str(repo / ".git" / "modules" / "ghost")], check=True)
    return repo


def lib_dirs(repo: Path) -> tuple[Path, Path, Path]:
    mods = repo / ".git" / "modules"
    return mods / "libname", mods / "libname" / "modules" / "deps" / "inner", mods / "vendor" / "other"


def run_task(repo: Path, tmp_path: Path, data_dir: Path, image: str, tid: str, script: str,
             **kw: bool) -> tuple[Snapshot, Task, str]:
    """Snapshot, sandbox (prepare, `script`, commit), and the task record fetch_work needs."""
    tdir = tmp_path / "tasks" / tid
    branch = f"tsk/feat/sub/{tid}"
    snap = take_snapshot(repo, tdir, data_dir=data_dir, branch=branch)
    done = sandbox(snap, tdir, image, script, **kw)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "could not be committed" not in done.stderr, done.stderr
    task = Task(id=tid, name="sub", type="feat", agent="exec", stack="default", project="proj", repo=str(repo),
                branch=branch, source_commit=snap.source_commit)
    return snap, task, done.stdout


@pytest.mark.docker
def test_uncommitted_edits_in_submodules_come_back_on_their_own_branches(
        sub_repo: Path, tmp_path: Path, data_dir: Path, image: str) -> None:
    repo = sub_repo
    lib_gd, inner_gd, other_gd = lib_dirs(repo)
    before = user_state(repo)
    sub_refs = {d: refs(d) for d in (lib_gd, inner_gd, other_gd)}
    git_before = dot_git_hash(repo)
    script = r"""
echo "status:[$(git status --porcelain)]"
echo "lib-branch:$(git -C lib symbolic-ref --short HEAD)"
echo "edited in the sandbox" >> lib/lib.txt
echo "nested edit" > lib/deps/inner/inner.txt
"""
    snap, task, out = run_task(repo, tmp_path, data_dir, image, "s1", script)
    tdir = tmp_path / "tasks" / "s1"
    # inside, the submodules are repositories on the task branch, clean as the user's are
    assert "status:[]" in out and "lib-branch:tsk/feat/sub/s1" in out, out
    assert [s.path for s in snap.submodules] == ["lib", "vendor/other"]
    assert any("submodule ghost is not initialized" in n for n in snap.notes), snap.notes

    notes = fetch_work(task, tdir)
    branch = task.branch
    assert task.result_branch == branch and task.commits == 1
    assert any("submodule ghost is not initialized" in n for n in notes)
    assert "submodule ghost is not initialized" in agent_log(tdir).read_text()

    # the superproject's branch moves the gitlink; nothing else in it changed
    raw = git(repo, "diff", "--raw", "--no-abbrev", snap.source_commit, branch)
    new_lib = git(repo, "rev-parse", f"{branch}:lib")
    old_lib = git(repo, "rev-parse", f"{snap.source_commit}:lib")
    assert raw == f":160000 160000 {old_lib} {new_lib} M\tlib"
    # the submodule's commit is in the user's git dir for it, on a branch of the same name
    assert gd(lib_gd, "rev-parse", f"refs/heads/{branch}") == new_lib
    assert gd(lib_gd, "show", f"{new_lib}:lib.txt") == "lib\nedited in the sandbox"
    assert gd(lib_gd, "log", "-1", "--format=%an <%ae> %s", new_lib) == f"Agent <agent@example.com> {MESSAGE}"
    assert gd(lib_gd, "rev-parse", f"{new_lib}~1") == old_lib
    # and so is the nested one's, which the new lib commit records
    new_inner = gd(lib_gd, "rev-parse", f"{new_lib}:deps/inner")
    assert new_inner != gd(lib_gd, "rev-parse", f"{old_lib}:deps/inner")
    assert gd(inner_gd, "rev-parse", f"refs/heads/{branch}") == new_inner
    assert gd(inner_gd, "show", f"{new_inner}:inner.txt") == "nested edit"
    # no other ref, no working tree, nothing in the untouched submodule changed
    assert refs(lib_gd, but=branch) == sub_refs[lib_gd]
    assert refs(inner_gd, but=branch) == sub_refs[inner_gd]
    assert refs(other_gd) == sub_refs[other_gd]
    assert user_state(repo, ignore_branch=branch) == before
    changed = only_the_branch_and_objects(git_before, dot_git_hash(repo))
    assert any(k.startswith(".git/modules/libname/modules/deps/inner/refs/heads/tsk/") for k in changed)

    # what the user does next gives them the agent's edits
    git(repo, "checkout", "-q", branch)
    git(repo, "submodule", "-q", "update", "--recursive")
    assert (repo / "lib" / "lib.txt").read_text() == "lib\nedited in the sandbox\n"
    assert (repo / "lib" / "deps" / "inner" / "inner.txt").read_text() == "nested edit\n"


@pytest.mark.docker
def test_a_commit_made_inside_a_submodule_comes_back(
        sub_repo: Path, tmp_path: Path, data_dir: Path, image: str) -> None:
    repo = sub_repo
    lib_gd, inner_gd, other_gd = lib_dirs(repo)
    sub_refs = {d: refs(d) for d in (lib_gd, inner_gd, other_gd)}
    script = r"""
cd lib
echo "added by the agent" > added.txt
git add added.txt
git commit -qm 'agent: a commit in lib'
echo "and left uncommitted" > loose.txt
"""
    snap, _task, _out = run_task(repo, tmp_path, data_dir, image, "s2", script)
    res = fetch_result(snap)
    branch = snap.branch
    assert (res.branch, res.commits, res.submodules) == (branch, 1, ("lib",))
    new_lib = git(repo, "rev-parse", f"{branch}:lib")
    assert git(repo, "diff", "--name-only", snap.source_commit, branch) == "lib"
    assert gd(lib_gd, "rev-parse", f"refs/heads/{branch}") == new_lib
    assert gd(lib_gd, "log", "--format=%s", f"{snap.submodules[0].commit}..{new_lib}").splitlines() == [
        MESSAGE, "agent: a commit in lib"]
    assert gd(lib_gd, "show", f"{new_lib}:added.txt") == "added by the agent"
    assert gd(lib_gd, "show", f"{new_lib}:loose.txt") == "and left uncommitted"
    assert refs(lib_gd, but=branch) == sub_refs[lib_gd]
    assert refs(inner_gd) == sub_refs[inner_gd] and refs(other_gd) == sub_refs[other_gd]
    assert (repo / "lib" / "added.txt").exists() is False  # the user's working tree is theirs


def only_the_branch_and_objects(before: dict[str, str], after: dict[str, str]) -> set[str]:
    """The files of a user's .git that changed, checked to be the task branches, their logs and objects."""
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    for k in changed:  # in .git or in a submodule's git dir, .git/modules/<name>/...
        assert re.search(r"/(refs/heads/tsk/|logs/refs/heads/tsk/|objects/)", k) and k in after, (k, sorted(changed))
    return changed


def lfs_object(common: Path, content: bytes) -> Path:
    oid = hashlib.sha256(content).hexdigest()
    return common / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


@pytest.mark.docker
def test_new_lfs_objects_come_back_and_existing_ones_are_left_alone(
        sub_repo: Path, tmp_path: Path, data_dir: Path, image: str) -> None:
    repo = sub_repo
    lib_gd = lib_dirs(repo)[0]
    old = b"an object the user already has\n"
    (repo / "old.bin").write_text(pointer(old))
    git(repo, "add", "old.bin")
    git(repo, "commit", "-qm", "an lfs pointer")
    have = lfs_object(repo / ".git", old)
    have.parent.mkdir(parents=True)
    have.write_bytes(old)
    stamp = have.stat().st_mtime_ns - 10**9
    os.utime(have, ns=(stamp, stamp))
    st = have.stat()
    new, in_lib, junk = b"new content\n" * 1000, b"a new asset in lib\n", b"staged, then dropped\n"
    script = f"""
printf '%s' '{new.decode()}' > new.bin
printf '%s' '{old.decode()}' > same-as-old.bin
printf '%s' '{in_lib.decode()}' > lib/asset.bin
printf '%s' '{junk.decode()}' > junk.bin && git add junk.bin && git rm -q --cached junk.bin && rm junk.bin
"""
    snap, _task, _out = run_task(repo, tmp_path, data_dir, image, "l1", script)
    task_store = Path(snap.git_dir) / "lfs" / "objects"
    assert lfs_object(Path(snap.git_dir), new).read_bytes() == new  # the clean filter ran in the sandbox
    assert lfs_object(Path(snap.git_dir), junk).is_file()
    res = fetch_result(snap)
    branch = snap.branch
    assert res.branch == branch and res.submodules == ("lib",), res
    assert git(repo, "show", f"{branch}:new.bin") == pointer(new).strip()
    got = lfs_object(repo / ".git", new)
    assert got.read_bytes() == new and hashlib.sha256(got.read_bytes()).hexdigest() == got.name
    assert lfs_object(lib_gd, in_lib).read_bytes() == in_lib  # the submodule's own store
    assert not lfs_object(repo / ".git", junk).exists()  # not on the branch: not brought back
    after = have.stat()
    assert (after.st_ino, after.st_mtime_ns, have.read_bytes()) == (st.st_ino, st.st_mtime_ns, old)
    assert res.lfs_objects == 2 and not [n for n in res.notes if "git-lfs" in n], res
    assert not list((repo / ".git" / "lfs").rglob("*.tsk-*"))  # no temp file left
    assert task_store.is_dir()


@pytest.mark.docker
def test_lfs_objects_come_back_only_with_a_branch(tmp_path: Path, data_dir: Path, image: str) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n", ".gitattributes": LFS_ATTRS})
    script = "echo staged > x.bin && git add x.bin && git rm -q --cached x.bin && rm x.bin"
    snap, _task, _out = run_task(repo, tmp_path, data_dir, image, "l2", script)
    assert list((Path(snap.git_dir) / "lfs" / "objects").rglob("*")), "the clean filter did not run"
    res = fetch_result(snap)
    assert res.branch is None
    assert not (repo / ".git" / "lfs").exists()


@pytest.mark.docker
def test_a_link_in_place_of_a_submodule_git_dir_leads_nowhere(
        sub_repo: Path, tmp_path: Path, data_dir: Path, image: str) -> None:
    """On the way back tsk rewrites config and alternates in the task's git dirs: a submodule's swapped
    for a link into the user's repo (valid on the host, where the fetch runs) must not take them there."""
    repo = sub_repo
    lib_gd = lib_dirs(repo)[0]
    git_before = dot_git_hash(repo)
    script = f"""
echo top > top.txt
echo sub >> lib/lib.txt
cd lib && git add -A && git commit -qm sub && cd ..
git add -A && git commit -qm top
rm -rf .git/modules/libname && ln -s {lib_gd} .git/modules/libname
"""
    snap, _task, _out = run_task(repo, tmp_path, data_dir, image, "x1", script, commit=False)
    from tsk.snapshot.gitdir import TaskGitDirError

    with pytest.raises(TaskGitDirError, match="modules/libname is a symlink"):
        fetch_result(snap)
    assert dot_git_hash(repo) == git_before  # nothing fetched, nothing written, anywhere in the user's repo


def test_each_submodule_git_dir_and_its_gitfile_point_at_each_other() -> None:
    from tsk.snapshot.checkout import Submodule
    from tsk.snapshot.submodules import gitfiles, placed

    def sub(path: str, name: str, *children: Submodule) -> Submodule:
        return Submodule(path=path, name=name, git_dir="/u", common_dir="/u", commit="1" * 40, objects=(),
                         children=children)

    subs = (sub("lib", "libname", sub("deps/inner", "deps/inner")), sub("it's here", "odd"))
    assert [(p.path, p.git_dir) for p in placed(subs)] == [
        ("lib", "modules/libname"), ("lib/deps/inner", "modules/libname/modules/deps/inner"),
        ("it's here", "modules/odd")]
    assert gitfiles(subs) == [
        ("lib/.git", "gitdir: ../.git/modules/libname"),
        ("lib/deps/inner/.git", "gitdir: ../../../.git/modules/libname/modules/deps/inner"),
        ("it's here/.git", "gitdir: ../.git/modules/odd")]
    snap = Snapshot(repo="/r", project="r", git_common_dir="/r/.git", source_commit="0" * 40, branch="b",
                    from_branch=None, checkout_tree="/c", git_dir="/t/git", changes_dir="/t/changes", submodules=subs)
    script = prepare_script(snap, "/w")
    assert "> 'it'\"'\"'s here/.git'" in script
    for sh in (script, commit_script("/w", "tsk: it's done")):
        assert subprocess.run(["sh", "-n", "-c", sh], check=False).returncode == 0


def test_submodule_names_that_would_leave_modules_are_refused() -> None:
    from tsk.snapshot.checkout import safe_name

    assert all(safe_name(n) for n in ("lib", "deps/inner", "a.b", "..x"))
    assert not any(safe_name(n) for n in ("", "..", "../x", "a/../../x", "/abs", "a//b", "a\\..\\x", "."))


def test_lfs_objects_are_copied_only_when_they_hash_to_their_oid_and_never_through_a_link(tmp_path: Path) -> None:
    from tsk.snapshot.lfs import copy_objects

    task, user = tmp_path / "task-git", tmp_path / "user-git"
    good, bad, linked, theirs = b"good\n", b"claims to be another\n", b"a file outside\n", b"the user's own\n"

    def put(common: Path, oid_of: bytes, content: bytes) -> Path:
        p = lfs_object(common, oid_of)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
        return p

    put(task, good, good)
    put(task, bad, b"not the content the oid names\n")
    outside = tmp_path / "secret"
    outside.write_bytes(linked)
    link = lfs_object(task, linked)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    put(task, theirs, b"the sandbox's version\n")
    kept = put(user, theirs, theirs)
    oid = {c: hashlib.sha256(c).hexdigest() for c in (good, bad, linked, theirs)}

    res = copy_objects(task, user, [oid[good], oid[bad], oid[linked], oid[theirs], "f" * 64])
    assert res.copied == (oid[good],) and res.corrupt == (oid[bad],) and res.present == 1
    assert res.missing == (oid[linked], "f" * 64)
    assert lfs_object(user, good).read_bytes() == good
    assert not lfs_object(user, bad).exists() and not lfs_object(user, linked).exists()
    assert kept.read_bytes() == theirs
    assert sorted(p.name for p in (user / "lfs").rglob("*") if p.is_file()) == sorted([oid[good], oid[theirs]])


def test_a_sparse_or_oversized_lfs_object_is_never_expanded_on_the_host(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tsk.snapshot import lfs

    task, user = tmp_path / "task", tmp_path / "user"
    oid = "a" * 64
    obj = task / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    obj.parent.mkdir(parents=True)
    with obj.open("wb") as f:  # no block on disk, 1 GiB of zeros when read
        f.truncate(1 << 30)
    res = lfs.copy_objects(task, user, [oid])
    assert res.copied == () and res.refused and "sparse" in res.refused[0]
    assert not (user / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).exists()
    assert any("never a sparse file" in n for n in res.notes("store"))

    monkeypatch.setattr(lfs, "OBJECT_MAX", 10)
    data = b"0123456789abcdef"
    import hashlib
    big = hashlib.sha256(data).hexdigest()
    path = task / "lfs" / "objects" / big[:2] / big[2:4] / big
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    assert lfs.copy_objects(task, user, [big]).refused == (f"{big[:12]}: too big (16 bytes)",)
