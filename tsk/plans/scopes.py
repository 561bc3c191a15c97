"""Write scopes: gitignore-style globs of the paths a task may write (`src/api/**`, `*.md`, `docs/`,
`README.md`), relative to the top of the repository.

A glob matches a path as a line of a top-level .gitignore would, with two differences. Exact paths are
paths: a name without a slash or a wildcard (`README.md`, `docs/`) is the one at the top, not one at any
depth, since that is what a person listing the files a task touches means (`**/README.md` is any).
And, as in GitHub's CODEOWNERS, a glob whose last segment has a wildcard (`*.md`, `src/*`) names files
only, so `*.md` and `*.py` are disjoint (under .gitignore rules both would match `a.md/b.py`) and
`src/*` is what is directly in src. Otherwise: a glob with a wildcard and no slash (`*.md`) matches at
any depth, one with a slash is anchored at the top, `**` is any number of directories, `*` `?` `[...]`
stay inside one path segment, and a glob ending in a name, in `/` or in `/**` names a directory and
everything under it too. Negation (`!`) and POSIX classes (`[:alpha:]`) are not supported.

`overlap` decides whether some path can match a glob of each scope. It is exact for the syntax above (two
classes may be treated as sharing a character when they do not), so it can say "overlap" when unsure and
never says "disjoint" when a path matches both."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Literal

# A segment of a glob is ANY_DIRS (`**`: zero or more path segments) or a tuple of character tokens.
ANY_DIRS = "**"
Char = tuple[Literal["lit"], str] | tuple[Literal["any"]] | tuple[Literal["star"]] | \
    tuple[Literal["class"], bool, tuple[tuple[int, int], ...]]
Segment = tuple[Char, ...]
Tokens = tuple[Segment | str, ...]
_STAR: Char = ("star",)


def clean(glob: str) -> str:
    """The glob as stored: surrounding blanks gone, `./x` written `/x` (anchored, as it meant), `.` as `**`."""
    g = glob.strip()
    if g in (".", "./", "/", "/."):
        return "**"
    while g.startswith("./"):
        g = "/" + g[2:].lstrip("/")
    return g


def problem(glob: str) -> str | None:
    """Why `glob` cannot be a write scope, or None."""
    g = clean(glob)
    if not g:
        return "expected a glob, got an empty string"
    if g.startswith("!"):
        return f"`{g}`: negated globs (`!`) are not supported in a write scope; list the paths it may write"
    if any(c in g for c in "\0\n\r"):
        return f"{g!r}: a glob cannot contain a NUL or a line break"
    for part in g.strip("/").split("/"):
        if part in ("..", "."):
            return f"`{g}`: a write scope is a path inside the repository; `{part}` segments are not allowed"
        why = _segment_problem(part)
        if why:
            return f"`{g}`: {why}"
    return None


def _segment_problem(part: str) -> str | None:
    i = 0
    while i < len(part):
        c = part[i]
        if c == "\\":
            if i + 1 == len(part):
                return "it ends with a lone backslash"
            i += 2
            continue
        if c == "[":
            end = _class_end(part, i)
            if end is None:
                return "a `[` is not closed by a `]` in the same path segment"
            if "[:" in part[i + 1:end]:
                return "POSIX character classes (`[:alpha:]`) are not supported in a write scope"
            i = end + 1
            continue
        i += 1
    return None


def _class_end(part: str, start: int) -> int | None:
    i = start + 1
    if i < len(part) and part[i] in "!^":
        i += 1
    if i < len(part) and part[i] == "]":  # a `]` first is a member, not the end
        i += 1
    while i < len(part):
        if part[i] == "\\":
            i += 2
            continue
        if part[i] == "]":
            return i
        i += 1
    return None


@functools.lru_cache(maxsize=4096)
def tokens(glob: str) -> Tokens:
    """The glob as segments, with its implicit "and everything under it" made explicit."""
    g = clean(glob)
    anchored = g.startswith("/")
    dir_only = g.endswith("/")
    parts = [p for p in g.strip("/").split("/") if p]
    segs: list[Segment | str] = [ANY_DIRS if p == "**" else _segment(p) for p in parts]
    if not anchored and len(parts) == 1 and not _literal(segs[0]):  # `*.md`: at any depth
        segs.insert(0, ANY_DIRS)
    if segs and segs[-1] == ANY_DIRS:  # `x/**` is what is inside x: one segment at least
        segs[-1:] = [(_STAR,), ANY_DIRS]
    elif dir_only:  # `x/` is a directory: something is under it
        segs += [(_STAR,), ANY_DIRS]
    elif _literal(segs[-1]):  # a name: a file, or a directory and all it holds
        segs.append(ANY_DIRS)
    # else a wildcard names files (`*.md`): the paths it matches, nothing under them
    return tuple(segs)


def _literal(seg: Segment | str) -> bool:
    return seg != ANY_DIRS and all(c[0] == "lit" for c in seg)


def _segment(part: str) -> Segment:
    out: list[Char] = []
    i = 0
    while i < len(part):
        c = part[i]
        if c == "\\" and i + 1 < len(part):
            out.append(("lit", part[i + 1]))
            i += 2
        elif c == "*":
            while i < len(part) and part[i] == "*":  # `**` inside a segment is a plain `*`
                i += 1
            out.append(_STAR)
        elif c == "?":
            out.append(("any",))
            i += 1
        elif c == "[" and (end := _class_end(part, i)) is not None:
            out.append(_char_class(part[i + 1:end]))
            i = end + 1
        else:
            out.append(("lit", c))
            i += 1
    return tuple(out)


def _char_class(body: str) -> Char:
    negated = bool(body) and body[0] in "!^"
    if negated:
        body = body[1:]
    chars: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            i += 1
        chars.append(body[i])
        i += 1
    ranges: list[tuple[int, int]] = []
    j = 0
    while j < len(chars):
        if j + 2 < len(chars) and chars[j + 1] == "-":
            lo, hi = ord(chars[j]), ord(chars[j + 2])
            if lo <= hi:
                ranges.append((lo, hi))
            j += 3
        else:
            ranges.append((ord(chars[j]), ord(chars[j])))
            j += 1
    return ("class", negated, tuple(sorted(ranges)))


# ----- matching one path (exact) -----

def matches(glob: str, path: str) -> bool:
    """Whether `glob` matches the repo-relative `path` (or a directory it is in)."""
    return _match(tokens(glob), tuple(p for p in path.strip("/").split("/") if p))


def outside_scope(files: Iterable[str], scope: Sequence[str]) -> list[str]:
    """The files no glob of `scope` matches. A task without a scope may write anywhere: none are outside."""
    if not scope:
        return []
    return [f for f in files if not any(matches(g, f) for g in scope)]


def _match(toks: Tokens, segs: tuple[str, ...]) -> bool:
    @functools.cache
    def go(i: int, j: int) -> bool:
        if i == len(toks):
            return j == len(segs)
        t = toks[i]
        if t == ANY_DIRS:
            return go(i + 1, j) or (j < len(segs) and go(i, j + 1))
        assert not isinstance(t, str)
        return j < len(segs) and _match_segment(t, segs[j]) and go(i + 1, j + 1)

    return go(0, 0)


def _match_segment(seg: Segment, name: str) -> bool:
    @functools.cache
    def go(i: int, j: int) -> bool:
        if i == len(seg):
            return j == len(name)
        t = seg[i]
        if t[0] == "star":
            return go(i + 1, j) or (j < len(name) and go(i, j + 1))
        return j < len(name) and _char_matches(t, name[j]) and go(i + 1, j + 1)

    return go(0, 0)


def _char_matches(t: Char, c: str) -> bool:
    if t[0] == "lit":
        return t[1] == c
    if t[0] == "any":
        return True
    if t[0] == "class":
        inside = any(lo <= ord(c) <= hi for lo, hi in t[2])
        return inside != t[1]
    return False


# ----- overlap of two globs (conservative) -----

def overlap(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether a path can match a glob of `a` and a glob of `b`. A task without a scope conflicts with nothing."""
    return any(globs_overlap(x, y) for x in a for y in b)


