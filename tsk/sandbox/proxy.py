"""The egress proxy: one Squid container per config fingerprint (allow-list + host_ports), shared by
every task with that config, kept running between tasks and stopped once idle.

A task container has no network at all (`network_mode=none`: only its own loopback). Its one way out is
a unix socket: each proxy has a named volume (`tsk-proxy-<fp>`) holding `proxy.sock` (Squid) and
`port-<p>.sock` (each host port), which every task of that config mounts read-only. Inside the task, a
socat listener on `tsk-proxy` (127.0.0.2, via /etc/hosts) turns each TCP connection into one on the
socket; in the proxy container a socat listener on the socket connects to Squid or to the host.
Compared with a network per task, the engine starts and stops such a container faster (no bridge,
veth pair or embedded DNS; measured in bench/run.py), and nothing but the socket leads out."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import xxhash

from tsk.engine.spec import ContainerSpec, Mount
from tsk.errors import EngineError
from tsk.resources import layers_dir

if TYPE_CHECKING:
    from filelock import FileLock

    from tsk.engine.ports import Engine

EGRESS_NETWORK = "tsk-egress"
PROXY_HOST = "tsk-proxy"  # the proxy's name inside a task container ($TSK_PROXY_HOST)
PROXY_ADDR = "127.0.0.2"  # what that name resolves to there: loopback, apart from the agent's own 127.0.0.1
PROXY_PORT = 3128
SOCKET_DIR = "/run/tsk-proxy"  # the socket volume, in the proxy and in each of its tasks
LABELS = {"dev.tsk.kind": "proxy"}
TASK_LABEL = "dev.tsk.proxy"  # on a task container: the fingerprint of the proxy it goes out through


class ProxyPlan(msgspec.Struct, frozen=True, kw_only=True):
    fingerprint: str
    name: str  # the container's name, and its socket volume's
    image: str
    conf_path: str
    host_ports: tuple[int, ...]


def fingerprint(conf: str, host_ports: tuple[int, ...], image: str, engine: str = "docker") -> str:
    """Each engine runs its own proxies (its tasks cannot mount another engine's socket volume), so the
    engine is part of the fingerprint: names, locks and idle records never mix. Docker's fingerprints
    stay what they were before the engine was a choice."""
    fields: dict[str, object] = {"conf": conf, "host_ports": sorted(host_ports), "image": image}
    if engine != "docker":
        fields["engine"] = engine
    return xxhash.xxh3_128_hexdigest(msgspec.json.encode(fields))[:16]


def plan_proxy(*, squid_conf: str | None, host_ports: tuple[int, ...], image: str, cache_dir: Path,
               engine: str = "docker") -> ProxyPlan:
    conf = squid_conf if squid_conf is not None else (layers_dir() / "proxy" / "squid.conf").read_text()
    fp = fingerprint(conf, host_ports, image, engine)
    path = cache_dir / "proxy" / fp / "squid.conf"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".squid.conf.{os.getpid()}.{threading.get_ident()}")  # server workers are threads
        tmp.write_text(conf)
        tmp.rename(path)
    return ProxyPlan(fingerprint=fp, name=f"tsk-proxy-{fp}", image=image, conf_path=str(path),
                     host_ports=tuple(sorted(host_ports)))


def _listen(sock: str) -> str:
    return f"UNIX-LISTEN:{SOCKET_DIR}/{sock},fork,mode=666,unlink-early"


def container_spec(plan: ProxyPlan) -> ContainerSpec:
    """Squid as the container's main process; socat serves the sockets. proxy.sock appears only once
    Squid accepts connections, so a task that finds it can go out at once."""
    forwards = "".join(f"socat {_listen(f'port-{p}.sock')} TCP:host.docker.internal:{p} & "
                       for p in plan.host_ports)
    squid_sock = (f"rm -f {SOCKET_DIR}/proxy.sock; "
                  f"(until socat -u /dev/null TCP:127.0.0.1:{PROXY_PORT} 2>/dev/null; do sleep 0.05; done; "
                  f"exec socat {_listen('proxy.sock')} TCP:127.0.0.1:{PROXY_PORT}) & ")
    script = f"{forwards}{squid_sock}exec squid -N -f /etc/squid/squid.conf"
    return ContainerSpec(
        name=plan.name, image=plan.image, command=("sh", "-c", script), user="proxy", workdir="/",
        env={}, labels={**LABELS, "dev.tsk.fingerprint": plan.fingerprint,
                        "dev.tsk.plan": msgspec.json.encode(plan).decode()},
        mounts=(Mount(type="bind", source=plan.conf_path, target="/etc/squid/squid.conf", read_only=True),
                Mount(type="volume", source=plan.name, target=SOCKET_DIR)),
        network=EGRESS_NETWORK, hostname=PROXY_HOST, cap_drop=("ALL",), pids_limit=512, log_max_bytes=16 << 20,
        extra_hosts={"host.docker.internal": "host-gateway"},
    )


def task_mount(plan: ProxyPlan) -> Mount:
    """The proxy's sockets, as a task container mounts them."""
    return Mount(type="volume", source=plan.name, target=SOCKET_DIR, read_only=True)


def task_forward_script(host_ports: tuple[int, ...], wait_seconds: int = 15) -> str:
    """bash, first thing in a task container: the TCP listeners on tsk-proxy that lead to the
    sockets, then a wait until they listen and the proxy answers (Squid needs a moment after a cold
    start), so the agent's first request does not fail."""
    lines = []
    listen_hex = []
    for port, sock in ((PROXY_PORT, "proxy.sock"), *((p, f"port-{p}.sock") for p in host_ports)):
        lines.append(f"socat TCP-LISTEN:{port},bind={PROXY_ADDR},fork,reuseaddr "
                     f"UNIX-CONNECT:{SOCKET_DIR}/{sock} 2>&3 &")
        listen_hex.append(f"{_hex_addr(PROXY_ADDR)}:{port:04X} 00000000:0000 0A")
    ready = " && ".join(f"grep -q ' {h} ' /proc/net/tcp" for h in listen_hex)
    probe = f"socat -u /dev/null UNIX-CONNECT:{SOCKET_DIR}/proxy.sock 2>/dev/null"
    lines += [
        f"up=; for _ in $(seq 1 {wait_seconds * 10}); do {probe} && {{ up=1; break; }}; sleep 0.1; done",
        f"[ -n \"$up\" ] || echo 'tsk: the egress proxy did not answer within {wait_seconds} s; "
        "requests through it will fail' >&3",
        f"for _ in $(seq 1 500); do {ready} && break; sleep 0.01; done",
    ]
    return "\n".join(lines)


def _hex_addr(addr: str) -> str:
    """An IPv4 address as /proc/net/tcp writes it (little-endian hex)."""
    return "".join(f"{int(b):02X}" for b in reversed(addr.split(".")))


def _lock(plan_fp: str, runtime_dir: Path) -> FileLock:
    from filelock import FileLock

    runtime_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(runtime_dir / f"proxy-{plan_fp}.lock"), thread_local=False)


