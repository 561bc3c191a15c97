"""`tsk layers lock`: `.tsk/layers.lock` records, for each configured target, every layer's key and the
digests of the inputs that made it, so CI can tell when they moved (`--check`) and say which one did.

TOML, one `[[layer]]` block per layer, keys sorted: it reads well in a diff. The base image's id is
recorded because it is an input of every key: on a machine whose base image has another id (made
locally by mmdebstrap, or the tag has moved upstream) the keys differ, and `--check` says so."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from tsk.errors import ConfigError, TskError
from tsk.layers.diff import changes as manifest_changes
from tsk.layers.keys import SCHEMA_VERSION
from tsk.layers.plan import Layer, Manifest

if TYPE_CHECKING:
    from tsk.context import Context
    from tsk.layers.service import Target, TargetRequest

LOCK_PATH = Path(".tsk") / "layers.lock"
FORMAT = 1


class LockedLayer(msgspec.Struct, frozen=True, kw_only=True):
    path: str  # the slots from the bottom layer up to this one: "base/base > stack/default > agent/exec"
    key: str
    parent: str  # "" for a layer built on an outside image
    origin: str  # where the snippet came from
    snippet: str  # digest of the snippet text
    base_image: str = ""
    base_image_id: str = ""
    build_args: dict[str, str] = {}
    files: dict[str, str] = {}  # context path -> content digest (COPY, ADD, RUN --mount=type=bind)

    @property
    def slot(self) -> str:
        return self.path.rpartition(" > ")[2]

    def manifest(self) -> Manifest:
        kind, _, name = self.slot.partition("/")
        return Manifest(kind=kind, name=name, parent=self.parent or None, snippet=self.snippet,
                        build_args=self.build_args, files=self.files, base_image=self.base_image or None,
                        base_image_id=self.base_image_id or None, origin=self.origin)


class Lock(msgspec.Struct, kw_only=True):
    format: int
    key_schema: int
    stacks: list[str]  # what was asked for, so `--check` without flags locks the same targets
    agents: list[str]
    all_stacks: bool
    targets: list[str]
    layer: list[LockedLayer]


class LockReport(msgspec.Struct, kw_only=True):
    path: str
    written: bool
    ok: bool
    changes: list[str]
    layers: int


def locked_layers(tgts: list[Target]) -> list[LockedLayer]:
    out: dict[str, LockedLayer] = {}
    for tgt in tgts:
        for i, layer in enumerate(tgt.chain):
            path = " > ".join(x.slot for x in tgt.chain[: i + 1])
            out.setdefault(path, _locked(layer, path))
    return list(out.values())


def _locked(layer: Layer, path: str) -> LockedLayer:
    m = layer.manifest()
    return LockedLayer(path=path, key=layer.key, parent=layer.parent or "", origin=layer.origin, snippet=m.snippet,
                       base_image=layer.base_image or "", base_image_id=layer.base_image_id or "",
                       build_args=dict(sorted(m.build_args.items())), files=dict(sorted(m.files.items())))


# -- the file ------------------------------------------------------------------------------------------


def _s(value: str) -> str:
    """A TOML basic string: JSON's escapes are all valid TOML escapes."""
    return json.dumps(value, ensure_ascii=False)


def dumps(lock: Lock) -> str:
    lines = [
        "# Written by `tsk layers lock`; `tsk layers lock --check` fails when the inputs below no longer match.",
        "# Each [[layer]] is one image layer: its key, then the digests of everything that made it.",
        f"format = {lock.format}",
        f"key_schema = {lock.key_schema}",
        f"stacks = [{', '.join(_s(x) for x in lock.stacks)}]",
        f"agents = [{', '.join(_s(x) for x in lock.agents)}]",
        f"all_stacks = {'true' if lock.all_stacks else 'false'}",
        f"targets = [{', '.join(_s(x) for x in lock.targets)}]",
    ]
    for layer in lock.layer:
        lines += ["", "[[layer]]"]
        for name in ("path", "key", "parent", "origin", "snippet", "base_image", "base_image_id"):
            value = getattr(layer, name)
            if value or name in ("path", "key", "parent", "snippet"):
                lines.append(f"{name} = {_s(value)}")
        for table in ("build_args", "files"):
            items: dict[str, str] = getattr(layer, table)
            if items:
                lines.append(f"[layer.{table}]")
                lines += [f"{_s(k)} = {_s(v)}" for k, v in sorted(items.items())]
    return "\n".join(lines) + "\n"


