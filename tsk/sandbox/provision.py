"""The engine half of a task: from a recorded task with its snapshot to a created (not started)
container (image, credentials, run script, overlay volume, proxy), and back again
(`cleanup`). `tsk/sandbox/runner.py` drives it for `tsk run`, `tsk shell` and server workers."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import msgspec

from tsk.agents import get_agent
from tsk.agents.base import AGENT_HOME, Agent, CredentialFile
from tsk.config.secrets import is_secret
from tsk.errors import ImageMissing, TskError
from tsk.files import chown_tree, clear_special_bits, real_dir, remove_tree, write_private
from tsk.holds import fail_once, hold
from tsk.sandbox import plan as sandbox_plan
from tsk.sandbox import secrets
from tsk.sandbox.proxy import ProxyPlan, ensure_proxy, plan_proxy, reap_idle, task_forward_script, touch
from tsk.tasks import model
from tsk.tasks.model import Task

if TYPE_CHECKING:
    from tsk.config.schema import ResolvedConfig
    from tsk.context import Context
    from tsk.layers.store import BuildEvents
    from tsk.snapshot.take import Snapshot


class RunEvents(Protocol):
    def phase(self, name: str, seconds: float) -> None: ...
    def line(self, text: str) -> None: ...
    def note(self, text: str) -> None: ...
    def build_events(self) -> BuildEvents | None: ...


@dataclass
class Prepared:
    """What provisioning made for a task, filled in as it goes, so cleanup removes exactly that."""

    task: Task
    task_dir: str
    agent: Agent
    container: str = ""
    volume: str = ""
    proxy: str | None = None  # the proxy's fingerprint; None without network isolation
    credentials: list[CredentialFile] = field(default_factory=list)  # copied into its home; removed at cleanup


def host_facts(repo: Path, author: str | None = None) -> sandbox_plan.HostFacts:
    """This host's side of the sandbox; the git identity is the task's `author` when it came with one
    (added on another host), else the repo's."""
    from tsk.snapshot.git import identity

    if author:
        name, _, email = author.rpartition(" <")
        email = email.removesuffix(">")
    else:
        name, email = identity(repo)
    uid, gid = (os.getuid(), os.getgid()) if os.getuid() != 0 else (sandbox_plan.SANDBOX_UID, sandbox_plan.SANDBOX_UID)
    return sandbox_plan.HostFacts(uid=uid, gid=gid, git_name=name, git_email=email, home=str(Path.home()))


def hand_over(tdir: Path, snap: Snapshot, uid: int, gid: int) -> None:
    """When tsk runs as root, the agent does not: give it what it writes and reads (its parents stay
    root's and 0700, so no other user of the host reaches them). The shared checkout is given once:
    the overlay checks the permissions of its dirs for files the agent makes in them."""
    if uid == os.getuid():
        return
    tree = Path(snap.checkout_tree)
    if tree.stat().st_uid != uid:
        chown_tree(tree, uid, gid)
    for name in ("instructions.md", "run.sh", secrets.RUNTIME, "prompt.md", "previous-attempt.md", "validate.sh"):
        if (tdir / name).is_file():
            os.lchown(tdir / name, uid, gid)
    for sub in ("output", "home", "git", "changes", "upper"):
        if (tdir / sub).is_dir():
            chown_tree(tdir / sub, uid, gid)


@contextmanager
def timed(task: Task, name: str, ui: RunEvents) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        task.timings[name] = round(time.perf_counter() - t0, 4)
        ui.phase(name, task.timings[name])


def write_credentials(home: Path, files: list[CredentialFile]) -> None:
    """Copies of the agent's login files in the task's home: 0600 from the first byte, written
    atomically, never through a link (the home is the sandbox's to rewrite between attempts)."""
    for cred in files:
        rel = Path(os.path.relpath(cred.container_path, AGENT_HOME))
        parent = real_dir(home, str(rel.parent), make=True) if str(rel.parent) != "." else home
        if parent is None:
            raise TskError(f"the sandbox replaced a dir of {home / rel.parent} with a link or a file; "
                           "the agent's credentials are not written there", hint="delete the task and run it again")
        write_private(parent / rel.name, cred.content)
        if cred.mode != 0o600:  # a plugin's script keeps its exec bit; nothing gets more than 0755
            os.chmod(parent / rel.name, cred.mode & 0o755)


