"""Work inside submodules comes back with the task branch, against the real engine: the submodule
commits into the user's git dir for each submodule under the task branch's name, and nothing else in
the user's repo changes."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from tests import test_snapshot
from tests.conftest import make_repo
from tests.test_snapshot import dot_git_hash, git, sandbox, user_state
from tsk.sandbox.runner import fetch_work
from tsk.sandbox.snapshot import Snapshot, commit_script, fetch_result, prepare_script, take_snapshot
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
    res = fetch_result(snap)
    assert res.branch == snap.branch and res.submodules == ()
    assert any("submodule lib: " in n and "not brought back" in n for n in res.notes), res.notes
    changed = only_the_branch_and_objects(git_before, dot_git_hash(repo))
    assert ".git/refs/heads/tsk/feat/sub/x1" in changed
    assert not any(k.startswith(".git/modules/") for k in changed)


def test_each_submodule_git_dir_and_its_gitfile_point_at_each_other() -> None:
    from tsk.sandbox.gitcheckout import Submodule
    from tsk.sandbox.gitsub import gitfiles, placed

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
    from tsk.sandbox.gitcheckout import safe_name

    assert all(safe_name(n) for n in ("lib", "deps/inner", "a.b", "..x"))
    assert not any(safe_name(n) for n in ("", "..", "../x", "a/../../x", "/abs", "a//b", "a\\..\\x", "."))

