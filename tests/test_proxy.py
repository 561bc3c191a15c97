"""The proxy manager's decisions with a fake engine: when an idle proxy is stopped, and that a task
made while it is being stopped gets it back. The real engine proves the network itself
(tests/test_run_engine.py)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tsk.engine.ports import ContainerInfo
from tsk.engine.spec import ContainerSpec
from tsk.sandbox import proxy


class ProxyFakeEngine:
    """Containers by name with their labels; `on_remove` runs after a removal (another process acting)."""

    def __init__(self) -> None:
        self.containers: dict[str, dict[str, str]] = {}
        self.running: set[str] = set()
        self.volumes_removed: list[str] = []
        self.on_remove: Any = None

    def container_labels(self, label: str) -> list[ContainerInfo]:
        key, _, value = label.partition("=")
        return [ContainerInfo(id=n, name=n, image_id="", state="running", labels=dict(labels))
                for n, labels in self.containers.items() if labels.get(key) == value]

    def container_state(self, ident: str) -> dict[str, object] | None:
        return None if ident not in self.containers else {"Running": ident in self.running}

    def container_create(self, spec: ContainerSpec) -> str:
        self.containers[spec.name] = dict(spec.labels)
        return spec.name

    def container_start(self, ident: str) -> None:
        self.running.add(ident)

    def container_remove(self, ident: str) -> None:
        self.containers.pop(ident, None)
        self.running.discard(ident)
        if self.on_remove is not None:
            self.on_remove()

    def network_ensure(self, name: str, *, labels: dict[str, str]) -> str:
        return name

    def volume_remove(self, name: str) -> None:
        self.volumes_removed.append(name)


def _plan(tmp_path: Path) -> proxy.ProxyPlan:
    return proxy.plan_proxy(squid_conf="http_port 3128\n", host_ports=(5432,), image="tsk/layer:proxy-x",
                            cache_dir=tmp_path / "cache")


def _age(runtime: Path, plan: proxy.ProxyPlan, seconds: float) -> None:
    (runtime / f"proxy-{plan.fingerprint}.used").write_text(str(time.time() - seconds))


def test_an_idle_proxy_is_stopped_with_its_sockets_and_a_busy_one_is_not(tmp_path: Path) -> None:
    eng, runtime, plan = ProxyFakeEngine(), tmp_path / "run", _plan(tmp_path)
    assert proxy.ensure_proxy(eng, plan, runtime) is False  # started
    assert proxy.ensure_proxy(eng, plan, runtime) is True  # reused
    eng.containers["tsk-task-a"] = {proxy.TASK_LABEL: plan.fingerprint}
    _age(runtime, plan, 100)
    assert proxy.reap_idle(eng, runtime, idle_seconds=10) == []  # a task still goes out through it
    del eng.containers["tsk-task-a"]
    _age(runtime, plan, 5)
    assert proxy.reap_idle(eng, runtime, idle_seconds=10) == []  # used recently
    _age(runtime, plan, 100)
    assert proxy.reap_idle(eng, runtime, idle_seconds=10) == [plan.name]
    assert plan.name not in eng.containers and eng.volumes_removed == [plan.name]


def test_a_task_made_while_its_proxy_is_stopped_gets_the_proxy_back(tmp_path: Path) -> None:
    eng, runtime, plan = ProxyFakeEngine(), tmp_path / "run", _plan(tmp_path)
    proxy.ensure_proxy(eng, plan, runtime)
    _age(runtime, plan, 100)

    def another_user_starts_a_task() -> None:  # its ensure_proxy saw the proxy running a moment ago
        eng.on_remove = None
        eng.containers["tsk-task-b"] = {proxy.TASK_LABEL: plan.fingerprint}

    eng.on_remove = another_user_starts_a_task
    assert proxy.reap_idle(eng, runtime, idle_seconds=10) == []
    assert plan.name in eng.running  # started again, from the plan kept on the container
    assert eng.volumes_removed == []


def test_a_proxy_another_runtime_dir_used_is_never_stopped(tmp_path: Path) -> None:
    eng, plan = ProxyFakeEngine(), _plan(tmp_path)
    proxy.ensure_proxy(eng, plan, tmp_path / "theirs")
    _age(tmp_path / "theirs", plan, 100)
    (tmp_path / "mine").mkdir()
    assert proxy.reap_idle(eng, tmp_path / "mine", idle_seconds=0) == []
    assert plan.name in eng.running


def test_the_task_side_script_listens_for_each_port_and_parses(tmp_path: Path) -> None:
    script = proxy.task_forward_script((5432, 80))
    assert "bind=127.0.0.2" in script and "UNIX-CONNECT:/run/tsk-proxy/port-5432.sock" in script
    assert " 0200007F:0C38 00000000:0000 0A " in script  # 127.0.0.2:3128 listening, as /proc/net/tcp has it
    assert " 0200007F:0050 00000000:0000 0A " in script
    path = tmp_path / "fw.sh"
    path.write_text(script)
    subprocess.run(["bash", "-n", str(path)], check=True, env=dict(os.environ))
