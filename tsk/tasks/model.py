"""A task's record, and its dir. The truth is the task store (tsk/tasks/store.py); a copy is kept as
task.json in the task dir, next to its instructions and logs, for people and tools that look there.

The task dir (0700) is split by who may write: `log/` (the agent's events and raw output), task.json,
instructions.md, run.sh and snapshot.json are tsk's and are never mounted writable into the sandbox;
`output/`, `home/`, `git/` and the overlay's `upper/` are the sandbox's, so tsk reads from them only
with tsk/files.py's read_bounded and never follows a link there."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path
from typing import Literal

import msgspec

from tsk.files import private_dir, write_private

Status = Literal["QUEUED", "WAITING", "RUNNING", "BLOCKED", "COMPLETE", "FAILED", "CANCELLED"]

# How an attempt ended when it did not succeed (DESIGN §7). The remediation ladder (tsk/sandbox/ladder.py)
# decides from it what comes next.
FailureClass = Literal["timeout", "stalled", "looping", "budget", "validation", "agent_error", "api_auth",
                       "api_rate_limit", "api_overloaded", "infra", "cancelled", "conflict"]


class Task(msgspec.Struct, kw_only=True):
    id: str
    name: str
    type: str
    agent: str
    stack: str
    project: str
    repo: str
    branch: str  # the result branch this task would create: tsk/<type>/<name>/<id>
    status: Status = "QUEUED"
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    source_commit: str | None = None
    from_branch: str | None = None
    result_branch: str | None = None  # set only when the branch was fetched into the user's repo
    result_commit: str | None = None  # what a child starts from: the fetched head, else the source commit
    commits: int = 0
    error: str | None = None
    summary: str | None = None
    network_isolation: bool = True
    timings: dict[str, float] = {}
    image: str | None = None
    config: dict[str, object] = {}
    parents: tuple[str, ...] = ()  # a child starts from its parents' results (their merge, for several)
    blocked: str | None = None  # why a waiting or blocked task cannot start yet
    retry_of: str | None = None
    attempts: int = 0  # attempts made so far
    max_attempts: int = 3
    failure_class: FailureClass | None = None  # the last attempt's, while failed or blocked
    cost_usd: float | None = None  # every attempt's cost together, as the agents report it
    turns: int | None = None
    blocked_until: float | None = None  # BLOCKED: when it may be queued again (None: when credentials change)
    credential_digest: str | None = None  # BLOCKED on api_auth: the credentials it failed with
    scope: tuple[str, ...] = ()  # write scope: globs of the paths it may change; none: it conflicts with nothing
    plan: str | None = None  # the plan it belongs to, by name
    plan_task: str | None = None  # its id in that plan
    gate: int = 0  # the plan's phase or wave it is in (0-based)
    issue: int | None = None  # the forge issue it came from
    scope_after: tuple[str, ...] = ()  # the tasks it waited for because their scopes overlap its own
    start_from: tuple[str, ...] = ()  # besides its parents, the tasks whose results it starts from
    baseline_commit: str | None = None  # the source plus the user's uncommitted changes, as the sandbox made it
    changed_files: tuple[str, ...] | None = None  # what its result changed since its baseline, once it has ended
    outside_scope: tuple[str, ...] = ()  # of those, the files its scope does not cover
    pr_number: int | None = None
    pr_url: str | None = None
    pr_state: Literal["open", "closed", "merged"] | None = None  # as the forge said when last asked
    # A fleet (DESIGN §10): where it was added and where it runs, and what travels through the git remote.
    origin: str | None = None  # the host that added it (its repo is there)
    host: str | None = None  # the host whose server runs (or ran) it
    snapshot_ref: str | None = None  # refs/tsk/snapshots/<id> on the remote: its source plus uncommitted files
    result_ref: str | None = None  # refs/tsk/results/<id> on the remote, once its worker pushed the result
    author: str | None = None  # "name <email>" of the adding user's git config: its sandbox commits as them


class PlanRecord(msgspec.Struct, kw_only=True):
    """A plan as the store keeps it: the file it came from, as read, so it can be shown and exported."""

    name: str
    format: str  # manifest or graph
    source: str  # the file (or `<task ID>:.tsk/plan.json`) it was read from
    repo: str  # the repository its tasks are in
    created: float
    document: dict[str, object] = {}  # the file's JSON, as given
    gates: list[dict[str, object]] = []  # its phases or waves (tsk.plans.model.Gate as data)
    forge_repo: str | None = None  # `owner/repo`, from the file or the repository's remote
    base_commit: str | None = None  # what its first tasks started from: where `tsk land` starts a new branch
    cancelled: str | None = None  # why, once `tsk plan cancel` ended it


class Attempt(msgspec.Struct, kw_only=True):
    """One run of a task's agent in a sandbox: how it ended and what it cost. A task is a sequence of them."""

    task: str
    n: int  # 1-based, as TSK_ATTEMPT
    started: float
    finished: float | None = None
    failure_class: FailureClass | None = None  # None: it succeeded
    reason: str | None = None
    cost_usd: float | None = None
    turns: int | None = None
    head: str | None = None  # the commit its work ended at (the task branch's head after it)
    session_id: str | None = None  # the agent's own session, for the next attempt to resume
    validation_exit: int | None = None
    validation_tail: str = ""
    timings: dict[str, float] = {}


def engine_of(task: Task) -> str:
    """The engine the task was made for, as its config records it (it runs there, whichever engine the
    server or command that picks it up would choose). Tasks recorded before the choice existed: Docker."""
    return str(task.config.get("container_engine") or "docker")


def new_id() -> str:
    """Sortable by creation time, unique without coordination: base-36 seconds + random hex."""
    return f"{_b36(int(time.time()))}{secrets.token_hex(3)}"


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def slug(text: str, limit: int = 40) -> str:
    """A branch-safe name from free text: the first words of a prompt, or a name the user gave."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (words[:limit].rstrip("-") or "task")


def task_dir(data_dir: Path, task_id: str) -> Path:
    return data_dir / "tasks" / task_id


def make_task_dir(data_dir: Path, task_id: str, home_dirs: tuple[str, ...] = ()) -> Path:
    """The task's dir with its parts: private, as the data dir and `tasks/` above it."""
    for d in (data_dir, data_dir / "tasks"):
        private_dir(d)
    tdir = private_dir(task_dir(data_dir, task_id))
    private_dir(tdir / "log")
    for sub in ("output", "home", *(f"home/{d}" for d in home_dirs)):
        (tdir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    return tdir


def agent_log(directory: Path) -> Path:
    """The task's events as JSON lines, written by tsk where the sandbox cannot reach."""
    return directory / "log" / "agent.log"


def raw_log(directory: Path) -> Path:
    """The agent's stdout as it came, beside agent.log."""
    return directory / "log" / "agent.raw.log"


def output(directory: Path) -> Path:
    """The dir the sandbox writes its own records into (/tsk/output): hostile, read with read_bounded."""
    return directory / "output"


def save(task: Task, directory: Path) -> None:
    private_dir(directory)
    write_private(directory / "task.json", msgspec.json.format(msgspec.json.encode(task), indent=2))


def load(directory: Path) -> Task:
    return msgspec.json.decode((directory / "task.json").read_bytes(), type=Task)
