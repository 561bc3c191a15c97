"""`.tsk/layers.lock`: written readable, read back the same, and `--check` names each input that moved."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from helpers import make_repo, run_tsk

from tsk.layers.keys import digest_bytes
from tsk.layers.lockfile import FORMAT, Lock, changes, dumps, loads, locked_layers
from tsk.layers.plan import Slot, plan_chain
from tsk.layers.service import Target


def _targets(tmp_path: Path, conf: str = "a = 1\n", snippet: str = "COPY conf.txt /etc/\n") -> list[Target]:
    root = tmp_path / "ctx"
    root.mkdir(exist_ok=True)
    (root / "conf.txt").write_text(conf)
    slots = [Slot(kind="base", name="base", snippet="RUN true\n", origin="layers/base/base.dockerfile"),
             Slot(kind="stack", name="s", snippet=snippet, origin="layers/stack/s.dockerfile", root=str(root),
                  build_args=(("V", "1"),)),
             Slot(kind="agent", name="a", snippet="RUN echo \"ü\\\\\"\n", origin="layers/agent/a.dockerfile")]
    chain = plan_chain(slots, base_image="debian:trixie", base_image_id="sha256:" + "b" * 64, roots={})
    return [Target(label="s + a", chain=chain)]


def _lock(tgts: list[Target]) -> Lock:
    return Lock(format=FORMAT, key_schema=1, stacks=["s"], agents=[], all_stacks=False,
                targets=[t.label for t in tgts], layer=locked_layers(tgts))


def test_lock_round_trips_and_reads_as_one_block_per_layer(tmp_path: Path) -> None:
    lock = _lock(_targets(tmp_path))
    text = dumps(lock)
    assert loads(text, "x") == lock
    assert text.count("\n[[layer]]\n") == 3 and "[layer.files]" in text and "[layer.build_args]" in text
    parsed = tomllib.loads(text)
    assert parsed["layer"][1]["path"] == "base/base > stack/s" and parsed["layer"][1]["files"]["conf.txt"]
    assert parsed["layer"][0]["base_image_id"] == "sha256:" + "b" * 64
    assert parsed["layer"][2]["snippet"] == digest_bytes('RUN echo "ü\\\\"\n'.encode())


def test_changes_name_the_input_that_moved(tmp_path: Path) -> None:
    old = _lock(_targets(tmp_path))
    assert changes(old, old.layer, old.targets) == []
    moved = changes(old, locked_layers(_targets(tmp_path, conf="a = 2\n")), old.targets)
    assert len(moved) == 2, moved
    assert moved[0].startswith("stack/s: layers/stack/s.dockerfile: COPY file conf.txt changed (digest ")
    assert moved[1].startswith("agent/a: a lower layer changed (parent key ")
    edited = changes(old, locked_layers(_targets(tmp_path, snippet="COPY conf.txt /opt/\n")), old.targets)
    assert edited[0].startswith("stack/s: layers/stack/s.dockerfile changed (digest ")


def test_why_and_lock_check_say_the_same_thing_about_the_same_change(tmp_path: Path) -> None:
    from tsk.layers.index import LayerIndex
    from tsk.layers.why import explain

    before = _targets(tmp_path)
    after = _targets(tmp_path, conf="a = 2\n", snippet="COPY conf.txt /opt/\n")
    index = LayerIndex(tmp_path / "index")
    for layer in before[0].chain:
        index.record_build(layer, image_id="sha256:x", size=1, seconds=0.0)
    compared = 0
    for old, new in zip(locked_layers(before), locked_layers(after), strict=True):
        if old.key == new.key:
            continue
        compared += 1
        said_by_lock = [c.removeprefix(f"{new.slot}: ") for c in changes(_lock(before), [new], ["s + a"])
                        if c.startswith(new.slot)]
        layer = next(x for x in after[0].chain if x.slot == new.slot)
        said_by_why = [r for r in explain(layer, False, index.last_for_slot(layer.kind, layer.name)).reasons
                       if r != "parent unchanged"]
        assert said_by_lock == said_by_why, (new.slot, said_by_lock, said_by_why)
        assert said_by_lock and all("->" not in c for c in said_by_lock)
    assert compared == 2  # the stack (its file and its snippet) and the agent (its parent)
    index.close()


def test_lock_and_check_through_the_cli(engine, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "lockproj", {
        "README.md": "x\n", "setup.sh": "echo one\n",
        ".tsk/tsk.toml": "stack = \"default\"\nagent = \"exec\"\nsetup = '''\nCOPY setup.sh /opt/\n'''\n"})
    res = run_tsk("layers", "lock", cwd=repo)
    assert res.returncode == 0, res.stderr
    text = (repo / ".tsk" / "layers.lock").read_text()
    assert 'path = "base/base > stack/default > project/lockproj"' in text and '"setup.sh" = ' in text
    ok = run_tsk("layers", "lock", "--check", cwd=repo)
    assert ok.returncode == 0 and "up to date" in ok.stdout, ok.stderr

    (repo / "setup.sh").write_text("echo two\n")
    bad = run_tsk("layers", "lock", "--check", cwd=repo)
    assert bad.returncode == 1
    assert "project/lockproj: setup: COPY file setup.sh changed (digest " in bad.stderr
    assert "agent/exec: a lower layer changed" in bad.stderr and "run `tsk layers lock`" in bad.stderr
    assert "base/base" not in bad.stderr and "stack/default" not in bad.stderr

    (repo / "setup.sh").write_text("echo one\n")
    (repo / ".tsk" / "tsk.toml").write_text(
        "stack = \"default\"\nagent = \"exec\"\nsetup = '''\nCOPY setup.sh /opt/\nRUN sh /opt/setup.sh\n'''\n"
        "[stack_config.default]\nsetup = 'RUN echo custom'\n")
    snip = run_tsk("layers", "lock", "--check", "--json", cwd=repo)
    assert snip.returncode == 1
    report = json.loads(snip.stdout)
    assert report["ok"] is False
    assert any(c.startswith("stack/default: stack_config.default.setup changed (digest ") for c in report["changes"])
    assert any(c.startswith("project/lockproj: setup changed (digest ") for c in report["changes"])


def test_check_without_a_lock_says_how_to_make_one(engine, tmp_path: Path) -> None:
    res = run_tsk("layers", "lock", "--check", cwd=make_repo(tmp_path / "r"))
    assert res.returncode == 1 and "no lock file" in res.stderr and "tsk layers lock" in res.stderr
