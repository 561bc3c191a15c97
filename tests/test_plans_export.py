"""The plan file back with what tsk knows: status words, branches and pull requests, as the orchestrator
manifest keeps them, and everything else untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tsk.plans import spec
from tsk.plans.export import TaskState, dumps, export, word

DATA = Path(__file__).parent / "data" / "plans"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
GRAPH = json.loads((DATA / "graph.json").read_text())
T0 = 1_768_608_000.0  # 2026-01-17T00:00:00Z


@pytest.mark.parametrize(("state", "expected"), [
    (TaskState(status="QUEUED"), "pending"), (TaskState(status="WAITING"), "blocked"),
    (TaskState(status="RUNNING"), "running"), (TaskState(status="BLOCKED"), "stuck"),
    (TaskState(status="COMPLETE"), "complete"), (TaskState(status="FAILED"), "error"),
    (TaskState(status="CANCELLED"), "error"), (TaskState(status="COMPLETE", pr_state="open"), "pr_open"),
    (TaskState(status="COMPLETE", pr_state="merged"), "merged"), (TaskState(status="COMPLETE", pr_state="closed"), "error"),
])
def test_status_words(state: TaskState, expected: str) -> None:
    assert word(state) == expected


def test_a_manifest_comes_back_with_statuses_branches_and_pull_requests(tmp_path: Path) -> None:
    states = {"t1": TaskState(status="COMPLETE", branch="tsk/feat/orders/a1", pr_number=7, pr_state="open",
                              started=T0, finished=T0 + 90),
              "t2": TaskState(status="RUNNING", branch="tsk/docs/orders/b2", started=T0 + 100)}
    out = export(MANIFEST, states)
    t1, t2 = out["phases"][0]["tasks"]
    assert {k: t1[k] for k in ("status", "branch", "prNumber", "startedAt", "completedAt")} == {
        "status": "pr_open", "branch": "tsk/feat/orders/a1", "prNumber": 7, "startedAt": "2026-01-17T00:00:00Z",
        "completedAt": "2026-01-17T00:01:30Z"}
    assert (t2["status"], t2["completedAt"], t2["prNumber"]) == ("running", None, None)
    assert out["phases"][1]["tasks"][0]["status"] == "pending"  # tsk knows nothing of t3 yet
    assert (t1["tmuxSession"], out["workdir"], out["modelTier"]) == (None, "/tmp/wt", "high")
    assert "status" not in MANIFEST["phases"][0]["tasks"][1]  # the input is not changed
    path = tmp_path / "back.json"
    path.write_text(dumps(out))
    assert spec.load(path).task("t1").scope == ("src/api/**",)  # what comes back reads as a plan again


def test_a_task_graph_comes_back_in_its_own_keys(tmp_path: Path) -> None:
    out = export(GRAPH, {"api": TaskState(status="COMPLETE", branch="tsk/feat/api/a1", pr_number=3,
                                          pr_state="merged")})
    api = out["tasks"][0]
    assert (api["status"], api["branch"], api["pr_number"]) == ("merged", "tsk/feat/api/a1", 3)
    assert "prNumber" not in api and out["waves"] == GRAPH["waves"]
    path = tmp_path / "back.json"
    path.write_text(dumps(out))
    assert json.loads(path.read_text()) == out and spec.load(path).task("api").title == "Add /orders"
