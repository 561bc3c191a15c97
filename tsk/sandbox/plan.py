"""Pure planning of a task's sandbox: the script the container runs and the container spec.
Host facts (uid, git identity, environment) come in as arguments; nothing here touches the engine."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from tsk.agents.base import AGENT_HOME
from tsk.engine.spec import ContainerSpec, Mount
from tsk.layers.upstream import link_image_home
from tsk.sandbox.proxy import PROXY_ADDR, PROXY_HOST, PROXY_PORT, TASK_LABEL, ProxyPlan, task_mount
from tsk.sandbox.secrets import RUNTIME as secrets_file
from tsk.sandbox.stream import LOG_MAX

if TYPE_CHECKING:
    from tsk.config.schema import ResolvedConfig

INSTRUCTIONS = "/tsk/instructions.md"
OUTPUT = "/tsk/output"
RUN_SCRIPT = "/tsk/run.sh"
VALIDATE = "/tsk/validate.sh"  # the task's validation command, when it has one
PREVIOUS = "/tsk/previous-attempt.md"  # from the second attempt on: how the last one failed
SECRETS = "/tsk/secrets.env"  # API keys and secret env values: read by the run script, not in the container's env


SANDBOX_UID = 1000  # the image's `agent` user (layers/base): who runs the agent when tsk runs as root
# `dind`: where rootless Podman (or Buildah) in the sandbox keeps its images. The sandbox's own overlay
# cannot hold nested overlay mounts, so it gets a tmpfs there, bounded by the task's memory limit.
CONTAINER_STORAGE = f"{AGENT_HOME}/.local/share/containers"
# `dind` loosens exactly what nested container builds need, as upstream tsk does: the engine's seccomp
# and AppArmor profiles (they refuse the mounts and namespaces a nested engine makes), no-new-privileges
# (newuidmap is setuid), SETUID and SETGID (to map the nested user namespace's ids).
DIND_SECURITY = ("seccomp=unconfined", "apparmor=unconfined")
DIND_CAPS = ("SETUID", "SETGID")


class HostFacts(msgspec.Struct, frozen=True, kw_only=True):
    uid: int  # who the agent runs as: the user's uid, never 0 (SANDBOX_UID then)
    gid: int
    git_name: str
    git_email: str
    home: str


def workdir(project: str) -> str:
    return f"/workspace/{project}"


def run_script(*, agent_argv: list[str], prepare: str, baseline: str, commit: str, forward: str,
               merge_stderr: bool, interactive: bool = False, validate: bool = False, workdir: str = ".") -> str:
    """bash for the container: open the way to the proxy (`forward`, from proxy.task_forward_script,
    or empty), prepare the snapshot, run the agent, run the validation command (`validate`: the task
    has /tsk/validate.sh) unless the sandbox is being stopped, then commit what it left, also when tsk
    stops the container (SIGTERM: Ctrl-C, cancel, a limit), so partial work comes back."""
    agent = shlex.join(agent_argv)
    if interactive:
        run = f"{agent}\nrc=$?\n"
    else:
        redirect = "2>&1" if merge_stderr else f"2>>{OUTPUT}/agent.stderr"
        run = (f"{agent} {redirect} </dev/null &\nchild=$!\nwait \"$child\"\nrc=$?\n"
               "# a trapped signal interrupts wait; wait again for the agent's real end\n"
               "if [ -n \"$stopping\" ]; then wait \"$child\" 2>/dev/null; rc=143; fi\n"
               "# the engine's follow-mode log drops an unterminated last line (moby#43860): end it\n"
               "echo\n")
    return "\n".join([
        "#!/bin/bash",
        "set -u",
        f"exec 3>>{OUTPUT}/sandbox.log",
        f"mark() {{ echo \"$1 $(date +%s.%N)\" >> {OUTPUT}/timing; }}",
        "mark started",
        "stopping=",
        "child=",
        "trap 'stopping=1; [ -n \"$child\" ] && kill -TERM \"$child\" 2>/dev/null' TERM INT",
        f"if [ -f {SECRETS} ]; then set -a; . {SECRETS}; set +a; fi",
        forward or ":",
        link_image_home(),
        "(",  # a subshell: the snippet's `set -e` and `cd` must not leak into this script
        prepare,
        ") 2>&3 >&3",
        "# the user's uncommitted changes become their own commit, so the agent's work is told apart",
        "(",
        baseline,
        f"git rev-parse HEAD > {OUTPUT}/base-commit",
        ") 2>&3 >&3",
        "mark prepared",
        run.rstrip("\n"),
        "mark agent_done",
        *((_validation(workdir),) if validate and not interactive else ()),
        "(",
        commit,
        ") 2>&3 >&3",
        "mark committed",
        "exit \"$rc\"",
        "",
    ])


def shell_argv(agent_argv: list[str]) -> list[str]:
    """`tsk shell`'s program: the task's instructions and the command the agent would run them with (as
    upstream shows them), then a login shell."""
    shown = agent_argv[2] if agent_argv[:2] == ["sh", "-c"] and len(agent_argv) == 3 else shlex.join(agent_argv)

    def say(text: str) -> str:
        return f"printf '%s\\n' {shlex.quote(text)}"

    return ["bash", "-c", "; ".join([
        say(f"=== The task's instructions ({INSTRUCTIONS}) ==="), f"cat {INSTRUCTIONS}", "echo",
        say("=== The agent's command ==="), say(shown), "echo",
        say("=== A shell in the sandbox: exit it to bring the work back as a branch ==="),
        "exec bash -l",
    ])]


def _validation(workdir: str) -> str:
    """The validation gate: its output goes to the log stream (so a long test run is not silence) and to
    validation.log; its exit code to validation-exit. None of it when the sandbox is being stopped."""
    wd = shlex.quote(workdir)
    return "\n".join([
        "if [ -z \"$stopping\" ]; then",
        f"  ( cd {wd} && bash {VALIDATE}; echo $? > {OUTPUT}/validation-exit ) 2>&1 </dev/null"
        f" | tee {OUTPUT}/validation.log &",
        "  child=$!",
        "  wait \"$child\"",
        "  mark validated",
        "fi",
    ])


def container_env(cfg: ResolvedConfig, *, agent_env: Mapping[str, str], host: HostFacts, task_id: str,
                  isolated: bool, attempt: int = 1) -> dict[str, str]:
    env: dict[str, str] = {
        "HOME": AGENT_HOME, "USER": "agent", "LANG": "C.UTF-8", "TERM": "xterm-256color",
        "TSK_CONTAINER": "1", "TSK_TASK_ID": task_id, "TSK_ATTEMPT": str(attempt),
        "GIT_AUTHOR_NAME": host.git_name, "GIT_AUTHOR_EMAIL": host.git_email,
        "GIT_COMMITTER_NAME": host.git_name, "GIT_COMMITTER_EMAIL": host.git_email,
    }
    if isolated:
        proxy = f"http://{PROXY_HOST}:{PROXY_PORT}"
        local = f"localhost,127.0.0.1,{PROXY_HOST}"  # host_ports are reached at tsk-proxy:<port> directly
        env.update({"HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy,
                    "NO_PROXY": local, "no_proxy": local, "TSK_PROXY_HOST": PROXY_HOST,
                    "JAVA_TOOL_OPTIONS": java_proxy_options()})
        if cfg.host_ports:
            env["TSK_HOST_PORTS"] = ",".join(str(p) for p in sorted(cfg.host_ports))
    if cfg.dind:  # a nested build's RUN steps cannot make namespaces of their own: chroot them instead
        env["BUILDAH_ISOLATION"] = "chroot"
    env.update(agent_env)
    for var in cfg.env:  # the project's own settings win over tsk's defaults
        env[var.name] = var.value
    return env


def java_proxy_options() -> str:
    """The proxy as JVM system properties: Maven, Gradle and the JDK's HTTP client ignore HTTP_PROXY."""
    local = f"localhost|127.0.0.1|{PROXY_HOST}"  # the host ports are reached at tsk-proxy directly
    return " ".join([f"-Dhttp.proxyHost={PROXY_HOST}", f"-Dhttp.proxyPort={PROXY_PORT}",
                     f"-Dhttps.proxyHost={PROXY_HOST}", f"-Dhttps.proxyPort={PROXY_PORT}",
                     f"-Dhttp.nonProxyHosts={local}", f"-Dhttps.nonProxyHosts={local}"])


