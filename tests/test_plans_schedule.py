"""The plan scheduler (pure): what may start now, why the rest waits, whose results a task starts from;
and the dry run of a whole plan."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from tsk.plans import spec
from tsk.plans.dryrun import dry_run
from tsk.plans.model import Gate
from tsk.plans.schedule import ENDED, IN_PROGRESS, Node, Status, nodes, order, schedule
from tsk.plans.scopes import overlap

PHASES = (Gate(index=0, kind="phase", tasks=("api", "routes", "docs", "lint")), Gate(index=1, kind="phase",
                                                                                       tasks=("ui",)))


def _five(**status: Status) -> list[Node]:
    """Phase 1: api and routes share a scope, docs, and lint (independent of everything); phase 2: ui, which
    depends on api and docs."""
    s = {"api": "QUEUED", "routes": "QUEUED", "docs": "QUEUED", "lint": "QUEUED", "ui": "QUEUED", **status}
    return [Node(id="api", status=s["api"], scope=("src/api/**",)),
            Node(id="routes", status=s["routes"], scope=("src/api/routes.py",)),
            Node(id="docs", status=s["docs"], scope=("/docs/",)),
            Node(id="lint", status=s["lint"]),
            Node(id="ui", status=s["ui"], parents=("api", "docs"), scope=("web/**",), gate=1)]


def _reasons(tasks: list[Node], gates: tuple[Gate, ...] = PHASES) -> dict[str, str]:
    return {d.task: f"{d.action}: {d.reason}" for d in schedule(tasks, gates).decisions}


def test_what_runs_in_parallel_and_what_waits_at_first() -> None:
    s = schedule(_five(), PHASES)
    assert s.start() == ["api", "docs", "lint"]
    assert _reasons(_five()) == {
        "api": "start: no parents",
        "routes": "wait: waiting for scope src/api/routes.py (held by api)",
        "docs": "start: no parents",
        "lint": "start: no parents",
        "ui": "wait: waiting for phase 1 (0 of 4 complete); waiting for parent api (QUEUED); "
              "waiting for parent docs (QUEUED)",
    }
    assert s.decision("ui").waits_for == ("api", "routes", "docs", "lint")


def test_the_second_of_two_sharing_a_scope_starts_from_the_firsts_result() -> None:
    tasks = _five(api="COMPLETE", docs="RUNNING", lint="COMPLETE")
    s = schedule(tasks, PHASES)
    assert s.start() == ["routes"]
    assert s.decision("routes").start_from == ("api",)
    assert s.decision("routes").reason == "no parents; starts from the result of api"
    assert s.decision("ui").reason == "waiting for phase 1 (2 of 4 complete); waiting for parent docs (RUNNING)"


def test_a_task_with_two_parents_starts_from_both_once_the_phase_is_complete() -> None:
    tasks = _five(api="COMPLETE", routes="RUNNING", docs="COMPLETE", lint="COMPLETE")
    assert _reasons(tasks)["ui"] == "wait: waiting for phase 1 (3 of 4 complete)"
    tasks = _five(api="COMPLETE", routes="COMPLETE", docs="COMPLETE", lint="COMPLETE")
    d = schedule(tasks, PHASES).decision("ui")
    assert (d.action, d.start_from) == ("start", ("api", "docs"))


def test_a_running_or_blocked_task_holds_its_scope_whatever_the_order() -> None:
    tasks = _five(routes="RUNNING")  # started out of order (e.g. api was added later)
    assert _reasons(tasks)["api"] == "wait: waiting for scope src/api/** (held by routes)"
    tasks = _five(api="BLOCKED")  # backing off from a rate limit: still in progress
    assert _reasons(tasks)["routes"] == "wait: waiting for scope src/api/routes.py (held by api)"


def test_a_scope_holder_that_failed_lets_the_next_start_from_the_base() -> None:
    d = schedule(_five(api="FAILED"), PHASES).decision("routes")
    assert (d.action, d.start_from) == ("start", ())


def test_failure_and_cancellation_of_a_parent_reach_the_child() -> None:
    done = {"routes": "COMPLETE", "lint": "COMPLETE"}
    assert _reasons(_five(api="FAILED", docs="CANCELLED", **done))["ui"] == "fail: parent api failed"  # type: ignore[arg-type]
    assert _reasons(_five(api="COMPLETE", docs="CANCELLED", **done))["ui"] == "cancel: parent docs was cancelled"  # type: ignore[arg-type]
    lone = [Node(id="x", status="WAITING", parents=("gone",))]
    assert _reasons(lone, ()) == {"x": "fail: parent gone is not in the plan"}


def test_a_failed_task_in_an_earlier_phase_is_named() -> None:
    tasks = _five(api="COMPLETE", routes="COMPLETE", docs="COMPLETE", lint="FAILED")
    assert _reasons(tasks)["ui"] == "wait: waiting for phase 1 (3 of 4 complete; lint FAILED)"


def test_a_gate_without_a_barrier_holds_nothing_and_a_check_holds_until_it_passed() -> None:
    loose = (msgspec.structs.replace(PHASES[0], barrier=False), PHASES[1])
    tasks = _five(api="COMPLETE", docs="COMPLETE")
    assert schedule(tasks, loose).decision("ui").action == "start"
    checked = (msgspec.structs.replace(PHASES[0], check="make test"), PHASES[1])
    tasks = _five(api="COMPLETE", routes="COMPLETE", docs="COMPLETE", lint="COMPLETE")
    assert schedule(tasks, checked).decision("ui").reason == "waiting for the check of phase 1 (`make test`)"
    assert schedule(tasks, checked, checked=[0]).decision("ui").action == "start"


def test_an_unknown_gate_is_a_barrier_named_as_a_phase() -> None:
    tasks = [Node(id="a", status="RUNNING"), Node(id="b", status="QUEUED", gate=1)]
    assert _reasons(tasks, ()) == {"b": "wait: waiting for phase 1 (0 of 1 complete)"}


def test_only_tasks_not_started_get_a_decision_and_the_order_puts_parents_first() -> None:
    tasks = [Node(id="c", status="QUEUED", parents=("b",)), Node(id="b", status="RUNNING"),
             Node(id="a", status="COMPLETE")]
    s = schedule(tasks)
    assert s.order == ("b", "c", "a") and [d.task for d in s.decisions] == ["c"]
    assert order([Node(id="z", status="QUEUED", gate=1), Node(id="y", status="QUEUED")]) == ["y", "z"]


def test_a_scope_already_in_a_parents_result_is_not_merged_again() -> None:
    tasks = [Node(id="a", status="COMPLETE", scope=("src/**",)),
             Node(id="b", status="COMPLETE", parents=("a",), scope=("lib/**",)),
             Node(id="c", status="QUEUED", parents=("b",), scope=("src/x.py",))]
    assert schedule(tasks).decision("c").start_from == ("b",)


def test_nodes_come_from_a_plan_under_the_callers_ids(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"tasks": [{"id": "a", "name": "A", "write_scope": ["x/**"]},
                                          {"id": "b", "name": "B", "depends_on": ["a"]}]}))
    plan = spec.load(path)
    got = nodes(plan, {"t-a": "RUNNING"}, ids={"a": "t-a", "b": "t-b"})
    assert got == [Node(id="t-a", status="RUNNING", scope=("x/**",)), Node(id="t-b", status="QUEUED", parents=("t-a",))]
    assert schedule(got, plan.gates).decision("t-b").reason == "waiting for parent t-a (RUNNING)"


SCOPES = [(), ("src/**",), ("src/a.py",), ("docs/",), ("*.md",), ("src/*.py",)]


@st.composite
def graphs(draw: st.DrawFn) -> list[Node]:
    n = draw(st.integers(1, 8))
    out: list[Node] = []
    for i in range(n):
        parents = draw(st.lists(st.sampled_from([f"t{j}" for j in range(i)]), unique=True, max_size=2)) if i else []
        lowest = max([0, *(out[int(p[1:])].gate for p in parents)])  # a parent is never in a later gate
        gate = draw(st.integers(lowest, lowest + 1))
        out.append(Node(id=f"t{i}", status="QUEUED", parents=tuple(parents), scope=draw(st.sampled_from(SCOPES)),
                        gate=gate))
    return out


@settings(max_examples=300, deadline=None)
@given(tasks=graphs(), data=st.data())
def test_overlapping_scopes_never_run_at_once_and_every_plan_finishes(tasks: list[Node], data: st.DataObject) -> None:
    status = {t.id: t.status for t in tasks}
    for _ in range(3 * len(tasks) + 2):
        current = [msgspec.structs.replace(t, status=status[t.id]) for t in tasks]
        s = schedule(current)
        starting = s.start()
        running = [t for t in current if t.status in IN_PROGRESS]
        for d in s.decisions:
            if d.action == "start":
                t = next(x for x in current if x.id == d.task)
                assert all(status[p] == "COMPLETE" for p in t.parents)
                assert not any(overlap(t.scope, r.scope) for r in running), (t, running)
                assert not any(overlap(t.scope, o.scope) for o in current if o.id in starting and o.id != t.id)
        if not starting and not running:
            break
        # some of what started ends; the rest keeps running into the next round
        for tid in [r.id for r in running] + starting:
            status[tid] = data.draw(st.sampled_from(["COMPLETE", "RUNNING"])) if tid in starting else "COMPLETE"
    assert all(s in ENDED for s in status.values()), status


def test_the_dry_run_shows_levels_waits_and_starting_points(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"project": "shop", "phases": [
        {"tasks": [{"id": "api", "title": "API", "files": ["src/api/**"]},
                   {"id": "routes", "title": "Routes", "files": ["src/api/routes.py"]},
                   {"id": "docs", "title": "Docs", "files": ["docs/"]},
                   {"id": "lint", "title": "Lint"}]},
        {"tasks": [{"id": "ui", "title": "UI", "files": ["web/**"], "dependsOn": ["api", "docs"]}]}]}))
    d = dry_run(spec.load(path))
    assert d.levels == (("api", "docs", "lint"), ("routes",), ("ui",))
    steps = {s.task: s for s in d.steps}
    assert steps["routes"].start_from == ("api",) and steps["ui"].start_from == ("api", "docs")
    assert [(w.kind, w.on, w.why) for w in steps["routes"].waits] == [
        ("scope", ("api",), "scope src/api/routes.py overlaps api's src/api/**")]
    assert [(w.kind, w.why) for w in steps["ui"].waits] == [
        ("gate", "phase 1 is a gate: every task up to it completes first"), ("parent", "depends on api"),
        ("parent", "depends on docs")]
    assert json.loads(msgspec.json.encode(d))["levels"] == [["api", "docs", "lint"], ["routes"], ["ui"]]
