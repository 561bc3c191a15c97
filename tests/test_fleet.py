"""A fleet without an engine: leases across hosts, recovery of a dead host's tasks by exactly one of
the servers that see it, and a cancel for a task another host runs (it goes through the store, not
this host's engine). The store is PostgreSQL, as a fleet's is."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fakes import FakeEngine

from tsk.tasks.model import Task


def _task(tid: str, status: str = "RUNNING") -> Task:
    return Task(id=tid, name=f"n-{tid}", type="generic", agent="exec", stack="default", project="p", repo="/r",
                branch=f"tsk/generic/n/{tid}", status=status, created=time.time())  # type: ignore[arg-type]


def _ctx(tmp_path: Path, host: str, url: str, engine: FakeEngine):  # type: ignore[no-untyped-def]
    from tsk.context import Context

    root = tmp_path / host
    return Context(environ={"TSK_HOST": host, "TSK_DATA_HOME": str(root / "data"), "TSK_CONFIG_HOME": str(root / "c"),
                            "TSK_CACHE_HOME": str(root / "k"), "TSK_RUNTIME_DIR": str(root / "r"),
                            "TSK_DATABASE_URL": url, "HOME": str(root)}, engine=engine)


def test_a_dead_hosts_tasks_are_recovered_once_and_live_leases_are_left_alone(pg_url: str, tmp_path: Path) -> None:
    from tsk.queue.pg import PgStore
    from tsk.queue.recovery import recover

    store = PgStore(pg_url)
    now = time.time()
    cases = {"ran": ("1:1@alpha", now - 1, True), "unstarted": ("1:1@alpha", now - 1, False),
             "leased": ("1:1@alpha", now + 60, True), "unleased": ("2:2@alpha", None, True)}
    for tid, (owner, until, started) in cases.items():
        t = _task(tid)
        t.started = now - 10 if started else None
        store.add(t, instructions="", reason="x", owner=owner)
        if until is not None:
            assert store.renew(owner, until) >= 1
    store.renew("1:1@alpha", now - 1)  # the two expired ones (renew moves every task of the owner)
    store.take_over("leased", "1:1@alpha", "3:3@alpha", now + 60)  # a live server of alpha keeps this one
    reports = []

    def server(host: str) -> None:
        s = PgStore(pg_url)
        reports.append(recover(_ctx(tmp_path, host, pg_url, FakeEngine()), s, owner=f"9:9@{host}", lease=30))
        s.close()

    threads = [threading.Thread(target=server, args=(h,)) for h in ("beta", "gamma", "delta")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert len(reports) == 3
    assert sorted(t for r in reports for t in r.failed) == ["ran"]  # exactly once, by one of them
    assert sorted(t for r in reports for t in r.requeued) == ["unstarted"]
    assert store.statuses() == {"ran": "FAILED", "unstarted": "QUEUED", "leased": "RUNNING", "unleased": "RUNNING"}
    ran = store.get("ran")
    assert ran is not None and "its server on alpha (pid 1) stopped renewing its lease" in (ran.error or "")
    assert "out of reach from here" in (ran.error or "")
    assert [tr.reason for tr in store.transitions("unstarted")][-1].startswith(
        "requeued: its server on alpha (pid 1) stopped renewing its lease before the sandbox started")
    store.close()


def test_a_cancel_for_a_task_another_host_runs_goes_through_the_store(pg_url: str, tmp_path: Path) -> None:
    from tsk.queue import control
    from tsk.queue.pg import PgStore

    store = PgStore(pg_url)
    feed = store.notices()
    store.add(_task("far"), instructions="", reason="x", owner="1:1@alpha")
    store.renew("1:1@alpha", time.time() + 60)
    engine = FakeEngine()
    engine.add_container("c-far", labels={"dev.tsk.task": "far"}, status="running")
    out = control.cancel(_ctx(tmp_path, "beta", pg_url, engine), ["far"], reason="stop it")
    assert [o.action for o in out] == ["cancel requested; its server on alpha stops it"]
    assert engine.stopped == [] and store.cancel_requested("far") == "stop it"  # this host's engine is not its
    deadline, got = time.monotonic() + 5, []
    while ("cancel", "far") not in got and time.monotonic() < deadline:
        got += feed.wait(1)
    assert ("cancel", "far") in got  # what alpha's server listens for
    feed.close()
    store.close()