def loads(text: str, where: str) -> Lock:
    try:
        return msgspec.convert(tomllib.loads(text), Lock)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"cannot read the lock file: {exc}", path=where,
                          hint="write it again with `tsk layers lock`") from exc


# -- comparing -----------------------------------------------------------------------------------------


def changes(old: Lock, new_layers: list[LockedLayer], new_targets: list[str]) -> list[str]:
    """What moved, one line per input, in the words of the snippet: `project/p: COPY file x changed (…)`."""
    out: list[str] = []
    if old.key_schema != SCHEMA_VERSION:
        out.append(f"the lock was written with key schema {old.key_schema}; this tsk computes keys with "
                   f"schema {SCHEMA_VERSION}, so every key differs")
    before = {x.path: x for x in old.layer}
    paths_of: dict[str, set[str]] = {}
    for x in (*new_layers, *old.layer):
        paths_of.setdefault(x.slot, set()).add(x.path)

    def name(x: LockedLayer) -> str:  # the slot, or the whole path when several chains hold that slot
        return x.slot if len(paths_of[x.slot]) == 1 else x.path

    for new in new_layers:
        was = before.pop(new.path, None)
        if was is None:
            out.append(f"{name(new)}: new layer, not in the lock (key {new.key[:12]})")
        elif was.key != new.key:
            out.extend(f"{name(new)}: {why}" for why in layer_changes(was, new))
    out.extend(f"{name(gone)}: in the lock, no longer in the targets" for gone in before.values())
    if sorted(old.targets) != sorted(new_targets) and not out:
        out.append(f"targets changed: {', '.join(old.targets)}→{', '.join(new_targets)}")
    return out


def layer_changes(old: LockedLayer, new: LockedLayer) -> list[str]:
    return manifest_changes(old.manifest(), new.manifest(), old_key=old.key, new_key=new.key)


# -- the command ---------------------------------------------------------------------------------------


def lock(ctx: Context, req: TargetRequest, *, check: bool) -> LockReport:
    """Write `.tsk/layers.lock` for the targets; with `check`, compare instead and list what changed."""
    from tsk.layers.service import resolve_config, targets

    cfg = resolve_config(ctx, req)
    path = Path(cfg.repo) / LOCK_PATH
    old: Lock | None = None
    if check:
        if not path.is_file():
            raise TskError(f"no lock file at {path}", hint="write one with `tsk layers lock` and commit it")
        old = loads(path.read_text(), str(path))
        if not (req.stacks or req.agents or req.all_stacks):  # check what the lock was written for
            req = msgspec.structs.replace(req, stacks=tuple(old.stacks), agents=tuple(old.agents),
                                          all_stacks=old.all_stacks)
    tgts = targets(ctx, req, cfg)
    layers = locked_layers(tgts)
    labels = [t.label for t in tgts]
    if old is not None:
        found = changes(old, layers, labels)
        return LockReport(path=str(path), written=False, ok=not found, changes=found, layers=len(layers))
    new = Lock(format=FORMAT, key_schema=SCHEMA_VERSION, stacks=list(req.stacks), agents=list(req.agents),
               all_stacks=req.all_stacks, targets=labels, layer=layers)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(dumps(new))
    tmp.replace(path)
    return LockReport(path=str(path), written=True, ok=True, changes=[], layers=len(layers))
