"""A fake engine and builder for the store's decisions. The real engine proves behaviour elsewhere."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from tsk.engine.ports import ContainerInfo, ImageInfo, Pulled
from tsk.errors import RegistryError


class FakeEngine:
    def __init__(self) -> None:
        self.images_by_ref: dict[str, ImageInfo] = {}
        self.lookups = 0
        self.container_list: list[ContainerInfo] = []
        self.removed: list[str] = []
        # The registry side: remote ref -> image; `registry_error` makes every registry call fail.
        self.remote: dict[str, ImageInfo] = {}
        self.registry_error: str | None = None
        self.registry_calls: list[tuple[str, str]] = []  # (verb, ref)

    def add(self, ref: str, labels: dict[str, str] | None = None, size: int = 100, created: float = 0.0) -> ImageInfo:
        info = ImageInfo(id=f"sha256:{abs(hash(ref)):x}", tags=(ref,), size=size, labels=labels or {},
                         created=created)
        self.images_by_ref[ref] = info
        return info

    def image(self, ref: str) -> ImageInfo | None:
        self.lookups += 1
        return self.images_by_ref.get(ref) or next(
            (i for i in self.images_by_ref.values() if i.id == ref), None)

    def images(self, label: str = "dev.tsk.key") -> list[ImageInfo]:
        return [i for i in self.images_by_ref.values() if label in i.labels]

    def containers(self) -> list[ContainerInfo]:
        return list(self.container_list)

    def remove_image(self, ref: str) -> None:
        self.removed.append(ref)
        self.images_by_ref.pop(ref, None)

    def tag(self, image_id: str, ref: str) -> None:
        src = next(i for i in self.images_by_ref.values() if i.id == image_id)
        self.images_by_ref[ref] = src

    def _registry(self, verb: str, ref: str) -> None:
        self.registry_calls.append((verb, ref))
        if self.registry_error is not None:
            raise RegistryError(f"registry {ref.split('/')[0]}: {self.registry_error}", reason=self.registry_error)

    def pull(self, ref: str, on_line: Callable[[str], None]) -> Pulled | None:
        self._registry("pull", ref)
        info = self.remote.get(ref)
        if info is None:
            return None
        on_line("Download complete")
        self.images_by_ref[ref] = info
        return Pulled(image=info, bytes=info.size // 2)

    def push(self, ref: str, on_line: Callable[[str], None]) -> int:
        self._registry("push", ref)
        self.remote[ref] = self.images_by_ref[ref]
        on_line("Pushed")
        return self.images_by_ref[ref].size

    def remote_digest(self, ref: str) -> str | None:
        self._registry("inspect", ref)
        return None if ref not in self.remote else "sha256:" + self.remote[ref].id[-8:]


class FakeBuilder:
    """Records builds and 'produces' the image in the fake engine."""

    def __init__(self, engine: FakeEngine, fail: bool = False) -> None:
        self.engine = engine
        self.calls = 0
        self.built: list[str] = []
        self.contexts: list[set[str]] = []
        self.fail = fail

    def build(self, *, context: Path, tag: str, labels: Mapping[str, str], build_args: Mapping[str, str],
              no_cache: bool, on_line: Callable[[str], None]) -> None:
        self.calls += 1
        self.contexts.append({str(p.relative_to(context)) for p in context.rglob("*") if p.is_file()})
        if self.fail:
            from tsk.errors import BuildFailed

            raise BuildFailed(f"building {tag} failed")
        on_line("#1 DONE")
        self.built.append(tag)
        self.engine.add(tag, dict(labels), size=1000 * self.calls)
