"""The snapshot and the result, with real git and, for the round trip, the real engine: the repo goes
into a sandbox as a shared checkout under an overlay plus the task's own git dir, and the work comes
back as a branch, without the user's repo changing in any other way."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from helpers import git as git_output
from helpers import make_repo

from tsk.errors import TskError
from tsk.snapshot.fetch import fetch_result
from tsk.snapshot.inside import commit_script, overlay_volume_opts, prepare_script
from tsk.snapshot.take import Snapshot, SnapshotError, load_snapshot, take_snapshot

WORKDIR = "/workspace/p"
LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
               "size 12345\n")
IDENTITY = {"GIT_AUTHOR_NAME": "Agent", "GIT_AUTHOR_EMAIL": "agent@example.com",
            "GIT_COMMITTER_NAME": "Agent", "GIT_COMMITTER_EMAIL": "agent@example.com"}


def git(repo: Path, *args: str) -> str:
    """git's output without the newline at its end, which is what the checks here compare."""
    return git_output(repo, *args).strip()


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The exec agent's image from the layer store (git and git-lfs inside), with tsk's state kept in
    a temp dir."""
    from tsk.context import Context
    from tsk.layers import service

    home = tmp_path_factory.mktemp("image-home")
    env = dict(os.environ)
    for var in ("TSK_CONFIG_HOME", "TSK_DATA_HOME", "TSK_CACHE_HOME", "TSK_RUNTIME_DIR"):
        env[var] = str(home / var.lower())
    (home / "proj").mkdir()
    rep = service.build(Context(environ=env, cwd=home / "proj"),
                        service.TargetRequest(stacks=("default",), agents=("exec",), proxy=False))
    return rep.layers[-1].image


@pytest.fixture
def data_dir(tsk_home: Path) -> Path:
    return tsk_home / "data"


def sandbox(snap: Snapshot, task_dir: Path, image: str, script: str, *, root: bool = False,
            commit: bool = True) -> subprocess.CompletedProcess[str]:
    """What tsk does around the agent: overlay volume, mounts, prepare, the agent's script, commit."""
    opts = overlay_volume_opts(snap, task_dir)
    vol = f"tsk-test-snapshot-{uuid.uuid4().hex[:10]}"
    subprocess.run(["docker", "volume", "create", "--driver", "local", "--label", "dev.tsk.test=snapshot",
                    *(a for k, v in opts.items() for a in ("--opt", f"{k}={v}")), vol],
                   check=True, capture_output=True)
    try:
        mounts = ["-v", f"{vol}:{WORKDIR}", "-v", f"{snap.git_dir}:{WORKDIR}/.git",
                  "-v", f"{snap.changes_dir}:/tsk/changes:ro"]
        for d in snap.ro_mounts:
            mounts += ["-v", f"{d}:{d}:ro"]
        user = "0:0" if root else f"{os.getuid()}:{os.getgid()}"
        env = [a for k, v in {"HOME": "/tmp", **IDENTITY}.items() for a in ("-e", f"{k}={v}")]
        body = prepare_script(snap, WORKDIR) + "(\n" + script + "\n)\n"
        if commit:
            body += commit_script(WORKDIR, "tsk: work left uncommitted")
        return subprocess.run(["docker", "run", "--rm", "-u", user, *env, *mounts, "-w", WORKDIR, image,
                               "sh", "-c", body], capture_output=True, text=True, timeout=300, check=False)
    finally:
        subprocess.run(["docker", "volume", "rm", "-f", vol], capture_output=True, check=False)


