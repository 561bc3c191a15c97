"""The egress proxy: one Squid container per config fingerprint (allow-list + host_ports), shared by
every task with that config, kept running between tasks and stopped once idle."""

from __future__ import annotations

import os
import shlex
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import msgspec
import xxhash

from tsk.errors import EngineError
from tsk.resources import layers_dir
from tsk.sandbox.spec import ContainerSpec, Mount

EGRESS_NETWORK = "tsk-egress"
PROXY_ALIAS = "tsk-proxy"
PROXY_PORT = 3128
LABELS = {"dev.tsk.kind": "proxy"}


class ProxyPlan(msgspec.Struct, frozen=True, kw_only=True):
    fingerprint: str
    name: str
    image: str
    conf_path: str
    host_ports: tuple[int, ...]


def fingerprint(conf: str, host_ports: tuple[int, ...], image: str) -> str:
    payload = msgspec.json.encode({"conf": conf, "host_ports": sorted(host_ports), "image": image})
    return xxhash.xxh3_128_hexdigest(payload)[:16]


def plan_proxy(*, squid_conf: str | None, host_ports: tuple[int, ...], image: str, cache_dir: Path) -> ProxyPlan:
    conf = squid_conf if squid_conf is not None else (layers_dir() / "proxy" / "squid.conf").read_text()
    fp = fingerprint(conf, host_ports, image)
    path = cache_dir / "proxy" / fp / "squid.conf"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".squid.conf.{os.getpid()}.{threading.get_ident()}")  # server workers are threads
        tmp.write_text(conf)
        tmp.rename(path)
    return ProxyPlan(fingerprint=fp, name=f"tsk-proxy-{fp}", image=image, conf_path=str(path),
                     host_ports=tuple(sorted(host_ports)))


def container_spec(plan: ProxyPlan) -> ContainerSpec:
    forwards = "".join(
        f"socat TCP-LISTEN:{p},fork,reuseaddr TCP:host.docker.internal:{p} & " for p in plan.host_ports)
    script = f"{forwards}exec squid -N -f /etc/squid/squid.conf"
    return ContainerSpec(
        name=plan.name, image=plan.image, command=("sh", "-c", script), user="proxy", workdir="/",
        env={}, labels={**LABELS, "dev.tsk.fingerprint": plan.fingerprint},
        mounts=(Mount(type="bind", source=plan.conf_path, target="/etc/squid/squid.conf", read_only=True),),
        network=EGRESS_NETWORK, hostname=PROXY_ALIAS, cap_drop=("ALL",),
        extra_hosts={"host.docker.internal": "host-gateway"},
    )


class ProxyEngine(Protocol):
    """What the proxy manager needs from the engine (tsk/engine.py's DockerEngine has it)."""

    def container_state(self, ident: str) -> dict[str, object] | None: ...
    def container_create(self, spec: ContainerSpec) -> str: ...
    def container_start(self, ident: str) -> None: ...
    def container_remove(self, ident: str) -> None: ...
    def network_ensure(self, name: str, *, internal: bool, labels: dict[str, str]) -> str: ...


def ensure_proxy(engine: ProxyEngine, plan: ProxyPlan, runtime_dir: Path) -> bool:
    """Make sure the proxy for this fingerprint runs. True when it was already running (reused)."""
    from filelock import FileLock

    runtime_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(runtime_dir / f"proxy-{plan.fingerprint}.lock")):
        touch(plan.fingerprint, runtime_dir)
        state = engine.container_state(plan.name)
        if state is not None and state.get("Running"):
            return True
        if state is not None:
            engine.container_remove(plan.name)
        engine.network_ensure(EGRESS_NETWORK, internal=False, labels={"dev.tsk.kind": "egress"})
        try:
            engine.container_create(container_spec(plan))
        except EngineError:
            state = engine.container_state(plan.name)
            if state is None:
                raise
        engine.container_start(plan.name)
        return False


def touch(fingerprint: str, runtime_dir: Path) -> None:
    """Record a use of the proxy for this fingerprint; reap_idle reads it."""
    (runtime_dir / f"proxy-{fingerprint}.used").write_text(str(time.time()))


def wait_for_proxy_script(host: str = PROXY_ALIAS, port: int = PROXY_PORT, seconds: int = 15) -> str:
    """bash, run in the task container: wait until the proxy accepts connections (Squid needs a
    moment after a cold start), so the agent's first request does not fail."""
    h = shlex.quote(host)
    return (f"for _ in $(seq 1 {seconds * 10}); do (exec 3<>/dev/tcp/{h}/{port}) 2>/dev/null && break; "
            "sleep 0.1; done")


def reap_idle(engine: object, runtime_dir: Path, *, idle_seconds: float) -> list[str]:
    """Stop proxies idle longer than `idle_seconds` that no task uses, with their task networks.
    Only a proxy idle by its use record is looked at closely, so the usual call costs one listing."""
    from tsk.sandbox import netpool

    eng: Any = engine
    stopped = []
    now = time.time()
    for c in eng.container_labels("dev.tsk.kind=proxy"):
        fp = c.labels.get("dev.tsk.fingerprint", "")
        used = runtime_dir / f"proxy-{fp}.used"
        if not used.exists():
            continue  # never used from this runtime dir: another user's (or test's) proxy, not ours to stop
        if now - float(used.read_text() or 0) <= idle_seconds:
            continue
        held = netpool.idle_networks(fp, runtime_dir)
        try:
            # Every runtime dir's pool: a task of another user may run behind the same proxy.
            nets = [n["Name"] for n in eng.networks(f"dev.tsk.fingerprint={fp}")]
            if any(m != c.name for n in nets for m in (eng.network_containers(n) or [])):
                continue  # a task still runs behind this proxy
            try:
                eng.container_remove(c.name)
            except EngineError:  # another process is removing it at this moment
                continue
            used.unlink(missing_ok=True)
            mine = {name for name, _ in held}
            for n in nets:
                if n in mine:
                    eng.network_remove(n)
            stopped.append(c.name)
        finally:
            for _, lock in held:
                lock.release()
    return stopped
