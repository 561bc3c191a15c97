"""The container planner (tsk/sandbox/plan.py): pure functions from config and host facts to the run
script, the environment, the mounts and the container spec. No engine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tsk.config import ProjectFile, ProjectSettings, UserFile, resolve
from tsk.config.schema import EnvVar, ResolvedConfig, Volume
from tsk.sandbox import plan
from tsk.sandbox.proxy import PROXY_ADDR, PROXY_HOST, TASK_LABEL, ProxyPlan

HOST = plan.HostFacts(uid=1234, gid=2345, git_name="Ada", git_email="ada@example.com", home="/home/ada")
PROXY = ProxyPlan(fingerprint="f" * 16, name="tsk-proxy-" + "f" * 16, image="tsk/layer:proxy-x",
                  conf_path="/c/squid.conf", host_ports=(5432,))


def _cfg(tmp_path: Path, **settings: object) -> ResolvedConfig:
    return resolve(repo=tmp_path / "proj", user=UserFile(), project_file=ProjectFile(),
                   cli=ProjectSettings(**settings))  # type: ignore[arg-type]


def _spec(cfg: ResolvedConfig, tmp_path: Path, *, proxy: ProxyPlan | None = PROXY, sudo: bool = False,
          interactive: bool = False):  # type: ignore[no-untyped-def]
    mounts = plan.container_mounts(cfg, volume="tsk-task-t1", task_dir=tmp_path / "t1", git_dir="/d/t1/git",
                                   changes_dir="/d/t1/changes", ro_mounts=("/r/.git/objects",), project="proj",
                                   proxy=proxy)
    env = plan.container_env(cfg, agent_env={"IS_SANDBOX": "1"}, host=HOST, task_id="t1", isolated=proxy is not None)
    return plan.container_spec(cfg, task_id="t1", image="tsk/layer:agent-x", env=env, mounts=mounts, host=HOST,
                               proxy=proxy, project="proj", sudo=sudo, privileged=False, interactive=interactive)


def test_an_isolated_task_has_no_network_no_capabilities_and_the_users_uid(tmp_path: Path) -> None:
    spec = _spec(_cfg(tmp_path, memory_gb=2.0, cpu=1.0), tmp_path)
    assert spec.network == "none" and spec.extra_hosts == {PROXY_HOST: PROXY_ADDR}
    assert spec.cap_drop == ("ALL",) and spec.cap_add == () and spec.security_opt == ("no-new-privileges",)
    assert spec.user == "1234:2345" and not spec.privileged and not spec.tty
    assert spec.memory_bytes == 2 * 1024**3 and spec.nano_cpus == 1_000_000_000
    assert spec.labels == {"dev.tsk.kind": "task", "dev.tsk.task": "t1", "dev.tsk.project": "proj",
                           TASK_LABEL: PROXY.fingerprint}
    assert spec.workdir == "/workspace/proj" and spec.command == ("bash", plan.RUN_SCRIPT)


def test_cpu_is_capped_at_what_the_host_has(tmp_path: Path) -> None:
    spec = _spec(_cfg(tmp_path, cpu=512.0), tmp_path)
    assert spec.nano_cpus == (os.cpu_count() or 1) * 1_000_000_000


def test_without_isolation_the_engines_bridge_and_no_proxy(tmp_path: Path) -> None:
    spec = _spec(_cfg(tmp_path), tmp_path, proxy=None)
    assert spec.network is None and spec.extra_hosts == {} and TASK_LABEL not in spec.labels
    assert "HTTP_PROXY" not in spec.env and not any(m.target == "/run/tsk-proxy" for m in spec.mounts)


def test_sudo_starts_as_root_only_to_drop_to_the_users_uid(tmp_path: Path) -> None:
    spec = _spec(_cfg(tmp_path), tmp_path, sudo=True)
    assert spec.user == "0:0" and spec.security_opt == () and "SETUID" in spec.cap_add
    assert "exec setpriv --reuid=1234 --regid=2345 --clear-groups" in spec.command[-1]


def test_the_environment_project_settings_win_and_proxy_vars_point_inside(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, env=(EnvVar(name="HOME", value="/elsewhere"), EnvVar(name="FOO", value="bar")))
    env = _spec(cfg, tmp_path).env
    assert env["FOO"] == "bar" and env["HOME"] == "/elsewhere"  # the project's own settings win
    assert env["GIT_AUTHOR_NAME"] == "Ada" and env["GIT_COMMITTER_EMAIL"] == "ada@example.com"
    assert env["HTTPS_PROXY"] == f"http://{PROXY_HOST}:3128" and PROXY_HOST in env["NO_PROXY"]
    assert env["TSK_TASK_ID"] == "t1" and env["IS_SANDBOX"] == "1" and env["TSK_CONTAINER"] == "1"
    # the JVM (Maven, Gradle) ignores HTTP_PROXY: it gets the proxy as system properties
    assert f"-Dhttps.proxyHost={PROXY_HOST} -Dhttps.proxyPort=3128" in env["JAVA_TOOL_OPTIONS"]
    assert PROXY_HOST in env["JAVA_TOOL_OPTIONS"].split("-Dhttps.nonProxyHosts=")[1]


def test_host_ports_are_listed_for_the_task_only_when_there_are_some(tmp_path: Path) -> None:
    env = _spec(_cfg(tmp_path, host_ports=(8080, 5432)), tmp_path).env
    assert env["TSK_HOST_PORTS"] == "5432,8080"
    assert "TSK_HOST_PORTS" not in _spec(_cfg(tmp_path), tmp_path).env
    assert "JAVA_TOOL_OPTIONS" not in _spec(_cfg(tmp_path), tmp_path, proxy=None).env


def test_mounts_writable_only_where_the_task_writes(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, volumes=(Volume(host=str(tmp_path / "cache"), container="/cache", readonly=True),
                                  Volume(name="gomod", container="/go/pkg/mod")))
    by_target = {m.target: m for m in _spec(cfg, tmp_path).mounts}
    writable = sorted(t for t, m in by_target.items() if not m.read_only)
    assert writable == ["/go/pkg/mod", "/home/agent", "/tsk/output", "/workspace/proj", "/workspace/proj/.git"]
    assert by_target["/r/.git/objects"].read_only and by_target["/tsk/changes"].read_only
    assert by_target[plan.INSTRUCTIONS].read_only and by_target[plan.RUN_SCRIPT].read_only
    assert by_target["/run/tsk-proxy"].read_only and by_target["/run/tsk-proxy"].source == PROXY.name
    assert by_target["/go/pkg/mod"].source == "tsk-gomod"  # named as upstream tsk names it: its volumes are reused
    assert by_target["/cache"].source == str(tmp_path / "cache") and by_target["/workspace/proj"].type == "volume"


def test_the_run_script_parses_and_keeps_stderr_apart_only_for_structured_agents(tmp_path: Path) -> None:
    for merge in (True, False):
        script = plan.run_script(agent_argv=["claude", "-p", "it's"], prepare="true", baseline="true",
                                 commit="true", forward="", merge_stderr=merge)
        path = tmp_path / "run.sh"
        path.write_text(script)
        subprocess.run(["bash", "-n", str(path)], check=True)
        assert ("2>&1 </dev/null" in script) is merge
        assert ("2>>/tsk/output/agent.stderr" in script) is not merge
        assert "claude -p 'it'\"'\"'s'" in script  # quoted as one argument
        # the commit still runs when tsk stops the container
        assert script.index("trap 'stopping=1") < script.index("mark agent_done") < script.index("mark committed")
    shell = plan.run_script(agent_argv=["bash", "-l"], prepare="true", baseline="true", commit="true", forward="",
                            merge_stderr=True, interactive=True)
    assert "</dev/null" not in shell.split("mark prepared", 1)[1].split("mark agent_done")[0]


def test_dind_loosens_what_nested_builds_need_and_no_more(tmp_path: Path) -> None:
    plain = _spec(_cfg(tmp_path), tmp_path)
    assert plain.tmpfs == {} and "BUILDAH_ISOLATION" not in plain.env
    cfg = _cfg(tmp_path, dind=True, devices=("/dev/fuse",))
    spec = _spec(cfg, tmp_path)
    assert spec.security_opt == ("seccomp=unconfined", "apparmor=unconfined")  # no no-new-privileges
    assert spec.cap_drop == ("ALL",) and spec.cap_add == ("SETUID", "SETGID") and not spec.privileged
    assert spec.tmpfs == {plan.CONTAINER_STORAGE: "mode=1777"} and spec.devices == ("/dev/fuse",)
    assert spec.env["BUILDAH_ISOLATION"] == "chroot" and spec.user == "1234:2345"
    mounts = plan.container_mounts(cfg, volume="v", task_dir=tmp_path / "t1", git_dir="/g", changes_dir="/c",
                                   ro_mounts=(), project="proj", proxy=PROXY)
    on_podman = plan.container_spec(cfg, task_id="t1", image="i", env={}, mounts=mounts, host=HOST, proxy=PROXY,
                                    project="proj", sudo=False, privileged=False, engine="podman")
    assert on_podman.security_opt[-1] == "label=disable"
    with_sudo = _spec(cfg, tmp_path, sudo=True)  # sudo's own loosening, and dind's on top
    assert with_sudo.user == "0:0" and "seccomp=unconfined" in with_sudo.security_opt
    assert with_sudo.cap_add.count("SETUID") == 1
