"""The plan file back, with what tsk knows filled in: each task's status, result branch and pull request, in
the words and keys the task-orchestrator manifest uses. Pure: the document and the states are inputs.

Status words, from tsk's status and the pull request's state (the pull request decides when there is one):

    pull request merged                 merged
    pull request open                   pr_open
    pull request closed, not merged     error     (the result was turned down)
    QUEUED                              pending   (ready; waiting for a free slot)
    WAITING                             blocked   (for a parent, a scope or a gate)
    RUNNING                             running
    BLOCKED                             stuck     (backing off: API limits or credentials)
    COMPLETE                            complete
    FAILED, CANCELLED                   error

A task tsk knows nothing about keeps the status it has (or gets `pending`). A manifest task gets `status`,
`branch`, `prNumber`, `startedAt` and `completedAt` (ISO 8601, UTC); a task-graph task gets `status`,
`branch` and `pr_number`. Every other key stays as it was."""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import msgspec

from tsk.plans.schedule import Status

Word = Literal["pending", "blocked", "running", "stuck", "error", "complete", "pr_open", "merged"]

_WORDS: dict[str, Word] = {"QUEUED": "pending", "WAITING": "blocked", "RUNNING": "running", "BLOCKED": "stuck",
                           "COMPLETE": "complete", "FAILED": "error", "CANCELLED": "error"}
_PR_WORDS: dict[str, Word] = {"merged": "merged", "open": "pr_open", "closed": "error"}


class TaskState(msgspec.Struct, frozen=True, kw_only=True):
    status: Status
    branch: str | None = None
    pr_number: int | None = None
    pr_state: Literal["open", "closed", "merged"] | None = None
    started: float | None = None  # seconds since the epoch
    finished: float | None = None


def word(state: TaskState) -> Word:
    if state.pr_state is not None:
        return _PR_WORDS[state.pr_state]
    return _WORDS[state.status]


def export(document: Mapping[str, Any], states: Mapping[str, TaskState]) -> dict[str, Any]:
    """A copy of the plan's JSON document with the states of the tasks (by their plan ids) written in."""
    doc: dict[str, Any] = copy.deepcopy(dict(document))
    manifest = "phases" in doc
    for task in _tasks(doc):
        tid = task.get("id")
        state = states.get(tid) if isinstance(tid, str) else None
        if state is None:
            task.setdefault("status", "pending")
            continue
        task["status"] = word(state)
        task["branch"] = state.branch
        if manifest:
            task["prNumber"] = state.pr_number
            task["startedAt"] = _iso(state.started)
            task["completedAt"] = _iso(state.finished) if state.status == "COMPLETE" else None
        else:
            task["pr_number"] = state.pr_number
    return doc


def dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _tasks(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "phases" in doc:
        for phase in doc.get("phases") or ():
            if isinstance(phase, dict):
                yield from (t for t in phase.get("tasks") or () if isinstance(t, dict))
    else:
        yield from (t for t in doc.get("tasks") or () if isinstance(t, dict))


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