@functools.lru_cache(maxsize=16384)
def globs_overlap(x: str, y: str) -> bool:
    a, b = tokens(x), tokens(y)

    @functools.cache
    def go(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == ANY_DIRS:
            return go(i + 1, j) or (j < len(b) and go(i, j + 1))
        if j < len(b) and b[j] == ANY_DIRS:
            return go(i, j + 1) or (i < len(a) and go(i + 1, j))
        if i == len(a) or j == len(b):
            return False
        sa, sb = a[i], b[j]
        assert not isinstance(sa, str) and not isinstance(sb, str)
        return _segments_overlap(sa, sb) and go(i + 1, j + 1)

    return go(0, 0)


def _segments_overlap(a: Segment, b: Segment) -> bool:
    """Whether one segment name matches both. A segment is never empty, but two patterns that match only
    the empty string are both all stars, which also share any name: so the empty string may stand in."""
    @functools.cache
    def go(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i][0] == "star":
            return go(i + 1, j) or (j < len(b) and go(i, j + 1))
        if j < len(b) and b[j][0] == "star":
            return go(i, j + 1) or (i < len(a) and go(i + 1, j))
        if i == len(a) or j == len(b):
            return False
        return _chars_overlap(a[i], b[j]) and go(i + 1, j + 1)

    return go(0, 0)


def _chars_overlap(x: Char, y: Char) -> bool:
    if x[0] == "lit":
        return _char_matches(y, x[1])
    if y[0] == "lit":
        return _char_matches(x, y[1])
    if x[0] == "class" and y[0] == "class":
        if not x[1] and not y[1]:
            return any(max(lo1, lo2) <= min(hi1, hi2) for lo1, hi1 in x[2] for lo2, hi2 in y[2])
        if x[1] and y[1]:
            return True  # two negated classes leave almost every character to share
        pos, neg = (x, y) if not x[1] else (y, x)
        return any(_uncovered(lo, hi, neg[2]) for lo, hi in pos[2])
    # one is `?`: it shares any character the other has; only an empty class has none
    return not any(z[0] == "class" and not z[1] and not z[2] for z in (x, y))


def _uncovered(lo: int, hi: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    """Whether some character in lo..hi lies in none of `ranges` (sorted by start)."""
    cur = lo
    for rlo, rhi in ranges:
        if rhi < cur:
            continue
        if rlo > cur:
            return True
        cur = rhi + 1
        if cur > hi:
            return False
    return cur <= hi