def tree_hash(top: Path, skip: str = ".git") -> str:
    """Every path under `top` (but `skip`) with its mode and content or link target."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not (Path(dirpath) == top and d == skip))
        for name in sorted([*filenames, *(d for d in dirnames if Path(dirpath, d).is_symlink())]):
            p = Path(dirpath, name)
            st = p.lstat()
            h.update(f"{p.relative_to(top)}\0{st.st_mode}\0".encode())
            h.update(os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
    return h.hexdigest()


def user_state(repo: Path, *, ignore_branch: str | None = None) -> dict[str, object]:
    refs = [line for line in git(repo, "for-each-ref", "--format=%(refname) %(objectname)").splitlines()
            if ignore_branch is None or line.split()[0] != f"refs/heads/{ignore_branch}"]
    git_dir = Path(git(repo, "rev-parse", "--absolute-git-dir"))
    return {"refs": refs, "HEAD": (git_dir / "HEAD").read_bytes(), "index": (git_dir / "index").read_bytes(),
            "tree": tree_hash(repo)}


@pytest.fixture
def rich_repo(tmp_path: Path) -> Path:
    """Exec bits, symlinks (one broken), an ignored .env, a git-lfs pointer and a submodule."""
    lib = make_repo(tmp_path / "lib", {"lib.txt": "from the submodule\n"})
    repo = make_repo(tmp_path / "proj", {
        "README.md": "hello\n", "gone.txt": "delete me\n", "-weird 'name'.txt": "odd\n",
        "src/app.py": "print('app')\n", "run.sh": "#!/bin/sh\necho run\n",
        ".gitignore": ".env\nbuild/\n", ".gitattributes": "*.bin filter=lfs diff=lfs merge=lfs -text\n",
        "big.bin": LFS_POINTER,
    })
    (repo / "run.sh").chmod(0o755)
    (repo / "broken").symlink_to("nowhere/at/all")
    (repo / "readme-link").symlink_to("README.md")
    git(repo, "submodule", "-q", "add", str(lib), "sub")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "exec bits, links, lfs, submodule")
    (repo / ".env").write_text("SECRET=1\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_text("binary\n")
    return repo


@pytest.mark.docker
def test_a_clean_snapshot_is_clean_inside_and_a_task_that_commits_comes_back(
        rich_repo: Path, tmp_path: Path, data_dir: Path, image: str) -> None:
    before = user_state(rich_repo)
    task = tmp_path / "tasks" / "t1"
    snap = take_snapshot(rich_repo, task, data_dir=data_dir, branch="tsk/feat/one/t1")
    assert snap.changed == () and snap.deleted == ()
    assert load_snapshot(task) == snap
    script = r"""
