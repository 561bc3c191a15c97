"""A real PostgreSQL for tests: Debian's server binaries (scripts/postgres installs them) running a
throwaway cluster that listens on a unix socket only, with durability off (a database lives for one
test). The socket is in a short private dir under /tmp: a socket path must fit in 107 bytes, and
pytest's tmp paths can be longer.

PostgreSQL refuses to run as root. As root, the cluster runs as the `postgres` system user (the Debian
package makes it) or else `nobody`, and its data dir lives in the private /tmp dir, which that user owns:
pytest's tmp dirs are root's alone (0700), so that user could not reach one there. `root/data` links to
it while the server runs and is moved there when it stops, so a test's root holds the same data dir and
server log either way."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from helpers import wait_until
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from registry_server import free_port

INSTALLS = Path("/usr/lib/postgresql")
SUPERUSER = "tsk"  # initdb -U: the cluster's superuser, whoever the OS user is (auth is trust)
DB_PREFIX = "tsk_test_"


def bin_dir() -> Path:
    """The newest installed server's bin dir. None installed fails: these tests prove the feature."""
    found = [b for b in INSTALLS.glob("*/bin") if (b / "initdb").is_file() and (b / "postgres").is_file()]
    assert found, f"no PostgreSQL server under {INSTALLS}; run scripts/postgres"
    return max(found, key=lambda b: tuple(int(p) if p.isdigit() else 0 for p in b.parent.name.split(".")))


@dataclass(frozen=True)
class PgCluster:
    bin: Path
    data: Path
    sockets: Path
    port: int
    log: Path

    def url(self, dbname: str) -> str:
        """A libpq URL (psycopg, psql, or a `tsk server` given TSK_DATABASE_URL) for `dbname`."""
        return f"postgresql://{SUPERUSER}@/{quote(dbname)}?host={quote(str(self.sockets))}&port={self.port}"

    def create_database(self) -> str:
        """A fresh, empty database of its own; its URL."""
        name = f"{DB_PREFIX}{uuid.uuid4().hex[:16]}"
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drops a database `create_database` made, even with sessions still connected to it."""
        name = conninfo_to_dict(url)["dbname"]
        assert isinstance(name, str) and name.startswith(DB_PREFIX), f"{url} is not a test database"
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _admin(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(statement)


def _as_owner() -> dict[str, Any]:
    """Popen arguments that run the server as an unprivileged user when this process is root."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam(name)
            return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    raise AssertionError("running as root, and there is no postgres or nobody user to run PostgreSQL as")


@contextlib.contextmanager
def cluster(root: Path, *, durable: bool = False) -> Iterator[PgCluster]:
    """Yields a running cluster whose data dir and server log are under `root`; stops it after (a fast
    shutdown) and keeps both there. Tests run it without fsync (nothing there must outlive a crash);
    `durable` keeps PostgreSQL's defaults, as a benchmark must."""
    bin = bin_dir()
    owner = _as_owner()
    root.mkdir(parents=True, exist_ok=True)
    # Private, so any port number is free in it: the number only names the socket (.s.PGSQL.<port>).
    private = Path(tempfile.mkdtemp(prefix="tskpg", dir="/tmp"))
    if owner:
        os.chown(private, owner["user"], owner["group"])
        data = private / "data"
        (root / "data").symlink_to(data)
    else:
        data = root / "data"
    log_path = root / "postgres.log"
    init = subprocess.run([str(bin / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                           "--locale=C", "--no-sync"],
                          cwd=private, capture_output=True, text=True, check=False, **owner)
    if init.returncode != 0:
        if owner:
            (root / "data").unlink()
        shutil.rmtree(private, ignore_errors=True)
        raise AssertionError(f"initdb failed ({init.returncode}): {init.stdout}{init.stderr}")
    pg = PgCluster(bin=bin, data=data, sockets=private, port=free_port(), log=log_path)
    log = log_path.open("wb")
    # A session of its own: a Ctrl-C at the terminal reaches pytest, whose teardown then stops the server.
    proc = subprocess.Popen([str(bin / "postgres"), "-D", str(data), "-k", str(private), "-p", str(pg.port),
                             "-c", "listen_addresses=", "-c", "max_connections=200",
                             *(() if durable else ("-c", "fsync=off", "-c", "synchronous_commit=off",
                                                   "-c", "full_page_writes=off"))],
                            cwd=private, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, **owner)

    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"postgres exited ({proc.returncode}) before answering: {log_path.read_text()}")
        try:
            with psycopg.connect(pg.url("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    try:
        wait_until(answers, timeout=30, what=lambda: f"postgres to answer on {private}: {log_path.read_text()}")
        yield pg
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # fast shutdown: ends the sessions, no waiting for clients
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        if owner:
            (root / "data").unlink()
            data.rename(root / "data")
        shutil.rmtree(private, ignore_errors=True)
