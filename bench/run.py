#!/usr/bin/env python3
"""Benchmark: what a warm `tsk run` costs over starting a container, and what a snapshot costs.

1. A warm `tsk run --agent exec -p true` on a small repo, as a whole process, alternated in the same
   run with `docker run --rm <the same image> true`: medians, the ratio, and the median of each phase.
   `tsk run` is timed twice: as users get it (forked by the warm launcher, tsk/launcher.py) and
   with TSK_LAUNCHER=0 (a fresh interpreter importing everything), so the launcher's share shows,
   and with TSK_TEST_NO_WATCHER=1 (no time and disk checks, no watcher thread), so the watcher's does.
   Target (issue 15): the watcher costs at most 5 ms of median.
2. Snapshot time for synthetic repos of 1k, 10k and 50k tracked files (with a long history and a large
   ignored directory): the first and the second task from the same commit, against `cp -a` of the
   directory. Targets (issue 3): run ratio <= 1.5; second snapshot <= 10% of cp -a at every size.
3. The watcher's share per agent event, in this process: Claude's recorded stream (tests/data) parsed
   and logged with and without the loop and budget checks, per event.

Usage: .venv/bin/python bench/run.py [--rounds N] [--sizes 1000,10000,50000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sh(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    return subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def git_commit_all(repo: Path, msg: str) -> None:
    sh("git", "add", "-A", cwd=repo)
    sh("git", "-c", "user.name=b", "-c", "user.email=b@e", "commit", "-qm", msg, cwd=repo)


def make_repo(root: Path, files: int, history: int = 200, ignored: int = 5000) -> Path:
    repo = root / f"repo-{files}"
    repo.mkdir(parents=True)
    sh("git", "init", "-q", cwd=repo)
    (repo / ".gitignore").write_text("node_modules/\n")
    for i in range(files):
        d = repo / f"src/d{i % 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.txt").write_text(f"file {i}\n" * 20)
    git_commit_all(repo, "initial")
    for n in range(history):  # a long history: many commits touching a few files each
        (repo / f"src/d{n % 100:02d}/f{n % files}.txt").write_text(f"revision {n}\n" * 50)
        git_commit_all(repo, f"change {n}")
    nm = repo / "node_modules"
    for i in range(ignored):  # a large ignored directory that must cost nothing
        d = nm / f"pkg{i % 200}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"m{i}.js").write_text("x" * 4096)
    (repo / "src/d00/f0.txt").write_text("an uncommitted change\n")
    return repo


def time_snapshots(repo: Path, data: Path) -> dict[str, float]:
    from tsk.snapshot.take import take_snapshot

    out = {}
    for label in ("first", "second"):
        tdir = data / "tasks" / f"{repo.name}-{label}"
        t0 = time.perf_counter()
        take_snapshot(repo, tdir, data_dir=data, branch=f"tsk/bench/{label}")
        out[f"snapshot_{label}_s"] = round(time.perf_counter() - t0, 4)
    dest = data / f"cp-{repo.name}"
    t0 = time.perf_counter()
    sh("cp", "-a", str(repo), str(dest))
    out["cp_a_s"] = round(time.perf_counter() - t0, 4)
    shutil.rmtree(dest)
    out["second_over_cp"] = round(out["snapshot_second_s"] / out["cp_a_s"], 4)
    return out


def time_event_checks(rounds: int) -> dict[str, float]:
    """Microseconds per event to parse Claude's recorded stream, without and with the checks that
    each event passes through (sign of life, loop and budget: tsk/sandbox/attempt.py)."""
    from tsk.agents.claude import ClaudeAgent
    from tsk.sandbox.attempt import _limit
    from tsk.sandbox.supervise import Progress

    sample = Path(__file__).resolve().parent.parent / "tests" / "data" / "agent-samples" / "claude-success.jsonl"
    stream = sample.read_text().splitlines() * 200
    agent = ClaudeAgent()

    def plain() -> int:
        return sum(1 for _ in agent.parse(iter(stream)))

    def checked() -> int:
        progress = Progress(loop_limit=5, budget_usd=100.0, spent_before=0.0)
        n = 0
        for event in agent.parse(iter(stream)):
            progress.sign_of_life()
            _limit(progress, event)
            n += 1
        return n

    events = plain()
    base, watched = [], []
    for _ in range(rounds):  # alternated, so both see the same machine
        t0 = time.perf_counter()
        plain()
        base.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        checked()
        watched.append(time.perf_counter() - t0)
    from tsk.sandbox.supervise import Watcher, time_check

    def thread() -> None:  # what the watcher adds to a run besides: its thread, started and stopped
        progress = Progress(loop_limit=5, budget_usd=None, spent_before=0.0)
        with Watcher(None, "bench", [time_check(progress, timeout=7200, idle_timeout=1200)]):  # type: ignore[arg-type]
            pass

    spans = []
    for _ in range(200):
        t0 = time.perf_counter()
        thread()
        spans.append(time.perf_counter() - t0)
    per = 1e6 / events
    return {"events": events, "watcher_thread_us": round(statistics.median(spans) * 1e6, 1),
            "parse_us_per_event": round(statistics.median(base) * per, 2),
            "parse_and_checks_us_per_event": round(statistics.median(watched) * per, 2),
            "checks_us_per_event": round((statistics.median(watched) - statistics.median(base)) * per, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tsk-bench-run-"))
    env = dict(os.environ)
    for var, sub in (("TSK_CONFIG_HOME", "config"), ("TSK_DATA_HOME", "data"), ("TSK_CACHE_HOME", "cache"),
                     ("TSK_RUNTIME_DIR", "run")):
        env[var] = str(work / sub)
    os.environ.update(env)
    small = work / "small"
    (small / ".tsk").mkdir(parents=True)
    (small / "README.md").write_text("bench\n")
    (small / ".tsk" / "tsk.toml").write_text('stack = "default"\nagent = "exec"\n')
    sh("git", "init", "-q", cwd=small)
    git_commit_all(small, "init")
    tsk = [sys.executable, "-m", "tsk", "run", "--agent", "exec", "-p", "true", "--json"]
    launcher_dir = work / "launcher"
    launcher_dir.mkdir(mode=0o700)
    env["TSK_LAUNCHER_DIR"] = str(launcher_dir)  # a launcher of its own (none in the user's dir), stopped at the end
    first = json.loads(sh(*tsk, cwd=small, env=env))  # warm the store and the proxy; starts the launcher
    image = first["image"]
    for _ in range(100):
        if list(launcher_dir.glob("*.sock")):
            break
        time.sleep(0.1)
    direct_env = {**env, "TSK_LAUNCHER": "0"}
    unwatched_env = {**env, "TSK_TEST_NO_WATCHER": "1"}
    run_s: list[float] = []
    direct_s: list[float] = []
    unwatched_s: list[float] = []
    docker_s: list[float] = []
    phases: list[dict[str, float]] = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        task = json.loads(sh(*tsk, cwd=small, env=env))
        run_s.append(time.perf_counter() - t0)
        phases.append(task["timings"])
        t0 = time.perf_counter()
        sh(*tsk, cwd=small, env=direct_env)
        direct_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sh("docker", "run", "--rm", image, "true")
        docker_s.append(time.perf_counter() - t0)
    watched_s: list[float] = []
    for n in range(args.rounds * 2):  # its own pairs, which one first alternating: a few ms must show
        for watch in ((True, False) if n % 2 else (False, True)):
            t0 = time.perf_counter()
            sh(*tsk, cwd=small, env=env if watch else unwatched_env)
            (watched_s if watch else unwatched_s).append(time.perf_counter() - t0)
    from tsk.launcher import stop_launchers

    stop_launchers(str(launcher_dir))
    med_phase = {k: round(statistics.median(p[k] for p in phases if k in p) * 1000, 1)
                 for k in phases[0]}
    result: dict[str, object] = {
        "rounds": args.rounds,
        "tsk_run_median_ms": round(statistics.median(run_s) * 1000, 1),
        "tsk_run_no_launcher_median_ms": round(statistics.median(direct_s) * 1000, 1),
        "tsk_run_no_watcher_median_ms": round(statistics.median(unwatched_s) * 1000, 1),
        "docker_run_median_ms": round(statistics.median(docker_s) * 1000, 1),
        "phase_median_ms": med_phase,
    }
    result["tsk_run_watched_median_ms"] = round(statistics.median(watched_s) * 1000, 1)
    result["watcher_ms"] = round((statistics.median(watched_s) - statistics.median(unwatched_s)) * 1000, 1)
    result["watcher_ratio"] = round(statistics.median(watched_s) / statistics.median(unwatched_s), 3)
    result["event_checks"] = time_event_checks(max(args.rounds, 5))
    result["ratio"] = round(statistics.median(run_s) / statistics.median(docker_s), 3)
    result["ratio_no_launcher"] = round(statistics.median(direct_s) / statistics.median(docker_s), 3)

    snaps = {}
    data = work / "snapdata"
    for size in (int(s) for s in args.sizes.split(",") if s):
        repo = make_repo(work / "repos", size)
        snaps[str(size)] = time_snapshots(repo, data)
        shutil.rmtree(repo, ignore_errors=True)
    result["snapshot"] = snaps
    result["meets_targets"] = (result["ratio"] <= 1.5 and result["watcher_ms"] <= 5  # type: ignore[operator]
                               and all(s["second_over_cp"] <= 0.10 for s in snaps.values()))
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"tsk run (warm, whole process) median {result['tsk_run_median_ms']} ms; "
              f"docker run --rm median {result['docker_run_median_ms']} ms; ratio {result['ratio']} (target <= 1.5)")
        print(f"without the launcher (TSK_LAUNCHER=0): median {result['tsk_run_no_launcher_median_ms']} ms, "
              f"ratio {result['ratio_no_launcher']}")
        ev = result["event_checks"]
        print(f"paired: with the watcher median {result['tsk_run_watched_median_ms']} ms, without "
              f"(TSK_TEST_NO_WATCHER=1) {result['tsk_run_no_watcher_median_ms']} ms; "
              f"the watcher's share {result['watcher_ms']} ms, ratio {result['watcher_ratio']} (target <= 5 ms)")
        print(f"per agent event ({ev['events']} events of Claude's stream): parse {ev['parse_us_per_event']} us, "  # type: ignore[index]
              f"with the checks {ev['parse_and_checks_us_per_event']} us; "  # type: ignore[index]
              f"the watcher's thread started and stopped {ev['watcher_thread_us']} us")  # type: ignore[index]
        print("phases (median ms): " + ", ".join(f"{k} {v}" for k, v in med_phase.items()))
        print(f"{'files':>8} {'first s':>9} {'second s':>9} {'cp -a s':>9} {'second/cp':>10}")
        for size, s in snaps.items():
            print(f"{size:>8} {s['snapshot_first_s']:>9} {s['snapshot_second_s']:>9} {s['cp_a_s']:>9} "
                  f"{s['second_over_cp']:>10}")
        print(f"meets targets: {result['meets_targets']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
