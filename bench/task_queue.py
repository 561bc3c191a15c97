#!/usr/bin/env python3
"""Benchmark: the queue's server and `tsk list`.

1. 50 `exec` tasks (`-p true`) through `tsk server start -q -w N` for N = 1, 2, 4: wall time, throughput,
   and the scheduler's own overhead: for each claim, the time the task waited while a worker was free
   (claim time minus the later of: the task being queued, a worker slot coming free), summed and divided
   by workers * wall time. Slot-free times come from the transitions table (the first claim, then
   each task's end), claim times from the QUEUED → RUNNING transitions. Target: under 5%.
2. `tsk list` over 10,000 tasks (inserted directly into a scratch database) as a whole process, and
   `tsk list --json`: median of several runs. Target: under 300 ms.

Usage: .venv/bin/python bench/task_queue.py [--tasks 50] [--workers 1,2,4] [--rounds 7] [--json]
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TSK = [sys.executable, "-m", "tsk"]


def sh(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    return subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def scratch_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var, sub in (("TSK_CONFIG_HOME", "config"), ("TSK_DATA_HOME", "data"), ("TSK_CACHE_HOME", "cache"),
                     ("TSK_RUNTIME_DIR", "run")):
        env[var] = str(root / sub)
    (root / "launcher").mkdir(mode=0o700)
    env["TSK_LAUNCHER_DIR"] = str(root / "launcher")  # a launcher of its own, stopped by `remove`
    return env


def remove(root: Path) -> None:
    from tsk.launcher import stop_launchers

    stop_launchers(str(root / "launcher"))
    subprocess.run(["rm", "-rf", str(root)], check=False)


def small_repo(root: Path) -> Path:
    repo = root / "repo"
    (repo / ".tsk").mkdir(parents=True)
    (repo / "README.md").write_text("bench\n")
    (repo / ".tsk" / "tsk.toml").write_text('stack = "default"\nagent = "exec"\n')
    sh("git", "init", "-q", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "-c", "user.name=b", "-c", "user.email=b@e", "commit", "-qm", "init", cwd=repo)
    return repo


def add_tasks(repo: Path, env: dict[str, str], n: int) -> None:
    """Queue n tasks in-process (the cost of 50 `tsk add` processes is not what is measured here)."""
    code = ("import sys\nfrom tsk.context import Context\nfrom tsk.queue.control import add\n"
            "from tsk.sandbox.runner import RunRequest\nctx = Context()\n"
            f"for i in range({n}):\n    add(ctx, RunRequest(instructions='true', agent='exec', name=f'b{{i}}'))\n")
    subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, check=True)


def overhead(db: Path, workers: int) -> dict[str, float]:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT task, from_status, to_status, at FROM transitions ORDER BY seq").fetchall()
    conn.close()
    queued = {t: at for t, f, to, at in rows if f is None}
    claims = [(at, t) for t, f, to, at in rows if f == "QUEUED" and to == "RUNNING"]
    served = {t for _, t in claims}  # not the warm-up `tsk run`, which no server claimed
    ends = sorted(at for t, f, to, at in rows
                  if t in served and f == "RUNNING" and to in ("COMPLETE", "FAILED", "CANCELLED"))
    first_claim = min(at for at, _ in claims)
    # replay: a task's end frees a slot, a claim takes the slot that has been free the longest
    events = sorted([(e, 0, "") for e in ends] + [(at, 1, t) for at, t in claims])
    free = [first_claim] * workers  # every slot is free when the server makes its first claim
    heapq.heapify(free)
    waits = []
    for at, kind, t in events:
        if kind == 0:
            heapq.heappush(free, at)
            continue
        slot = heapq.heappop(free) if free else at
        waits.append(max(0.0, at - max(slot, queued[t])))
    wall = max(ends) - first_claim
    return {"wall_s": round(wall, 3), "overhead_s": round(sum(waits), 4),
            "overhead_per_task_ms": round(statistics.mean(waits) * 1000, 2),
            "overhead_share": round(sum(waits) / (workers * wall), 4)}


def run_server(n_tasks: int, workers: int) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix=f"tsk-bench-queue-w{workers}-"))
    env = scratch_env(root)
    repo = small_repo(root)
    subprocess.run([*TSK, "run", "-a", "exec", "-p", "true"], cwd=repo, env=env, check=True,
                   capture_output=True)  # warm the layer store and the proxy for this config
    add_tasks(repo, env, n_tasks)
    t0 = time.perf_counter()
    subprocess.run([*TSK, "server", "start", "--plain", "-q", "-w", str(workers)], cwd=repo, env=env, check=True,
                   capture_output=True)
    total = time.perf_counter() - t0
    tasks = json.loads(sh(*TSK, "list", "--json", cwd=repo, env=env))
    done = [t for t in tasks if t["name"].startswith("b")]
    result: dict[str, object] = {
        "workers": workers, "tasks": len(done), "complete": sum(t["status"] == "COMPLETE" for t in done),
        "server_process_s": round(total, 3), "throughput_per_s": round(len(done) / total, 3),
        "task_median_s": round(statistics.median(t["duration"] for t in done if t["duration"]), 3)}
    result.update(overhead(root / "data" / "tsk" / "tasks.db", workers))
    remove(root)
    return result


def list_bench(rounds: int, n: int = 10_000) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="tsk-bench-list-"))
    env = scratch_env(root)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tsk.queue.db import SqliteStore, _columns
    from tsk.tasks.model import Task

    store = SqliteStore(root / "data" / "tsk")
    now = time.time()
    statuses = ("COMPLETE", "FAILED", "CANCELLED", "QUEUED", "RUNNING", "WAITING")
    with store._write() as c:
        for i in range(n):
            t = Task(id=f"t{i:06d}", name=f"task-number-{i}", type="generic", agent="exec", stack="default",
                     project="p", repo="/r", branch=f"tsk/generic/task-number-{i}/t{i:06d}",
                     status=statuses[i % len(statuses)], created=now - i, started=now - i, finished=now - i + 3,  # type: ignore[arg-type]
                     source_commit="0" * 40, result_branch=f"tsk/generic/task-number-{i}/t{i:06d}",
                     config={"agent": "exec", "stack": "default", "env": [], "sources": {"agent": "cli"}},
                     timings={"snapshot": 0.01, "agent": 1.0})
            row = _columns(t)
            row["instructions"] = "do the thing\n" * 5
            c.execute(f"INSERT INTO tasks ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
            if i % 10 == 1:
                c.execute("INSERT INTO parents (child, parent) VALUES (?, ?)", (t.id, f"t{i - 1:06d}"))
    store.close()
    out = {}
    for label, args in (("list_ms", ["list"]), ("list_json_ms", ["list", "--json"])):
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            res = subprocess.run([*TSK, *args], env=env, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
            assert len(res.stdout) > n * 20
        out[label] = round(statistics.median(times) * 1000, 1)
    t0 = time.perf_counter()
    subprocess.run([*TSK, "--version"], env=env, capture_output=True, check=True)
    out["tsk_version_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    remove(root)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=50)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    servers = [run_server(args.tasks, int(w)) for w in args.workers.split(",") if w]
    listing = list_bench(args.rounds)
    result = {"server": servers, "list_10k": listing,
              "meets_targets": all(s["overhead_share"] < 0.05 for s in servers) and listing["list_ms"] < 300}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'workers':>7} {'tasks':>5} {'ok':>3} {'wall s':>7} {'tasks/s':>8} {'task med s':>10} "
              f"{'overhead/task ms':>16} {'overhead share':>14}")
        for s in servers:
            print(f"{s['workers']:>7} {s['tasks']:>5} {s['complete']:>3} {s['server_process_s']:>7} "
                  f"{s['throughput_per_s']:>8} {s['task_median_s']:>10} {s['overhead_per_task_ms']:>16} "
                  f"{s['overhead_share']:>14}")
        print(f"tsk list, 10,000 tasks, whole process: median {listing['list_ms']} ms "
              f"(--json {listing['list_json_ms']} ms; tsk --version {listing['tsk_version_ms']} ms)")
        print(f"meets targets (overhead < 5%, list < 300 ms): {result['meets_targets']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
