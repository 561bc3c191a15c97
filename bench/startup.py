#!/usr/bin/env python3
"""Benchmark: tsk's quick commands as whole processes, against starting Python at all.

Times, alternating in one run with `python -c pass` (the same interpreter) as the baseline, each of
`tsk --help`, `tsk --version`, `tsk layers build` on a full hit (every layer already built),
`tsk layers ls`, `tsk layers why` and `tsk template list`, run as users run them: `.venv/bin/tsk`,
with the launcher warm (tsk/launcher.py; the bench starts one of its own and stops it at the end).
With --in-process each is also timed with TSK_LAUNCHER=0 (a fresh interpreter importing what the
command needs), so the launcher's share shows. Prints medians and the ratio to the baseline; target:
every command at most 150 ms.

Usage: .venv/bin/python bench/startup.py [--rounds N] [--in-process] [--json]
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

TARGET_MS = 150
COMMANDS = {
    "tsk --help": ["--help"],
    "tsk --version": ["--version"],
    "tsk layers build (hit)": ["layers", "build"],
    "tsk layers ls": ["layers", "ls"],
    "tsk layers why": ["layers", "why"],
    "tsk template list": ["template", "list"],
}


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def wait_for_launcher(where: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        locks = list(where.glob("*.lock"))
        if list(where.glob("*.sock")) and locks and locks[0].read_text().strip():
            return
        time.sleep(0.05)
    raise SystemExit(f"no launcher started in {where}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--in-process", action="store_true", help="also time each command with TSK_LAUNCHER=0")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    tsk = str(Path(sys.executable).with_name("tsk"))  # the console script, as the README runs it
    work = Path(tempfile.mkdtemp(prefix="tsk-bench-startup-"))
    env = dict(os.environ)
    for var, sub in (("TSK_CONFIG_HOME", "config"), ("TSK_DATA_HOME", "data"), ("TSK_CACHE_HOME", "cache"),
                     ("TSK_RUNTIME_DIR", "run")):
        env[var] = str(work / sub)
    launcher_dir = work / "launcher"
    launcher_dir.mkdir(mode=0o700)
    env["TSK_LAUNCHER_DIR"] = str(launcher_dir)  # a launcher of its own, stopped at the end
    env.pop("TSK_LAUNCHER", None)
    env.pop("TSK_DEBUG", None)
    repo = work / "repo"
    (repo / ".tsk").mkdir(parents=True)
    (repo / "README.md").write_text("bench\n")
    (repo / ".tsk" / "tsk.toml").write_text('stack = "default"\nagent = "exec"\n')
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)

    try:
        # Make the store warm (this builds on a cold machine), then make sure it is a full hit.
        subprocess.run([tsk, "layers", "build"], cwd=repo, env=env, check=True, capture_output=True)
        report = json.loads(subprocess.run([tsk, "layers", "build", "--json"], cwd=repo, env=env, check=True,
                                           capture_output=True, text=True).stdout)
        layers = report if isinstance(report, list) else report.get("layers", [])
        assert layers and all(r["status"] == "hit" for r in layers), f"not a full hit: {report}"
        wait_for_launcher(launcher_dir)

        modes = {"launcher": env}
        if args.in_process:
            modes["in_process"] = {**env, "TSK_LAUNCHER": "0"}
        baseline = [sys.executable, "-c", "pass"]
        samples: dict[str, dict[str, list[float]]] = {m: {c: [] for c in COMMANDS} for m in modes}
        base: list[float] = []
        for argv in COMMANDS.values():  # one untimed run each: the OS's caches, the launcher's fork path
            timed([tsk, *argv], repo, env)
        for _ in range(args.rounds):
            for mode, mode_env in modes.items():
                for name, argv in COMMANDS.items():
                    base.append(timed(baseline, repo, env))
                    samples[mode][name].append(timed([tsk, *argv], repo, mode_env))
    finally:
        from tsk.launcher import stop_launchers

        stop_launchers(str(launcher_dir))
        shutil.rmtree(work, ignore_errors=True)

    base_ms = statistics.median(base) * 1000
    result: dict[str, object] = {"rounds": args.rounds, "baseline": "python -c pass",
                                 "baseline_median_ms": round(base_ms, 1), "target_ms": TARGET_MS}
    for mode in modes:
        med = {c: statistics.median(v) * 1000 for c, v in samples[mode].items()}
        result[mode] = {c: {"median_ms": round(m, 1), "ratio_to_baseline": round(m / base_ms, 2)}
                        for c, m in med.items()}
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        result["note"] = "PYTHONDONTWRITEBYTECODE is set: tsk's own modules are compiled again in every process"
    result["meets_target"] = all(statistics.median(v) * 1000 <= TARGET_MS for v in samples["launcher"].values())
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    head = f"{'command':<26}{'median':>10}{'x baseline':>12}"
    if args.in_process:
        head += f"{'in-process':>13}{'x baseline':>12}"
    print(head)
    for c in COMMANDS:
        row = result["launcher"][c]  # type: ignore[index]
        line = f"{c:<26}{row['median_ms']:>8.1f}ms{row['ratio_to_baseline']:>11.2f}x"
        if args.in_process:
            ip = result["in_process"][c]  # type: ignore[index]
            line += f"{ip['median_ms']:>11.1f}ms{ip['ratio_to_baseline']:>11.2f}x"
        print(line)
    print(f"{'python -c pass':<26}{base_ms:>8.1f}ms{1:>11.2f}x")
    print(f"{args.rounds} rounds; target <= {TARGET_MS} ms each (with the launcher): "
          f"{'met' if result['meets_target'] else 'NOT met'}")
    if "note" in result:
        print(f"note: {result['note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
