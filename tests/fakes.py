"""The one fake engine and builder, for the decisions of the store, the proxy manager, recovery and the
runner. It implements tsk/engine/ports.py's protocols (mypy checks it against them, see the end of this
file) with the engine's own semantics where tsk depends on them: label filters (`key` or `key=value`),
"gone already is fine" for removals, NotFound as an error type. The real engine proves behaviour in the
*_engine tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tsk.engine.ports import LABEL_KEY, Builder, ContainerInfo, ContainerState, Engine, ImageInfo, Pulled
from tsk.engine.spec import ContainerSpec
from tsk.errors import BuildFailed, EngineError, ImageMissing, RegistryError


def label_matches(labels: Mapping[str, str], wanted: str) -> bool:
    """The engine's label filter: `key` means the key is there, `key=value` that it has that value."""
    key, eq, value = wanted.partition("=")
    return key in labels and (not eq or labels[key] == value)


@dataclass
class FakeContainer:
    id: str
    name: str
    image: str
    labels: dict[str, str]
    spec: ContainerSpec | None = None
    status: str = "created"  # created, running, exited
    exit_code: int = 0
    logs: list[bytes] = field(default_factory=list)


class FakeEngine:
    def __init__(self, name: str = "docker") -> None:
        self.name = name
        self.images_by_ref: dict[str, ImageInfo] = {}
        self._made = 0
        self.lookups = 0  # image lookups (image() and find_images() count one each)
        self.calls: list[str] = []  # every call by name, in order
        self.boxes: dict[str, FakeContainer] = {}  # by name; ids are the names
        self.vols: dict[str, dict[str, str]] = {}  # volume name -> labels
        self.networks: set[str] = set()
        self.removed: list[str] = []  # image refs, container names and volume names, as removed
        self.stopped: list[str] = []
        # Failures to inject: method name -> the error its next call raises (then cleared).
        self.fail: dict[str, BaseException] = {}
        # Run after the named method did its work: another process acting at that moment.
        self.after: dict[str, Callable[[str], None]] = {}
        # The registry side: remote ref -> image; `registry_error` makes every registry call fail.
        self.remote: dict[str, ImageInfo] = {}
        self.registry_error: str | None = None
        self.registry_calls: list[tuple[str, str]] = []  # (verb, ref)

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail.pop(name)

    def _leave(self, name: str, ident: str) -> None:
        hook = self.after.get(name)
        if hook is not None:
            hook(ident)

    # -- set-up helpers for tests -----------------------------------------------------------------
    def add(self, ref: str, labels: dict[str, str] | None = None, size: int = 100, created: float = 0.0) -> ImageInfo:
        self._made += 1  # a new image has a new id, also under a tag another one had
        info = ImageInfo(id=f"sha256:{self._made:04x}{abs(hash(ref)):x}", tags=(ref,), size=size, labels=labels or {},
                         created=created)
        self.images_by_ref[ref] = info
        return info

    def add_container(self, name: str, *, labels: dict[str, str], image: str = "img", status: str = "running",
                      logs: Sequence[bytes] = (), exit_code: int = 0) -> FakeContainer:
        box = FakeContainer(id=name, name=name, image=image, labels=dict(labels), status=status,
                            logs=list(logs), exit_code=exit_code)
        self.boxes[name] = box
        return box

    def add_volume(self, name: str, labels: dict[str, str]) -> None:
        self.vols[name] = dict(labels)

    # -- images -----------------------------------------------------------------------------------
    def ping(self) -> None:
        self._enter("ping")

    def attach_command(self, ident: str) -> list[str]:
        return [self.name, "start", "--attach", "--interactive", ident]

    def image(self, ref: str) -> ImageInfo | None:
        self._enter("image")
        self.lookups += 1
        return self._image(ref)

    def _image(self, ref: str) -> ImageInfo | None:
        return self.images_by_ref.get(ref) or next((i for i in self.images_by_ref.values() if i.id == ref), None)

    def find_images(self, refs: Sequence[str]) -> dict[str, ImageInfo]:
        self._enter("find_images")
        self.lookups += 1
        return {ref: info for ref in refs if (info := self._image(ref)) is not None}

    def images(self, label: str = LABEL_KEY) -> list[ImageInfo]:
        self._enter("images")
        return list({i.id: i for i in self.images_by_ref.values() if label_matches(i.labels, label)}.values())

    def remove_image(self, ref: str) -> None:
        self._enter("remove_image")
        self.removed.append(ref)
        self.images_by_ref.pop(ref, None)

    def tag(self, image_id: str, ref: str) -> None:
        self._enter("tag")
        src = next(i for i in self.images_by_ref.values() if i.id == image_id)
        self.images_by_ref[ref] = src

    # -- registries -------------------------------------------------------------------------------
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

    def remote_has(self, ref: str) -> bool:
        self._registry("inspect", ref)
        return ref in self.remote

    # -- networks and volumes ---------------------------------------------------------------------
    def network_ensure(self, name: str, *, labels: Mapping[str, str]) -> str:
        self._enter("network_ensure")
        self.networks.add(name)
        return name

    def volume_create(self, name: str, *, driver_opts: Mapping[str, str], labels: Mapping[str, str]) -> None:
        self._enter("volume_create")
        self.vols[name] = dict(labels)
        self._leave("volume_create", name)

    def volume_remove(self, name: str) -> None:
        self._enter("volume_remove")
        if self.vols.pop(name, None) is not None:
            self.removed.append(name)

    def volumes(self, label: str) -> list[str]:
        self._enter("volumes")
        return [n for n, labels in self.vols.items() if label_matches(labels, label)]

    # -- containers -------------------------------------------------------------------------------
    def containers(self, label: str | None = None) -> list[ContainerInfo]:
        self._enter("containers")
        return [ContainerInfo(id=b.id, name=b.name, image_id=self._image_id(b.image), state=b.status,
                              labels=dict(b.labels))
                for b in self.boxes.values() if label is None or label_matches(b.labels, label)]

    def _image_id(self, ref: str) -> str:
        info = self._image(ref)
        return info.id if info else ref

    def container_create(self, spec: ContainerSpec) -> str:
        self._enter("container_create")
        if self._image(spec.image) is None:
            raise ImageMissing(f"the engine no longer has the image {spec.image}")
        if spec.name in self.boxes:
            raise EngineError(f"the engine refused the request: the name {spec.name} is in use")
        self.boxes[spec.name] = FakeContainer(id=spec.name, name=spec.name, image=spec.image,
                                              labels=dict(spec.labels), spec=spec)
        for m in spec.mounts:  # as the engine does, a named volume a container mounts is made with it
            if m.type == "volume":
                self.vols.setdefault(m.source, {})
        self._leave("container_create", spec.name)
        return spec.name

    def container_start(self, ident: str) -> None:
        self._enter("container_start")
        self.boxes[ident].status = "running"
        self._leave("container_start", ident)

    def container_logs(self, ident: str) -> Iterator[bytes]:
        self._enter("container_logs")
        yield from list(self.boxes[ident].logs)

    def container_wait(self, ident: str) -> int:
        self._enter("container_wait")
        box = self.boxes[ident]
        box.status = "exited"
        return box.exit_code

    def container_stop(self, ident: str, timeout: int = 10) -> None:
        self._enter("container_stop")
        self.stopped.append(ident)
        box = self.boxes.get(ident)
        if box is not None and box.status == "running":
            box.status, box.exit_code = "exited", 143

    def container_remove(self, ident: str) -> None:
        self._enter("container_remove")
        if self.boxes.pop(ident, None) is not None:
            self.removed.append(ident)
        self._leave("container_remove", ident)

    def container_state(self, ident: str) -> ContainerState | None:
        self._enter("container_state")
        box = self.boxes.get(ident)
        if box is None:
            return None
        return ContainerState(running=box.status == "running", status=box.status,
                              exit_code=box.exit_code if box.status == "exited" else None)


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
            raise BuildFailed(f"building {tag} failed")
        on_line("#1 DONE")
        self.built.append(tag)
        self.engine.add(tag, dict(labels), size=1000 * self.calls)


def _conforms(engine: FakeEngine) -> tuple[Engine, Builder]:
    """Never called: mypy checks here that the fakes implement the protocols the code uses."""
    return engine, FakeBuilder(engine)
