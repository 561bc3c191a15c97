"""Which engine a command talks to (the flag, TSK_CONTAINER, the user's config file, then Docker) and
where each engine's API socket is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import make_repo, run_tsk

from tsk.engine import choice
from tsk.errors import UsageError


def _never() -> str | None:
    raise AssertionError("the user file was read although a higher source had said")


def test_the_flag_wins_then_the_environment_then_the_user_file() -> None:
    assert choice.choose("podman", {"TSK_CONTAINER": "docker"}, _never) == ("podman", "--container-engine")
    assert choice.choose(None, {"TSK_CONTAINER": "Podman"}, _never) == ("podman", "TSK_CONTAINER")
    assert choice.choose(None, {}, lambda: "podman") == ("podman", "user file")
    assert choice.choose(None, {"TSK_CONTAINER": ""}, lambda: None) == ("docker", "built-in")


@pytest.mark.parametrize(("flag", "env", "where"), [("podmn", {}, "--container-engine"),
                                                    (None, {"TSK_CONTAINER": "lxc"}, "TSK_CONTAINER")])
def test_an_unknown_engine_is_a_usage_error_naming_its_source(flag: str | None, env: dict[str, str],
                                                              where: str) -> None:
    with pytest.raises(UsageError) as err:
        choice.choose(flag, env, lambda: None)
    assert err.value.exit_code == 2 and where in err.value.message and "docker, podman" in err.value.message


def test_podman_socket_discovery() -> None:
    def only(*paths: str):  # type: ignore[no-untyped-def]
        return lambda p: p in paths

    rootless = "/run/user/1000/podman/podman.sock"
    env = {"XDG_RUNTIME_DIR": "/run/user/1000"}
    assert choice.podman_url({**env, "CONTAINER_HOST": "tcp://h:1"}, uid=1000, exists=only()) == "tcp://h:1"
    assert choice.podman_url(env, uid=1000, exists=only(rootless, choice.PODMAN_ROOTFUL_SOCKET)) == f"unix://{rootless}"
    assert choice.podman_url(env, uid=1000, exists=only(choice.PODMAN_ROOTFUL_SOCKET)) == "unix:///run/podman/podman.sock"
    assert choice.podman_url({}, uid=0, exists=only(rootless)) == "unix:///run/podman/podman.sock"
    assert choice.podman_url({**env, "DOCKER_HOST": "unix:///x.sock"}, uid=1000, exists=only()) == "unix:///x.sock"
    assert choice.podman_url(env, uid=1000, exists=only()) == f"unix://{rootless}"  # what the error will name
    assert choice.podman_url({}, uid=1000, exists=only()) == f"unix://{rootless}"  # XDG_RUNTIME_DIR unset
    assert choice.docker_url({}) == "unix:///var/run/docker.sock"
    assert choice.docker_url({"DOCKER_HOST": "tcp://d:2375"}) == "tcp://d:2375"


def test_an_unknown_engine_through_the_cli_exits_2(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".tsk/tsk.toml": 'agent = "exec"\n'})
    res = run_tsk("layers", "build", "--container-engine", "lxc", cwd=repo)
    assert res.returncode == 2 and "--container-engine is 'lxc'" in res.stderr and "Traceback" not in res.stderr
    res = run_tsk("add", "-a", "exec", "-p", "true", cwd=repo, env={"TSK_CONTAINER": "kata"})
    assert res.returncode == 2 and "TSK_CONTAINER is 'kata'" in res.stderr
    assert run_tsk("list", cwd=repo, env={"TSK_CONTAINER": "kata"}).returncode == 0  # needs no engine


def test_a_build_runs_here_only_for_this_users_own_podman() -> None:
    env = {"XDG_RUNTIME_DIR": "/run/user/1000"}
    assert choice.podman_is_local("unix:///run/podman/podman.sock", {}, uid=0)
    assert choice.podman_is_local("unix:///run/user/1000/podman/podman.sock", env, uid=1000)
    assert not choice.podman_is_local("unix:///run/podman/podman.sock", env, uid=1000)  # root's, not mine
    assert not choice.podman_is_local("tcp://build-box:8888", {}, uid=0)
    assert not choice.podman_is_local("unix:///srv/other.sock", {}, uid=0)


def test_the_context_reads_the_user_file_only_when_nothing_higher_says(tmp_path: Path, tsk_home: Path) -> None:
    from tsk.context import Context

    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".tsk/tsk.toml": 'agent = "exec"\n'})
    user = tsk_home / "config" / "tsk" / "tsk.toml"
    user.parent.mkdir(parents=True)
    user.write_text('container_engine = "podman"\n')
    ctx = Context(cwd=repo, environ={**os.environ, "TSK_CONTAINER": ""})
    assert ctx.engine_choice == ("podman", "user file")
    cfg = ctx.config(repo)
    assert cfg.container_engine == "podman" and cfg.sources["container_engine"] == "user file"
    flagged = Context(cwd=repo, container_engine="docker")
    cfg = flagged.config(repo)  # what a task made by `--container-engine docker` records, and runs on
    assert cfg.container_engine == "docker" and cfg.sources["container_engine"] == "--container-engine"
    user.write_text("container_engine = 'podmn'\n")  # not read when the flag says
    assert Context(cwd=repo, container_engine="podman").engine_name == "podman"


def test_an_engine_whose_socket_is_missing_is_said_so_without_a_leaked_connection(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import gc
    import warnings

    from tsk.engine.registry import make_engine
    from tsk.errors import EngineUnavailable

    gone = tmp_path / "engine.sock"
    for name, var in (("docker", "DOCKER_HOST"), ("podman", "CONTAINER_HOST")):
        eng = make_engine(name, {**os.environ, var: f"unix://{gone}"})
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            with pytest.raises(EngineUnavailable, match=f"no socket at {gone}"):
                eng.ping()
            del eng
            gc.collect()
