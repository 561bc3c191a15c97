"""The task store protocol (tsk/tasks/store.py), one suite run against both implementations: SQLite in
a data dir and PostgreSQL (a private cluster the test setup starts, tests/pg_server.py). What a fleet
needs of it is here too: claims that never hand one task to two owners, leases, take-overs that happen
once, the servers' heartbeats, NOTIFY, and a schema from a newer tsk refused."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tsk.errors import UsageError
from tsk.queue.sqlstore import MIGRATIONS, StoreError
from tsk.tasks.model import Attempt, PlanRecord, Task
from tsk.tasks.store import Conflict, ServerRecord, TaskStore

Opener = Callable[[], TaskStore]


def _task(tid: str, status: str = "QUEUED", parents: tuple[str, ...] = (), created: float = 0.0,
          agent: str = "exec") -> Task:
    return Task(id=tid, name=f"n-{tid}", type="generic", agent=agent, stack="default", project="p", repo="/r",
                branch=f"tsk/generic/n/{tid}", status=status, created=created or time.time(), parents=parents)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens another connection to one store (every test gets an empty one); all closed after the test."""
    opened: list[TaskStore] = []
    if request.param == "sqlite":
        from tsk.queue.db import SqliteStore

        def make() -> TaskStore:
            return SqliteStore(tmp_path / "data")
    else:
        from tsk.queue.pg import PgStore

        url = request.getfixturevalue("pg_url")

        def make() -> TaskStore:
            return PgStore(url)

    def tracked() -> TaskStore:
        opened.append(make())
        return opened[-1]

    yield tracked
    for s in opened:
        with contextlib.suppress(StoreError):  # closed already, in the thread that made it
            s.close()


@pytest.fixture
def store(opener: Opener) -> TaskStore:
    return opener()


def test_every_status_change_is_a_recorded_transition(store: TaskStore) -> None:
    t = _task("a")
    t.timings = {"snapshot": 0.1}
    store.add(t, instructions="do a", reason="added")
    claimed = store.claim("o1", reason="claimed", host="h1", lease_until=time.time() + 30)
    assert claimed is not None and claimed.status == "RUNNING" and claimed.timings == {"snapshot": 0.1}
    assert claimed.host == "h1" and store.instructions("a") == "do a"
    claimed.result_branch = "tsk/generic/n/a"
    store.transition("a", "COMPLETE", "done", task=claimed, allowed=("RUNNING",))
    with pytest.raises(Conflict):
        store.transition("a", "CANCELLED", "too late", allowed=("QUEUED", "RUNNING"))
    got = store.get("a")
    assert got is not None and got.status == "COMPLETE" and got.result_branch == "tsk/generic/n/a"
    assert store.ownership("a")[1] is None  # an ended task holds no lease
    trs = store.transitions("a")
    assert [(tr.from_status, tr.to_status, tr.reason) for tr in trs] == [
        (None, "QUEUED", "added"), ("QUEUED", "RUNNING", "claimed"), ("RUNNING", "COMPLETE", "done")]
    assert store.last_seq() == trs[-1].seq and [tr.seq for tr in store.transitions_since(trs[0].seq)] == [
        tr.seq for tr in trs[1:]]


def test_fields_round_trip_with_their_types(store: TaskStore) -> None:
    t = _task("a", created=1234567890.123456)
    t.scope, t.config, t.changed_files, t.network_isolation = ("src/**",), {"k": [1, "x"]}, ("a.py",), False
    t.origin, t.snapshot_ref, t.cost_usd = "alpha", "refs/tsk/snapshots/a", 0.125
    store.add(t, instructions="", reason="x")
    got = store.get("a")
    assert got is not None
    assert (got.created, got.scope, got.config, got.changed_files, got.network_isolation) == (
        1234567890.123456, ("src/**",), {"k": [1, "x"]}, ("a.py",), False)  # 8-byte floats: no precision lost
    assert (got.origin, got.snapshot_ref, got.cost_usd) == ("alpha", "refs/tsk/snapshots/a", 0.125)
    got.summary = "50% done"  # a % in a value is data, not a placeholder
    store.save(got)
    assert store.get("a").summary == "50% done"  # type: ignore[union-attr]


