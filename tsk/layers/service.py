"""Core functions behind `tsk layers build` and friends: resolve targets to chains, then hand the
chains to the store. They return result structs; the CLI renders them."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from tsk.errors import TskError, UsageError
from tsk.layers import ca, catalog
from tsk.layers.plan import Layer, plan_chain
from tsk.layers.store import BuildEvents, LayerResult, Store

if TYPE_CHECKING:
    from tsk.config.schema import ResolvedConfig
    from tsk.context import Context
    from tsk.layers.remote import Remote


class TargetRequest(msgspec.Struct, frozen=True, kw_only=True):
    repo: str | None = None
    project: str | None = None  # the [project.<name>] whose settings apply (default: the repo's name)
    stacks: tuple[str, ...] = ()  # empty: the configured (or detected) stack
    agents: tuple[str, ...] = ()  # empty: the configured agent
    all_stacks: bool = False
    proxy: bool = True
    sandbox: bool = True  # False: the proxy's chain alone (`--proxy-only`)


class Target(msgspec.Struct, frozen=True, kw_only=True):
    label: str  # e.g. "python + claude", "proxy"
    chain: tuple[Layer, ...]


class BuildReport(msgspec.Struct, kw_only=True):
    targets: list[str]
    layers: list[LayerResult]
    builder_calls: int
    registry: str | None = None
    warnings: list[str] = []

    def count(self, status: str) -> int:
        return sum(1 for r in self.layers if r.status == status)


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
    return {ca.CONTEXT_NAME: ca.materialise(certs, ctx.cache_dir)}


def targets(ctx: Context, req: TargetRequest, cfg: ResolvedConfig | None = None, *,
            base_id: str | None = None) -> list[Target]:
    """The chains the request names, keyed on `base_id` (default: the base image's id, looked up now)."""
    cfg = cfg or resolve_config(ctx, req)
    stacks = list(catalog.split_names(req.stacks)) or [cfg.stack]
    if req.all_stacks:
        stacks = catalog.known("stack", cfg)
    agents = list(catalog.split_names(req.agents)) or [cfg.agent]
    roots = ca_roots(ctx, cfg)
    base_id = base_id or base_image_id(ctx, cfg.layers.base_image)
    out: list[Target] = []
    for stack in stacks if req.sandbox else ():
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


def make_store(ctx: Context, cfg: ResolvedConfig, events: BuildEvents | None = None,
               registry: str | None = None) -> Store:
    """A store over the context's engine. Its registry: `registry` (the --registry flag), else
    TSK_REGISTRY, else `[layers] registry` of `cfg` (a queued task's own config, for a server worker).
    Making the store touches nothing; the hit path never asks the registry."""
    from tsk.layers.remote import check_repository

    if registry:
        repository: str | None = check_repository(registry, "--registry")
    elif ctx.environ.get("TSK_REGISTRY"):
        repository = check_repository(ctx.environ["TSK_REGISTRY"], "TSK_REGISTRY")
    else:
        repository = cfg.layers.registry  # checked when the config was loaded
    remote = None
    if repository is not None:
        from tsk.layers.remote import Remote

        remote = Remote(ctx.engine, repository)
    return Store(engine=ctx.engine, builder=ctx.builder_factory, index=ctx.index,
                 locks=ctx.paths.locks, scratch=ctx.cache_dir / "contexts", events=events, remote=remote)


def unique_layers(tgts: list[Target]) -> list[Layer]:
    """Every layer of the targets once, in chain order (stacks share the base, agents share the stack)."""
    return list({layer.key: layer for t in tgts for layer in t.chain}.values())


def ensure(ctx: Context, req: TargetRequest, cfg: ResolvedConfig, store: Store, *,
           no_cache: bool = False) -> tuple[list[Target], list[LayerResult]]:
    """Make every layer of the targets exist; each layer once in the results.

    The warm hit costs one engine call: the keys are computed from the base image id remembered from the
    last resolution, then one lookup confirms the base still has that id and every leaf exists. Anything
    else (first use, a moved base image, a missing leaf) takes the miss path."""
    t0 = time.perf_counter()
    base_ref = cfg.layers.base_image
    remembered = None if no_cache else ctx.index.base_id(base_ref)
    base_id: str | None = None
    tgts: list[Target] | None = None
    if remembered is not None:
        tgts = targets(ctx, req, cfg, base_id=remembered)
        leaves = [t.chain[-1].tag for t in tgts]
        found = ctx.engine.find_images([base_ref, *leaves])
        base = found.get(base_ref)
        if base is None:
            base_image_id(ctx, base_ref)  # raises, saying how to get it
        elif base.id == remembered and all(leaf in found for leaf in leaves):
            spent = time.perf_counter() - t0
            by_key = {r.key: r for t in tgts for r in store.hit(t.chain, spent)}
            return tgts, [by_key[layer.key] for layer in unique_layers(tgts)]
        else:
            base_id = base.id
            if base_id != remembered:
                tgts = None  # keyed on an id the base no longer has
    if base_id is None:
        base_id = base_image_id(ctx, base_ref)
    if tgts is None:
        tgts = targets(ctx, req, cfg, base_id=base_id)
    ctx.index.remember_base(base_ref, base_id)
    by_key = {r.key: r for t in tgts for r in store.ensure(t.chain, no_cache=no_cache)}
    return tgts, [by_key[layer.key] for layer in unique_layers(tgts)]


def build(ctx: Context, req: TargetRequest, *, no_cache: bool = False, events: BuildEvents | None = None,
          registry: str | None = None, push: bool = False) -> BuildReport:
    """Make every layer of the targets exist (pulling what the registry has, building the rest); with
    `push`, then upload every layer the registry lacks (the CI prewarm)."""
    cfg = resolve_config(ctx, req)
    store = make_store(ctx, cfg, events, registry)
    if push:
        _require_remote(store, "build --push")
    tgts, results = ensure(ctx, req, cfg, store, no_cache=no_cache)
    if push:
        _push(store, tgts, results)
    return BuildReport(targets=[t.label for t in tgts], layers=results, builder_calls=store.builder_calls,
                       registry=None if store.remote is None else store.remote.repository, warnings=store.warnings)


def push(ctx: Context, req: TargetRequest, *, registry: str | None = None,
         events: BuildEvents | None = None) -> BuildReport:
    """Upload every layer of the targets that the registry lacks; every layer must exist here."""
    cfg = resolve_config(ctx, req)
    tgts = targets(ctx, req, cfg)
    store = make_store(ctx, cfg, events, registry)
    remote = _require_remote(store, "push")
    results: list[LayerResult] = []
    for layer in unique_layers(tgts):
        info = ctx.engine.image(layer.tag)
        if info is None:
            raise MissingLayer(f"{layer.slot} ({layer.key[:16]}) is not built here, so it cannot be pushed",
                               hint="build first: `tsk layers build --push` builds what is missing, then pushes")
        results.append(LayerResult(kind=layer.kind, name=layer.name, key=layer.key, image=layer.tag, status="hit",
                                   seconds=0.0, image_id=info.id, size=info.size))
    _push(store, tgts, results)
    return BuildReport(targets=[t.label for t in tgts], layers=results, builder_calls=0, registry=remote.repository)


def pull(ctx: Context, req: TargetRequest, *, registry: str | None = None,
         events: BuildEvents | None = None) -> BuildReport:
    """Pull every layer of the targets this engine lacks; never build. Layers the registry lacks are `missing`."""
    cfg = resolve_config(ctx, req)
    tgts = targets(ctx, req, cfg)
    store = make_store(ctx, cfg, events, registry)
    remote = _require_remote(store, "pull")
    by_key = {r.key: r for t in tgts for r in store.fetch(t.chain)}
    results = [by_key[layer.key] for layer in unique_layers(tgts)]
    return BuildReport(targets=[t.label for t in tgts], layers=results, builder_calls=0, registry=remote.repository)


class MissingLayer(TskError):
    pass


def _require_remote(store: Store, what: str) -> Remote:
    from tsk.layers.remote import HOW_TO_SET

    if store.remote is None:
        raise UsageError(f"`tsk layers {what}` needs a registry and none is configured", hint=HOW_TO_SET)
    return store.remote


def _push(store: Store, tgts: list[Target], results: list[LayerResult]) -> None:
    """Push, bottom-up, each layer the registry lacks (one manifest lookup each, no download)."""
    remote = store.remote
    assert remote is not None
    by_key = {r.key: r for r in results}
    for layer in unique_layers(tgts):
        res = by_key[layer.key]
        if remote.has(layer):
            res.pushed = "present"
            continue
        store.events.pushing(layer)
        res.pushed_bytes = remote.push(layer, partial(store.events.line, layer))
        res.pushed = "pushed"
        store.events.finished(layer, res)


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
    layers = unique_layers(targets(ctx, req))
    present = ctx.engine.find_images([layer.tag for layer in layers])
    return [PlannedLayer(kind=layer.kind, name=layer.name, key=layer.key, image=layer.tag,
                         status="hit" if layer.tag in present else "missing", origin=layer.origin,
                         dockerfile=layer.dockerfile(), inputs=msgspec.to_builtins(layer.manifest()))
            for layer in layers]