def ensure_proxy(engine: Engine, plan: ProxyPlan, runtime_dir: Path) -> bool:
    """Make sure the proxy for this fingerprint runs. True when it was already running (reused).
    Call it after creating the task's container (labelled with TASK_LABEL): a reaper that removes the
    proxy from then on sees the task and starts the proxy again."""
    with _lock(plan.fingerprint, runtime_dir):
        touch(plan.fingerprint, runtime_dir)
        return _ensure_running(engine, plan)


def _ensure_running(engine: Engine, plan: ProxyPlan) -> bool:
    state = engine.container_state(plan.name)
    if state is not None and state.running:
        return True
    if state is not None:
        engine.container_remove(plan.name)
    engine.network_ensure(EGRESS_NETWORK, labels={"dev.tsk.kind": "egress"})
    try:
        engine.container_create(container_spec(plan))
    except EngineError:  # another process made it between our look and our create
        if engine.container_state(plan.name) is None:
            raise
    engine.container_start(plan.name)
    return False


def touch(fingerprint: str, runtime_dir: Path) -> None:
    """Record a use of the proxy for this fingerprint; reap_idle reads it."""
    (runtime_dir / f"proxy-{fingerprint}.used").write_text(str(time.time()))


def in_use(engine: Engine, runtime_dir: Path) -> list[str]:
    """The proxies this runtime dir used that a task still goes out through."""
    ours = {p.name[len("proxy-"):-len(".used")] for p in runtime_dir.glob("proxy-*.used")}
    return sorted(c.name for c in engine.containers("dev.tsk.kind=proxy")
                  if (fp := c.labels.get("dev.tsk.fingerprint", "")) in ours
                  and engine.containers(f"{TASK_LABEL}={fp}"))


def _idle_for(used: Path) -> float:
    try:
        return time.time() - float(used.read_text() or 0)
    except (OSError, ValueError):
        return 0.0


def reap_idle(engine: Engine, runtime_dir: Path, *, idle_seconds: float) -> list[str]:
    """Stop proxies idle longer than `idle_seconds` that no task container uses. Only proxies this
    runtime dir used are looked at (another user's, or another test's, are not ours to stop), so the
    usual call costs one listing."""
    eng = engine
    stopped = []
    for c in eng.containers("dev.tsk.kind=proxy"):
        fp = c.labels.get("dev.tsk.fingerprint", "")
        used = runtime_dir / f"proxy-{fp}.used"
        if not used.exists() or _idle_for(used) <= idle_seconds:
            continue
        with _lock(fp, runtime_dir):
            if not used.exists() or _idle_for(used) <= idle_seconds:
                continue  # used again while we waited for the lock
            if eng.containers(f"{TASK_LABEL}={fp}"):
                continue  # a task (of any user) still goes out through it
            try:
                eng.container_remove(c.name)
            except EngineError:  # another process is removing it at this moment
                continue
            used.unlink(missing_ok=True)
            if eng.containers(f"{TASK_LABEL}={fp}"):
                # A task of another runtime dir was made meanwhile and may have seen the proxy running.
                if "dev.tsk.plan" in c.labels:
                    _ensure_running(eng, msgspec.json.decode(c.labels["dev.tsk.plan"], type=ProxyPlan))
                continue
            with contextlib.suppress(EngineError):  # a task created since then still holds it
                eng.volume_remove(c.name)  # the proxy's sockets
            stopped.append(c.name)
    return stopped
