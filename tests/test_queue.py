"""The task queue without an engine: the SQLite file and its migrations (the store protocol itself is
tests/test_task_store.py's), the scheduler's
decisions (ready, cascade, cycles), recovery's decisions with a fake engine, and `tsk add`/`list`/
`cancel`/`retry`/`clean` as whole processes, including 20 concurrent adds."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import FakeEngine
from helpers import TSK, run_tsk

from tsk.plans.schedule import Node
from tsk.queue import scheduler
from tsk.queue.db import MIGRATIONS, db_path
from tsk.queue.db import SqliteStore as Store
from tsk.tasks.model import Task
from tsk.tasks.owner import owner_id


def _task(tid: str, status: str = "QUEUED", parents: tuple[str, ...] = (), created: float = 0.0) -> Task:
    return Task(id=tid, name=f"n-{tid}", type="generic", agent="exec", stack="default", project="p", repo="/r",
                branch=f"tsk/generic/n/{tid}", status=status, created=created or time.time(), parents=parents)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "data")


def test_a_new_database_is_migrated_to_the_latest_version_once(tmp_path: Path) -> None:
    s = Store(tmp_path / "d")
    s.add(_task("a"), instructions="do a", reason="test")
    s.close()
    conn = sqlite3.connect(db_path(tmp_path / "d"))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    again = Store(tmp_path / "d")  # reopening keeps the data, runs nothing twice
    assert [t.id for t in again.tasks()] == ["a"] and again.instructions("a") == "do a"


def _nodes(statuses: dict[str, str], parents: dict[str, tuple[str, ...]]) -> list[Node]:
    return [Node(id=t, status=s, parents=parents.get(t, ())) for t, s in statuses.items()]  # type: ignore[arg-type]


def test_scheduler_starts_children_of_complete_parents_and_cascades_failure_and_cancellation() -> None:
    statuses = {"a": "COMPLETE", "b": "COMPLETE", "c": "WAITING", "f": "FAILED", "g": "WAITING", "h": "WAITING",
                "x": "CANCELLED", "y": "WAITING", "r": "RUNNING", "w": "WAITING", "both": "WAITING"}
    parents = {"c": ("a", "b"), "g": ("f",), "h": ("g",), "y": ("x",), "w": ("r", "a"), "both": ("x", "f")}
    changes = {ch.task: ch for ch in scheduler.settle(_nodes(statuses, parents))}
    assert changes["c"].to == "QUEUED"
    assert changes["g"].to == "FAILED" and "parent f failed" in changes["g"].reason
    assert changes["h"].to == "FAILED" and "parent g failed" in changes["h"].reason  # the grandchild, same call
    assert changes["y"].to == "CANCELLED" and "parent x was cancelled" in changes["y"].reason
    assert changes["both"].to == "FAILED"  # failure wins over cancellation
    assert changes["w"].to is None and changes["w"].blocked == "waiting for parent r (RUNNING)"
    # nothing changes twice: the blocked reason already recorded is not re-announced
    again = scheduler.settle(_nodes(statuses, parents), blocked={"w": "waiting for parent r (RUNNING)"})
    assert "w" not in {ch.task for ch in again}
    gone = scheduler.settle(_nodes({"k": "WAITING"}, {"k": ("deleted",)}))
    assert gone[0].to == "FAILED" and "parent deleted was deleted" in gone[0].reason


def test_overlapping_scopes_take_turns_in_the_order_made_and_the_later_starts_from_the_earlier() -> None:
    def node(tid: str, status: str, scope: tuple[str, ...] = ("src/api/**",)) -> Node:
        return Node(id=tid, status=status, scope=scope)  # type: ignore[arg-type]

    # a and b overlap, c does not: a goes first, b waits for it, c is free
    first = {ch.task: ch for ch in scheduler.settle([node("a", "WAITING"), node("b", "WAITING"),
                                                     node("c", "WAITING", ("docs/**",))])}
    assert first["a"].to == "QUEUED" and first["c"].to == "QUEUED"
    assert first["b"].to is None and first["b"].blocked == "waiting for scope src/api/** (held by a)"
    assert first["b"].scope_after == ("a",)
    # a QUEUED task holds its scope as a running one does: let go, it is as good as started
    held = scheduler.settle([node("a", "QUEUED"), node("b", "WAITING")], after={"b": ("a",)},
                            blocked={"b": "waiting for scope src/api/** (held by a)"})
    assert held == []
    # a ended: b starts from its result, when it completed
    done = scheduler.settle([node("a", "COMPLETE"), node("b", "WAITING")], after={"b": ("a",)})
    assert done[0].to == "QUEUED" and done[0].start_from == ("a",)
    failed = scheduler.settle([node("a", "FAILED"), node("b", "WAITING")], after={"b": ("a",)})
    assert failed[0].to == "QUEUED" and failed[0].start_from == ()
    # a completed task it never waited for is not where it starts from
    fresh = scheduler.settle([node("old", "COMPLETE"), node("new", "WAITING")])
    assert fresh[0].to == "QUEUED" and fresh[0].start_from == ()


def test_a_plan_gate_holds_later_phases_until_the_earlier_is_complete() -> None:
    from tsk.plans.model import Gate

    gates = {"p": (Gate(index=0, kind="phase", tasks=("x", "y")), Gate(index=1, kind="phase", tasks=("z",)))}

    def node(tid: str, status: str, gate: int, plan: str = "p") -> Node:
        return Node(id=tid, status=status, gate=gate, plan=plan)  # type: ignore[arg-type]

    waiting = scheduler.settle([node("x", "COMPLETE", 0), node("y", "RUNNING", 0), node("z", "WAITING", 1),
                                node("other", "WAITING", 1, plan="q")], plan_gates=gates)
    by = {ch.task: ch for ch in waiting}
    assert by["z"].to is None and by["z"].blocked == "waiting for phase 1 (1 of 2 complete)"
    assert by["other"].to == "QUEUED"  # another plan's phases are its own
    free = scheduler.settle([node("x", "COMPLETE", 0), node("y", "COMPLETE", 0), node("z", "WAITING", 1)],
                            plan_gates=gates)
    assert free[0].to == "QUEUED"


def test_cycles_are_found_and_descendants_come_parents_first() -> None:
    parents = {"b": ("a",), "c": ("b",), "d": ("b", "c")}
    loop = scheduler.cycle(parents, "a", ["d"])  # linking a under d: a → d → ... → a
    assert loop is not None and loop[0] == loop[-1] == "a" and loop[1] == "d"
    assert all(p in parents[c] for c, p in itertools.pairwise(loop[1:]))
    assert scheduler.cycle(parents, "e", ["d"]) is None
    assert scheduler.cycle(parents, "x", ["x"]) == ["x", "x"]
    order = scheduler.descendants(parents, "a")
    assert set(order) == {"b", "c", "d"} and order.index("b") < order.index("c") < order.index("d")


def test_recovery_requeues_unstarted_fails_started_and_leaves_other_data_dirs_alone(tmp_path: Path) -> None:
    from tsk.context import Context
    from tsk.queue.recovery import recover

    data = tmp_path / "data"
    store = Store(data)
    dead = "999999999:1"  # no such process
    for tid in ("never", "ran", "live", "done"):
        store.add(_task(tid, "RUNNING"), instructions="", reason="x", owner=owner_id() if tid == "live" else dead)
    ran = store.get("ran")
    assert ran is not None
    ran.started = time.time()
    store.save(ran)
    store.transition("done", "COMPLETE", "ok")

    engine = FakeEngine()
    for cid, task, status in (("c-ran", "ran", "running"), ("c-live", "live", "running"), ("c-done", "done", "exited"),
                              ("c-other", "someone-elses", "running")):
        engine.add_container(cid, labels={"dev.tsk.task": task}, status=status)
    for task in ("done", "someone-elses"):
        engine.add_volume(f"tsk-task-{task}", {"dev.tsk.task": task})
    ctx = Context(environ={"TSK_DATA_HOME": str(tmp_path)}, engine=engine)
    ctx.paths = ctx.paths.__class__(config=tmp_path / "c", data=data, cache=tmp_path / "k", runtime=tmp_path / "r")
    report = recover(ctx, store)
    assert report.requeued == ["never"] and report.failed == ["ran"]
    assert store.statuses() == {"never": "QUEUED", "ran": "FAILED", "live": "RUNNING", "done": "COMPLETE"}
    ran = store.get("ran")
    assert ran is not None and "died while it ran" in (ran.error or "") and "stopped" in (ran.error or "")
    assert engine.stopped == ["c-ran"]
    assert sorted(engine.removed) == ["c-done", "c-ran", "tsk-task-done"]  # never another data dir's


# -- whole processes, no engine -------------------------------------------------------------------------


def _list(repo: Path) -> list[dict]:
    res = run_tsk("list", "--json", cwd=repo)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_twenty_concurrent_adds_lose_nothing(repo: Path, tsk_home: Path) -> None:
    procs = [subprocess.Popen([*TSK, "add", "-a", "exec", "-n", f"t{n}", "-p", f"echo {n}"], cwd=repo,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(20)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    ids = {o.strip() for o, _ in outs}
    tasks = _list(repo)
    assert len(ids) == 20 and {t["id"] for t in tasks} == ids
    assert sorted(t["name"] for t in tasks) == sorted(f"t{n}" for n in range(20))
    assert all(t["status"] == "QUEUED" for t in tasks)
    conn = sqlite3.connect(db_path(tsk_home / "data" / "tsk"))
    assert conn.execute("SELECT COUNT(*) FROM transitions WHERE to_status = 'QUEUED'").fetchone()[0] == 20
    for tid in ids:
        assert (tsk_home / "data" / "tsk" / "tasks" / tid / "instructions.md").exists()


def test_add_list_cancel_retry_clean_without_a_server(repo: Path) -> None:
    res = run_tsk("add", "-a", "exec,exec", "-p", "echo hi", cwd=repo)
    assert res.returncode == 0, res.stderr
    a, b = res.stdout.split()
    res = run_tsk("add", "-a", "exec", "-p", "child", "--parent", a, cwd=repo)
    child = res.stdout.strip()
    res = run_tsk("add", "-a", "exec", "-p", "x", "--parent", "nope", cwd=repo)
    assert res.returncode == 2 and "unknown parent" in res.stderr
    text = run_tsk("list", cwd=repo).stdout
    assert text.splitlines()[-1] == "3 task(s): 2 queued, 1 waiting"
    assert text.splitlines()[0].split()[:4] == ["ID", "NAME", "TYPE", "STATUS"]
    res = run_tsk("cancel", a, cwd=repo)
    assert res.returncode == 0 and f"{a}: cancelled" in res.stdout
    by_id = {t["id"]: t for t in _list(repo)}
    assert by_id[a]["status"] == "CANCELLED"
    assert by_id[child]["status"] == "CANCELLED" and f"parent {a} was cancelled" in by_id[child]["error"]
    assert by_id[child]["parents"] == [a]
    res = run_tsk("retry", a, "--json", cwd=repo)
    assert res.returncode == 0, res.stderr
    retried = {o["id"]: o["new_id"] for o in json.loads(res.stdout)}
    assert set(retried) == {a, child}
    by_id = {t["id"]: t for t in _list(repo)}
    assert by_id[retried[a]]["status"] == "QUEUED" and by_id[retried[child]]["status"] == "WAITING"
    assert by_id[retried[child]]["parents"] == [retried[a]]
    res = run_tsk("retry", retried[a], cwd=repo)
    assert res.returncode == 2 and "cancel it first" in res.stderr
    # clean removes completed tasks only, never a parent of a pending one
    from tsk.paths import Paths

    store = Store(Paths.from_env().data)
    store.transition(b, "COMPLETE", "pretend")
    store.transition(retried[a], "COMPLETE", "pretend")
    res = run_tsk("clean", "--json", cwd=repo)
    assert json.loads(res.stdout) == [b]
    assert not (Paths.from_env().data / "tasks" / b).exists()
    assert retried[a] in {t["id"] for t in _list(repo)}
    res = run_tsk("delete", a, cwd=repo)
    assert res.returncode == 0 and a not in {t["id"] for t in _list(repo)}


def test_list_puts_active_tasks_first_and_is_one_query(tmp_path: Path, tsk_home: Path) -> None:
    from tsk.paths import Paths

    store = Store(Paths.from_env().data)
    for n in range(5):
        store.add(_task(f"old{n}", created=100.0 + n), instructions="", reason="x")
        store.transition(f"old{n}", "COMPLETE", "x")
    store.add(_task("new", created=50.0), instructions="", reason="x")
    res = run_tsk("list", "--json")
    assert [t["id"] for t in json.loads(res.stdout)] == ["new", "old4", "old3", "old2", "old1", "old0"]
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "tsk", "list"], capture_output=True, text=True)
    assert res.returncode == 0
    imported = {line.split("|")[-1].strip() for line in res.stderr.splitlines()}
    assert not imported & {"docker", "cyclopts", "rich", "python_on_whales"}
