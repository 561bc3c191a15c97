"""A real OCI registry for tests: Debian's `docker-registry` (scripts/registry installs it) serving a
throwaway storage dir on a free 127.0.0.1 port. dockerd talks plain HTTP to 127.0.0.0/8 registries
(its default insecure-registries), so no TLS set-up is needed. Also: a server that answers 500."""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from helpers import wait_until

BINARY = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def registry(root: Path) -> Iterator[str]:
    """Yields the host:port of a running registry; stops it and removes its storage after."""
    assert Path(BINARY).exists(), "docker-registry is not installed; run scripts/registry"
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")
    log = (root / "registry.log").open("wb")
    proc = subprocess.Popen([BINARY, "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL, stderr=log)
    host = f"127.0.0.1:{port}"

    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"registry did not start: {(root / 'registry.log').read_text()}")
        try:
            with urllib.request.urlopen(f"http://{host}/v2/", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    try:
        wait_until(answers, timeout=20, what=lambda: f"the registry to answer: {(root / 'registry.log').read_text()}")
        yield host
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(root / "data", ignore_errors=True)


def tags(host: str, repository: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"http://{host}/v2/{repository}/tags/list", timeout=5) as resp:
            return sorted(json.loads(resp.read()).get("tags") or [])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise


class _Failing(http.server.BaseHTTPRequestHandler):
    def _fail(self) -> None:
        self.send_response(500)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"storage backend exploded\n")

    do_GET = do_HEAD = do_POST = do_PUT = _fail

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def failing_registry() -> Iterator[str]:
    """A 'registry' that answers every request with 500."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
