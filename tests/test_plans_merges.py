"""A plan's results in a real repository: pairwise conflicts in memory, the files a result changed, landing
onto an integration branch without touching any index or working tree, and pushing to a bare remote."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import git, make_repo

from tsk.errors import TskError
from tsk.plans.merges import LandRefused, changed_files, checked_out, conflicts, land, push, remote_url
from tsk.plans.scopes import outside_scope

FILES = {"README.md": "hello\n", "src/app.py": "one\ntwo\nthree\n", "docs/guide.md": "guide\n"}


def _result(repo: Path, branch: str, files: dict[str, str | None], base: str = "trunk") -> str:
    """A result branch made as tsk makes one: commits on a branch that is never checked out here."""
    tmp = repo.parent / f"wt-{branch.replace('/', '-')}"
    git(repo, "worktree", "add", "-q", "-b", branch, str(tmp), base)
    for name, text in files.items():
        f = tmp / name
        if text is None:
            f.unlink()
            continue
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    git(tmp, "add", "-A")
    git(tmp, "commit", "-qm", f"work on {branch}")
    git(repo, "worktree", "remove", str(tmp))
    return git(repo, "rev-parse", branch).strip()


def _state(repo: Path) -> tuple[bytes, str, str, str]:
    """What a user would notice: the index file, HEAD, the status, the checked-out file."""
    return ((repo / ".git" / "index").read_bytes(), git(repo, "rev-parse", "HEAD"),
            git(repo, "--no-optional-locks", "status", "--porcelain"), (repo / "src" / "app.py").read_text())


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = make_repo(tmp_path / "proj", FILES)
    _result(r, "tsk/feat/one/a1", {"src/app.py": "ONE\ntwo\nthree\n"})
    _result(r, "tsk/feat/same-line/b2", {"src/app.py": "uno\ntwo\nthree\n"})
    _result(r, "tsk/docs/guide/c3", {"docs/guide.md": "better guide\n", "docs/new.md": "new\n"})
    _result(r, "tsk/feat/last/d4", {"src/app.py": "one\ntwo\nTHREE\n", "README.md": None})
    return r


def test_siblings_editing_the_same_line_conflict_and_the_rest_do_not(repo: Path) -> None:
    before = _state(repo)
    m = conflicts(repo, ["tsk/feat/one/a1", "tsk/feat/same-line/b2", "tsk/docs/guide/c3", "tsk/feat/last/d4"])
    assert [(p.a, p.b, p.files) for p in m.conflicting()] == [
        ("tsk/feat/one/a1", "tsk/feat/same-line/b2", ("src/app.py",))]
    assert len(m.pairs) == 6
    assert not m.between("tsk/feat/last/d4", "tsk/feat/one/a1").conflict  # different lines of one file merge
    assert _state(repo) == before


def test_the_files_a_result_changed_and_those_outside_its_scope(repo: Path) -> None:
    assert changed_files(repo, "trunk", "tsk/docs/guide/c3") == ["docs/guide.md", "docs/new.md"]
    assert changed_files(repo, "trunk", "tsk/feat/last/d4") == ["README.md", "src/app.py"]
    git(repo, "commit", "-q", "--allow-empty", "-m", "trunk moves on")  # what the branch changed, not what trunk did
    assert changed_files(repo, "trunk", "tsk/docs/guide/c3") == ["docs/guide.md", "docs/new.md"]
    assert outside_scope(changed_files(repo, "trunk", "tsk/feat/last/d4"), ["src/**"]) == ["README.md"]


def test_a_name_that_only_looks_inside_the_scope_is_outside_it(repo: Path) -> None:
    _result(repo, "tsk/feat/sly/e5", {"sr\x01c/app.py": "x\n"})
    changed = changed_files(repo, "trunk", "tsk/feat/sly/e5")
    assert changed == ["sr\x01c/app.py"] and outside_scope(changed, ["src/**"]) == changed


def test_results_land_in_order_on_a_new_integration_branch_without_touching_the_checkout(repo: Path) -> None:
    before = _state(repo)
    report = land(repo, ["tsk/feat/one/a1", "tsk/docs/guide/c3", "tsk/feat/last/d4"], into="tsk/land/shop",
                  base="trunk")
    assert report.created and report.before is None and report.conflict is None
    assert [(x.branch, x.how) for x in report.landed] == [
        ("tsk/feat/one/a1", "fast-forward"), ("tsk/docs/guide/c3", "merge"), ("tsk/feat/last/d4", "merge")]
    head = git(repo, "rev-parse", "tsk/land/shop").strip()
    assert head == report.head
    assert git(repo, "show", f"{head}:src/app.py") == "ONE\ntwo\nTHREE\n"
    assert git(repo, "show", f"{head}:docs/new.md") == "new\n"
    assert "README.md" not in git(repo, "ls-tree", "--name-only", head)
    assert git(repo, "log", "-1", "--format=%P", head).split() == [report.landed[1].head, report.landed[2].commit]
    assert _state(repo) == before
    again = land(repo, ["tsk/feat/one/a1", "tsk/docs/guide/c3"], into="tsk/land/shop", base="trunk")
    assert [x.how for x in again.landed] == ["already", "already"] and again.head == head and not again.created


def test_landing_stops_at_the_first_conflict_and_keeps_what_merged_before(repo: Path) -> None:
    report = land(repo, ["tsk/feat/one/a1", "tsk/feat/same-line/b2", "tsk/docs/guide/c3"], into="integration",
                  base="trunk")
    assert [x.branch for x in report.landed] == ["tsk/feat/one/a1"]
    assert report.conflict is not None and report.conflict.branch == "tsk/feat/same-line/b2"
    assert report.conflict.files == ("src/app.py",) and report.not_tried == ("tsk/docs/guide/c3",)
    assert git(repo, "rev-parse", "integration").strip() == git(repo, "rev-parse", "tsk/feat/one/a1").strip()


def test_the_checked_out_branch_is_refused_and_so_is_one_in_a_linked_worktree(repo: Path, tmp_path: Path) -> None:
    before = _state(repo)
    with pytest.raises(LandRefused, match=r"refusing to land into `trunk`: it is checked out in .*index and files stale"):
        land(repo, ["tsk/feat/one/a1"], into="trunk", base="trunk")
    git(repo, "worktree", "add", "-q", "-b", "elsewhere", str(tmp_path / "linked"), "trunk")
    assert checked_out(repo)["elsewhere"] == str(tmp_path / "linked")
    with pytest.raises(LandRefused, match="linked"):
        land(repo, ["tsk/feat/one/a1"], into="elsewhere", base="trunk")
    assert _state(repo) == before and git(repo, "rev-parse", "elsewhere") == git(repo, "rev-parse", "trunk")


def test_landing_needs_branches_that_exist_and_a_valid_name(repo: Path) -> None:
    with pytest.raises(TskError, match="`tsk/nope` is not a branch or commit"):
        land(repo, ["tsk/nope"], into="integration", base="trunk")
    with pytest.raises(TskError, match="not a valid branch name"):
        land(repo, [], into="bad..name", base="trunk")
    assert subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "-q", "integration"],
                          capture_output=True).returncode == 1


def test_no_hook_runs_while_landing(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.write_text(f"#!/bin/sh\ntouch {repo.parent / 'hook-ran'}\n")
    hook.chmod(0o755)
    land(repo, ["tsk/feat/one/a1", "tsk/docs/guide/c3"], into="integration", base="trunk")
    assert not (repo.parent / "hook-ran").exists()


def test_results_are_pushed_to_a_bare_remote(repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    git(repo, "remote", "add", "origin", str(bare))
    assert remote_url(repo) == str(bare) and remote_url(repo, "nope") is None
    report = push(repo, ["tsk/feat/one/a1", "tsk/docs/guide/c3"], "origin")
    assert report.ok and [(p.branch, p.result) for p in report.pushed] == [
        ("tsk/feat/one/a1", "new"), ("tsk/docs/guide/c3", "new")]
    assert git(bare, "rev-parse", "tsk/feat/one/a1") == git(repo, "rev-parse", "tsk/feat/one/a1")
    again = push(repo, ["tsk/feat/one/a1"], "origin")
    assert [p.result for p in again.pushed] == ["up to date"]
    git(repo, "branch", "-f", "tsk/feat/one/a1", "tsk/feat/same-line/b2")  # not a fast-forward: refused, not forced
    refused = push(repo, ["tsk/feat/one/a1"], "origin")
    assert not refused.ok and refused.pushed[0].result == "rejected"


def test_pushing_to_a_remote_that_is_not_there_says_so(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(TskError, match="could not push to"):
        push(repo, ["tsk/feat/one/a1"], str(tmp_path / "missing.git"))
