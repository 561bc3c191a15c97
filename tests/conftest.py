"""Guard fixtures: every tsk path and HOME point into tmp_path, so no test can touch the user's real
state. Real-engine fixtures fail (never skip) when no engine answers. `pg_url` gives a test an empty
PostgreSQL database of its own, on one throwaway cluster for the session (`pg_cluster`,
tests/pg_server.py); no server installed is a failure too. What tests call (git, repos, tsk as a
process, waiting) is in helpers.py."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import BASE_IMAGE, PROJECT, EngineUnderTest, make_repo

if TYPE_CHECKING:
    from pg_server import PgCluster

    from tsk.engine.ports import Engine

# A suite started in the background of a shell without job control inherits SIGINT ignored, and one
# started under `nohup` SIGHUP ignored, and so would every tsk the tests start (an ignored signal stays
# ignored across exec, and tsk keeps it so, as it should): the signal tests would then test the shell,
# not tsk. Children start with both as a terminal gives them.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)

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
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    """One PostgreSQL cluster for the session (a unix socket only); `pg_url` makes the databases on it."""
    from pg_server import cluster

    with cluster(tmp_path_factory.mktemp("pg")) as pg:
        yield pg


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """The libpq URL of an empty database of the test's own, dropped after it (connections and all)."""
    url = pg_cluster.create_database()
    yield url
    pg_cluster.drop_database(url)


# The engines the default run covers. The tests that matter most (a layer hit and miss, `tsk run` with
# the egress proxy, the queue) take `each_engine` and run on every one; the rest run on Docker.
ENGINES = ("docker", "podman")
_SETUP = {"docker": "scripts/engine", "podman": "scripts/engine podman"}


def _answering(name: str) -> EngineUnderTest:
    from tsk.engine.registry import make_engine
    from tsk.errors import TskError

    eng = make_engine(name, os.environ)
    try:
        eng.ping()
    except TskError as exc:
        pytest.fail(f"no {name} engine answers ({exc}); run {_SETUP[name]} first", pytrace=False)
    if eng.image(BASE_IMAGE) is None:
        pytest.fail(f"base image {BASE_IMAGE} missing on {name}; run scripts/base-image first", pytrace=False)
    return EngineUnderTest(name, eng)


@pytest.fixture(scope="session")
def _engines() -> dict[str, EngineUnderTest]:
    return {}


@pytest.fixture(scope="session")
def engine(_engines: dict[str, EngineUnderTest]):  # type: ignore[no-untyped-def]
    """The real Docker engine. No engine is a failure: these tests prove the features."""
    if "docker" not in _engines:
        _engines["docker"] = _answering("docker")
    return _engines["docker"].engine


@pytest.fixture(params=ENGINES)
def each_engine(request: pytest.FixtureRequest, _engines: dict[str, EngineUnderTest]) -> EngineUnderTest:
    """Each real engine in turn; one that does not answer fails its tests (never skips them)."""
    name = request.param
    if name not in _engines:
        _engines[name] = _answering(name)
    return _engines[name]


def _under_test(request: pytest.FixtureRequest) -> EngineUnderTest:
    """The engine of an engine-parametrized test, else Docker."""
    if "each_engine" in request.fixturenames:
        return request.getfixturevalue("each_engine")  # type: ignore[no-any-return]
    request.getfixturevalue("engine")
    return request.getfixturevalue("_engines")["docker"]  # type: ignore[no-any-return]


@pytest.fixture
def nonce() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def unique_base(request: pytest.FixtureRequest, nonce: str, tmp_path: Path) -> Iterator[str]:
    """A base image with an id of its own (a label changes the image config, hence the id), so every
    layer key above it is unique to the test: "a fresh machine" is then exactly those images, and
    removing them never touches a layer another test or person uses."""
    eut = _under_test(request)
    ref = f"tsk-test-base:{nonce}"
    ctx = tmp_path / "unique-base"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nLABEL dev.tsk.test={nonce}\n")
    eut.run("build", "-q", "-t", ref, str(ctx))
    yield ref
    eut.engine.remove_image(ref)


def _logging_shim(tmp_path: Path, cli: str) -> tuple[dict[str, str], Path]:
    real = shutil.which(cli)
    assert real, f"the {cli} CLI is not installed"
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir(exist_ok=True)
    log = tmp_path / f"{cli}-calls.log"
    shim = shim_dir / cli
    shim.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    log.touch()
    return {"PATH": f"{shim_dir}{os.pathsep}{os.environ['PATH']}"}, log


@pytest.fixture
def docker_log(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A PATH whose `docker` logs every invocation, then runs the real CLI: counts BuildKit calls
    made by a whole tsk process."""
    return _logging_shim(tmp_path, "docker")


@pytest.fixture
def builder_log(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """`docker_log` for the engine under test: its CLI logs every invocation (`helpers.builder_calls`
    counts the builds), and the environment chooses that engine."""
    eut = _under_test(request)
    env, log = _logging_shim(tmp_path, eut.cli[0])
    return {**env, **eut.env}, log


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
    engines = _reachable()
    before = {n: {c.name for c in e.containers("dev.tsk.kind=proxy")} for n, e in engines.items()}  # these stay
    yield
    base = tmp_path_factory.getbasetemp()
    used = {p.name[len("proxy-"):-len(".used")] for p in base.glob("**/proxy-*.used")}
    for name, eng in engines.items():
        for fp in sorted(used):
            proxy = f"tsk-proxy-{fp}"
            with contextlib.suppress(Exception):  # another engine's fingerprint, or gone already
                if proxy not in before[name] and not eng.containers(f"dev.tsk.proxy={fp}"):
                    eng.container_remove(proxy)
                    eng.volume_remove(proxy)  # its sockets


def _reachable() -> dict[str, Engine]:
    """The engines that answer now (a missing one has failed its tests already, saying why)."""
    from tsk.engine.registry import make_engine

    found = {}
    for name in ENGINES:
        eng = make_engine(name, os.environ)
        with contextlib.suppress(Exception):
            eng.ping()
            found[name] = eng
    return found


@pytest.fixture(scope="session", autouse=True)
def _remove_throwaway_layers():  # type: ignore[no-untyped-def]
    yield
    for eng in _reachable().values():
        _remove_throwaway_layers_on(eng)


def _remove_throwaway_layers_on(eng: Engine) -> None:
    try:
        images = eng.images()
    except Exception:
        return
    doomed = {i.labels.get("dev.tsk.key") for i in images
              if i.labels.get("dev.tsk.kind") == "project" and i.labels.get("dev.tsk.name") in THROWAWAY_PROJECTS}
    children = [i for i in images if i.labels.get("dev.tsk.parent") in doomed]
    for img in [*children, *(i for i in images if i.labels.get("dev.tsk.key") in doomed)]:
        for tag in img.tags:
            with contextlib.suppress(Exception):  # in use by a leftover container: leave it
                eng.remove_image(tag)
