#!/usr/bin/env python3
"""Benchmark: the layer store's warm hit path against a fully cached BuildKit build.

Measures, alternating in one run on the same machine:
  - hit_in_process: tsk's hit path in-process (resolve config, compute every key, one lookup of the
    base image and one of the leaf, touch the index), for the default target and the proxy;
  - hit_whole_process: `tsk layers build` as a whole process on a warm store;
  - buildx_cached: `docker buildx build` of the leaf layer's own Dockerfile and context, fully cached;
  - help: `tsk --help` as a whole process.
Prints a table and, with --json, one JSON object. Targets (issue 2): hit_in_process < 10 ms and at
least 30x faster than buildx_cached; help < 150 ms.

Usage: .venv/bin/python bench/layers.py [--rounds N] [--json]
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


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tsk-bench-layers-"))
    env = dict(os.environ)
    for var, sub in (("TSK_CONFIG_HOME", "config"), ("TSK_DATA_HOME", "data"), ("TSK_CACHE_HOME", "cache"),
                     ("TSK_RUNTIME_DIR", "run")):
        env[var] = str(work / sub)
    (work / "launcher").mkdir(mode=0o700)
    env["TSK_LAUNCHER_DIR"] = str(work / "launcher")  # `layers build` and `--help` fork from a launcher of its own
    os.environ.update(env)
    repo = work / "repo"
    (repo / ".tsk").mkdir(parents=True)
    (repo / "README.md").write_text("bench\n")
    (repo / ".tsk" / "tsk.toml").write_text('stack = "default"\nagent = "exec"\n')
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)

    from tsk.context import Context
    from tsk.layers import service

    ctx = Context(cwd=repo)
    req = service.TargetRequest()
    service.build(ctx, req)  # make the store warm (builds on a cold machine)
    tsk = [sys.executable, "-m", "tsk"]

    store = service.make_store(ctx, service.resolve_config(ctx, req))

    def hit_in_process() -> None:
        for tgt in service.targets(ctx, req):
            results = store.ensure(tgt.chain)
            assert all(r.status == "hit" for r in results)

    leaf = service.targets(ctx, req)[0].chain[-1]
    bctx = store._context(leaf)
    buildx = ["docker", "buildx", "build", "--progress=quiet", "-t", "tsk-bench/cached:latest", str(bctx)]
    subprocess.run(buildx, check=True, capture_output=True)  # prime BuildKit's cache

    samples: dict[str, list[float]] = {"hit_in_process": [], "hit_whole_process": [], "buildx_cached": [],
                                       "help": []}
    hit_in_process()
    for _ in range(args.rounds):
        samples["hit_in_process"].append(timed(hit_in_process))
        samples["buildx_cached"].append(timed(lambda: subprocess.run(buildx, check=True, capture_output=True)))
        samples["hit_whole_process"].append(timed(lambda: subprocess.run(
            [*tsk, "layers", "build"], cwd=repo, check=True, capture_output=True, env=env)))
        samples["help"].append(timed(lambda: subprocess.run([*tsk, "--help"], check=True, capture_output=True)))
    assert store._builder is None, "the hit path created a builder"

    med = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    result = {
        "rounds": args.rounds,
        "median_ms": {k: round(v, 3) for k, v in med.items()},
        "ratio_buildx_cached_over_hit_in_process": round(med["buildx_cached"] / med["hit_in_process"], 1),
        "ratio_buildx_cached_over_hit_whole_process": round(med["buildx_cached"] / med["hit_whole_process"], 2),
        "targets": {"hit_in_process_ms": 10, "ratio_min": 30, "help_ms": 150},
    }
    result["meets_targets"] = (med["hit_in_process"] < 10 and result["ratio_buildx_cached_over_hit_in_process"] >= 30
                               and med["help"] < 150)
    subprocess.run(["docker", "rmi", "tsk-bench/cached:latest"], capture_output=True, check=False)
    shutil.rmtree(bctx, ignore_errors=True)
    ctx.index.close()
    from tsk.launcher import stop_launchers

    stop_launchers(str(work / "launcher"))
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'measure':<22}{'median':>12}")
        for k, v in result["median_ms"].items():
            print(f"{k:<22}{v:>10.2f}ms")
        print(f"cached buildx / in-process hit: {result['ratio_buildx_cached_over_hit_in_process']}x "
              f"(target >= 30x); meets targets: {result['meets_targets']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
