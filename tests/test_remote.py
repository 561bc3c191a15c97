"""The registry cache's decisions against a fake engine: what is pulled, in which order, how often, and
what happens when the registry fails. The real registry proves the behaviour in test_registry_engine.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeBuilder, FakeEngine
from test_store import _chain

from tsk.errors import ConfigError, RegistryError, UsageError
from tsk.layers.index import LayerIndex
from tsk.layers.remote import Remote, check_repository
from tsk.layers.store import LayerResult, NoEvents, Store, labels_for

REG = "127.0.0.1:5000/tsk/layers"


class Recorder(NoEvents):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def pulling(self, layer) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(f"pulling {layer.kind}")

    def started(self, layer) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(f"building {layer.kind}")

    def finished(self, layer, result: LayerResult) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(f"{result.status} {layer.kind}")

    def warning(self, text: str) -> None:
        self.seen.append(f"warning {text}")


def _store(tmp_path: Path, eng: FakeEngine, registry: str | None = REG) -> tuple[Store, FakeBuilder, Recorder]:
    b = FakeBuilder(eng)
    ev = Recorder()
    store = Store(engine=eng, builder=lambda: b, index=LayerIndex(tmp_path / "index"), locks=tmp_path / "locks",
                  scratch=tmp_path / "scratch", events=ev, remote=Remote(eng, registry) if registry else None)
    return store, b, ev


def _publish(eng: FakeEngine, chain, upto: int | None = None) -> None:  # type: ignore[no-untyped-def]
    """What CI left in the registry: the first `upto` layers of the chain (all by default)."""
    for layer in chain[:upto]:
        eng.remote[f"{REG}:{layer.kind}-{layer.key}"] = eng.add(f"ci-only/{layer.key}", labels_for(layer))
        eng.images_by_ref.pop(f"ci-only/{layer.key}")


def test_a_miss_pulls_the_leaf_then_its_ancestors_and_builds_nothing(tmp_path: Path) -> None:
    eng = FakeEngine()
    chain = _chain(tmp_path, project="RUN echo p\n")
    _publish(eng, chain)
    store, b, ev = _store(tmp_path, eng)
    res = store.ensure(chain)
    assert [r.status for r in res] == ["pulled"] * 4
    assert b.calls == 0 and store.builder_calls == 0
    pulls = [ref.rpartition(":")[2].split("-")[0] for verb, ref in eng.registry_calls if verb == "pull"]
    assert pulls == ["agent", "base", "stack", "project"]  # the leaf first: it brings every blob
    assert all(eng.image(layer.tag) is not None for layer in chain)  # the whole chain, under local tags
    assert not any(ref.startswith(REG) for ref in eng.images_by_ref)  # remote tags dropped
    assert all(r.pulled_bytes > 0 for r in res)
    assert store.index.get(chain[-1].key) is not None  # recorded, so `why` and `prune` know it
    # warm now: one engine lookup, no registry call
    eng.lookups, before = 0, len(eng.registry_calls)
    assert {r.status for r in store.ensure(chain)} == {"hit"}
    assert eng.lookups == 1 and len(eng.registry_calls) == before


def test_changed_project_pulls_the_shared_layers_and_builds_the_rest(tmp_path: Path) -> None:
    eng = FakeEngine()
    _publish(eng, _chain(tmp_path, project="RUN echo old\n"))
    chain = _chain(tmp_path, project="RUN echo new\n")
    store, b, ev = _store(tmp_path, eng)
    res = store.ensure(chain)
    assert [(r.kind, r.status) for r in res] == [("base", "pulled"), ("stack", "pulled"), ("project", "built"),
                                                  ("agent", "built")]
    assert b.built == [chain[2].tag, chain[3].tag]
    # each missing key was asked for once: agent, project (absent), stack (found), then base below it
    asked = [ref for verb, ref in eng.registry_calls if verb == "pull"]
    assert len(asked) == len(set(asked)) == 4


def test_the_hit_path_never_asks_the_registry(tmp_path: Path) -> None:
    eng = FakeEngine()
    chain = _chain(tmp_path)
    for layer in chain:
        eng.add(layer.tag, labels_for(layer))
    eng.registry_error = "must not be called"
    store, b, ev = _store(tmp_path, eng)
    assert {r.status for r in store.ensure(chain)} == {"hit"}
    assert eng.registry_calls == [] and eng.lookups == 1


def test_an_unreachable_registry_is_asked_once_then_everything_is_built_with_a_warning(tmp_path: Path) -> None:
    eng = FakeEngine()
    eng.registry_error = "dial tcp 127.0.0.1:5000: connect: connection refused"
    store, b, ev = _store(tmp_path, eng)
    res = store.ensure(_chain(tmp_path, project="RUN echo p\n"))
    assert [r.status for r in res] == ["built"] * 4
    assert len(eng.registry_calls) == 1  # not once per layer
    assert res[0].warning and "connection refused" in res[0].warning and "building instead" in res[0].warning
    assert store.warnings == [res[0].warning]
    assert any(s.startswith("warning ") for s in ev.seen)
    # a second chain in the same store (another target of the same command) does not ask again
    store.ensure(_chain(tmp_path, project="RUN echo q\n"))
    assert len(eng.registry_calls) == 1


def test_each_key_is_asked_for_at_most_once_per_store(tmp_path: Path) -> None:
    eng = FakeEngine()  # an empty registry: every pull is a miss
    store, b, ev = _store(tmp_path, eng)
    store.ensure(_chain(tmp_path, agent="RUN echo one\n"))
    for layer in _chain(tmp_path, agent="RUN echo one\n"):  # as if another process removed them
        eng.remove_image(layer.tag)
    store.ensure(_chain(tmp_path, agent="RUN echo one\n"))
    asked = [ref for verb, ref in eng.registry_calls if verb == "pull"]
    assert len(asked) == len(set(asked)) == 3


def test_a_registry_image_that_is_not_the_layer_it_names_is_refused(tmp_path: Path) -> None:
    eng = FakeEngine()
    chain = _chain(tmp_path)
    eng.remote[f"{REG}:agent-{chain[-1].key}"] = eng.add("impostor", {"dev.tsk.key": "something-else"})
    store, b, ev = _store(tmp_path, eng)
    res = store.ensure(chain)
    assert [r.status for r in res] == ["built"] * 3
    assert "is not the layer it names" in res[0].warning
    assert f"{REG}:agent-{chain[-1].key}" in eng.removed


def test_no_cache_never_pulls(tmp_path: Path) -> None:
    eng = FakeEngine()
    chain = _chain(tmp_path)
    _publish(eng, chain)
    store, b, ev = _store(tmp_path, eng)
    assert [r.status for r in store.ensure(chain, no_cache=True)] == ["built"] * 3
    assert eng.registry_calls == []


def test_fetch_pulls_only_and_fails_on_a_registry_error(tmp_path: Path) -> None:
    eng = FakeEngine()
    chain = _chain(tmp_path, project="RUN echo p\n")
    _publish(eng, chain, upto=2)
    store, b, ev = _store(tmp_path, eng)
    assert [r.status for r in store.fetch(chain)] == ["pulled", "pulled", "missing", "missing"]
    assert b.calls == 0
    eng.registry_error = "500 Internal Server Error"
    store, b, ev = _store(tmp_path, eng)
    with pytest.raises(RegistryError, match="500"):
        store.fetch(chain)


def test_registry_setting_must_name_a_repository() -> None:
    assert check_repository("ghcr.io/acme/tsk-layers", "x") == "ghcr.io/acme/tsk-layers"
    assert check_repository("127.0.0.1:5000/tsk/layers", "x")
    for bad in ("https://ghcr.io/acme/x", "ghcr.io/acme/x:latest", "ghcr.io/Acme/x", "ghcr.io", "x@sha256:ab"):
        with pytest.raises(ConfigError):
            check_repository(bad, "--registry")


def _ctx(tmp_path: Path, eng: FakeEngine, environ: dict[str, str] | None = None, toml: str = ""):  # type: ignore[no-untyped-def]
    import os

    from helpers import make_repo, trust

    from tsk.context import Context

    repo = make_repo(tmp_path / "repo", {"README.md": "x\n", ".tsk/tsk.toml": 'stack = "default"\nagent = "exec"\n'
                                         + toml})
    if toml:
        trust(repo)
    eng.add("debian:trixie")
    builder = FakeBuilder(eng)
    return Context(cwd=repo, engine=eng, builder=lambda: builder, environ={**os.environ, **(environ or {})}), builder


def test_registry_precedence_flag_env_config(tmp_path: Path) -> None:
    from tsk.layers import service

    eng = FakeEngine()
    ctx, _ = _ctx(tmp_path, eng, toml='[layers]\nregistry = "reg.example.com/from/config"\n')
    cfg = service.resolve_config(ctx, service.TargetRequest())

    def registry(flag: str | None = None) -> str | None:
        remote = service.make_store(ctx, cfg, registry=flag).remote
        return None if remote is None else remote.repository

    assert registry() == "reg.example.com/from/config"
    assert registry("reg.example.com/from/flag") == "reg.example.com/from/flag"
    ctx.environ["TSK_REGISTRY"] = "reg.example.com/from/env"
    assert registry() == "reg.example.com/from/env"
    # A queued task's store comes from its own config, in a context that never loaded one (a worker).
    import os

    from tsk.context import Context

    worker = Context(cwd=tmp_path, engine=eng, environ={k: v for k, v in os.environ.items() if k != "TSK_REGISTRY"})
    assert service.make_store(worker, cfg).remote is not None


def test_build_push_pushes_what_the_registry_lacks_then_nothing(tmp_path: Path) -> None:
    from tsk.layers import service

    eng = FakeEngine()
    ctx, builder = _ctx(tmp_path, eng)
    req = service.TargetRequest(stacks=("default",), agents=("exec",))
    with pytest.raises(UsageError, match="needs a registry"):
        service.build(ctx, req, push=True)
    first = service.build(ctx, req, push=True, registry=REG)
    assert [(r.kind, r.status, r.pushed) for r in first.layers] == [
        ("base", "built", "pushed"), ("stack", "built", "pushed"), ("agent", "built", "pushed"),
        ("proxy", "built", "pushed")]
    assert all(r.pushed_bytes > 0 for r in first.layers)
    assert set(eng.remote) == {f"{REG}:{r.kind}-{r.key}" for r in first.layers}
    again = service.push(ctx, req, registry=REG)
    assert {r.pushed for r in again.layers} == {"present"}
    assert [verb for verb, _ in eng.registry_calls[-4:]] == ["inspect"] * 4  # a manifest lookup each, no upload


def test_several_stacks_and_agents_push_each_shared_layer_once(tmp_path: Path) -> None:
    from tsk.layers import service

    eng = FakeEngine()
    ctx, builder = _ctx(tmp_path, eng)
    req = service.TargetRequest(stacks=("default", "python"), agents=("exec,claude",))  # as `-a exec,claude`
    report = service.build(ctx, req, push=True, registry=REG)
    assert report.targets == ["default + exec", "default + claude", "python + exec", "python + claude", "proxy"]
    kinds = [r.kind for r in report.layers]
    assert kinds.count("base") == 1 and kinds.count("stack") == 2 and kinds.count("agent") == 4
    pushes = [ref for verb, ref in eng.registry_calls if verb == "push"]
    assert len(pushes) == len(set(pushes)) == len(report.layers) == 8
    assert pushes[0].startswith(f"{REG}:base-")  # bottom-up: a layer's parent is in the registry first
