#!/usr/bin/env python3
"""Benchmark: a fleet's task store and servers.

1. The store's cost per task: the store calls one task makes from `tsk add` to its end (add, claim,
   the runner's saves, two attempt records, lease renewals, the end transition, the reads between),
   timed per task over N tasks on SQLite and on PostgreSQL (a private cluster on a unix socket, with
   PostgreSQL's default durability: fsync and synchronous commit on), in the same process.
   PostgreSQL's overhead per task = its median minus SQLite's. Target: at most 10 ms. A database on
   another host adds a network round trip per call.
2. Claim latency: from `add` committing to an idle server's claim, when the server sleeps on the
   store's notices (PostgreSQL LISTEN) — the wake-up path a fleet's servers use; without notices a
   server finds a new task at its next poll (0.15 s by default).
3. With --engine: exec tasks (`-p true`) through one `tsk server` and through two sharing one
   PostgreSQL database (separate data dirs and host names, one bare git remote): wall time and
   throughput.

Usage: .venv/bin/python bench/fleet.py [--tasks 200] [--engine] [--engine-tasks 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pg_server import cluster  # noqa: E402  (the tests' private PostgreSQL)

from tsk.tasks.model import Attempt, Task  # noqa: E402
from tsk.tasks.store import TaskStore  # noqa: E402

TSK = [sys.executable, "-m", "tsk"]


def _task(n: int) -> Task:
    tid = f"t{n:05d}{os.getpid() % 1000:03d}"
    return Task(id=tid, name=f"bench-{n}", type="generic", agent="exec", stack="default", project="p",
                repo="/r", branch=f"tsk/generic/bench-{n}/{tid}", created=time.time(), origin="alpha")


def one_task(store: TaskStore, n: int) -> float:
    """The store calls of one task's life, as `tsk add`, a server and its worker make them."""
    t0 = time.perf_counter()
    task = _task(n)
    store.add(task, instructions="do it", reason="tsk add")
    got = store.claim("1:1@alpha", reason="claimed", host="alpha", lease_until=time.time() + 30)
    assert got is not None and got.id == task.id
    got = store.get(task.id)
    assert got is not None
    attempts = store.attempts(task.id)
    assert store.cancel_requested(task.id) is None
    got.started = time.time()
    store.save(got)
    store.add_attempt(Attempt(task=task.id, n=len(attempts) + 1, started=got.started))
    store.renew("1:1@alpha", time.time() + 30)
    assert store.cancel_requested(task.id) is None
    store.add_attempt(Attempt(task=task.id, n=1, started=got.started, finished=time.time()))
    got.finished, got.result_branch = time.time(), got.branch
    store.transition(task.id, "COMPLETE", "done", task=got, allowed=("RUNNING",))
    store.get(task.id)
    return time.perf_counter() - t0


def per_task(open_store: Callable[[], TaskStore], tasks: int) -> list[float]:
    store = open_store()
    try:
        one_task(store, 99_999)  # warm: statements prepared, caches filled
        return [one_task(store, n) for n in range(tasks)]
    finally:
        store.close()


def claim_latency(url: str, rounds: int) -> dict[str, float]:
    """add → claimed by a thread that sleeps on the store's notices (as an idle fleet server does)."""
    from tsk.queue.pg import PgStore

    adder, claimer = PgStore(url), PgStore(url)
    feed = claimer.notices()
    claimed: dict[str, float] = {}
    stop = threading.Event()
    ready = threading.Event()

    def server() -> None:
        ready.set()
        while not stop.is_set():
            feed.wait(1.0)
            while (t := claimer.claim("2:2@beta", host="beta", lease_until=time.time() + 30)) is not None:
                claimed[t.id] = time.perf_counter()

    th = threading.Thread(target=server, daemon=True)
    th.start()
    ready.wait()
    delays = []
    for n in range(rounds):
        task = _task(50_000 + n)
        t0 = time.perf_counter()
        adder.add(task, instructions="", reason="bench")
        deadline = time.monotonic() + 5
        while task.id not in claimed and time.monotonic() < deadline:
            time.sleep(0.0002)
        delays.append(claimed[task.id] - t0)
        time.sleep(0.01)
    stop.set()
    th.join(3)
    feed.close()
    adder.close()
    claimer.close()
    return {"median_ms": round(statistics.median(delays) * 1000, 2),
            "p90_ms": round(sorted(delays)[int(len(delays) * 0.9)] * 1000, 2)}


