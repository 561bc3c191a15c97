"""Guard fixtures: every tsk path points into tmp_path, so no test can touch the user's real state.
Real-engine fixtures fail (never skip) when no engine answers."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TSK = [sys.executable, "-m", "tsk"]
BASE_IMAGE = os.environ.get("TSK_TEST_BASE_IMAGE", "debian:trixie")


@pytest.fixture(autouse=True)
def tsk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "tsk-home"
    for var, sub in (("TSK_CONFIG_HOME", "config"), ("TSK_DATA_HOME", "data"),
                     ("TSK_CACHE_HOME", "cache"), ("TSK_RUNTIME_DIR", "run")):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("TSK_DEBUG", raising=False)
    from tsk.paths import Paths

    paths = Paths.from_env()
    real_home = Path(os.path.expanduser("~"))
    for p in (paths.config, paths.data, paths.cache, paths.runtime):
        assert home in p.parents, f"{p} escapes the test's tmp dir"
        assert real_home / ".config" not in p.parents
    yield home


def run_tsk(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    """tsk as a whole process, the way a user runs it."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([*TSK, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def trust(repo: Path) -> None:
    """`tsk trust` for a test repo whose .tsk/tsk.toml uses keys that widen the sandbox (tsk/config/trust.py)."""
    done = run_tsk("trust", cwd=repo)
    assert done.returncode == 0, done.stderr


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {"README.md": "hello\n"}).items():
        f = path / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "trunk"], cwd=path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=path, check=True)
    return path


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


def buildx_builds(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if line.startswith("buildx build"))


# Project names the real-engine tests give their throwaway repos; their layers are removed after the run
# so repeated runs do not fill the disk. Shared layers (base, stacks, agents on stacks, proxy) stay: they
# are what makes a warm run fast.
THROWAWAY_PROJECTS = {"proj", "race", "current", "old", "busy", "r"}


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