def named_volume(name: str) -> str:
    """The engine's name for a config's named volume (`name = "cargo"` is the volume `tsk-cargo`)."""
    return f"tsk-{name}"


def container_mounts(cfg: ResolvedConfig, *, volume: str, task_dir: Path, git_dir: str, changes_dir: str,
                     ro_mounts: tuple[str, ...], project: str, proxy: ProxyPlan | None,
                     secrets: bool = False, prompt_file: str = "instructions.md", previous: bool = False,
                     validate: bool = False) -> tuple[Mount, ...]:
    """`prompt_file`: what the agent reads as its instructions (an attempt's own, from the second on);
    `previous`, `validate`: the task dir holds previous-attempt.md, validate.sh."""
    wd = workdir(project)
    mounts = [
        Mount(type="volume", source=volume, target=wd),
        Mount(type="bind", source=git_dir, target=f"{wd}/.git"),
        Mount(type="bind", source=changes_dir, target="/tsk/changes", read_only=True),
        Mount(type="bind", source=str(task_dir / prompt_file), target=INSTRUCTIONS, read_only=True),
        Mount(type="bind", source=str(task_dir / "run.sh"), target=RUN_SCRIPT, read_only=True),
        Mount(type="bind", source=str(task_dir / "output"), target=OUTPUT),
        Mount(type="bind", source=str(task_dir / "home"), target=AGENT_HOME),
    ]
    mounts += [Mount(type="bind", source=p, target=p, read_only=True) for p in ro_mounts]
    if previous:
        mounts.append(Mount(type="bind", source=str(task_dir / "previous-attempt.md"), target=PREVIOUS, read_only=True))
    if validate:
        mounts.append(Mount(type="bind", source=str(task_dir / "validate.sh"), target=VALIDATE, read_only=True))
    if secrets:
        mounts.append(Mount(type="bind", source=str(task_dir / secrets_file), target=SECRETS, read_only=True))
    if proxy is not None:
        mounts.append(task_mount(proxy))
    for v in cfg.volumes:
        if v.host is not None:
            mounts.append(Mount(type="bind", source=str(Path(v.host).expanduser()), target=v.container,
                                read_only=v.readonly))
        elif v.name is not None:
            # `tsk-` as upstream tsk names them, so its users' cache volumes are found again
            mounts.append(Mount(type="volume", source=named_volume(v.name), target=v.container,
                                read_only=v.readonly))
    return tuple(mounts)