def sh(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 1800) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def throughput(pg, root: Path, tasks: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """`tsk add` N exec tasks, then time servers (-w 2 each, -q) until all have ended: one server on
    SQLite (one machine as today), one on PostgreSQL with a git remote, two sharing them."""
    base = dict(os.environ)
    for var, sub in (("TSK_CONFIG_HOME", "config"), ("TSK_CACHE_HOME", "cache")):
        base[var] = str(root / sub)
    repo = root / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("bench\n")
    (repo / ".tsk").mkdir()
    (repo / ".tsk" / "tsk.toml").write_text('stack = "default"\n')
    ident = ["-c", "user.name=b", "-c", "user.email=b@example.com"]
    sh("git", "-C", str(repo), "init", "-q", "-b", "trunk")
    sh("git", "-C", str(repo), "add", "-A")
    sh("git", "-C", str(repo), *ident, "commit", "-qm", "init")
    sh(*TSK, "layers", "build", "-a", "exec", cwd=repo, env=base)
    rows: dict[str, object] = {}
    walls: dict[str, float] = {}
    for label, hosts, fleet in (("one server, SQLite", ["alpha"], False),
                                ("one server, PostgreSQL + remote", ["alpha"], True),
                                ("two servers, PostgreSQL + remote", ["alpha", "beta"], True)):
        run = root / label.replace(" ", "_").replace(",", "").replace("+", "")
        remote = run / "remote.git"
        run.mkdir()
        sh("git", "init", "-q", "--bare", str(remote))
        config = root / "config" / "tsk" / "tsk.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f'[server]\nremote = "{remote}"\n' if fleet else "")
        url = pg.create_database() if fleet else ""

        def env(host: str, run: Path = run, url: str = url) -> dict[str, str]:
            e = {**base, "TSK_HOST": host, "TSK_DATA_HOME": str(run / host / "data"),
                 "TSK_RUNTIME_DIR": str(run / host / "run")}
            if url:
                e["TSK_DATABASE_URL"] = url
            return e

        adder = env("alpha") if not fleet else env("desk")
        for _ in range(tasks):
            sh(*TSK, "add", "-a", "exec", "-p", "true", cwd=repo, env=adder)
        t0 = time.perf_counter()
        procs = [subprocess.Popen([*TSK, "server", "start", "--plain", "-q", "-w", "2"], cwd=run, env=env(h),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for h in hosts]
        for proc in procs:
            _, err = proc.communicate(timeout=1800)
            if proc.returncode != 0:
                raise SystemExit(f"a server failed: {err[-2000:]}")
        wall = time.perf_counter() - t0
        listed = json.loads(sh(*TSK, "list", "--json", cwd=repo, env=adder))
        done = sum(1 for t in listed if t["status"] == "COMPLETE")
        base_wall = next(iter(walls.values()), wall)  # the first row, one server on SQLite, is the baseline
        walls[label] = wall
        rows[label] = {"tasks": tasks, "complete": done, "wall_s": round(wall, 2),
                       "tasks_per_min": round(tasks / wall * 60, 1), "throughput_vs_sqlite": round(base_wall / wall, 2),
                       "by_host": {h: sum(1 for t in listed if t.get("host") == h) for h in hosts}}
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--engine", action="store_true", help="also run exec tasks through real servers")
    ap.add_argument("--engine-tasks", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from tsk.queue.db import SqliteStore
    from tsk.queue.pg import PgStore

    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="tsk-fleet-bench-") as tmp, cluster(Path(tmp) / "pg", durable=True) as pg:
        url = pg.create_database()
        sqlite = per_task(lambda: SqliteStore(Path(tmp) / "data"), args.tasks)
        postgres = per_task(lambda: PgStore(url), args.tasks)
        sq, pq = statistics.median(sqlite), statistics.median(postgres)
        out["store_per_task"] = {
            "tasks": args.tasks, "sqlite_median_ms": round(sq * 1000, 3), "postgresql_median_ms": round(pq * 1000, 3),
            "postgresql_overhead_ms": round((pq - sq) * 1000, 3), "ratio": round(pq / sq, 2),
            "target_overhead_ms": 10.0, "met": (pq - sq) * 1000 <= 10.0}
        out["claim_latency"] = claim_latency(pg.create_database(), 50)
        if args.engine:
            out["throughput"] = throughput(pg, Path(tmp), args.engine_tasks)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for section, values in out.items():
            print(section)
            for k, v in values.items():  # type: ignore[attr-defined]
                print(f"  {k:34} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
