"""The store's executor: the hit path (one engine lookup, no builder, no registry) and the miss path
(pull from the registry what it has, build only what is still missing, each layer under a per-key lock
shared by every process, checked again once held)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import msgspec
from filelock import FileLock, Timeout

from tsk.engine.ports import Builder, Engine
from tsk.errors import EngineError, RegistryError
from tsk.layers.index import LayerIndex
from tsk.layers.keys import SCHEMA_VERSION
from tsk.layers.plan import Layer

if TYPE_CHECKING:
    from tsk.layers.remote import Remote

# "missing": `tsk layers pull` found the layer neither here nor in the registry (ensure never says it).
Status = Literal["hit", "built", "pulled", "missing"]


class LayerResult(msgspec.Struct, kw_only=True):
    kind: str
    name: str
    key: str
    image: str
    status: Status
    seconds: float
    image_id: str = ""
    size: int = 0
    pulled_bytes: int = 0  # downloaded from the registry for this layer
    pushed: Literal["", "pushed", "present"] = ""  # `--push`: uploaded now, or the registry had it already
    pushed_bytes: int = 0
    warning: str = ""  # e.g. the registry was unreachable, so this layer was built instead


class BuildEvents(Protocol):
    def started(self, layer: Layer) -> None: ...
    def waiting(self, layer: Layer) -> None: ...
    def pulling(self, layer: Layer) -> None: ...
    def pushing(self, layer: Layer) -> None: ...
    def line(self, layer: Layer, text: str) -> None: ...
    def finished(self, layer: Layer, result: LayerResult) -> None: ...
    def warning(self, text: str) -> None: ...


class NoEvents:
    def started(self, layer: Layer) -> None:
        pass

    def waiting(self, layer: Layer) -> None:
        pass

    def pulling(self, layer: Layer) -> None:
        pass

    def pushing(self, layer: Layer) -> None:
        pass

    def line(self, layer: Layer, text: str) -> None:
        pass

    def finished(self, layer: Layer, result: LayerResult) -> None:
        pass

    def warning(self, text: str) -> None:
        pass


def labels_for(layer: Layer) -> dict[str, str]:
    """Every layer sets every key, so a child never inherits its parent's values."""
    return {
        "dev.tsk.schema": str(SCHEMA_VERSION),
        "dev.tsk.key": layer.key,
        "dev.tsk.parent": layer.parent or "",
        "dev.tsk.kind": layer.kind,
        "dev.tsk.name": layer.name,
        "dev.tsk.manifest": msgspec.json.encode(layer.manifest()).decode(),
    }


