"""The registry cache against a real registry (Debian's docker-registry on 127.0.0.1) and the real engine.

Every chain here is unique to the test: its base layer is built FROM a throwaway base image with its own
id (`tsk-test-base:<nonce>`), so every key above it (base, stack, project, agent, proxy) is too, and "a
fresh machine" means removing exactly those images, never anything another test or person uses."""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

import pytest
from helpers import buildx_builds, make_repo, run_tsk, trust
from registry_server import failing_registry, free_port, registry, tags

pytestmark = pytest.mark.docker

REPOSITORY = "tsk/layers"


def _config(base: str | None, registry_ref: str, setup: str) -> str:
    layers = f'[layers]\nregistry = "{registry_ref}"\n' + (f'base_image = "{base}"\n' if base else "")
    return f"stack = \"default\"\nagent = \"exec\"\nsetup = '''\n{setup}\n'''\n{layers}"


def _planned(repo: Path) -> list[dict]:
    res = run_tsk("layers", "build", "--dry-run", "--json", cwd=repo)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _forget(engine, planned: list[dict]) -> None:  # type: ignore[no-untyped-def]
    """As a fresh machine: none of these layer images (and no proxy container holding one)."""
    ids = {info.id for p in planned if (info := engine.image(p["image"])) is not None}
    for c in engine.containers("dev.tsk.kind=proxy"):
        if c.image_id in ids:
            engine.container_remove(c.id)
    for p in reversed(planned):
        engine.remove_image(p["image"])
    assert all(engine.image(p["image"]) is None for p in planned)


def _run(repo: Path, env: dict[str, str], prompt: str) -> subprocess.CompletedProcess[str]:
    # The proxy image is still ensured (pulled or built) like every layer; only its container is left out:
    # other sessions on this shared engine remove or reap proxy containers they did not start.
    res = run_tsk("run", "--agent", "exec", "--no-network-isolation", "-p", prompt, cwd=repo, env=env,
                  timeout=900)
    assert res.returncode == 0, res.stderr
    return res


def test_prewarm_then_a_fresh_machine_pulls_instead_of_building(engine, tmp_path: Path, nonce: str,
                                                               unique_base: str, docker_log) -> None:
    env, log = docker_log
    planned_all: list[dict] = []
    with registry(tmp_path / "registry") as host:
        ref = f"{host}/{REPOSITORY}"
        repo = make_repo(tmp_path / "regproj", {
            "README.md": "x\n", ".tsk/tsk.toml": _config(unique_base, ref, f"RUN echo {nonce} > /etc/tsk-reg")})
        trust(repo)
        try:
            planned = _planned(repo)
            planned_all += planned
            assert [p["kind"] for p in planned] == ["base", "stack", "project", "agent", "proxy"]
            assert all(p["status"] == "missing" for p in planned)  # unique to this test

            # CI: build and push.
            res = run_tsk("layers", "build", "--push", cwd=repo, env=env)
            assert res.returncode == 0, res.stderr
            assert "built 5, pulled 0, pushed 5, hit 0" in res.stdout
            assert buildx_builds(log) == 5
            assert tags(host, REPOSITORY) == sorted(f"{p['kind']}-{p['key']}" for p in planned)
            again = json.loads(run_tsk("layers", "push", "--json", cwd=repo).stdout)
            assert {r["pushed"] for r in again} == {"present"}  # a manifest lookup each, nothing uploaded

            # A fresh machine: none of the chain's images. `tsk run` pulls the leaf and its ancestors.
            _forget(engine, planned)
            log.write_text("")
            run = _run(repo, env, "cat /etc/tsk-reg")
            assert nonce in run.stdout
            assert buildx_builds(log) == 0, log.read_text()  # zero build steps
            for kind, name in (("base", "base"), ("stack", "default"), ("project", "regproj"), ("agent", "exec"),
                               ("proxy", "proxy")):
                assert f"pulled {kind}/{name} in " in run.stderr, run.stderr
            pulls = [line for line in log.read_text().splitlines() if line.startswith("pull")]
            assert pulls == []  # the engine pulled through the Engine API, not the CLI
            assert [p["status"] for p in _planned(repo)] == ["hit"] * 5
            local = {t for img in engine.images() for t in img.tags}
            assert not any(t.startswith(host) for t in local)  # remote tags dropped: `ls` shows each layer once

            # The project's setup changes: the shared lower layers are pulled, only what changed is built.
            _forget(engine, planned)
            (repo / ".tsk" / "tsk.toml").write_text(_config(unique_base, ref, f"RUN echo {nonce}-2 > /etc/tsk-reg"))
            trust(repo)
            planned_all += _planned(repo)
            log.write_text("")
            run = _run(repo, env, "cat /etc/tsk-reg")
            assert f"{nonce}-2" in run.stdout
            assert buildx_builds(log) == 2, log.read_text()  # the project layer and the agent above it
            for line in ("pulled base/base in ", "pulled stack/default in ", "pulled proxy/proxy in ",
                         "built project/regproj in ", "built agent/exec in "):
                assert line in run.stderr, run.stderr
        finally:
            _forget(engine, planned_all)


@pytest.mark.parametrize("kind", ["down", "erroring"])
def test_a_registry_that_is_down_or_failing_is_a_warning_and_the_task_runs(engine, tmp_path: Path, nonce: str,
                                                                           docker_log, kind: str) -> None:
    env, log = docker_log
    with contextlib.ExitStack() as stack:
        host = f"127.0.0.1:{free_port()}" if kind == "down" else stack.enter_context(failing_registry())
        repo = make_repo(tmp_path / "regfail", {
            "README.md": "x\n", ".tsk/tsk.toml": _config(None, f"{host}/{REPOSITORY}", f"RUN echo {nonce}-{kind}")})
        trust(repo)
        planned = _planned(repo)
        try:
            run = _run(repo, env, "echo sandbox-ran")
            assert "sandbox-ran" in run.stdout
            assert "warning:" in run.stderr and f"registry {host}" in run.stderr, run.stderr
            assert "building instead" in run.stderr
            assert run.stderr.count("warning:") == 1  # asked once, not once per layer
            assert "built project/regfail in " in run.stderr and "built agent/exec in " in run.stderr
            assert buildx_builds(log) >= 2
        finally:
            _forget(engine, [p for p in planned if p["kind"] in ("project", "agent")])


def test_push_and_pull_need_a_registry_and_say_how_to_set_one(engine, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    for verb in ("push", "pull"):
        res = run_tsk("layers", verb, cwd=repo, env={"TSK_REGISTRY": ""})
        assert res.returncode == 2, res.stderr
        assert f"`tsk layers {verb}` needs a registry" in res.stderr and "--registry" in res.stderr
        assert "TSK_REGISTRY" in res.stderr and "[layers]" in res.stderr
    res = run_tsk("layers", "pull", "--registry", "https://x.example/y", cwd=repo)
    assert res.returncode == 2 and "not a repository reference" in res.stderr
