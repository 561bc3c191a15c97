"""A task's code through the fleet's git remote (`[server] remote`, DESIGN §10), on the queue's side:
the store and the remote together. A worker on any host builds the task's dir in its own data dir
from the store's record and the remote (`prepare`) and puts the work on the remote before the task is
recorded as ended (`worker_fetch`); the host that added the task brings results back into the user's
repo as their task branches (`fetch_results`: `tsk wait`, `tsk list`, `tsk fetch`). The git side is
tsk/snapshot/remote.py; without a remote none of this runs and tasks go as they always did."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from tsk.config.fleet import fleet
from tsk.errors import TskError, UsageError
from tsk.queue.stores import open_store
from tsk.snapshot import remote as rmt
from tsk.tasks import model
from tsk.tasks.model import Task
from tsk.tasks.owner import host_name
from tsk.tasks.store import ENDED, TaskStore

if TYPE_CHECKING:
    from tsk.context import Context
    from tsk.sandbox.runner import Fetch


class Fetched(msgspec.Struct, kw_only=True):
    """A task's result brought back from the remote into the user's repo, or why it was not."""

    id: str
    action: str  # "fetched", "already there" (the branch was at that commit), "already fetched", "not fetched"
    branch: str | None = None
    head: str | None = None
    problem: str | None = None  # what kept it on the remote, and what to do


# -- a worker --------------------------------------------------------------------------------------

def prepare(ctx: Context, store: TaskStore, task: Task) -> Fetch | None:
    """For a claimed task whose code travels through the remote (its snapshot was pushed, or it starts
    from results that were): its task dir in this host's data dir, made from the record and the remote
    (instructions, task.json, a snapshot taken from this host's mirror of the remote), and the fetch
    that puts its work back on the remote. None for a task whose code is in a repo here, as before."""
    from tsk.sandbox.provision import agent_for, task_config
    from tsk.snapshot.gitdir import object_format_of
    from tsk.snapshot.take import take_snapshot

    starts = (*task.parents, *task.start_from)
    from_results = bool(starts) and task.source_commit is None
    found = {t.id: t for t in store.tasks(ids=starts)} if from_results else {}
    if task.snapshot_ref is None and not any(t.snapshot_ref or t.result_ref for t in found.values()):
        return None
    remote = fleet(ctx).remote
    if remote is None:
        what = (f"its code is on a git remote ({task.snapshot_ref})" if task.snapshot_ref and not from_results
                else "the results it starts from are on a git remote")
        # the server records the message alone as the task's error: the fix goes in it
        raise TskError(f"task {task.id} was added on {task.origin or 'another host'} and {what}, but this server "
                       f"has no `[server] remote` to fetch it from; set `[server] remote = \"<url or path>\"` (the "
                       f"remote the adding host pushes to) in {ctx.paths.config_file}, restart the server, then "
                       f"`tsk retry {task.id}`")
    data, name = ctx.paths.data, Path(task.repo).name
    if from_results:
        from tsk.snapshot.merge import start_commit

        parents = [found[t] for t in starts if t in found]
        stray = [p.id for p in parents if not (p.result_ref or p.snapshot_ref)]
        if stray:
            raise TskError(f"task {task.id} starts from the results of {', '.join(stray)}, which did not go "
                           "through the git remote; run it on a server without `[server] remote` on the host that "
                           "added them, or retry them with `[server] remote` set")
        fmt = object_format_of(next((p.result_commit or p.source_commit or "" for p in parents), ""))
        mirror = rmt.fetch_into_mirror(data, remote, name, [r for p in parents for r in (p.result_ref, p.snapshot_ref)
                                                            if r], fmt)
        start = start_commit(mirror, parents)
        ref = rmt.snapshot_ref(task.id)
        rmt.push_from_mirror(mirror, remote, start, ref)  # where it starts, for a host that runs it again
        task.source_commit, task.snapshot_ref = start, ref
    else:
        assert task.snapshot_ref is not None
        refs = [task.snapshot_ref, *([task.result_ref] if task.result_ref else [])]  # an earlier attempt's work
        mirror = rmt.fetch_into_mirror(data, remote, name, refs, object_format_of(task.source_commit or ""))
        start = rmt.resolve(mirror, task.snapshot_ref)
    tdir = model.make_task_dir(data, task.id, agent_for(task_config(task)).home_dirs)
    if not (tdir / "instructions.md").is_file():
        from tsk.files import write_private

        write_private(tdir / "instructions.md", store.instructions(task.id).encode())
    take_snapshot(mirror, tdir, data_dir=data, branch=task.branch, from_commit=start)
    notes = _secrets_left_behind(task, tdir)
    model.save(task, tdir)
    store.save(task)
    return worker_fetch(remote, mirror, notes)


def _secrets_left_behind(task: Task, tdir: Path) -> tuple[str, ...]:
    """Secret env values stay in the task dir of the host that added the task: they do not travel. On
    another host the sandbox runs without them (provision leaves them unset); this says so in the task's
    log and summary."""
    from tsk.agents.events import Message, encode_event
    from tsk.sandbox import secrets
    from tsk.sandbox.provision import task_config

    _, missing = secrets.fill(task_config(task), secrets.load(tdir))
    if not missing:
        return ()
    note = (f"env {', '.join(missing)}: secret values stay on the host that added the task "
            f"({task.origin or 'unknown'}) and do not travel through the git remote; they are unset in this "
            "sandbox")
    log = model.agent_log(tdir)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(encode_event(Message(f"tsk: {note}", role="warning")) + b"\n")
    return (note,)


def worker_fetch(remote: str, mirror: Path, notes: tuple[str, ...] = ()) -> Fetch:
    """fetch_work into the mirror, then the result pushed to `refs/tsk/results/<id>`: the task ends only
    once its work is on the remote. `result_branch` stays None (it means "in the user's repo", which only
    the adding host does); `result_ref` and `result_commit` say where the work is."""

    def fetch(task: Task, tdir: Path) -> tuple[str, ...]:
        from tsk.sandbox.runner import fetch_work

        kept, pushed = (task.result_commit, task.commits), task.result_commit if task.result_ref else None
        task.result_branch = task.branch if task.result_ref else None  # an earlier attempt's work: in the mirror
        try:
            said = fetch_work(task, tdir)
            if task.result_branch is not None and task.result_commit and task.result_commit != pushed:
                ref = rmt.result_ref(task.id)
                rmt.push_from_mirror(mirror, remote, task.result_commit, ref)
                task.result_ref = ref
        except BaseException:
            task.result_commit, task.commits = kept
            raise
        finally:
            task.result_branch = None
        return (*notes, *said)

    return fetch


# -- the adding host -------------------------------------------------------------------------------

def fetch_results(ctx: Context, store: TaskStore, ids: Iterable[str] | None = None) -> list[Fetched]:
    """Bring back the results waiting on the remote of this host's ended tasks (of `ids`, or all):
    those with a result ref and no branch yet, whose repo is here. Without a remote configured, not even
    the store is asked; no git runs unless a task is due."""
    problem: str | None = None
    try:
        remote = fleet(ctx).remote
    except TskError as exc:  # a remote tsk cannot use: said for each task it keeps out
        remote, problem = "", str(exc)
    if remote is None:
        return []  # none here (now): `tsk fetch` says so
    here = host_name(ctx.environ)
    tasks = store.tasks(ids=ids) if ids is not None else store.tasks(statuses=ENDED)
    due = [t for t in tasks if t.status in ENDED and t.result_ref and not t.result_branch and t.origin == here
           and Path(t.repo).is_dir()]
    if problem is not None:
        return [Fetched(id=t.id, action="not fetched", problem=problem) for t in due]
    return [_bring(ctx, store, t, remote) for t in due]


def _bring(ctx: Context, store: TaskStore, task: Task, remote: str) -> Fetched:
    from tsk.queue.changes import record_changes

    try:
        made = rmt.bring_back(Path(task.repo), remote, task.id, task.branch, task.result_commit)
    except TskError as exc:
        return Fetched(id=task.id, action="not fetched", problem=str(exc))
    fresh = store.get(task.id)
    if fresh is not None:
        fresh.result_branch = task.branch
        store.save(fresh)
        record_changes(store, task.id, ctx.paths.data)  # the files it changed, now that the commits are here
        tdir = model.task_dir(ctx.paths.data, task.id)
        kept = store.get(task.id)
        if tdir.is_dir() and kept is not None:
            model.save(kept, tdir)
    return Fetched(id=task.id, action="fetched" if made else "already there", branch=task.branch,
                   head=task.result_commit)


def bring_back_for(ctx: Context, store: TaskStore, tasks: list[Task]) -> tuple[list[Task], dict[str, str]]:
    """fetch_results for these tasks, when one of them has a result only on the remote (else nothing is
    asked): the tasks as the store has them after (a fetched one with its branch and what it changed),
    and why, for each one that was not fetched."""
    if not any(t.result_ref and not t.result_branch for t in tasks):
        return tasks, {}
    fetched = fetch_results(ctx, store, [t.id for t in tasks])
    fresh = {t.id: t for t in store.tasks(ids=[f.id for f in fetched])} if fetched else {}
    return [fresh.get(t.id, t) for t in tasks], {f.id: f.problem for f in fetched if f.problem}


def fetch(ctx: Context, refs: list[str]) -> list[Fetched]:
    """`tsk fetch ID…`: each task's result from the remote into its repo as its task branch. Every id is
    checked before anything is fetched."""
    if not refs:
        raise UsageError("tsk fetch needs the id of a task whose result is on the git remote",
                         hint="see `tsk list` for task ids")
    remote = fleet(ctx).remote
    if remote is None:
        raise UsageError("no git remote to fetch results from: `[server] remote` is not set",
                         hint=f"set `[server] remote = \"<url or path>\"` in {ctx.paths.config_file}")
    here = host_name(ctx.environ)
    store = open_store(ctx)
    try:
        tasks = [t for t in (store.get(store.resolve(r)) for r in refs) if t is not None]
        for t in tasks:
            _check_fetchable(t, here, remote)
        return [Fetched(id=t.id, action="already fetched", branch=t.result_branch, head=t.result_commit)
                if t.result_branch else _bring(ctx, store, t, remote) for t in tasks]
    finally:
        store.close()


def _check_fetchable(t: Task, here: str, remote: str) -> None:
    if t.result_branch:
        return
    by_hand = f"git fetch {rmt.shown(remote)} {rmt.result_ref(t.id)}:refs/heads/{t.branch}"
    if t.status not in ENDED:
        raise UsageError(f"task {t.id} is {t.status}: it has no result yet", hint=f"tsk wait {t.id}")
    if not t.result_ref:
        why = ("its code did not go through the git remote (it ran from the repository here, and its branch came "
               "back when it ended, if it made commits)" if not t.snapshot_ref else "it made no commits")
        raise UsageError(f"task {t.id} has no result on the git remote: {why}")
    if t.origin and t.origin != here:
        raise UsageError(f"task {t.id} was added on {t.origin}, where its repository is",
                         hint=f"run `tsk fetch {t.id}` there, or in a clone here: {by_hand}")
    if not Path(t.repo).is_dir():
        raise UsageError(f"task {t.id}: its repository {t.repo} is gone", hint=f"in a clone of it: {by_hand}")


# -- deleted tasks ---------------------------------------------------------------------------------

def forget(ctx: Context, tasks: Iterable[Task]) -> str | None:
    """Deleted tasks' refs off the remote (their snapshots and results), from any host. Best effort:
    the tasks are gone either way; returns what kept refs there, for the caller to say."""
    remote = fleet(ctx).remote
    by_repo: dict[str, list[str]] = {}
    for t in tasks:
        refs = [r for r in (t.snapshot_ref, t.result_ref) if r]
        if refs:
            by_repo.setdefault(Path(t.repo).name, []).extend(refs)
    if remote is None or not by_repo:
        return None
    try:
        for name, refs in by_repo.items():
            mirror = rmt.fetch_into_mirror(ctx.paths.data, remote, name, ())
            rmt.delete_refs(mirror, remote, refs)
    except TskError as exc:
        return f"their refs stay on the git remote: {exc.message}"
    return None
