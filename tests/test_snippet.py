"""What a snippet reads from its build context, and content digests of those files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tsk.errors import ConfigError
from tsk.layers.snippet import context_sources, digest_path, resolve_sources
from tsk.resources import layers_dir


def test_copy_add_and_bind_mount_sources() -> None:
    text = """
# COPY commented.txt /nope
COPY a.txt b/ /dst/
copy --chown=1000:1000 c.txt /x
ADD ["d e.txt", "/y"]
COPY --from=builder /out /out
COPY --from=debian:trixie /etc/os-release /z
RUN --mount=type=bind,source=scripts,target=/s \\
    --mount=type=cache,target=/root/.cache \\
    sh /s/go.sh
ADD https://example.com/x.tgz /tmp/
COPY a.txt /again
"""
    assert context_sources(text) == ["a.txt", "b", "c.txt", "d e.txt", "scripts", "https://example.com/x.tgz"]


def test_continuations_with_comments_inside() -> None:
    assert context_sources("COPY \\\n  # a comment\n  one.txt \\\n  two.txt /d/\n") == ["one.txt", "two.txt"]


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_sources("stack layer `x`", ["nope.txt"], {}, tmp_path)
    assert "nope.txt" in str(err.value) and str(tmp_path) in str(err.value)


def test_source_outside_the_context_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "secret").write_text("x")
    with pytest.raises(ConfigError, match="outside"):
        resolve_sources("l", ["../secret"], {}, tmp_path / "ctx")


def test_globs_and_named_roots(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    for n in ("a.conf", "b.conf", "c.txt"):
        (tmp_path / "ctx" / n).write_text(n)
    ca = tmp_path / "gen" / "tsk-ca"
    ca.mkdir(parents=True)
    found = resolve_sources("l", ["*.conf", "tsk-ca/"], {"tsk-ca": ca}, tmp_path / "ctx")
    assert sorted(found) == ["a.conf", "b.conf", "tsk-ca"]
    assert found["tsk-ca"] == ca


def test_directory_digest_sees_names_content_modes_links_not_times(tmp_path: Path) -> None:
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f").write_text("1")
    (d / "link").symlink_to("sub/f")
    first = digest_path(d)
    import os

    os.utime(d / "sub" / "f", (1, 1))
    assert digest_path(d) == first
    (d / "sub" / "f").chmod(0o755)
    assert digest_path(d) != first
    (d / "sub" / "f").chmod(0o644)
    assert digest_path(d) == first
    (d / "link").unlink()
    (d / "link").symlink_to("elsewhere")
    assert digest_path(d) != first


def test_a_symlink_on_the_way_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host secret\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "linked").symlink_to(outside)
    (repo / "leak").symlink_to(outside / "secret.txt")
    (repo / "inside.txt").write_text("fine\n")
    (repo / "alias").symlink_to("inside.txt")
    for src in ("linked/secret.txt", "linked", "leak", "link*"):
        with pytest.raises(ConfigError, match="resolves outside the build context"):
            resolve_sources("project layer `p` (config setup)", [src], {}, repo)
    assert set(resolve_sources("p", ["inside.txt", "alias"], {}, repo)) == {"inside.txt", "alias"}


def test_apt_list_caches_are_never_locked_and_always_beside_a_locked_apt_cache() -> None:
    """buildah (Podman 4.3) keeps a locked cache's lock file inside the cache dir; `apt-get update` deletes
    unknown files in /var/lib/apt/lists, and the next build that locks it hangs for ever."""
    runs = 0
    for f in sorted(layers_dir().glob("*/*.dockerfile")):
        for run in re.split(r"\n(?=RUN )", f.read_text()):
            if "target=/var/lib/apt/lists" not in run:
                continue
            runs += 1
            assert "target=/var/lib/apt/lists,sharing=shared" in run, f
            assert "target=/var/cache/apt,sharing=locked" in run, f
    assert runs >= 8
