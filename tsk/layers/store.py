"""The store's executor: the hit path (one engine lookup, no builder) and the miss path (build only
the missing layers, each under a per-key lock shared by every process, checked again once held)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

import msgspec
from filelock import FileLock, Timeout

from tsk.errors import EngineError
from tsk.layers.index import LayerIndex
from tsk.layers.keys import SCHEMA_VERSION
from tsk.layers.plan import Layer
from tsk.layers.ports import Builder, Engine

Status = Literal["hit", "built", "pulled"]


class LayerResult(msgspec.Struct, kw_only=True):
    kind: str
    name: str
    key: str
    image: str
    status: Status
    seconds: float
    image_id: str = ""
    size: int = 0


class BuildEvents(Protocol):
    def started(self, layer: Layer) -> None: ...
    def waiting(self, layer: Layer) -> None: ...
    def line(self, layer: Layer, text: str) -> None: ...
    def finished(self, layer: Layer, result: LayerResult) -> None: ...


class NoEvents:
    def started(self, layer: Layer) -> None:
        pass

    def waiting(self, layer: Layer) -> None:
        pass

    def line(self, layer: Layer, text: str) -> None:
        pass

    def finished(self, layer: Layer, result: LayerResult) -> None:
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
    ) -> None:
        self.engine = engine
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
        """The hit path: one engine lookup of the leaf's tag."""
        return self.engine.image(chain[-1].tag) is not None

    def ensure(self, chain: tuple[Layer, ...], *, no_cache: bool = False) -> list[LayerResult]:
        """Make every layer of the chain exist; build only what is missing."""
        t0 = time.perf_counter()
        if not no_cache and self.lookup(chain):
            self.index.touch(chain)
            spent = time.perf_counter() - t0
            return [_result(layer, "hit", spent if layer is chain[-1] else 0.0) for layer in chain]

        # Walk down from the leaf to the nearest layer that exists; everything above it is built.
        first_missing = 0
        if not no_cache:
            for i in range(len(chain) - 2, -1, -1):
                if self.engine.image(chain[i].tag) is not None:
                    first_missing = i + 1
                    break
        results = [_result(layer, "hit", 0.0) for layer in chain[:first_missing]]
        for layer in chain[first_missing:]:
            results.append(self._build_one(layer, no_cache=no_cache))
        self.index.touch(chain)
        return results

    def _build_one(self, layer: Layer, *, no_cache: bool) -> LayerResult:
        self.locks.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.locks / f"{layer.key}.lock"))
        t0 = time.perf_counter()
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self.events.waiting(layer)
            lock.acquire()
        try:
            # Someone may have built it while we waited for the lock.
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
        finally:
            lock.release()

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
