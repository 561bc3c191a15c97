"""Layer keys are a function of the inputs and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tsk.layers.keys import layer_key
from tsk.layers.plan import Slot, plan_chain

text = st.text(min_size=0, max_size=40)
args = st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True), text, max_size=3)
files = st.dictionaries(st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6})?", fullmatch=True),
                        st.from_regex(r"[0-9a-f]{32}", fullmatch=True), max_size=3)
BASE = dict(kind="stack", parent="p" * 32, snippet="RUN true\n", build_args={}, files={}, base_image_id=None)


@given(text, text)
def test_snippet_change_changes_key(a: str, b: str) -> None:
    same = a.replace("\r\n", "\n").strip("\n") == b.replace("\r\n", "\n").strip("\n")
    assert (layer_key(**{**BASE, "snippet": a}) == layer_key(**{**BASE, "snippet": b})) == same


@given(st.from_regex(r"[0-9a-f]{32}", fullmatch=True), st.from_regex(r"[0-9a-f]{32}", fullmatch=True))
def test_parent_change_changes_key(a: str, b: str) -> None:
    assert (layer_key(**{**BASE, "parent": a}) == layer_key(**{**BASE, "parent": b})) == (a == b)


@given(args, args)
def test_build_arg_change_changes_key(a: dict[str, str], b: dict[str, str]) -> None:
    assert (layer_key(**{**BASE, "build_args": a}) == layer_key(**{**BASE, "build_args": b})) == (a == b)


@given(files, files)
def test_copied_file_digest_change_changes_key(a: dict[str, str], b: dict[str, str]) -> None:
    assert (layer_key(**{**BASE, "files": a}) == layer_key(**{**BASE, "files": b})) == (a == b)


@given(st.one_of(st.none(), text), st.one_of(st.none(), text))
def test_base_image_id_change_changes_key(a: str | None, b: str | None) -> None:
    base = {**BASE, "parent": None}
    assert (layer_key(**{**base, "base_image_id": a}) == layer_key(**{**base, "base_image_id": b})) == (a == b)


def test_kind_is_part_of_the_key() -> None:
    assert layer_key(**BASE) != layer_key(**{**BASE, "kind": "agent"})


@given(args)
def test_build_arg_order_does_not_matter(a: dict[str, str]) -> None:
    assert layer_key(**{**BASE, "build_args": a}) == layer_key(**{**BASE, "build_args": dict(reversed(a.items()))})


def _checkout(root: Path, ca: bytes = b"-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n") -> Path:
    (root / "layers").mkdir(parents=True)
    (root / "layers" / "conf.txt").write_text("setting = 1\n")
    (root / "layers" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "layers" / "run.sh").chmod(0o755)
    (root / "tsk-ca").mkdir()
    (root / "tsk-ca" / "corp.crt").write_bytes(ca)
    return root


def _keys(root: Path) -> list[str]:
    slots = [
        Slot(kind="base", name="base", snippet="COPY tsk-ca/ /ca/\nRUN true\n", origin="t", root=str(root / "layers")),
        Slot(kind="stack", name="s", snippet="COPY conf.txt run.sh /etc/\n", origin="t", root=str(root / "layers")),
    ]
    chain = plan_chain(slots, base_image="debian:trixie", base_image_id="sha256:abc",
                       roots={"tsk-ca": root / "tsk-ca"})
    return [layer.key for layer in chain]


def test_copied_file_content_and_mode_change_keys(tmp_path: Path) -> None:
    root = _checkout(tmp_path / "a")
    before = _keys(root)
    (root / "layers" / "conf.txt").write_text("setting = 2\n")
    after_content = _keys(root)
    assert after_content[0] == before[0] and after_content[1] != before[1]
    (root / "layers" / "run.sh").chmod(0o644)
    assert _keys(root)[1] != after_content[1]


def test_ca_content_is_an_input_of_the_layer_that_copies_it(tmp_path: Path) -> None:
    a = _keys(_checkout(tmp_path / "a"))
    b = _keys(_checkout(tmp_path / "b", ca=b"-----BEGIN CERTIFICATE-----\nY\n-----END CERTIFICATE-----\n"))
    assert a[0] != b[0] and a[1] != b[1]  # the stack's parent changed


def test_mtimes_and_locations_do_not_change_keys(tmp_path: Path) -> None:
    a = _checkout(tmp_path / "one")
    b = _checkout(tmp_path / "elsewhere" / "two")
    os.utime(b / "layers" / "conf.txt", (0, 0))
    assert _keys(a) == _keys(b)


_SCRIPT = """
import sys, json
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_keys import _keys
print(json.dumps(_keys(Path(sys.argv[1]))))
"""


def test_same_keys_across_processes_cwds_and_users(tmp_path: Path) -> None:
    a = _checkout(tmp_path / "a")
    b = _checkout(tmp_path / "b")
    script = _SCRIPT.format(tests=str(Path(__file__).parent))
    outs = set()
    for root, cwd, env in (
        (a, tmp_path, {}),
        # another user's environment: home, login name, git identity, hash seed
        (b, Path("/"), {"HOME": str(tmp_path / "other-home"), "USER": "someone", "LOGNAME": "someone",
                        "GIT_AUTHOR_NAME": "x", "GIT_AUTHOR_EMAIL": "x@y", "PYTHONHASHSEED": "123"}),
    ):
        res = subprocess.run([sys.executable, "-c", script, str(root)], cwd=cwd, env={**os.environ, **env},
                             capture_output=True, text=True, check=True)
        outs.add(res.stdout.strip())
    assert len(outs) == 1, outs


def test_same_keys_from_two_checkouts_under_two_homes(engine, tmp_path: Path) -> None:
    """The whole tsk, as two developers on two machines would run it: two clones at different paths, each
    with its own HOME, user, git identity and tsk dirs, compute the same key for every layer."""
    from helpers import git, make_repo, run_tsk

    origin = make_repo(tmp_path / "origin", {
        "README.md": "x\n", "tools/setup.sh": "#!/bin/sh\necho setting up\n",
        ".tsk/tsk.toml": "stack = \"python\"\nagent = \"claude\"\nsetup = '''\nCOPY tools/ /opt/tools/\n"
                         "RUN sh /opt/tools/setup.sh\n'''\n"})
    (origin / "tools" / "setup.sh").chmod(0o755)
    git(origin, "commit", "-qam", "x")
    keys = []
    for who in ("alice", "bob"):
        home = tmp_path / f"home-{who}"
        clone = tmp_path / who / "src" / "deep" / "checkout"
        subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
        env = {"HOME": str(home), "USER": who, "LOGNAME": who, "GIT_AUTHOR_NAME": who, "GIT_AUTHOR_EMAIL": f"{who}@x",
               "TSK_CONFIG_HOME": str(home / ".config"), "TSK_DATA_HOME": str(home / ".local/share"),
               "TSK_CACHE_HOME": str(home / ".cache"), "TSK_RUNTIME_DIR": str(home / "run"),
               "PYTHONHASHSEED": "1" if who == "alice" else "2"}
        res = run_tsk("layers", "build", "--dry-run", "--json", cwd=clone, env=env)
        assert res.returncode == 0, res.stderr
        keys.append([(p["kind"], p["name"], p["key"]) for p in json.loads(res.stdout)])
    assert [k[0] for k in keys[0]] == ["base", "stack", "project", "agent", "proxy"]
    assert keys[0] == keys[1]
