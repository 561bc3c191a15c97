"""The layer store against the real engine and BuildKit, driven as a user drives it."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from pathlib import Path

import pytest
from helpers import builder_calls, buildx_builds, make_repo, run_tsk, trust

pytestmark = pytest.mark.docker


def _build(repo: Path, *args: str, env: dict[str, str] | None = None) -> list[dict]:
    res = run_tsk("layers", "build", "--json", *args, cwd=repo, env=env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _project_repo(path: Path, setup: str) -> Path:
    return make_repo(path, {"README.md": "x\n", ".tsk/tsk.toml": f"stack = \"default\"\nagent = \"exec\"\nsetup = '''\n{setup}\n'''\n"})


def test_cold_build_then_warm_hit_makes_no_builder_call(each_engine, tmp_path: Path, builder_log, unique_base) -> None:
    env, log = builder_log
    engine = each_engine.engine
    # A chain of its own (a base image with its own id): cold here, whatever the machine has built.
    repo = make_repo(tmp_path / "plain", {"README.md": "x\n", ".tsk/tsk.toml": f'[layers]\nbase_image = "{unique_base}"\n'})
    trust(repo)
    planned = json.loads(run_tsk("layers", "build", "--dry-run", "--json", "--stack", "default", "--agent", "exec",
                                 cwd=repo, env=each_engine.env).stdout)
    assert [p["kind"] for p in planned] == ["base", "stack", "agent", "proxy"]
    assert all(engine.image(p["image"]) is None for p in planned)
    try:
        _cold_then_warm(each_engine, repo, env, log, planned)
    finally:
        for p in reversed(planned):
            with contextlib.suppress(Exception):
                engine.remove_image(p["image"])


def _cold_then_warm(each_engine, repo: Path, env: dict[str, str], log: Path, planned: list[dict]) -> None:  # type: ignore[no-untyped-def]
    engine = each_engine.engine
    # the flag beats the environment: env says the engine under test, so does the flag
    cold = _build(repo, "--stack", "default", "--agent", "exec", *each_engine.flag, env=env)
    assert [(r["kind"], r["status"]) for r in cold] == [("base", "built"), ("stack", "built"), ("agent", "built"),
                                                        ("proxy", "built")]
    assert {r["key"] for r in cold} == {p["key"] for p in planned}
    assert all(engine.image(r["image"]) is not None for r in cold)
    assert builder_calls(log) == 4

    log.write_text("")
    warm = _build(repo, "--stack", "default", "--agent", "exec", env=env)
    assert {r["status"] for r in warm} == {"hit"}
    assert [r["key"] for r in warm] == [r["key"] for r in cold]
    assert builder_calls(log) == 0  # the warm path never calls the builder, as a whole process

    # and in-process: the hit path makes no builder and one engine lookup per target
    from tsk.context import Context
    from tsk.layers import service

    report = service.build(Context(cwd=repo, container_engine=each_engine.name),
                           service.TargetRequest(repo=str(repo), stacks=("default",), agents=("exec",)))
    assert report.builder_calls == 0 and {r.status for r in report.layers} == {"hit"}

    labels = engine.image(cold[2]["image"]).labels
    assert labels["dev.tsk.key"] == cold[2]["key"] and labels["dev.tsk.parent"] == cold[1]["key"]
    assert labels["dev.tsk.kind"] == "agent" and json.loads(labels["dev.tsk.manifest"])["name"] == "exec"


def test_changed_project_setup_rebuilds_project_and_above_only(engine, tmp_path: Path, nonce: str) -> None:
    repo = _project_repo(tmp_path / "proj", f"RUN echo {nonce} > /etc/tsk-first")
    first = _build(repo)
    stack_id = engine.image(first[1]["image"]).id
    assert [r["kind"] for r in first] == ["base", "stack", "project", "agent", "proxy"]
    (repo / ".tsk" / "tsk.toml").write_text(
        f"stack = \"default\"\nagent = \"exec\"\nsetup = '''\nRUN echo {nonce} > /etc/tsk-second\n'''\n")
    why = json.loads(run_tsk("layers", "why", "--json", cwd=repo).stdout)
    assert [(w["kind"], w["status"]) for w in why] == [("base", "hit"), ("stack", "hit"), ("project", "miss"),
                                                       ("agent", "miss"), ("proxy", "hit")]
    assert why[2]["reasons"][0].startswith("setup changed (digest ") and "parent unchanged" in why[2]["reasons"]
    assert any(r.startswith("a lower layer changed (parent key ") for r in why[3]["reasons"])
    text = run_tsk("layers", "why", cwd=repo).stdout
    assert "+RUN echo" in text and "tsk-second" in text

    second = _build(repo)
    assert [(r["kind"], r["status"]) for r in second] == [("base", "hit"), ("stack", "hit"), ("project", "built"),
                                                          ("agent", "built"), ("proxy", "hit")]
    assert engine.image(second[1]["image"]).id == stack_id
    out = subprocess.run(["docker", "run", "--rm", second[3]["image"], "cat", "/etc/tsk-second"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == nonce


def test_two_processes_building_the_same_key_build_it_once(engine, tmp_path: Path, nonce: str, docker_log) -> None:
    env, log = docker_log
    repo = _project_repo(tmp_path / "race", f"RUN sleep 3 && echo {nonce} > /etc/race")
    _build(repo, "--stack", "default", "--agent", "exec")  # lower layers exist; the project one does not yet
    run_tsk("layers", "build", cwd=repo)  # (same target: everything present now except nothing)
    (repo / ".tsk" / "tsk.toml").write_text(
        f"stack = \"default\"\nagent = \"exec\"\nsetup = '''\nRUN sleep 3 && echo {nonce}-2 > /etc/race\n'''\n")
    log.write_text("")
    import os
    import sys

    procs = [subprocess.Popen([sys.executable, "-m", "tsk", "layers", "build", "--json"], cwd=repo,
                              env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    results = [json.loads(o[0]) for o in outs]
    project = [next(r for r in res if r["kind"] == "project") for res in results]
    assert project[0]["key"] == project[1]["key"]
    assert sorted(p["status"] for p in project) == ["built", "hit"]
    assert buildx_builds(log) == 2  # the project layer and the agent above it, once each


def test_prune_keeps_what_is_needed_and_removes_what_is_not(engine, tmp_path: Path, nonce: str) -> None:
    current = _project_repo(tmp_path / "current", f"RUN echo {nonce}-current")
    old = _project_repo(tmp_path / "old", f"RUN echo {nonce}-old")
    busy = _project_repo(tmp_path / "busy", f"RUN echo {nonce}-busy")
    built = {name: {r["kind"]: r for r in _build(repo)} for name, repo in
             (("current", current), ("old", old), ("busy", busy))}
    # Age the old and busy layers in the index; everything else on the engine counts as recently used.
    from tsk.context import Context

    index = Context().index
    for name in ("old", "busy"):
        for kind in ("project", "agent"):
            rec = index.get(built[name][kind]["key"])
            rec.last_used = time.time() - 3 * 86400
            index.put(rec)
    index.close()
    container = subprocess.run(["docker", "run", "-d", "--label", "dev.tsk.test=prune", built["busy"]["agent"]["image"],
                                "sleep", "300"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        dry = json.loads(run_tsk("layers", "prune", "--dry-run", "--older-than", "1d", "--json", cwd=current).stdout)
        gone = {r["key"] for r in dry["removed"]}
        assert gone == {built["old"]["project"]["key"], built["old"]["agent"]["key"]}, (
            [(r["key"], r["name"], r["reason"]) for r in dry["kept"] if r["name"] in ("old", "busy", "exec")])
        kept = {r["key"]: r["reason"] for r in dry["kept"]}
        assert kept[built["busy"]["agent"]["key"]].startswith("in use")
        assert kept[built["current"]["agent"]["key"]].startswith("needed")
        assert dry["bytes_freed"] >= 0 and engine.image(built["old"]["agent"]["image"]) is not None

        res = run_tsk("layers", "prune", "--older-than", "1d", cwd=current)
        assert res.returncode == 0, res.stderr
        assert "removed 2 layer(s)" in res.stdout
        assert engine.image(built["old"]["agent"]["image"]) is None
        assert engine.image(built["old"]["project"]["image"]) is None
        for name in ("current", "busy"):
            for kind in ("base", "stack", "project", "agent"):
                assert engine.image(built[name][kind]["image"]) is not None, (name, kind)
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)

    listing = json.loads(run_tsk("layers", "ls", "--json").stdout)
    keys = {r["key"] for r in listing}
    assert built["current"]["agent"]["key"] in keys and built["old"]["agent"]["key"] not in keys


def test_unreachable_engine_is_a_clear_error(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    res = run_tsk("layers", "build", cwd=repo, env={"DOCKER_HOST": f"unix://{tmp_path}/nothing.sock"})
    assert res.returncode == 1
    assert "cannot reach the container engine" in res.stderr and "scripts/engine" in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_buildx_plugin_is_a_clear_error(engine, tmp_path: Path, nonce: str) -> None:
    import os
    import shutil

    shim = tmp_path / "bin"
    shim.mkdir()
    real = shutil.which("docker")
    (shim / "docker").write_text(
        "#!/bin/sh\nif [ \"$1\" = buildx ]; then echo \"docker: 'buildx' is not a docker command.\" >&2; exit 1; fi\n"
        f'exec "{real}" "$@"\n')
    (shim / "docker").chmod(0o755)
    repo = _project_repo(tmp_path / "r", f"RUN echo {nonce}")
    res = run_tsk("layers", "build", cwd=repo, env={"PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"})
    assert res.returncode == 1
    assert "docker buildx" in res.stderr and "docker-buildx" in res.stderr
    assert "Traceback" not in res.stderr


def test_config_error_through_the_cli(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {".tsk/tsk.toml": "agnet = \"claude\"\n"})
    res = run_tsk("layers", "build", "--dry-run", cwd=repo)
    assert res.returncode == 2
    assert str(repo / ".tsk" / "tsk.toml") in res.stderr and "did you mean `agent`" in res.stderr
    assert "Traceback" not in res.stderr
    (repo / ".tsk" / "tsk.toml").write_text("agent = \"exec\"\nmemory_gb = = 3\n")
    res = run_tsk("layers", "build", "--dry-run", cwd=repo)
    assert res.returncode == 2 and "line 2" in res.stderr


def test_unknown_stack_lists_the_known_ones(engine, tmp_path: Path) -> None:
    res = run_tsk("layers", "build", "--dry-run", "--stack", "pyton", cwd=make_repo(tmp_path / "r"))
    assert res.returncode == 2
    assert "unknown stack `pyton`" in res.stderr and "did you mean `python`" in res.stderr