def container_spec(cfg: ResolvedConfig, *, task_id: str, image: str, env: dict[str, str],
                   mounts: tuple[Mount, ...], host: HostFacts, proxy: ProxyPlan | None, project: str,
                   sudo: bool, privileged: bool, interactive: bool = False, engine: str = "docker") -> ContainerSpec:
    """With a proxy, the container gets no network at all, only loopback: the proxy's sockets (in
    `mounts`) are its way out. Without one (--no-network-isolation), the engine's default bridge.
    `cfg.dind` loosens the sandbox for nested container builds (DIND_SECURITY, DIND_CAPS); on Podman
    also its SELinux label, which keeps a nested Podman from taking over its own stdio."""
    caps: tuple[str, ...] = ()
    security: tuple[str, ...] = ("no-new-privileges",)
    command: tuple[str, ...] = ("bash", RUN_SCRIPT)
    user = f"{host.uid}:{host.gid}"
    if sudo:
        # sudo is setuid root: the container needs new privileges and the capabilities sudo uses.
        # It starts as root only to give the host's uid a passwd entry and a sudoers line, then
        # drops to that uid for everything else.
        security = ()
        caps = ("SETUID", "SETGID", "CHOWN", "DAC_OVERRIDE", "FOWNER", "AUDIT_WRITE", "KILL")
        u, g = host.uid, host.gid
        command = ("bash", "-c", (
            f"getent group {g} >/dev/null || groupadd -o -g {g} tsk; "
            f"getent passwd {u} >/dev/null || useradd -o -u {u} -g {g} -d {AGENT_HOME} -M -s /bin/bash tsk; "
            f"echo '#{u} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/tsk-user && chmod 0440 /etc/sudoers.d/tsk-user; "
            f"exec setpriv --reuid={u} --regid={g} --clear-groups bash {RUN_SCRIPT}"))
        user = "0:0"
    tmpfs: dict[str, str] = {}
    if cfg.dind:
        security = tuple(o for o in security if o != "no-new-privileges") + DIND_SECURITY
        if engine == "podman":
            security += ("label=disable",)
        caps = tuple(dict.fromkeys((*caps, *DIND_CAPS)))
        tmpfs[CONTAINER_STORAGE] = "mode=1777"
    labels = {"dev.tsk.kind": "task", "dev.tsk.task": task_id, "dev.tsk.project": project}
    if proxy is not None:
        labels[TASK_LABEL] = proxy.fingerprint
    return ContainerSpec(
        name=f"tsk-task-{task_id}", image=image, command=command,
        user=user, workdir=workdir(project), env=env, labels=labels,
        mounts=mounts, network="none" if proxy is not None else None, hostname=f"tsk-{task_id}"[:63],
        extra_hosts={PROXY_HOST: PROXY_ADDR} if proxy is not None else {},
        # the host ports' listeners run as the agent's uid: let it bind a port below 1024 too
        sysctls={"net.ipv4.ip_unprivileged_port_start": "0"} if proxy is not None else {},
        cap_drop=("ALL",), cap_add=caps, security_opt=security,
        memory_bytes=int(cfg.memory_gb * 1024**3), nano_cpus=int(min(cfg.cpu, os.cpu_count() or 1) * 1e9),
        pids_limit=cfg.pids_limit, log_max_bytes=LOG_MAX,
        devices=tuple(cfg.devices), privileged=privileged, tty=interactive, stdin_open=interactive,
        tmpfs=tmpfs,
    )
