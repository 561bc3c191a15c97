"""`tsk retry`: a new task from an ended one's instructions and config, with a fresh snapshot; the
flags that change it (RetryOverrides), and its dependents following it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from tsk.errors import TskError, UsageError
from tsk.queue import scheduler
from tsk.queue.control import Outcome, Quiet, resolve_parent, settle
from tsk.queue.stores import open_store
from tsk.tasks import model
from tsk.tasks.model import Task
from tsk.tasks.store import ACTIVE

if TYPE_CHECKING:
    from tsk.config.schema import ResolvedConfig
    from tsk.context import Context


class RetryOverrides(msgspec.Struct, frozen=True, kw_only=True):
    """What `tsk retry`'s flags change in the task it retries (None: as the old task had it). Only the
    named tasks take them; dependents that follow keep their own config."""

    name: str | None = None
    agent: str | None = None
    stack: str | None = None
    project: str | None = None  # its [project.NAME] settings, resolved again from the config files
    model: str | None = None
    sudo: bool | None = None
    privileged: bool | None = None
    dind: bool | None = None
    devices: tuple[str, ...] = ()  # added to the old task's
    container_engine: str | None = None
    parents: tuple[str, ...] | None = None  # wait for these instead of the old task's parents
    from_repo: str | None = None  # start from this repository's working tree, not from the parents' results

    def changes_config(self) -> bool:
        return any(v is not None for v in (self.agent, self.stack, self.project, self.model, self.sudo,
                                           self.privileged, self.dind, self.container_engine)) or bool(self.devices)


# Asked when a task to retry has dependents: retry them too? (tsk retry asks on a terminal.)
AskChildren = Callable[[Task, list[Task]], bool]


NO_OVERRIDES = RetryOverrides()


def retry(ctx: Context, refs: list[str], *, children: bool = True, overrides: RetryOverrides = NO_OVERRIDES,
          edit: Callable[[str], str] | None = None, ask_children: AskChildren | None = None) -> list[Outcome]:
    """A new task from each old one's instructions and config (a fresh snapshot of the repo), changed as
    `overrides` says and its instructions passed through `edit`. Unless `children` is False (or
    `ask_children` says no), its descendants follow: a waiting one is re-linked to the new task, an ended
    one is recreated with its parents mapped to the new tasks."""
    from tsk.sandbox.runner import RunRequest, create_task

    store = open_store(ctx)
    out: list[Outcome] = []
    try:
        links = store.links()
        new_parents = None if overrides.parents is None else tuple(
            dict.fromkeys(resolve_parent(store, p) for p in overrides.parents))
        for ref in refs:
            tid = store.resolve(ref)
            old = store.get(tid)
            assert old is not None
            if old.status in ACTIVE:
                raise UsageError(f"task {tid} is {old.status}; only a task that has ended can be retried",
                                 hint=f"cancel it first: tsk cancel {tid}")
            mapping: dict[str, str] = {}
            below = scheduler.descendants(links, tid) if children else []
            if below and ask_children is not None:
                kids = [t for t in (store.get(d) for d in below) if t is not None]
                if kids and not ask_children(old, kids):
                    below = []
            for oid in [tid, *below]:
                o = store.get(oid)
                if o is None:
                    continue
                if oid != tid and o.status in ("WAITING", "QUEUED"):
                    for p in o.parents:
                        if p in mapping:
                            store.relink(oid, p, mapping[p])
                    continue
                if oid != tid and o.status == "RUNNING":
                    continue
                named = oid == tid
                parents = tuple(mapping.get(p, p) for p in o.parents)
                instructions = store.instructions(oid)
                repo = o.repo
                if named:
                    if new_parents is not None:
                        parents = new_parents
                    if overrides.from_repo is not None:
                        repo, parents = overrides.from_repo, new_parents or ()
                    if edit is not None:
                        instructions = edit(instructions)
                if named and set(parents) & {tid, *below}:
                    raise UsageError(f"--parent: task {tid} cannot wait for itself or for a task that follows it",
                                     hint="name a task that is not among its dependents, or add --no-children")
                req = RunRequest(instructions=instructions, type=o.type,
                                 name=overrides.name if named and overrides.name else o.name, repo=repo,
                                 agent=o.agent, from_branch=o.from_branch, network_isolation=o.network_isolation,
                                 scope=o.scope, plan=o.plan, plan_task=o.plan_task, gate=o.gate, issue=o.issue)
                cfg = _config(ctx, o, overrides if named else NO_OVERRIDES, Path(repo))
                if named and cfg.agent != o.agent:
                    _refuse_prose(ctx, o.type, cfg.agent, Path(repo))
                new = create_task(ctx, req, Quiet(), parents=parents, cfg=cfg)
                new.retry_of = oid
                store.add(new, instructions=req.instructions, reason=f"retry of {oid}")
                mapping[oid] = new.id
                out.append(Outcome(id=oid, action="retried", new_id=new.id))
        settle(store)
        return out
    finally:
        store.close()


def _refuse_prose(ctx: Context, template: str, agent: str, repo: Path) -> None:
    from tsk.recipes.render import refuse_prose_for_exec, template_is_script
    from tsk.recipes.store import search_paths

    if agent == "exec":
        refuse_prose_for_exec(template, template_is_script(template, search_paths(repo, ctx.paths)), [agent])


def _config(ctx: Context, old: Task, change: RetryOverrides, repo: Path) -> ResolvedConfig:
    """The old task's config with the secret values its record hides, changed as `change` says. A new
    project, or a task imported from upstream tsk, resolves again: from the config files as they are now."""
    from tsk.config.schema import ProjectSettings

    imported = not old.config  # from upstream tsk's database: it kept no config of ours
    if imported or (change.project is not None and change.project != old.project):
        cli = ProjectSettings(agent=change.agent or old.agent, stack=change.stack or (old.stack if imported else None),
                              model=change.model, sudo=change.sudo, privileged=change.privileged, dind=change.dind,
                              devices=change.devices or None)
        cfg = ctx.config(repo, cli=cli, project=change.project or old.project)
        return cfg if change.container_engine is None else _set(cfg, container_engine=change.container_engine)
    cfg = _with_secrets(ctx, old)
    if not change.changes_config():
        return cfg
    given = (("agent", change.agent), ("stack", change.stack), ("model", change.model), ("sudo", change.sudo),
             ("privileged", change.privileged), ("dind", change.dind), ("container_engine", change.container_engine))
    picked: dict[str, object] = {k: v for k, v in given if v is not None}
    if change.devices:
        picked["devices"] = tuple(dict.fromkeys((*cfg.devices, *change.devices)))
    if change.stack is not None:
        picked["stack_detected"] = False
    return _set(cfg, **picked)


def _set(cfg: ResolvedConfig, **values: object) -> ResolvedConfig:
    """`values` replacing the config's own, each recorded as coming from the command line."""
    sources = {**cfg.sources, **{k: "cli" for k in values if k != "stack_detected"}}
    return msgspec.structs.replace(cfg, sources=sources, **values)


def _with_secrets(ctx: Context, old: Task) -> ResolvedConfig:
    """A retry runs with the old task's config; the secret env values its record hides come from the
    old task dir while it waits, else from the user's config as it is now (they were never stored)."""
    from tsk.sandbox import secrets
    from tsk.sandbox.runner import task_config

    cfg = task_config(old)
    values = secrets.load(model.task_dir(ctx.paths.data, old.id))
    cfg, missing = secrets.fill(cfg, values)
    if missing:
        with contextlib.suppress(TskError):  # the repo or its config may be gone: the run says what is unset
            now = {v.name: v.value for v in ctx.config(Path(old.repo), project=old.project).env}
            cfg, _ = secrets.fill(cfg, now)
    return cfg