def remove_credentials(home: Path, files: list[CredentialFile]) -> None:
    for cred in files:
        rel = Path(os.path.relpath(cred.container_path, AGENT_HOME))
        parent = real_dir(home, str(rel.parent)) if str(rel.parent) != "." else home
        if parent is not None:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                (parent / rel.name).unlink()


def agent_for(cfg: ResolvedConfig) -> Agent:
    """The agent plugin the config names; one from config counts when it has its own setup layer."""
    return get_agent(cfg.agent, known_extra=[n for n, s in cfg.agent_config.items() if s.setup])


def task_config(task: Task) -> ResolvedConfig:
    """The config the task was created with (kept with it, so a queued task runs as it was added)."""
    from tsk.config.schema import ResolvedConfig

    return msgspec.convert(task.config, ResolvedConfig)


class AttemptPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What is particular to one attempt of a task."""

    n: int = 1
    resume: str | None = None  # the agent's session to go on with (the last attempt's)
    prompt: str | None = None  # this attempt's instructions; None: the task's own
    previous: str | None = None  # /tsk/previous-attempt.md: how the last attempt failed


def provision(ctx: Context, ui: RunEvents, *, made: Prepared, interactive: bool,
              attempt: AttemptPlan | None = None) -> Prepared:
    """Image, credentials, run.sh, overlay volume, a created (not started) container, and its proxy
    running (ensured after the container exists, so an idle-proxy reaper sees the task)."""
    attempt = attempt or AttemptPlan()
    for name in ("base-commit", "timing", "validation-exit", "validation.log"):  # the last attempt's verdicts
        stale = model.output(Path(made.task_dir)) / name
        if stale.is_dir() and not stale.is_symlink():
            remove_tree(stale)
        elif stale.is_symlink() or stale.exists():
            stale.unlink()
    from tsk.layers import service
    from tsk.snapshot.inside import commit_script, overlay_volume_opts, prepare_script
    from tsk.snapshot.take import load_snapshot

    task, tdir, task_id = made.task, Path(made.task_dir), made.task.id
    repo = Path(task.repo)
    cfg, missing = secrets.fill(task_config(task), secrets.load(tdir))
    for name in missing:
        ui.note(f"env {name} has no value here: it is a secret, kept out of the task's record, and its value "
                "was not found with the task (retried from a task that had ended?); it is left unset")
    cfg = msgspec.structs.replace(cfg, env=tuple(v for v in cfg.env if v.name not in missing))
    agent = made.agent
    snap = load_snapshot(tdir)
    request = service.TargetRequest(repo=str(repo), stacks=(cfg.stack,), agents=(cfg.agent,))
    store = service.make_store(ctx, cfg, ui.build_events())
    with timed(task, "image", ui):
        targets, _ = service.ensure(ctx, request, cfg, store)
        image = targets[0].chain[-1].tag
        proxy_image = targets[-1].chain[-1].tag
    task.image = image

    pplan: ProxyPlan | None = None
    if task.network_isolation:
        pplan = plan_proxy(squid_conf=cfg.squid_conf, host_ports=tuple(cfg.host_ports), image=proxy_image,
                           cache_dir=ctx.cache_dir, engine=ctx.engine.name)
    with timed(task, "container_create", ui):
        host = host_facts(repo, task.author)
        made.credentials = agent.credential_files(Path(host.home), ctx.environ)
        write_credentials(tdir / "home", made.credentials)
        wd = sandbox_plan.workdir(cfg.project)

        for name, text in (("prompt.md", attempt.prompt), ("previous-attempt.md", attempt.previous),
                           ("validate.sh", cfg.validate if not interactive else None)):
            path = tdir / name
            if text is None:
                path.unlink(missing_ok=True)
            else:
                write_private(path, (text.rstrip("\n") + "\n").encode())
        argv = agent.command(sandbox_plan.INSTRUCTIONS, resume=attempt.resume, model=cfg.model)
        if interactive:  # the instructions and that command shown, then a shell
            argv = sandbox_plan.shell_argv(argv)
        script = sandbox_plan.run_script(
            agent_argv=argv, prepare=prepare_script(snap, wd),
            baseline=commit_script(wd, "tsk: uncommitted changes in the working tree when the task was created"),
            commit=commit_script(wd, f"tsk: work left uncommitted by {cfg.agent} in task {task_id}"),
            forward=task_forward_script(pplan.host_ports) if pplan is not None else "",
            merge_stderr=not agent.structured_output, interactive=interactive,
            validate=cfg.validate is not None, workdir=wd)
        write_private(tdir / "run.sh", script.encode())
        env = sandbox_plan.container_env(cfg, agent_env=agent.env(ctx.environ), host=host, task_id=task_id,
                                         isolated=pplan is not None, attempt=attempt.n)
        hidden = {k: v for k, v in env.items() if is_secret(k)}
        env = {k: v for k, v in env.items() if k not in hidden}
        if hidden:
            write_private(tdir / secrets.RUNTIME, secrets.env_file(hidden))
        volume = made.volume = f"tsk-task-{task_id}"
        engine = ctx.engine
        engine.volume_create(volume, driver_opts=overlay_volume_opts(snap, tdir),
                             labels={"dev.tsk.kind": "task-volume", "dev.tsk.task": task_id})
        if cfg.dind:
            # The tmpfs's mount point, made here: the engine would make its parents root's. Docker gives a
            # tmpfs its mount point's mode (not the mode asked for), hence one anyone may write to.
            point = real_dir(tdir / "home", sandbox_plan.CONTAINER_STORAGE.removeprefix(f"{AGENT_HOME}/"), make=True)
            if point is not None:
                point.chmod(0o1777)
        hand_over(tdir, snap, host.uid, host.gid)
        mounts = sandbox_plan.container_mounts(cfg, volume=volume, task_dir=tdir, git_dir=snap.git_dir,
                                               changes_dir=snap.changes_dir, ro_mounts=snap.ro_mounts,
                                               project=cfg.project, proxy=pplan, secrets=bool(hidden),
                                               prompt_file="prompt.md" if attempt.prompt else "instructions.md",
                                               previous=attempt.previous is not None,
                                               validate=cfg.validate is not None and not interactive)
        spec = sandbox_plan.container_spec(cfg, task_id=task_id, image=image, env=env, mounts=mounts, host=host,
                                           proxy=pplan, project=cfg.project, sudo=cfg.sudo,
                                           privileged=cfg.privileged, interactive=interactive,
                                           engine=engine.name)
        fail_once(ctx.environ, "create")
        try:
            made.container = engine.container_create(spec)
        except ImageMissing:  # removed (pruned) since it was resolved: make it again, once
            ui.note(f"the image {image} was removed meanwhile; making it again")
            service.ensure(ctx, request, cfg, store)
            made.container = engine.container_create(spec)
        hold(ctx.environ, "created")
    if pplan is not None:
        with timed(task, "proxy", ui):
            reused = ensure_proxy(engine, pplan, ctx.paths.runtime)
            made.proxy = pplan.fingerprint
            ui.note(f"proxy {pplan.name} {'reused' if reused else 'started'}")
    return made


def cleanup(ctx: Context, p: Prepared) -> None:
    """Remove what an attempt made on the engine and its writable dirs; keep the task dir's record, output,
    home (a later attempt resumes the agent's session there) and the snapshot's changes (a later attempt
    may start from them again: the runner removes them when the task ends)."""
    engine = ctx.engine
    if p.container:
        engine.container_remove(p.container)
    if p.volume:
        engine.volume_remove(p.volume)
    tdir = Path(p.task_dir)
    for sub in ("upper", "work", "git"):
        remove_tree(tdir / sub)
    remove_credentials(tdir / "home", p.credentials)
    (tdir / secrets.RUNTIME).unlink(missing_ok=True)
    for sub in ("home", "output"):  # what stays of the sandbox's writing: no setuid or setgid bit survives
        clear_special_bits(tdir / sub)
    if p.proxy is not None:
        touch(p.proxy, ctx.paths.runtime)
        reap_idle(engine, ctx.paths.runtime, idle_seconds=float(ctx.environ.get("TSK_PROXY_IDLE_SECONDS", "900")))


def cleanup_noting(ctx: Context, p: Prepared, ui: RunEvents) -> None:
    """Cleanup whose failure (an engine refusal, another process reaping the same proxy) must not change
    the task's result: the work is back already. Leftovers are found later by their labels."""
    from tsk.errors import TskError

    try:
        cleanup(ctx, p)
    except TskError as exc:
        ui.note(f"cleanup of task {p.task.id} was incomplete: {exc.message}")
