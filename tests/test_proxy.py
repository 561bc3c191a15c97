"""The proxy manager's decisions with a fake engine: when an idle proxy is stopped, and that a task
made while it is being stopped gets it back. The real engine proves the network itself
(tests/test_run_engine.py)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from fakes import FakeEngine

from tsk.sandbox import proxy


def _plan(tmp_path: Path) -> proxy.ProxyPlan:
    return proxy.plan_proxy(squid_conf="http_port 3128\n", host_ports=(5432,), image="tsk/layer:proxy-x",
                            cache_dir=tmp_path / "cache")


def _engine(plan: proxy.ProxyPlan) -> FakeEngine:
    eng = FakeEngine()
    eng.add(plan.image)
    return eng


def _age(runtime: Path, plan: proxy.ProxyPlan, seconds: float) -> None:
    (runtime / f"proxy-{plan.fingerprint}.used").write_text(str(time.time() - seconds))


def test_an_idle_proxy_is_stopped_with_its_sockets_and_a_busy_one_is_not(tmp_path: Path) -> None:
    runtime, plan = tmp_path / "run", _plan(tmp_path)
    eng = _engine(plan)
    assert proxy.ensure_proxy(eng, plan, runtime) is False  # started
    assert proxy.ensure_proxy(eng, plan, runtime) is True  # reused
    eng.add_container("tsk-task-a", labels={proxy.TASK_LABEL: plan.fingerprint})
    _age(runtime, plan, 100)
    assert proxy.reap_idle(eng, runtime, idle_seconds=10) == []  # a task still goes out through it
    eng.container_remove("tsk-task-a")
    _age(runtime, plan, 5)
    assert proxy.reap_idle(eng, runtime, idle_seconds=10) == []  # used recently
    _age(runtime, plan, 100)
    assert proxy.reap_idle(eng, runtime, idle_seconds=10) == [plan.name]
    assert plan.name not in eng.boxes and plan.name not in eng.vols  # the proxy and its sockets' volume


def test_a_task_made_while_its_proxy_is_stopped_gets_the_proxy_back(tmp_path: Path) -> None:
    runtime, plan = tmp_path / "run", _plan(tmp_path)
    eng = _engine(plan)
    proxy.ensure_proxy(eng, plan, runtime)
    _age(runtime, plan, 100)

    def another_user_starts_a_task(_removed: str) -> None:  # its ensure_proxy saw the proxy running a moment ago
        del eng.after["container_remove"]
        eng.add_container("tsk-task-b", labels={proxy.TASK_LABEL: plan.fingerprint})

    eng.after["container_remove"] = another_user_starts_a_task
    assert proxy.reap_idle(eng, runtime, idle_seconds=10) == []
    assert eng.boxes[plan.name].status == "running"  # started again, from the plan kept on the container
    assert plan.name in eng.vols  # its sockets stay


def test_a_proxy_another_runtime_dir_used_is_never_stopped(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    eng = _engine(plan)
    proxy.ensure_proxy(eng, plan, tmp_path / "theirs")
    _age(tmp_path / "theirs", plan, 100)
    (tmp_path / "mine").mkdir()
    assert proxy.reap_idle(eng, tmp_path / "mine", idle_seconds=0) == []
    assert eng.boxes[plan.name].status == "running"


def test_the_task_side_script_listens_for_each_port_and_parses(tmp_path: Path) -> None:
    script = proxy.task_forward_script((5432, 80))
    assert "bind=127.0.0.2" in script and "UNIX-CONNECT:/run/tsk-proxy/port-5432.sock" in script
    assert " 0200007F:0C38 00000000:0000 0A " in script  # 127.0.0.2:3128 listening, as /proc/net/tcp has it
    assert " 0200007F:0050 00000000:0000 0A " in script
    path = tmp_path / "fw.sh"
    path.write_text(script)
    subprocess.run(["bash", "-n", str(path)], check=True, env=dict(os.environ))


def test_each_engine_has_proxies_of_its_own_and_dockers_keep_their_names(tmp_path: Path) -> None:
    import msgspec
    import xxhash

    conf, ports, image = "http_port 3128\n", (5432,), "tsk/layer:proxy-x"
    before = xxhash.xxh3_128_hexdigest(msgspec.json.encode({"conf": conf, "host_ports": [5432], "image": image}))[:16]
    assert proxy.fingerprint(conf, ports, image) == before  # a running Docker proxy is still found by its name
    assert proxy.fingerprint(conf, ports, image, "podman") != before
    podman = proxy.plan_proxy(squid_conf=conf, host_ports=ports, image=image, cache_dir=tmp_path, engine="podman")
    assert podman.name == f"tsk-proxy-{proxy.fingerprint(conf, ports, image, 'podman')}"


# Every host upstream tsk's default allow-list lets through (its dockerfiles/tsk-proxy/squid.conf, and
# astral.sh for uv's installer, which its python stack fetches): a task that worked there works here.
UPSTREAM_ALLOWED = [
    "api.anthropic.com", "platform.claude.com", "sentry.io", "statsig.com", "api.openai.com", "pypi.org",
    "pypi.python.org", "files.pythonhosted.org", "astral.sh", "crates.io", "index.crates.io",
    "static.crates.io", "proxy.golang.org", "sum.golang.org", "pkg.go.dev", "golang.org",
    "google.golang.org", "repo.maven.apache.org", "repo1.maven.org", "central.sonatype.com",
    "plugins.gradle.org", "services.gradle.org", "downloads.gradle.org", "downloads.gradle-dn.com",
    "jcenter.bintray.com", "registry.npmjs.org", "nodejs.org", "npmjs.com",
]


def test_the_built_in_allow_list_lets_through_every_host_upstream_does() -> None:
    from tsk.resources import layers_dir

    allowed = set()
    for line in (layers_dir() / "proxy" / "squid.conf").read_text().splitlines():
        words = line.split()
        if words[:3] == ["acl", "allowed_domains", "dstdomain"]:
            allowed.update(w for w in words[3:] if not w.startswith("-"))

    def covered(host: str) -> bool:
        return host in allowed or any(d.startswith(".") and (host == d[1:] or host.endswith(d)) for d in allowed)

    assert [h for h in UPSTREAM_ALLOWED if not covered(h)] == []
