"""The store's decisions against a fake engine: hit path, miss path, re-check, index, why, prune."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fakes import FakeBuilder, FakeEngine

from tsk.durations import parse_duration
from tsk.layers.index import LayerIndex
from tsk.layers.listing import LayerRow
from tsk.layers.plan import Slot, plan_chain
from tsk.layers.prune import plan_prune
from tsk.layers.store import Store
from tsk.layers.why import explain


def _chain(tmp_path: Path, stack: str = "RUN echo stack\n", project: str | None = None,
           agent: str = "RUN echo agent\n") -> tuple:
    (tmp_path / "ctx").mkdir(exist_ok=True)
    if not (tmp_path / "ctx" / "f.txt").exists():
        (tmp_path / "ctx" / "f.txt").write_text("data\n")
    slots = [Slot(kind="base", name="base", snippet="COPY f.txt /f\n", origin="t", root=str(tmp_path / "ctx")),
             Slot(kind="stack", name="s", snippet=stack, origin="t")]
    if project:
        slots.append(Slot(kind="project", name="p", snippet=project, origin="config setup"))
    slots.append(Slot(kind="agent", name="a", snippet=agent, origin="t"))
    return plan_chain(slots, base_image="debian:trixie", base_image_id="sha256:base", roots={})


@pytest.fixture
def world(tmp_path: Path) -> tuple[FakeEngine, FakeBuilder, Store]:
    eng = FakeEngine()
    b = FakeBuilder(eng)
    store = Store(engine=eng, builder=lambda: b, index=LayerIndex(tmp_path / "index"), locks=tmp_path / "locks",
                  scratch=tmp_path / "scratch")
    return eng, b, store


def test_cold_then_warm(world, tmp_path: Path) -> None:
    eng, b, store = world
    chain = _chain(tmp_path)
    first = store.ensure(chain)
    assert [r.status for r in first] == ["built"] * 3
    assert b.contexts[0] == {"Dockerfile", "f.txt"}  # only what the snippet COPYs is uploaded
    eng.lookups = 0
    second = store.ensure(chain)
    assert [r.status for r in second] == ["hit"] * 3
    assert b.calls == 3 and eng.lookups == 1  # the hit path: one engine lookup, no builder


def test_hit_path_never_creates_a_builder(tmp_path: Path) -> None:
    eng = FakeEngine()
    chain = _chain(tmp_path)
    for layer in chain:
        eng.add(layer.tag, {"dev.tsk.key": layer.key})

    def no_builder():  # type: ignore[no-untyped-def]
        raise AssertionError("the hit path must not touch the builder")

    store = Store(engine=eng, builder=no_builder, index=LayerIndex(tmp_path / "i"), locks=tmp_path / "l",
                  scratch=tmp_path / "s")
    assert {r.status for r in store.ensure(chain)} == {"hit"}


def test_changed_project_setup_rebuilds_only_project_and_above(world, tmp_path: Path) -> None:
    eng, b, store = world
    store.ensure(_chain(tmp_path, project="RUN echo one\n"))
    b.built.clear()
    res = store.ensure(_chain(tmp_path, project="RUN echo two\n"))
    assert [(r.kind, r.status) for r in res] == [("base", "hit"), ("stack", "hit"), ("project", "built"),
                                                  ("agent", "built")]


def test_agent_upgrade_rebuilds_only_the_agent(world, tmp_path: Path) -> None:
    eng, b, store = world
    store.ensure(_chain(tmp_path, project="RUN echo p\n"))
    res = store.ensure(_chain(tmp_path, project="RUN echo p\n", agent="ARG V=2\nRUN echo agent $V\n"))
    assert [r.status for r in res] == ["hit", "hit", "hit", "built"]


def test_recheck_after_lock_skips_a_build_another_process_finished(world, tmp_path: Path) -> None:
    eng, b, store = world
    chain = _chain(tmp_path)
    # Another process finished the base while we were deciding what to build.
    real_image = eng.image
    seen: dict[str, int] = {}

    def racing_image(ref: str):  # type: ignore[no-untyped-def]
        seen[ref] = seen.get(ref, 0) + 1
        if ref == chain[0].tag and seen[ref] == 2:  # the re-check, taken under the lock
            eng.add(ref, {"dev.tsk.key": chain[0].key})
        return real_image(ref)

    eng.image = racing_image  # type: ignore[method-assign]
    res = store.ensure(chain)
    assert [r.status for r in res] == ["hit", "built", "built"]
    assert chain[0].tag not in b.built


def test_build_failure_is_a_tsk_error(tmp_path: Path) -> None:
    from tsk.errors import BuildFailed

    eng = FakeEngine()
    store = Store(engine=eng, builder=lambda: FakeBuilder(eng, fail=True), index=LayerIndex(tmp_path / "i"),
                  locks=tmp_path / "l", scratch=tmp_path / "s")
    with pytest.raises(BuildFailed):
        store.ensure(_chain(tmp_path))
    assert not list((tmp_path / "s").iterdir())  # the build context is cleaned up


def test_why_names_what_changed(world, tmp_path: Path) -> None:
    eng, b, store = world
    store.ensure(_chain(tmp_path, project="RUN echo one\n"))
    wanted = _chain(tmp_path, project="RUN echo two\n")
    prev = store.index.last_for_slot("project", "p")
    row = explain(wanted[2], exists=False, previous=prev)
    assert row.status == "miss"
    assert row.reasons[0].startswith("setup changed (digest ") and "→" in row.reasons[0]
    assert row.reasons[-1] == "parent unchanged"
    assert "-RUN echo one" in row.diff and "+RUN echo two" in row.diff
    agent = explain(wanted[3], exists=False, previous=store.index.last_for_slot("agent", "a"))
    assert [r.split(" (")[0] for r in agent.reasons] == ["a lower layer changed"]
    assert explain(wanted[0], exists=True, previous=None).status == "hit"
    assert "never built" in explain(wanted[2], exists=False, previous=None).reasons[0]


def test_why_reports_a_copied_file_change(world, tmp_path: Path) -> None:
    eng, b, store = world
    store.ensure(_chain(tmp_path))
    (tmp_path / "ctx" / "f.txt").write_text("new\n")
    wanted = _chain(tmp_path)
    row = explain(wanted[0], exists=False, previous=store.index.last_for_slot("base", "base"))
    assert any(r.startswith("t: COPY file f.txt changed (digest ") for r in row.reasons), row.reasons


def _row(key: str, parent: str = "", used: float = 0.0, in_use: int = 0, size: int = 10) -> LayerRow:
    return LayerRow(key=key, kind="stack", name=key, image=f"tsk/layer:stack-{key}", image_id=key, parent=parent,
                    size=size, own_size=size, created=used, last_used=used, in_use=in_use)


def test_prune_plan_reachability_age_and_use() -> None:
    now = time.time()
    old = now - 30 * 86400
    rows = [
        _row("base", used=old), _row("needed", "base", used=old), _row("stale", "base", used=old),
        _row("stale-child", "stale", used=old), _row("fresh", "base", used=now), _row("running", "base", used=old,
                                                                                    in_use=1),
        _row("orphan-old", used=old),
    ]
    removed, kept = plan_prune(rows, needed={"needed"}, now=now, older_than=7 * 86400)
    assert [r.key for r in removed] == ["stale-child", "stale", "orphan-old"]  # children before parents
    reasons = {k.key: k.reason for k in kept}
    assert reasons["needed"].startswith("needed") and reasons["running"].startswith("in use")
    assert reasons["fresh"] == "used recently" and reasons["base"] == "parent of a kept layer"


def test_parse_duration() -> None:
    from tsk.errors import UsageError

    assert parse_duration("90s") == 90 and parse_duration("2h") == 7200 and parse_duration("7d") == 7 * 86400
    assert parse_duration("0") == 0
    with pytest.raises(UsageError):
        parse_duration("soon")


def test_a_warm_hit_is_one_engine_lookup_and_a_moved_base_image_is_noticed(tmp_path: Path) -> None:
    """DESIGN §2: on a hit, compute the keys, then one lookup. The base image's id is an input of every
    key, so it is remembered from the last resolution and confirmed by that same lookup."""
    from test_remote import _ctx

    from tsk.layers import service

    eng = FakeEngine()
    ctx, builder = _ctx(tmp_path, eng)
    req = service.TargetRequest(stacks=("default",), agents=("exec",))
    cfg = service.resolve_config(ctx, req)
    cold = service.build(ctx, req)
    assert [r.status for r in cold.layers] == ["built"] * 4 and cold.builder_calls == 4

    eng.lookups = 0
    store = service.make_store(ctx, cfg)
    tgts, results = service.ensure(ctx, req, cfg, store)
    assert [r.status for r in results] == ["hit"] * 4 and len(tgts) == 2  # the agent chain and the proxy
    assert eng.lookups == 1 and eng.calls[-1] == "find_images" and store.builder_calls == 0

    # The base image is re-made (a new id): every key moves, and the hit path must not trust the old ones.
    eng.add("debian:trixie", labels={"rebuilt": "yes"})
    moved = service.build(ctx, req)
    assert [r.status for r in moved.layers] == ["built"] * 4
    assert {r.key for r in moved.layers}.isdisjoint(r.key for r in cold.layers)
    eng.lookups = 0
    assert [r.status for r in service.ensure(ctx, req, cfg, service.make_store(ctx, cfg))[1]] == ["hit"] * 4
    assert eng.lookups == 1
