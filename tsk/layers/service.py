"""Core functions behind `tsk layers build` and friends: resolve targets to chains, then hand the
chains to the store. They return result structs; the CLI renders them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from tsk.errors import TskError
from tsk.layers import ca, catalog
from tsk.layers.plan import Layer, plan_chain
from tsk.layers.store import BuildEvents, LayerResult, Store

if TYPE_CHECKING:
    from tsk.config.schema import ResolvedConfig
    from tsk.context import Context


class TargetRequest(msgspec.Struct, frozen=True, kw_only=True):
    repo: str | None = None
    project: str | None = None  # the [project.<name>] whose settings apply (default: the repo's name)
    stacks: tuple[str, ...] = ()  # empty: the configured (or detected) stack
    agents: tuple[str, ...] = ()  # empty: the configured agent
    all_stacks: bool = False
    proxy: bool = True


class Target(msgspec.Struct, frozen=True, kw_only=True):
    label: str  # e.g. "python + claude", "proxy"
    chain: tuple[Layer, ...]


class BuildReport(msgspec.Struct, kw_only=True):
    targets: list[str]
    layers: list[LayerResult]
    builder_calls: int


class MissingBaseImage(TskError):
    pass


def resolve_config(ctx: Context, req: TargetRequest) -> ResolvedConfig:
    repo = ctx.find_repo(Path(req.repo) if req.repo else None)
    return ctx.config(repo, project=req.project)


def base_image_id(ctx: Context, ref: str) -> str:
    info = ctx.engine.image(ref)
    if info is None:
        raise MissingBaseImage(
            f"the base image `{ref}` is not in the engine's image store",
            hint="run `scripts/base-image` (pulls it, or makes it with mmdebstrap when it cannot be pulled), "
            "or set [layers] base_image in tsk.toml to an image you have",
        )
    return info.id


def ca_roots(ctx: Context, cfg: ResolvedConfig) -> dict[str, Path]:
    setting = cfg.layers.ca_certs
    certs = ca.collect(setting if setting == "auto" else list(setting))
    return {ca.CONTEXT_NAME: ca.materialise(certs, ctx.paths.cache)}


def targets(ctx: Context, req: TargetRequest, cfg: ResolvedConfig | None = None) -> list[Target]:
    cfg = cfg or resolve_config(ctx, req)
    stacks = list(catalog.split_names(req.stacks)) or [cfg.stack]
    if req.all_stacks:
        stacks = catalog.known("stack", cfg)
    agents = list(catalog.split_names(req.agents)) or [cfg.agent]
    roots = ca_roots(ctx, cfg)
    base_id = base_image_id(ctx, cfg.layers.base_image)
    out: list[Target] = []
    for stack in stacks:
        for agent in agents:
            slots = catalog.target_slots(cfg, stack=stack, agent=agent)
            chain = plan_chain(slots, base_image=cfg.layers.base_image, base_image_id=base_id, roots=roots)
            out.append(Target(label=f"{stack} + {agent}" + (f" ({cfg.project})" if cfg.setup else ""),
                              chain=chain))
    if req.proxy:
        chain = plan_chain(catalog.proxy_slots(), base_image=cfg.layers.base_image, base_image_id=base_id,
                           roots=roots)
        out.append(Target(label="proxy", chain=chain))
    return out


def make_store(ctx: Context, events: BuildEvents | None = None) -> Store:
    return Store(engine=ctx.engine, builder=ctx.builder_factory, index=ctx.index,
                 locks=ctx.paths.locks, scratch=ctx.paths.cache / "contexts", events=events)


def build(ctx: Context, req: TargetRequest, *, no_cache: bool = False,
          events: BuildEvents | None = None) -> BuildReport:
    store = make_store(ctx, events)
    seen: set[str] = set()
    results: list[LayerResult] = []
    tgts = targets(ctx, req)
    for tgt in tgts:
        for res in store.ensure(tgt.chain, no_cache=no_cache):
            if res.key not in seen:  # stacks share the base; report each layer once
                seen.add(res.key)
                results.append(res)
    return BuildReport(targets=[t.label for t in tgts], layers=results, builder_calls=store.builder_calls)


class PlannedLayer(msgspec.Struct, kw_only=True):
    kind: str
    name: str
    key: str
    image: str
    status: str  # "hit" or "missing"
    origin: str
    dockerfile: str
    inputs: dict[str, object]


def dry_run(ctx: Context, req: TargetRequest) -> list[PlannedLayer]:
    out: list[PlannedLayer] = []
    seen: set[str] = set()
    for tgt in targets(ctx, req):
        for layer in tgt.chain:
            if layer.key in seen:
                continue
            seen.add(layer.key)
            exists = ctx.engine.image(layer.tag) is not None
            out.append(PlannedLayer(
                kind=layer.kind, name=layer.name, key=layer.key, image=layer.tag,
                status="hit" if exists else "missing", origin=layer.origin, dockerfile=layer.dockerfile(),
                inputs=msgspec.to_builtins(layer.manifest()),
            ))
    return out
