"""Guard fixtures: every tsk path and HOME point into tmp_path, so no test can touch the user's real
state. Real-engine fixtures fail (never skip) when no engine answers. What tests call (git, repos,
tsk as a process, waiting) is in helpers.py."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import BASE_IMAGE, PROJECT, make_repo

# Read before any test points HOME elsewhere.
REAL_HOME = Path.home()
DOCKER_CONFIG = os.environ.get("DOCKER_CONFIG") or str(REAL_HOME / ".docker")


@pytest.fixture(autouse=True)
def tsk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "tsk-home"
    for var, sub in (("TSK_CONFIG_HOME", "config"), ("TSK_DATA_HOME", "data"),
                     ("TSK_CACHE_HOME", "cache"), ("TSK_RUNTIME_DIR", "run")):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("TSK_DEBUG", raising=False)
    # A home of the test's own: nothing reads the user's ~/.claude, ~/.codex, ~/.gitconfig or ~/.config
    # (tsk, the agents' credentials, git). git there has an identity, as a user's has.
    user_home = tmp_path / "home"
    user_home.mkdir()
    (user_home / ".gitconfig").write_text("[user]\n\tname = tsk test\n\temail = tsk-test@example.com\n")
    monkeypatch.setenv("HOME", str(user_home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    # ...but the engine is the user's: docker's CLI and SDK find the engine's context and registry
    # credentials in $DOCKER_CONFIG (default ~/.docker), and buildx keeps its builders there, so the
    # real-engine tests keep using the real one, named explicitly since ~ is no longer the user's.
    monkeypatch.setenv("DOCKER_CONFIG", DOCKER_CONFIG)
    from tsk.paths import Paths

    paths = Paths.from_env()
    for p in (paths.config, paths.data, paths.cache, paths.runtime):
        assert home in p.parents, f"{p} escapes the test's tmp dir"
        assert REAL_HOME / ".config" not in p.parents
    assert Path.home() == user_home
    yield home


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project on the default stack, committed on `trunk`."""
    return make_repo(tmp_path / "demo", PROJECT)


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    """The real engine. No engine is a failure: these tests prove the features."""
    from tsk.engine.docker_api import DockerEngine
    from tsk.errors import TskError

    eng = DockerEngine()
    try:
        eng.ping()
    except TskError as exc:
        pytest.fail(f"no Docker engine answers ({exc}); run scripts/engine first", pytrace=False)
    if eng.image(BASE_IMAGE) is None:
        pytest.fail(f"base image {BASE_IMAGE} missing; run scripts/base-image first", pytrace=False)
    return eng


@pytest.fixture
def nonce() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def unique_base(engine, nonce: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A base image with an id of its own (a label changes the image config, hence the id), so every
    layer key above it is unique to the test: "a fresh machine" is then exactly those images, and
    removing them never touches a layer another test or person uses."""
    ref = f"tsk-test-base:{nonce}"
    subprocess.run(["docker", "build", "-q", "-t", ref, "-"], input=f"FROM {BASE_IMAGE}\nLABEL dev.tsk.test={nonce}\n",
                   text=True, capture_output=True, check=True)
    yield ref
    engine.remove_image(ref)


@pytest.fixture
def docker_log(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A PATH whose `docker` logs every invocation, then runs the real CLI: counts BuildKit calls
    made by a whole tsk process."""
    real = shutil.which("docker")
    assert real, "the docker CLI is not installed"
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    log = tmp_path / "docker-calls.log"
    shim = shim_dir / "docker"
    shim.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    log.touch()
    return {"PATH": f"{shim_dir}{os.pathsep}{os.environ['PATH']}"}, log


# Project names the real-engine tests give their throwaway repos; their layers are removed after the run
# so repeated runs do not fill the disk. Shared layers (base, stacks, agents on stacks, proxy) stay: they
# are what makes a warm run fast.
THROWAWAY_PROJECTS = {"proj", "race", "current", "old", "busy", "r"}


@pytest.fixture(scope="session", autouse=True)
def _session_launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Commands in tests go through a launcher as a user's do (tsk/launcher.py), one for the
    session, in a dir of its own (not the user's); it is stopped when the session ends."""
    where = tmp_path_factory.mktemp("launcher")
    where.chmod(0o700)
    os.environ["TSK_LAUNCHER_DIR"] = str(where)
    yield where
    os.environ.pop("TSK_LAUNCHER_DIR", None)
    from tsk.launcher import stop_launchers

    stop_launchers(str(where))


@pytest.fixture(scope="session", autouse=True)
def _remove_session_proxies(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Tests give proxies one-off configs (a random host port): stop the proxies this session's tests
    used, since no later run will share them. Each test's runtime dir records the proxies it used
    (`proxy-<fingerprint>.used`); a proxy another session on this engine started is never touched."""
    def docker_names(*filters: str) -> set[str]:
        out = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}", *(f"--filter={f}" for f in filters)],
                             capture_output=True, text=True, check=False).stdout
        return set(out.split())

    before = docker_names("label=dev.tsk.kind=proxy")  # the shared ones (the default config's) stay
    yield
    base = tmp_path_factory.getbasetemp()
    used = {p.name[len("proxy-"):-len(".used")] for p in base.glob("**/proxy-*.used")}
    names = sorted(f"tsk-proxy-{fp}" for fp in used
                   if f"tsk-proxy-{fp}" not in before and not docker_names(f"label=dev.tsk.proxy={fp}"))
    if names:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True, check=False)
        subprocess.run(["docker", "volume", "rm", *names], capture_output=True, check=False)  # their sockets


@pytest.fixture(scope="session", autouse=True)
def _remove_throwaway_layers():  # type: ignore[no-untyped-def]
    yield
    try:
        from tsk.engine.docker_api import DockerEngine

        eng = DockerEngine()
        images = eng.images()
    except Exception:  # no engine: the docker tests have failed already and said why
        return
    doomed = {i.labels.get("dev.tsk.key") for i in images
              if i.labels.get("dev.tsk.kind") == "project" and i.labels.get("dev.tsk.name") in THROWAWAY_PROJECTS}
    children = [i for i in images if i.labels.get("dev.tsk.parent") in doomed]
    for img in [*children, *(i for i in images if i.labels.get("dev.tsk.key") in doomed)]:
        for tag in img.tags:
            with contextlib.suppress(Exception):  # in use by a leftover container: leave it
                eng.remove_image(tag)
