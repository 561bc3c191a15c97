"""Write scopes: matching a path is checked against git's own .gitignore matching (check-ignore), and
overlap is checked to never call two scopes disjoint when a path matches both."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from tsk.plans.scopes import clean, globs_overlap, matches, outside_scope, overlap, problem

NAMES = ["a", "b", "ab", "a.md", "b.py", "x"]
name = st.sampled_from(NAMES)
path = st.lists(name, min_size=1, max_size=4).map("/".join)

# A segment of a glob: a name, a wildcard over a small alphabet (so that matches happen), or `**`.
seg_glob = st.one_of(
    name, st.sampled_from(["*", "a*", "*.md", "*.py", "?", "?b", "[ab]", "[!a]*", "a[.]md", "*b*", "[a-b]?"]))
literal_tail_glob = st.builds(
    lambda lead, segs, last, tail: lead + "/".join([*segs, last]) + tail,
    st.sampled_from(["", "/", "**/"]), st.lists(st.one_of(seg_glob, st.just("**")), max_size=2), name,
    st.sampled_from(["", "/", "/**"]))
wildcard_tail_glob = st.builds(
    lambda lead, segs, last: lead + "/".join([*segs, last]), st.sampled_from(["", "/", "**/"]),
    st.lists(st.one_of(seg_glob, st.just("**")), max_size=2),
    st.sampled_from(["*", "a*", "*.md", "*.py", "?", "?b", "[ab]", "[!a]*", "a[.]md", "*b*", "[a-b]?"]))
any_glob = st.builds(lambda lead, segs, tail: lead + "/".join(segs) + tail, st.sampled_from(["", "/", "**/"]),
                     st.lists(st.one_of(seg_glob, st.just("**")), min_size=1, max_size=3),
                     st.sampled_from(["", "/", "/**"]))


def _git_ignores(tmp: Path, glob: str, paths: list[str]) -> set[str]:
    """The paths git itself would ignore with `glob` as the one line of a top-level .gitignore. An exact
    name is the one at the top in a scope, as `/name` is in a .gitignore."""
    if "/" not in glob.strip("/") and not any(c in glob for c in "*?[\\"):
        glob = "/" + glob.lstrip("/")
    (tmp / ".gitignore").write_text(glob + "\n")
    done = subprocess.run(["git", "-C", str(tmp), "check-ignore", "--no-index", "--stdin"],
                          input="\n".join(paths) + "\n", capture_output=True, text=True, check=False)
    assert done.returncode in (0, 1), done.stderr
    return set(done.stdout.split())


@pytest.fixture(scope="module")
def ignore_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("ignore")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


def _reference(glob: str, p: str) -> bool:
    """An independent reading of a glob whose last segment has a wildcard: it names the files whose whole
    path it matches (no "everything under it"), `*` `?` within a segment, `**` any number of directories."""
    g = clean(glob)
    anchored = g.startswith("/") or "/" in g.strip("/")
    rx = ""
    for i, part in enumerate(g.strip("/").split("/")):
        if part == "**":
            rx += "(?:[^/]+/)*"
            continue
        part_rx = ""
        j = 0
        while j < len(part):
            c = part[j]
            if c == "*":
                part_rx += "[^/]*"
            elif c == "?":
                part_rx += "[^/]"
            elif c == "[":
                end = part.index("]", j + 2 if part[j + 1] in "!^" else j + 1)
                body = part[j + 1:end]
                part_rx += "[" + ("^/" + body[1:] if body[0] in "!^" else body) + "]"
                j = end
            else:
                part_rx += re.escape(c)
            j += 1
        rx += part_rx + ("/" if i < len(g.strip("/").split("/")) - 1 else "")
    if not anchored:
        rx = "(?:[^/]+/)*" + rx
    return re.fullmatch(rx, p) is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(glob=literal_tail_glob, paths=st.lists(path, min_size=1, max_size=12, unique=True))
@example(glob="docs/", paths=["docs", "docs/x", "q/docs/x"])
@example(glob="**/docs/", paths=["docs", "docs/x", "q/docs/x"])
@example(glob="src/api/**", paths=["src/api", "src/api/y/z"])
@example(glob="/bar", paths=["bar/x", "q/bar"])
@example(glob="a/**/b", paths=["a/b", "a/x/y/b", "a/b/c"])
def test_a_glob_ending_in_a_name_matches_what_gitignore_matches(ignore_repo: Path, glob: str, paths: list[str]) -> None:
    assume(problem(glob) is None)
    ours = {p for p in paths if matches(glob, p)}
    assert ours == _git_ignores(ignore_repo, glob, paths), glob


@settings(max_examples=300, deadline=None)
@given(glob=wildcard_tail_glob, p=path)
@example(glob="*.md", p="a.md/b.py")
@example(glob="a/*", p="a/b/x")
def test_a_glob_ending_in_a_wildcard_names_files_only(glob: str, p: str) -> None:
    assume(problem(glob) is None)
    assert matches(glob, p) == _reference(glob, p), (glob, p)


@settings(max_examples=500, deadline=None)
@given(a=any_glob, b=any_glob, paths=st.lists(path, min_size=1, max_size=20, unique=True))
def test_overlap_is_never_disjoint_when_a_path_matches_both(a: str, b: str, paths: list[str]) -> None:
    assume(problem(a) is None and problem(b) is None)
    both = [p for p in paths if matches(a, p) and matches(b, p)]
    event("a path matches both" if both else "no path matches both")
    if both:
        assert overlap([a], [b]) and overlap([b], [a]), (a, b, both[0])


def _glob_from(p: str, data: st.DataObject) -> str:
    """A glob that matches `p` (or a directory it is in), made by generalising some of its segments."""
    segs = p.split("/")
    keep = data.draw(st.integers(1, len(segs)))
    out: list[str] = []
    for s in segs[:keep]:
        out.append(data.draw(st.sampled_from([s, "*", "**", s[0] + "*", "?" * len(s), f"[{s[0]}]" + s[1:]])))
    tail = "" if keep == len(segs) else data.draw(st.sampled_from(["", "/", "/**"]))
    if keep < len(segs) and tail == "" and any(c in out[-1] for c in "*?["):
        tail = "/"
    return data.draw(st.sampled_from(["", "/", "**/"])) + "/".join(out) + tail


@settings(max_examples=500, deadline=None)
@given(p=path, data=st.data())
def test_two_globs_made_to_match_one_path_overlap(p: str, data: st.DataObject) -> None:
    a, b = _glob_from(p, data), _glob_from(p, data)
    assume(problem(a) is None and problem(b) is None)
    assert matches(a, p) and matches(b, p), (a, b, p)
    assert globs_overlap(a, b), (a, b, p)


@pytest.mark.parametrize(("a", "b"), [
    ("src/api/**", "docs/**"), ("*.md", "*.py"), ("src/*.py", "src/*/x.py"), ("/docs/", "/doc/"),
    ("src/a[0-4].py", "src/a[5-9].py"), ("/README.md", "src/README.md"), ("a/?", "a/bb"), ("src/api", "src/apis"),
    ("README.md", "src/**"), ("docs/", "doc/"), ("docs/", "src/api/**"),
])
def test_disjoint_scopes_are_seen_to_be(a: str, b: str) -> None:
    assert not overlap([a], [b])


@pytest.mark.parametrize(("a", "b"), [
    ("src/api/**", "src/api/routes.py"), ("*.md", "docs/"), ("docs", "docs/x/y.md"), ("**", "anything"),
    ("src/**/test_*.py", "src/a/b/test_x.py"), ("**/README.md", "sub/README.md"), ("*.md", "sub/README.md"),
    ("src/a[0-4].py", "src/a[!0-3].py"), ("src/*", "src/*.py"), ("src/", "src/a/b"), ("docs", "docs/x"),
])
def test_overlapping_scopes_are_seen_to_be(a: str, b: str) -> None:
    assert overlap([a], [b]) and overlap([b], [a])


def test_a_task_without_a_scope_conflicts_with_nothing() -> None:
    assert not overlap([], ["**"]) and not overlap(["**"], [])


def test_files_outside_a_scope() -> None:
    files = ["src/api/a.py", "src/web/b.py", "README.md", "docs/x.md"]
    assert outside_scope(files, ["src/api/**", "docs/"]) == ["src/web/b.py", "README.md"]
    assert outside_scope(files, []) == []


def test_globs_that_cannot_be_scopes() -> None:
    assert problem("") == "expected a glob, got an empty string"
    assert problem("src/[ab") == "`src/[ab`: a `[` is not closed by a `]` in the same path segment"
    assert problem("[[:alpha:]]") is not None and problem("a\\") is not None and problem("a/../b") is not None
    assert problem("./src/**") is None and clean("./src") == "/src" and clean(".") == "**"