def test_claims_are_oldest_first_skip_cancel_requests_and_held_agents(opener: Opener) -> None:
    a, b = opener(), opener()
    for n, tid in enumerate(("t1", "t2", "t3")):
        a.add(_task(tid, created=100.0 + n), instructions="", reason="x")
    a.add(_task("t4", created=104.0, agent="claude"), instructions="", reason="x")
    a.request_cancel("t2", "no")
    a.hold_agent("claude", time.time() + 60, "rate limited")
    a.hold_agent("claude", time.time() + 1, "a shorter hold does not shorten it")
    assert a.agent_holds(time.time())["claude"][0] > time.time() + 30
    first, second = a.claim("o1"), b.claim("o2")
    assert first is not None and second is not None
    assert (first.id, second.id) == ("t1", "t3")
    assert a.claim("o1") is None and a.owner("t3") == "o2" and a.cancel_requested("t2") == "no"


def test_many_claimers_at_once_never_take_one_task_twice(opener: Opener) -> None:
    setup = opener()
    for n in range(40):
        setup.add(_task(f"t{n:02}", created=100.0 + n), instructions="", reason="x")
    taken: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def claimer(name: str) -> None:
        try:
            s = opener()
            mine = taken.setdefault(name, [])
            while (t := s.claim(name)) is not None:
                mine.append(t.id)
            s.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(f"o{n}",)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors
    every = [t for ids in taken.values() for t in ids]
    assert sorted(every) == [f"t{n:02}" for n in range(40)]  # each exactly once
    assert all(setup.owner(t) == o for o, ids in taken.items() for t in ids)
    assert len([tr for tr in setup.transitions() if tr.to_status == "RUNNING"]) == 40


def test_parents_keep_their_order_and_unknown_ones_are_refused(store: TaskStore) -> None:
    for tid in ("p2", "p1", "p3"):
        store.add(_task(tid), instructions="", reason="x")
    store.add(_task("c", "WAITING", parents=("p3", "p1", "p2")), instructions="", reason="x")
    assert store.parents("c") == ("p3", "p1", "p2") and store.links() == {"c": ("p3", "p1", "p2")}
    assert store.get("c").parents == ("p3", "p1", "p2")  # type: ignore[union-attr]
    assert next(t for t in store.listing() if t.id == "c").parents == ["p3", "p1", "p2"]
    store.relink("c", "p1", "p2x")
    assert store.parents("c") == ("p3", "p2x", "p2")
    with pytest.raises(UsageError, match="unknown parent"):
        store.add(_task("d", "WAITING", parents=("nope",)), instructions="", reason="x")
    assert store.get("d") is None  # all or nothing


def test_prefixes_resolve_and_like_wildcards_are_literal(store: TaskStore) -> None:
    store.add(_task("abc123"), instructions="", reason="x")
    store.add(_task("abd_99"), instructions="", reason="x")
    assert store.resolve("abc") == "abc123" and store.resolve("abd_") == "abd_99"
    with pytest.raises(UsageError, match="no task"):
        store.resolve("a_c")  # `_` matches itself only
    with pytest.raises(UsageError, match="names 2 tasks"):
        store.resolve("ab")


def test_reads_listing_counts_and_deletes(store: TaskStore) -> None:
    for n, status in enumerate(("COMPLETE", "QUEUED", "RUNNING", "WAITING", "FAILED")):
        t = _task(f"t{n}", status, created=100.0 + n)
        t.blocked = "waits" if status == "WAITING" else None
        t.finished = 200.0 if status in ("COMPLETE", "FAILED") else None
        store.add(t, instructions="", reason="x")
    assert [t.id for t in store.listing()] == ["t2", "t1", "t3", "t4", "t0"]
    assert store.count(("QUEUED", "WAITING")) == 2 and store.waiting() == {"t3": "waits"}
    assert store.statuses(["t0", "t1"]) == {"t0": "COMPLETE", "t1": "QUEUED"} and store.statuses([]) == {}
    assert [t.id for t in store.tasks(statuses=("COMPLETE", "FAILED"))] == ["t0", "t4"]
    assert store.tasks(ids=[]) == []
    assert sorted(store.ended_before(("COMPLETE", "FAILED"), 300.0)) == ["t0", "t4"]
    assert store.ended_before(("COMPLETE",), 150.0) == []
    store.delete("t0")
    assert store.get("t0") is None and store.transitions("t0") == []


