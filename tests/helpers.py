"""What many tests do: run git, make a repo, run tsk as a whole process, and wait for a condition
(never for a time: a test that sleeps and then looks is a test that fails on a loaded machine)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from tsk.engine.ports import Engine

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent.parent
TSK = [sys.executable, "-m", "tsk"]
BASE_IMAGE = os.environ.get("TSK_TEST_BASE_IMAGE", "debian:trixie")
# Who commits in a test repo. Given on every call, so no test depends on the user's git config.
GIT_IDENTITY = ("-c", "user.name=t", "-c", "user.email=t@example.com")
# A project whose tasks run on the default stack.
PROJECT = {"README.md": "hello\n", ".tsk/tsk.toml": 'stack = "default"\n'}


def git(repo: Path, *args: str) -> str:
    """git in `repo` as a test's committer (file:// submodules allowed); its stdout. Fails with git's own
    message."""
    done = subprocess.run(["git", "-C", str(repo), *GIT_IDENTITY, "-c", "protocol.file.allow=always", *args],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {repo} ({done.returncode}): {done.stderr}")
    return done.stdout


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A git repo at `path` on branch `trunk` with `files` (a README by default) in one commit."""
    path.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {"README.md": "hello\n"}).items():
        f = path / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    git(path, "init", "-q", "-b", "trunk")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "init")
    return path


def run_tsk(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    """tsk as a whole process, the way a user runs it."""
    return subprocess.run([*TSK, *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, check=False)


def trust(repo: Path) -> None:
    """`tsk trust` for a test repo whose .tsk/tsk.toml uses keys that widen the sandbox (tsk/config/trust.py)."""
    done = run_tsk("trust", cwd=repo)
    assert done.returncode == 0, done.stderr


def _say(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()


def wait_until(check: Callable[[], T | None], *, timeout: float, what: str | Callable[[], str],
               every: float = 0.05) -> T:
    """Ask `check` until it answers something true, and return that answer; fail after `timeout` seconds,
    saying what did not happen (`what` may be a function, to show the state it ended in)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {_say(what)}")
        time.sleep(every)


async def wait_until_async(check: Callable[[], bool], *, timeout: float, what: str | Callable[[], str],
                           pause: Callable[[], Awaitable[object]] | None = None) -> float:
    """`wait_until` for code on an event loop: `pause` lets the loop run between two looks (e.g. a textual
    pilot's pause). Returns the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {_say(what)}")
        await (pause() if pause is not None else asyncio.sleep(0.01))
    return time.monotonic() - start


class Lines:
    """The lines a process writes to a pipe, collected by a thread as they come, so a test can wait for
    one without blocking on a read (and without a second reader: wait for the process, not communicate,
    then close)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), name="test-lines", daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self._lines.append(line)

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def having(self, *words: str) -> list[str]:
        """The lines so far that contain every one of `words`."""
        return [line for line in self.lines() if all(w in line for w in words)]

    def __str__(self) -> str:
        return "".join(self.lines())

    def close(self, timeout: float = 30) -> None:
        """Once the writer has ended: read to the end, and close the pipe."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the pipe is still open: something still writes to it"
        self._stream.close()


def builder_calls(log: Path) -> int:
    """How many image builds (`docker buildx build`, `podman build`, `podman --url … build`) a
    `builder_log` shim recorded."""
    return sum(1 for line in log.read_text().splitlines() if re.match(r"(--url \S+ )?(buildx )?build\b", line))


class EngineUnderTest:
    """One real engine as the engine-parametrized tests use it: tsk's adapter for it, the environment
    that makes a tsk process choose it, its own CLI, and a file that only its containers have."""

    def __init__(self, name: str, engine: Engine) -> None:
        self.name = name
        self.engine = engine
        self.env = {"TSK_CONTAINER": name}
        self.flag = ("--container-engine", name)
        url = getattr(engine, "url", "")
        self.cli = ["podman", "--url", url] if name == "podman" else ["docker"]
        self.marker = "/run/.containerenv" if name == "podman" else "/.dockerenv"

    def run(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """The engine's own CLI."""
        return subprocess.run([*self.cli, *args], capture_output=True, text=True, check=check, input=input)

    def __repr__(self) -> str:
        return self.name


def buildx_builds(log: Path) -> int:
    """How many `docker buildx build` calls a `docker_log` shim recorded."""
    return sum(1 for line in log.read_text().splitlines() if line.startswith("buildx build"))


class GitHubServer:
    """A local HTTP server in GitHub's place: it answers what `answers` says for (method, path), 404
    otherwise, and records every request (method, path, lowercased headers, JSON body)."""

    def __init__(self) -> None:
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict[str, object]] = []
        self.answers: dict[tuple[str, str], tuple[int, object]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append({"method": self.command, "path": self.path,
                                      "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": json.loads(body) if body else None})
                status, payload = fake.answers.get((self.command, self.path), (404, {"message": "Not Found"}))
                if status in (301, 302, 307):
                    self.send_response(status)
                    self.send_header("Location", str(payload))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> GitHubServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