echo "status:[$(git status --porcelain)]"
test -x run.sh && echo exec-ok
echo "broken:$(readlink broken)"
echo "link:$(cat readme-link)"
test -e .env || echo no-env
test -e build || echo no-build
echo "sub:$(cat sub/lib.txt)"
echo "lfs:$(head -n1 big.bin)"
echo "branch:$(git symbolic-ref --short HEAD)"
echo agent > added.txt
git add added.txt
git commit -qm 'agent work'
"""
    done = sandbox(snap, task, image, script)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "status:[]" in out, out
    for want in ("exec-ok", "broken:nowhere/at/all", "link:hello", "no-env", "no-build",
                 "sub:from the submodule", "lfs:version https://git-lfs.github.com/spec/v1",
                 "branch:tsk/feat/one/t1"):
        assert want in out, (want, out, done.stderr)

    res = fetch_result(snap)
    assert (res.branch, res.commits) == ("tsk/feat/one/t1", 1)
    assert git(rich_repo, "rev-parse", "tsk/feat/one/t1") == res.head
    assert git(rich_repo, "rev-parse", "tsk/feat/one/t1~1") == snap.source_commit
    assert git(rich_repo, "show", "tsk/feat/one/t1:added.txt") == "agent"
    assert git(rich_repo, "diff", "--name-only", snap.source_commit, "tsk/feat/one/t1") == "added.txt"
    assert user_state(rich_repo, ignore_branch="tsk/feat/one/t1") == before
    assert git(rich_repo, "status", "--porcelain") == ""


@pytest.mark.docker
def test_uncommitted_changes_go_in_and_come_back_committed(
        rich_repo: Path, tmp_path: Path, data_dir: Path, image: str) -> None:
    repo = rich_repo
    (repo / "README.md").write_text("hello, changed\n")
    (repo / "gone.txt").unlink()
    (repo / "-weird 'name'.txt").unlink()
    (repo / "src" / "app.py").chmod(0o755)  # a mode-only change
    (repo / "notes dir").mkdir()
    (repo / "notes dir" / "new file.txt").write_text("untracked\n")
    (repo / "dangling").symlink_to("missing-target")  # untracked broken symlink
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    before = user_state(repo)

    task = tmp_path / "tasks" / "t2"
    snap = take_snapshot(repo, task, data_dir=data_dir, branch="tsk/fix/two/t2")
    assert set(snap.deleted) == {"gone.txt", "-weird 'name'.txt"}
    assert set(snap.changed) == {"README.md", "src/app.py", "notes dir/new file.txt", "dangling", "staged.txt"}
    assert not (task / "changes" / ".env").exists()

    done = sandbox(snap, task, image, "git status --porcelain; test -e .env || echo no-env")
    assert done.returncode == 0, done.stderr
    assert "no-env" in done.stdout
    res = fetch_result(snap)
    assert (res.branch, res.commits) == ("tsk/fix/two/t2", 1)
    diff = git(repo, "diff", "--no-renames", "--name-status", snap.source_commit, "tsk/fix/two/t2")
    assert sorted(diff.splitlines()) == sorted([
        "A\tdangling", "D\t-weird 'name'.txt", "D\tgone.txt", "A\tnotes dir/new file.txt", "M\tREADME.md",
        "M\tsrc/app.py", "A\tstaged.txt"])
    assert git(repo, "ls-tree", "tsk/fix/two/t2", "src/app.py").startswith("100755")
    assert git(repo, "cat-file", "-p", "tsk/fix/two/t2:dangling") == "missing-target"
    assert git(repo, "show", "tsk/fix/two/t2:README.md") == "hello, changed"
    assert user_state(repo, ignore_branch="tsk/fix/two/t2") == before


@pytest.mark.docker
def test_a_task_that_changes_nothing_makes_no_branch(tmp_path: Path, data_dir: Path, image: str) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    before = user_state(repo)
    snap = take_snapshot(repo, tmp_path / "tasks" / "t3", data_dir=data_dir, branch="tsk/generic/none/t3")
    index = Path(snap.git_dir, "index").read_bytes()
    done = sandbox(snap, tmp_path / "tasks" / "t3", image, "git diff-files --name-only; git status --porcelain")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    # the host-built index stayed valid in the overlay: nothing was rehashed, so nothing was rewritten
    assert Path(snap.git_dir, "index").read_bytes() == index
    res = fetch_result(snap)
    assert res.branch is None and res.commits == 0
    assert user_state(repo) == before


def dot_git_hash(repo: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(repo / ".git"):
        for name in files:
            p = Path(dirpath, name)
            out[str(p.relative_to(repo))] = (os.readlink(p) if p.is_symlink()
                                             else hashlib.sha256(p.read_bytes()).hexdigest())
    return out


@pytest.mark.docker
def test_root_in_the_sandbox_cannot_touch_the_users_repo(
        rich_repo: Path, tmp_path: Path, data_dir: Path, image: str) -> None:
    (rich_repo / "README.md").write_text("dirty\n")
    git_before, state_before = dot_git_hash(rich_repo), user_state(rich_repo)
    task = tmp_path / "tasks" / "t4"
    snap = take_snapshot(rich_repo, task, data_dir=data_dir, branch="tsk/feat/evil/t4")
    attack = r"""
set +e
find / \( -path /proc -o -path /sys \) -prune -o \( -path '*objects/*' -o -path '*/refs/*' -o -path '*/hooks/*' \
   -o -name HEAD -o -name config -o -name index -o -name packed-refs -o -name alternates \) -type f -print 2>/dev/null \
 | while read -r f; do chmod u+w "$f" 2>/dev/null; if echo x > "$f" 2>/dev/null; then echo "wrote $f"; else echo "refused $f"; fi; done