def test_attempts_replace_by_number_and_plans_are_all_or_nothing(store: TaskStore) -> None:
    store.add(_task("a"), instructions="", reason="x")
    store.add_attempt(Attempt(task="a", n=1, started=1.0))
    store.add_attempt(Attempt(task="a", n=1, started=1.0, finished=2.0, failure_class="timeout"))
    store.add_attempt(Attempt(task="a", n=2, started=3.0))
    assert [(x.n, x.failure_class) for x in store.attempts("a")] == [(1, "timeout"), (2, None)]
    plan = PlanRecord(name="p", format="graph", source="g.json", repo="/r", created=5.0)
    store.add_plan(plan, [(_task("x", "WAITING"), "do x")], reason="plan")
    with pytest.raises(UsageError, match="plan named `p`"):
        store.add_plan(plan, [(_task("y", "WAITING"), "do y")], reason="plan")
    assert store.get("y") is None and store.instructions("x") == "do x"
    plan.cancelled = "stop"
    store.save_plan(plan)
    assert [p.cancelled for p in store.plans()] == ["stop"] and store.plan("p") is not None


def test_leases_renew_and_a_dead_owner_is_taken_over_exactly_once(opener: Opener) -> None:
    store = opener()
    store.add(_task("a"), instructions="", reason="x")
    store.add(_task("b"), instructions="", reason="x")
    now = time.time()
    assert store.claim("dead@h1", host="h1", lease_until=now + 1) is not None
    assert store.claim("dead@h1", host="h1", lease_until=now + 1) is not None
    assert store.renew("dead@h1", now + 5) == 2 and store.ownership("a") == ("dead@h1", now + 5)
    wins: list[str] = []

    def recoverer(name: str) -> None:
        s = opener()
        if s.take_over("a", "dead@h1", name, time.time() + 30):
            wins.append(name)
        s.close()

    threads = [threading.Thread(target=recoverer, args=(f"r{n}@h2",)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert len(wins) == 1 and store.owner("a") == wins[0]
    assert not store.take_over("a", "dead@h1", "late@h3", now + 30)
    assert store.renew("dead@h1", now + 9) == 1  # only b is still its


def test_servers_say_who_is_alive(store: TaskStore) -> None:
    now = time.time()
    a = ServerRecord(id="1:9@alpha", host="alpha", pid=1, workers=2, running=0, started=now, seen=now,
                     lease_until=now + 30)
    store.heartbeat(a)
    store.heartbeat(ServerRecord(id="2:9@beta", host="beta", pid=2, workers=1, running=1, started=now - 100,
                                 seen=now - 90, lease_until=now - 60))
    a.running, a.seen = 2, now + 1
    store.heartbeat(a)
    live = store.servers(now)
    assert [(s.host, s.running, s.workers) for s in live] == [("alpha", 2, 2)]
    store.remove_server(a.id)
    assert store.servers(now) == []


def test_postgresql_notifies_cancels_and_changes(pg_url: str) -> None:
    from tsk.queue.pg import PgStore

    store = PgStore(pg_url)
    feed = store.notices()
    assert feed.wait(0.05) == []
    store.add(_task("a"), instructions="", reason="x")
    assert ("wake", "") in feed.wait(5)
    store.request_cancel("a", "stop")
    deadline, got = time.monotonic() + 5, []
    while ("cancel", "a") not in got and time.monotonic() < deadline:
        got += feed.wait(1)
    assert ("cancel", "a") in got
    feed.close()
    store.close()


def test_a_schema_from_a_newer_tsk_is_refused(pg_url: str, tmp_path: Path) -> None:
    import sqlite3

    from tsk.queue.db import SqliteStore, db_path
    from tsk.queue.pg import PgStore

    PgStore(pg_url).close()
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM tsk_schema").fetchone()[0] == len(MIGRATIONS)
        conn.execute("UPDATE tsk_schema SET version = %s", (len(MIGRATIONS) + 1,))
    with pytest.raises(StoreError, match=f"schema version {len(MIGRATIONS) + 1}, made by a newer tsk"):
        PgStore(pg_url)
    SqliteStore(tmp_path / "d").close()
    conn2 = sqlite3.connect(db_path(tmp_path / "d"))
    conn2.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn2.close()
    with pytest.raises(StoreError, match="made by a newer tsk"):
        SqliteStore(tmp_path / "d")


def test_two_processes_create_the_schema_at_once(pg_url: str) -> None:
    from tsk.queue.pg import PgStore

    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            PgStore(pg_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors


def test_an_unreachable_database_is_a_clear_error() -> None:
    from tsk.queue.pg import PgStore

    with pytest.raises(StoreError, match=r"cannot connect to the task database postgresql://tsk:\*\*\*@") as info:
        PgStore("postgresql://tsk:secret@/nodb?host=/nonexistent-dir&connect_timeout=1")
    assert "secret" not in str(info.value) and "TSK_DATABASE_URL" in (info.value.hint or "")