class Store:
    def __init__(
        self,
        *,
        engine: Engine,
        builder: Callable[[], Builder],
        index: LayerIndex,
        locks: Path,
        scratch: Path,
        events: BuildEvents | None = None,
        remote: Remote | None = None,
    ) -> None:
        self.engine = engine
        self.remote = remote
        self.warnings: list[str] = []
        self._builder_factory = builder
        self._builder: Builder | None = None
        self.index = index
        self.locks = locks
        self.scratch = scratch
        self.events: BuildEvents = events or NoEvents()

    @property
    def builder(self) -> Builder:
        if self._builder is None:
            self._builder = self._builder_factory()
        return self._builder

    @property
    def builder_calls(self) -> int:
        """BuildKit invocations so far; zero when the builder was never needed (the hit path)."""
        return 0 if self._builder is None else self._builder.calls

    def lookup(self, chain: tuple[Layer, ...]) -> bool:
        """One engine lookup of the leaf's tag."""
        return self.engine.image(chain[-1].tag) is not None

    def hit(self, chain: tuple[Layer, ...], seconds: float) -> list[LayerResult]:
        """Record a chain whose leaf the caller found: every layer is a hit, nothing else is asked."""
        self.index.touch(chain)
        return [_result(layer, "hit", seconds if layer is chain[-1] else 0.0) for layer in chain]

    def ensure(self, chain: tuple[Layer, ...], *, no_cache: bool = False) -> list[LayerResult]:
        """Make every layer of the chain exist: pull what the registry has, build only what is still missing."""
        t0 = time.perf_counter()
        if not no_cache and self.lookup(chain):
            return self.hit(chain, time.perf_counter() - t0)

        first_missing = 0 if no_cache else self._first_missing(chain)
        done: dict[str, LayerResult] = {layer.key: _result(layer, "hit", 0.0) for layer in chain[:first_missing]}
        if not no_cache:
            done.update(self._pull_missing(chain[first_missing:]))
        for layer in chain[first_missing:]:
            if layer.key not in done:
                done[layer.key] = self._build_one(layer, no_cache=no_cache)
        self.index.touch(chain)
        results = [done[layer.key] for layer in chain]
        if self.warnings and not any(r.warning for r in results):
            # Say it on the first layer this chain could not pull, so a result struct carries it too.
            first = next((r for r in results if r.status == "built"), None)
            if first is not None:
                first.warning = self.warnings[0]
        return results

    def fetch(self, chain: tuple[Layer, ...]) -> list[LayerResult]:
        """`tsk layers pull`: make the chain's layers exist by pulling only; never build. A layer the registry
        lacks is `missing`; a registry that fails is an error here, since pulling is all that was asked."""
        first_missing = self._first_missing(chain) if not self.lookup(chain) else len(chain)
        done = {layer.key: _result(layer, "hit", 0.0) for layer in chain[:first_missing]}
        done.update(self._pull_missing(chain[first_missing:], strict=True))
        self.index.touch(chain)
        return [done.get(layer.key) or _result(layer, "missing", 0.0) for layer in chain]

    def _first_missing(self, chain: tuple[Layer, ...]) -> int:
        """Walk down from just below the leaf to the nearest layer that exists; everything above it is missing."""
        for i in range(len(chain) - 2, -1, -1):
            if self.engine.image(chain[i].tag) is not None:
                return i + 1
        return 0

    def _pull_missing(self, missing: tuple[Layer, ...], *, strict: bool = False) -> dict[str, LayerResult]:
        """Pull the highest missing layer the registry has (the leaf first: one pull brings every blob a
        sandbox needs), then the missing layers below it, so the local store holds the whole chain for later
        builds on top of it. A registry failure is a warning (or, when `strict`, an error)."""
        out: dict[str, LayerResult] = {}
        if self.remote is None or not missing:
            return out
        top = None
        for i in range(len(missing) - 1, -1, -1):
            res = self._pull_one(missing[i], strict=strict)
            if res is not None:
                out[res.key], top = res, i
                break
            if not self.remote.usable:
                return out
        if top is None:  # the registry has none of them
            return out
        for layer in missing[:top]:
            res = self._pull_one(layer, strict=strict)
            if res is not None:
                out[res.key] = res
            elif not self.remote.usable:
                break
        return out

    def _pull_one(self, layer: Layer, *, strict: bool) -> LayerResult | None:
        assert self.remote is not None
        if not self.remote.usable or layer.key in self.remote.tried:
            return None
        with self._locked(layer):
            t0 = time.perf_counter()
            info = self.engine.image(layer.tag)  # someone may have made it while we waited for the lock
            if info is not None:
                return _result(layer, "hit", time.perf_counter() - t0, info.id, info.size)
            self.events.pulling(layer)
            try:
                got = self.remote.pull(layer, lambda text: self.events.line(layer, text))
            except RegistryError as exc:
                if strict:
                    raise
                text = f"{exc.message}; building instead (the registry is skipped for the rest of this run)"
                self.warnings.append(text)
                self.events.warning(text)
                return None
            if got is None:
                return None
            seconds = time.perf_counter() - t0
            self.index.record_build(layer, image_id=got.image.id, size=got.image.size, seconds=seconds)
            result = _result(layer, "pulled", seconds, got.image.id, got.image.size)
            result.pulled_bytes = got.bytes
            self.events.finished(layer, result)
            return result

    @contextmanager
    def _locked(self, layer: Layer) -> Iterator[None]:
        """The per-key lock every process shares; says so when another process holds it."""
        self.locks.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.locks / f"{layer.key}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self.events.waiting(layer)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def _build_one(self, layer: Layer, *, no_cache: bool) -> LayerResult:
        with self._locked(layer):
            t0 = time.perf_counter()
            # Someone may have built (or pulled) it while we waited for the lock.
            if not no_cache:
                info = self.engine.image(layer.tag)
                if info is not None:
                    result = _result(layer, "hit", time.perf_counter() - t0, info.id, info.size)
                    self.events.finished(layer, result)
                    return result
            self.events.started(layer)
            context = self._context(layer)
            try:
                self.builder.build(
                    context=context, tag=layer.tag, labels=labels_for(layer),
                    build_args=dict(layer.build_args), no_cache=no_cache,
                    on_line=lambda text: self.events.line(layer, text),
                )
            finally:
                shutil.rmtree(context, ignore_errors=True)
            info = self.engine.image(layer.tag)
            if info is None:
                raise EngineError(f"the build of {layer.slot} finished but the engine has no image {layer.tag}")
            seconds = time.perf_counter() - t0
            self.index.record_build(layer, image_id=info.id, size=info.size, seconds=seconds)
            result = _result(layer, "built", seconds, info.id, info.size)
            self.events.finished(layer, result)
            return result

    def _context(self, layer: Layer) -> Path:
        """A build context holding only the Dockerfile and the files the snippet reads."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        ctx = Path(tempfile.mkdtemp(prefix=f"ctx-{layer.kind}-", dir=self.scratch))
        (ctx / "Dockerfile").write_text(layer.dockerfile())
        for rel, host in layer.sources:
            dest = ctx / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = Path(host)
            if src.is_dir() and not src.is_symlink():
                shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dest, follow_symlinks=False)
        return ctx


def _result(layer: Layer, status: Status, seconds: float, image_id: str = "", size: int = 0) -> LayerResult:
    return LayerResult(kind=layer.kind, name=layer.name, key=layer.key, image=layer.tag, status=status,
                       seconds=round(seconds, 4), image_id=image_id, size=size)
