#!/usr/bin/env python3
"""Benchmark: time to the first sandbox on a machine with no tsk images, pulling every layer from a
registry (CI prewarmed it) against building every layer from scratch, alternated in the same run.

Each round makes a chain no one else has: a throwaway base image (`tsk-test-base:<nonce>`, FROM
debian:trixie plus a file holding the nonce, so BuildKit has no cached step for it either), so every
layer key above it is new and the cold build is really cold (apt downloads from the mirror). Then:
  - scratch: `tsk run --agent exec -p true` builds base, stack (default), agent (exec) and proxy;
  - tsk layers push to a local registry (Debian's docker-registry on 127.0.0.1, started here);
  - "fresh machine": the chain's images are removed, and so are the BuildKit cache records the cold build
    made (found by diffing `docker buildx du` before and after it; records that existed before, such as
    the shared apt cache mount, stay; a build someone else finishes in that same window may lose its new
    cache records too, never an image), so the pull really downloads and unpacks the layers;
  - pull: the same `tsk run`, which now pulls every layer by key and builds nothing.
Reports, per mode, the median wall time of the whole `tsk run`, the median of its image phase, the bytes
pulled, and the ratio scratch / pull. Every image, registry and record it made is removed at the end.

Usage: .venv/bin/python bench/prewarm.py [--rounds N] [--json] [--keep-build-cache]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from registry_server import registry  # noqa: E402 (the tests' registry helper, one implementation)

TSK = [sys.executable, "-m", "tsk"]
UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}


def sh(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None) -> str:
    return subprocess.run(args, cwd=cwd, env=env, input=input, check=True, capture_output=True, text=True).stdout


def cache_ids() -> set[str]:
    out = sh("docker", "buildx", "du", "--verbose")
    return set(re.findall(r"^ID:\s+(\S+)", out, flags=re.MULTILINE))


def prune_records(made: set[str]) -> None:
    """Remove exactly these BuildKit cache records. A parent goes only after its children, so prune in
    passes until none of them is left (or a pass frees nothing: a record in use stays)."""
    left = set(made)
    while left:
        for record in sorted(left):  # one id per call: several --filter id= are ANDed
            subprocess.run(["docker", "buildx", "prune", "-f", "--filter", f"id={record}"], capture_output=True,
                           check=False)
        remaining = left & cache_ids()
        if remaining == left:
            break
        left = remaining


def tsk_run(repo: Path, env: dict[str, str]) -> dict[str, float]:
    t0 = time.perf_counter()
    res = subprocess.run([*TSK, "run", "--agent", "exec", "--no-network-isolation", "-p", "true"], cwd=repo,
                         env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"tsk run failed:\n{res.stderr}")
    image = re.search(r"image ([0-9.]+)s", res.stderr)
    pulled = re.findall(r"^pulled \S+ in [0-9.]+s, ([0-9.]+) (\w+)$", res.stderr, flags=re.MULTILINE)
    return {
        "wall": wall, "image": float(image.group(1)) if image else float("nan"),
        "built": res.stderr.count("\nbuilt ") + res.stderr.startswith("built "),
        "pulled": len(pulled), "pulled_bytes": sum(float(n) * UNITS[u] for n, u in pulled),
    }


def planned(repo: Path, env: dict[str, str]) -> list[dict[str, str]]:
    return json.loads(sh(*TSK, "layers", "build", "--dry-run", "--json", cwd=repo, env=env))


def forget(layers: list[dict[str, str]]) -> None:
    for p in reversed(layers):
        subprocess.run(["docker", "rmi", p["image"]], capture_output=True, check=False)


def one_round(work: Path, host: str, env: dict[str, str], prune_cache: bool) -> dict[str, dict[str, float]]:
    nonce = uuid.uuid4().hex[:12]
    base = f"tsk-test-base:{nonce}"
    # A file, not only a label: BuildKit keys a FROM by its layers, so only new content makes the build cold.
    sh("docker", "build", "-q", "-t", base, "-",
       input=f"FROM debian:trixie\nLABEL dev.tsk.test={nonce}\nRUN echo {nonce} > /etc/tsk-bench-nonce\n")
    repo = work / f"repo-{nonce}"
    (repo / ".tsk").mkdir(parents=True)
    (repo / "README.md").write_text("prewarm bench\n")
    (repo / ".tsk" / "tsk.toml").write_text(
        f'stack = "default"\nagent = "exec"\n[layers]\nbase_image = "{base}"\nregistry = "{host}/tsk/layers"\n')
    sh("git", "init", "-q", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "-c", "user.name=b", "-c", "user.email=b@e", "commit", "-qm", "init", cwd=repo)
    sh(*TSK, "trust", cwd=repo, env=env)  # its [layers] keys apply only to a trusted project file
    layers = planned(repo, env)
    made: set[str] = set()
    try:
        before = cache_ids() if prune_cache else set()
        scratch = tsk_run(repo, env)
        made = (cache_ids() - before) if prune_cache else set()
        sh(*TSK, "layers", "push", cwd=repo, env=env)
        forget(layers)
        prune_records(made)
        pull = tsk_run(repo, env)
        return {"scratch": scratch, "pull": pull}
    finally:
        forget(layers)
        subprocess.run(["docker", "rmi", base], capture_output=True, check=False)
        prune_records(made & cache_ids())  # what the pull left, and the record of the base image's source


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep-build-cache", action="store_true",
                    help="Leave the cold build's BuildKit records (the pull then finds the layers' data here).")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tsk-bench-prewarm-"))
    env = dict(os.environ)
    for var, sub in (("TSK_CONFIG_HOME", "config"), ("TSK_DATA_HOME", "data"), ("TSK_CACHE_HOME", "cache"),
                     ("TSK_RUNTIME_DIR", "run")):
        env[var] = str(work / sub)
    env.pop("TSK_REGISTRY", None)
    rounds: list[dict[str, dict[str, float]]] = []
    try:
        with registry(work / "registry") as host:
            for i in range(args.rounds):
                rounds.append(one_round(work, host, env, prune_cache=not args.keep_build_cache))
                if not args.json:
                    r = rounds[-1]
                    print(f"round {i + 1}: scratch {r['scratch']['wall']:.1f}s, pull {r['pull']['wall']:.1f}s "
                          f"({r['pull']['pulled']} layers, {r['pull']['pulled_bytes'] / 1e6:.0f} MB pulled)",
                          file=sys.stderr)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(work)

    def med(mode: str, field: str) -> float:
        return round(statistics.median(r[mode][field] for r in rounds), 3)

    result = {
        "rounds": len(rounds),
        "scratch": {"wall_s": med("scratch", "wall"), "image_phase_s": med("scratch", "image"),
                    "layers_built": med("scratch", "built")},
        "pull": {"wall_s": med("pull", "wall"), "image_phase_s": med("pull", "image"),
                 "layers_pulled": med("pull", "pulled"), "layers_built": med("pull", "built"),
                 "pulled_bytes": med("pull", "pulled_bytes")},
        "build_cache_pruned": not args.keep_build_cache,
        "samples": rounds,
    }
    result["ratio_scratch_over_pull"] = round(result["scratch"]["wall_s"] / result["pull"]["wall_s"], 2)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'':24}{'median wall':>14}{'image phase':>14}")
    for mode in ("scratch", "pull"):
        print(f"{mode:24}{result[mode]['wall_s']:>13.2f}s{result[mode]['image_phase_s']:>13.2f}s")
    print(f"pulled {result['pull']['layers_pulled']:.0f} layers, {result['pull']['pulled_bytes'] / 1e6:.0f} MB; "
          f"built {result['pull']['layers_built']:.0f}")
    print(f"ratio scratch / pull: {result['ratio_scratch_over_pull']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