find / -path /proc -prune -o -path /sys -prune -o -type d -name objects -print 2>/dev/null \
 | while read -r d; do touch "$d/evil" 2>/dev/null; rm -rf "$d"/* 2>/dev/null; done
mkdir -p .git/hooks && printf '#!/bin/sh\ntouch /tmp/pwned\n' > .git/hooks/post-checkout
echo '[core]\n\tfsmonitor = touch /tmp/pwned' > .git/config
echo "$(grep -o '/[^ ]*objects' /proc/self/mountinfo | head -n1)" > .git/commondir
echo done-attacking
"""
    done = sandbox(snap, task, image, attack, root=True, commit=False)
    assert "done-attacking" in done.stdout, done.stderr
    objects = Path(snap.alternates[0])
    loose = next(p for p in objects.rglob("*") if p.is_file() and len(p.parent.name) == 2)
    assert f"refused {loose}" in done.stdout  # the user's objects were within reach, read-only
    assert f"wrote {WORKDIR}/.git/HEAD" in done.stdout  # the task's own git dir was the sandbox's to wreck
    try:
        res = fetch_result(snap)
        assert res.branch is None
    except TskError:
        pass  # a wrecked task git dir may fail to fetch; it must not matter to the user's repo
    assert dot_git_hash(rich_repo) == git_before
    assert user_state(rich_repo) == state_before
    fsck = subprocess.run(["git", "fsck", "--full", "--strict"], cwd=rich_repo, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert not Path("/tmp/pwned").exists()


@pytest.mark.docker
def test_a_link_in_place_of_the_task_objects_dir_leads_nowhere(
        tmp_path: Path, data_dir: Path, image: str) -> None:
    """On the way back tsk rewrites the task git dir's alternates: its objects dir swapped for a link to
    the user's (valid on the host, where the fetch runs) must not take that write into the user's repo."""
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    objects = git(repo, "rev-parse", "--path-format=absolute", "--git-path", "objects")
    task = tmp_path / "tasks" / "t7"
    snap = take_snapshot(repo, task, data_dir=data_dir, branch="tsk/evil/t7")
    done = sandbox(snap, task, image, f"echo x > x.txt && git add x.txt && git commit -qm x "
                                      f"&& rm -rf .git/objects && ln -s {objects} .git/objects", commit=False)
    assert done.returncode == 0, done.stderr
    before = dot_git_hash(repo)
    with pytest.raises(TskError, match="objects is a symlink"):
        fetch_result(snap)
    assert dot_git_hash(repo) == before


@pytest.mark.docker
def test_a_worktree_snapshots_as_itself(tmp_path: Path, data_dir: Path, image: str) -> None:
    main = make_repo(tmp_path / "main", {"a.txt": "main\n"})
    wt = tmp_path / "wt"
    git(main, "worktree", "add", "-q", "-b", "side", str(wt))
    (wt / "a.txt").write_text("side\n")
    git(wt, "commit", "-qam", "on side")
    (wt / "b.txt").write_text("untracked in the worktree\n")
    (main / "c.txt").write_text("untracked in main\n")
    snap = take_snapshot(wt, tmp_path / "tasks" / "t5", data_dir=data_dir, branch="tsk/wt/t5")
    assert snap.repo == str(wt.resolve()) and snap.project == "wt"
    assert snap.source_commit == git(wt, "rev-parse", "HEAD") != git(main, "rev-parse", "HEAD")
    assert snap.changed == ("b.txt",)
    assert snap.git_common_dir == str((main / ".git").resolve())
    done = sandbox(snap, tmp_path / "tasks" / "t5", image, "cat a.txt b.txt; test -e c.txt || echo no-c")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["side", "untracked", "in", "the", "worktree", "no-c"]
    res = fetch_result(snap)
    assert res.branch == "tsk/wt/t5"
    assert git(main, "show", "tsk/wt/t5:b.txt") == "untracked in the worktree"
    assert git(main, "rev-parse", "tsk/wt/t5~1") == git(main, "rev-parse", "side")


def test_from_branch_starts_from_its_committed_head_and_ignores_the_working_tree(
        tmp_path: Path, data_dir: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "trunk\n"})
    git(repo, "checkout", "-qb", "other")
    (repo / "a.txt").write_text("other\n")
    git(repo, "commit", "-qam", "other")
    git(repo, "checkout", "-q", "trunk")
    (repo / "a.txt").write_text("dirty\n")
    (repo / "new.txt").write_text("untracked\n")
    snap = take_snapshot(repo, tmp_path / "tasks" / "t6", data_dir=data_dir, branch="tsk/b/t6",
                         from_branch="other")
    assert snap.source_commit == git(repo, "rev-parse", "other")
    assert snap.changed == () and snap.deleted == ()
    assert list(Path(snap.changes_dir).iterdir()) == []
    assert (Path(snap.checkout_tree) / "a.txt").read_text() == "other\n"


def test_errors_say_what_to_do(tmp_path: Path, data_dir: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(SnapshotError, match="is not inside a git repository") as exc:
        take_snapshot(plain, tmp_path / "t", data_dir=data_dir, branch="b")
    assert exc.value.exit_code == 2 and "--repo" in str(exc.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    subprocess.run(["git", "init", "-q", str(empty)], check=True)
    with pytest.raises(SnapshotError, match="has no commits yet; commit something first"):
        take_snapshot(empty, tmp_path / "t", data_dir=data_dir, branch="b")

    repo = make_repo(tmp_path / "r")
    with pytest.raises(ValueError, match="not a valid branch name"):
        take_snapshot(repo, tmp_path / "bad", data_dir=data_dir, branch="tsk/../x")
    assert not (tmp_path / "bad").exists()
    git(repo, "branch", "feature-x")
    with pytest.raises(SnapshotError, match=r"branch `nope` does not exist; existing branches: feature-x, trunk"):
        take_snapshot(repo, tmp_path / "t", data_dir=data_dir, branch="b", from_branch="nope")


def test_a_second_snapshot_of_the_same_commit_reuses_the_checkout(tmp_path: Path, data_dir: Path) -> None:
    files = {f"pkg{i // 100}/mod{i}.py": f"# module {i}\n" + "x = 1\n" * (i % 50) for i in range(3000)}
    repo = make_repo(tmp_path / "big", files)
    (repo / "pkg0" / "mod0.py").write_text("changed\n")
    first = take_snapshot(repo, tmp_path / "tasks" / "a", data_dir=data_dir, branch="tsk/a")
    tree = Path(first.checkout_tree)
    st = tree.stat()
    assert sum(1 for _ in tree.rglob("*.py")) == 3000
    second = take_snapshot(repo, tmp_path / "tasks" / "b", data_dir=data_dir, branch="tsk/b")
    assert second.checkout_tree == first.checkout_tree
    after = tree.stat()
    assert (after.st_ino, after.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert second.changed == ("pkg0/mod0.py",)
    print(f"3000 files: first snapshot {first.seconds:.3f} s, second {second.seconds:.3f} s")
    assert second.seconds < first.seconds / 3, (first.seconds, second.seconds)


def test_tasks_racing_for_a_new_commit_build_its_checkout_once(tmp_path: Path, data_dir: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    repo = make_repo(tmp_path / "r", {f"f{i}.txt": f"{i}\n" for i in range(200)})
    with ThreadPoolExecutor(4) as pool:
        snaps = list(pool.map(lambda i: take_snapshot(repo, tmp_path / "tasks" / f"t{i}", data_dir=data_dir,
                                                       branch=f"tsk/t{i}"), range(4)))
    assert len({s.checkout_tree for s in snaps}) == 1
    root = Path(snaps[0].checkout_tree).parent.parent
    assert [p.name for p in root.iterdir() if p.is_dir()] == [snaps[0].source_commit]  # no temp dir left


def test_a_sha256_repo_gets_a_sha256_task_git_dir(tmp_path: Path, data_dir: Path) -> None:
    repo = tmp_path / "r256"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "--object-format=sha256", str(repo)], check=True)
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    snap = take_snapshot(repo, tmp_path / "tasks" / "t", data_dir=data_dir, branch="tsk/t")
    assert len(snap.source_commit) == 64 and snap.object_format == "sha256"
    out = subprocess.run(["git", "--git-dir", snap.git_dir, "--work-tree", snap.checkout_tree, "status", "--porcelain"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == ""


def test_a_split_index_in_the_users_repo_adds_nothing_to_their_git_dir(tmp_path: Path, data_dir: Path) -> None:
    """With core.splitIndex the checkout's index would be split, its shared part written in the user's
    git dir, where the sandbox cannot read it: the checkout gets a plain index and their git dir stays."""
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n", "b/c.txt": "c\n"})
    git(repo, "config", "core.splitIndex", "true")
    git(repo, "update-index", "--split-index")
    before = sorted(p.relative_to(repo) for p in (repo / ".git").rglob("*"))
    snap = take_snapshot(repo, tmp_path / "tasks" / "t", data_dir=data_dir, branch="tsk/t")
    assert sorted(p.relative_to(repo) for p in (repo / ".git").rglob("*")) == before
    assert b"link" not in Path(snap.checkout_tree).parent.joinpath("index").read_bytes()[-64:]  # no split-index extension
    status = subprocess.run(["git", "--git-dir", snap.git_dir, "--work-tree", snap.checkout_tree, "status", "--porcelain"],
                            capture_output=True, text=True, check=True)
    assert status.stdout == ""


def index_stat(git_dir: Path, index: Path) -> dict[str, tuple[int, ...]]:
    """Each index entry's (mode, mtime s, mtime ns, size, inode), as `git ls-files --debug` shows them."""
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    modes = {line.split("\t", 1)[1]: int(line.split()[0], 8) for line in subprocess.run(
        ["git", "--git-dir", str(git_dir), "ls-files", "-s"], env=env, capture_output=True, text=True,
        check=True).stdout.splitlines()}
    out: dict[str, tuple[int, ...]] = {}
    path, fields = "", {}
    for line in subprocess.run(["git", "--git-dir", str(git_dir), "ls-files", "--debug"], env=env,
                               capture_output=True, text=True, check=True).stdout.splitlines():
        if not line.startswith("  "):
            path, fields = line, {}
            continue
        for part in line.split("\t"):
            key, _, value = part.strip().partition(": ")
            fields[key] = value
        if "size" in fields:
            sec, _, nsec = fields["mtime"].partition(":")
            out[path] = (modes[path], int(sec), int(nsec), int(fields["size"]), int(fields["ino"]))
    return out


def test_the_checkout_index_holds_its_files_stat_data_so_the_sandbox_rehashes_nothing(
        tmp_path: Path, data_dir: Path) -> None:
    """Every entry of the shared checkout's index records its file as written (mode, mtime, size,
    inode), and a git status through the task git dir finds the tree clean without rewriting the
    index (it would have rehashed and rewritten any entry whose stat data did not match)."""
    files = {f"d{i % 20}/f{i}.txt": f"line {i}\n" * (i % 7) for i in range(600)}  # enough for parallel checkout
    repo = make_repo(tmp_path / "r", {**files, "run.sh": "#!/bin/sh\n"})
    (repo / "run.sh").chmod(0o755)
    (repo / "link").symlink_to("run.sh")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "exec bit and a link")
    snap = take_snapshot(repo, tmp_path / "tasks" / "t", data_dir=data_dir, branch="tsk/t")
    tree = Path(snap.checkout_tree)
    recorded = index_stat(repo / ".git", tree.parent / "index")
    assert len(recorded) == 602
    for path, entry in recorded.items():
        st = (tree / path).lstat()
        mode = 0o120000 if stat.S_ISLNK(st.st_mode) else 0o100755 if st.st_mode & 0o100 else 0o100644
        assert entry == (mode, int(st.st_mtime), st.st_mtime_ns % 1_000_000_000, st.st_size, st.st_ino), path
    task_index = Path(snap.git_dir, "index")
    before = task_index.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # may write the index if it must
    status = subprocess.run(["git", "--git-dir", snap.git_dir, "--work-tree", str(tree), "status", "--porcelain"],
                            env=env, capture_output=True, text=True, check=True)
    assert status.stdout == ""
    assert task_index.read_bytes() == before


def test_a_sparse_checkout_or_submodule_recurse_in_the_users_repo_does_not_shape_the_checkout(
        tmp_path: Path, data_dir: Path) -> None:
    repo = make_repo(tmp_path / "r", {"keep/a.txt": "a\n", "other/b.txt": "b\n"})
    git(repo, "config", "core.sparseCheckout", "true")
    git(repo, "config", "submodule.recurse", "true")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "sparse-checkout").write_text("/keep/\n")
    snap = take_snapshot(repo, tmp_path / "tasks" / "t", data_dir=data_dir, branch="tsk/t")
    tree = Path(snap.checkout_tree)
    assert (tree / "keep/a.txt").read_text() == "a\n" and (tree / "other/b.txt").read_text() == "b\n"


def test_working_changes_are_measured_from_the_snapshots_commit_even_when_head_moves(tmp_path: Path) -> None:
    """The working tree is scanned while the checkout is built: a commit made meanwhile must not hide
    its files from a snapshot of the commit before it."""
    from tsk.snapshot.git import working_changes

    repo = make_repo(tmp_path / "r", {"a.txt": "a\n", "b.txt": "b\n"})
    source = git(repo, "rev-parse", "HEAD")
    (repo / "a.txt").write_text("committed since\n")
    git(repo, "commit", "-qam", "moved on")
    (repo / "new.txt").write_text("untracked\n")
    (repo / "b.txt").unlink()
    found = working_changes(repo, source)
    assert sorted(found.changed) == ["a.txt", "new.txt"] and found.deleted == ("b.txt",)


def test_a_file_changed_within_the_checkout_build_second_is_not_mistaken_for_clean(
        tmp_path: Path, data_dir: Path) -> None:
    """Same size, same mtime second as the committed file in the checkout: git inside would call it
    clean and the change would be lost, so the copy's mtime is moved out of the build window."""
    repo = make_repo(tmp_path / "r", {"a.txt": "aaaa\n"})
    (repo / "a.txt").write_text("bbbb\n")
    now = time.time()
    os.utime(repo / "a.txt", (now, now))
    snap = take_snapshot(repo, tmp_path / "tasks" / "t", data_dir=data_dir, branch="tsk/t")
    copied = Path(snap.changes_dir, "a.txt").stat().st_mtime
    lower = Path(snap.checkout_tree, "a.txt").stat().st_mtime
    assert int(copied) != int(lower)


def test_scripts_quote_paths_and_commit_only_when_something_is_staged(tmp_path: Path) -> None:
    snap = Snapshot(repo="/r", project="r", git_common_dir="/r/.git", source_commit="0" * 40, branch="b",
                    from_branch=None, checkout_tree="/c", git_dir="/t/git", changes_dir="/t/changes",
                    deleted=("it's gone", "-rf"), changed=("$(touch x)",))
    script = prepare_script(snap, "/workspace/my proj")
    assert "rm -rf -- 'it'\"'\"'s gone' -rf '$(touch x)'" in script
    assert "cd '/workspace/my proj'" in script
    sh = subprocess.run(["sh", "-n", "-c", script], capture_output=True, check=False)
    assert sh.returncode == 0
    msg = commit_script("/w", "tsk: it's done")
    assert "commit -q --no-verify -m 'tsk: it'\"'\"'s done'" in msg and "commit.gpgsign=false" in msg


def test_old_checkouts_are_pruned_unless_a_pending_task_uses_them(tmp_path: Path, data_dir: Path) -> None:
    from tsk.snapshot.checkout import prune_checkouts

    repo = make_repo(tmp_path / "r", {"a.txt": "1\n", "ro/x.txt": "x\n"})
    snaps = {}
    for name in ("old", "kept", "recent"):
        (repo / "a.txt").write_text(f"{name}\n")
        git(repo, "commit", "-qam", name)
        snaps[name] = take_snapshot(repo, tmp_path / "tasks" / name, data_dir=data_dir, branch=f"tsk/{name}")
    os.chmod(Path(snaps["old"].checkout_tree) / "ro", 0o555)  # a read-only dir must not stop the removal
    now = time.time() + 10 * 86400
    for name in ("old", "kept"):
        used = Path(snaps[name].checkout_tree).parent / "used"
        os.utime(used, (now - 8 * 86400, now - 8 * 86400))
    recent_used = Path(snaps["recent"].checkout_tree).parent / "used"
    os.utime(recent_used, (now - 3600, now - 3600))

    removed = prune_checkouts(data_dir, keep={snaps["kept"].checkout_tree}, older_than=7 * 86400, now=now)
    assert removed == [Path(snaps["old"].checkout_tree).parent]
    assert not Path(snaps["old"].checkout_tree).exists()
    assert Path(snaps["kept"].checkout_tree).is_dir() and Path(snaps["recent"].checkout_tree).is_dir()
    assert not list(Path(snaps["old"].checkout_tree).parent.parent.glob(".trash-*"))
    # A task from the pruned commit builds its checkout again.
    git(repo, "checkout", "-q", snaps["old"].source_commit)
    again = take_snapshot(repo, tmp_path / "tasks" / "again", data_dir=data_dir, branch="tsk/again")
    assert again.checkout_tree == snaps["old"].checkout_tree and (Path(again.checkout_tree) / "a.txt").read_text() == "old\n"
